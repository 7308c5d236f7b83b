//! A minimal pcap writer (the classic libpcap format, link type RAW: each
//! record is an IP packet), so tcpdump and Wireshark read what tunfw dropped.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// `LINKTYPE_RAW`: records start with an IPv4 or IPv6 header.
pub const LINKTYPE_RAW: u32 = 101;
const SNAPLEN: u32 = 65_535;

/// An open capture file.
pub struct PcapWriter {
    out: BufWriter<File>,
}

impl PcapWriter {
    /// Create (or truncate) `path` and write the file header.
    pub fn create(path: &Path) -> io::Result<PcapWriter> {
        let mut out = BufWriter::new(File::create(path)?);
        out.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
        out.write_all(&2u16.to_le_bytes())?;
        out.write_all(&4u16.to_le_bytes())?;
        out.write_all(&0i32.to_le_bytes())?;
        out.write_all(&0u32.to_le_bytes())?;
        out.write_all(&SNAPLEN.to_le_bytes())?;
        out.write_all(&LINKTYPE_RAW.to_le_bytes())?;
        out.flush()?;
        Ok(PcapWriter { out })
    }

    /// Append one packet, stamped with the wall clock.
    pub fn write(&mut self, packet: &[u8]) -> io::Result<()> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let len = packet.len().min(SNAPLEN as usize);
        self.out.write_all(&(now.as_secs() as u32).to_le_bytes())?;
        self.out.write_all(&now.subsec_micros().to_le_bytes())?;
        self.out.write_all(&(len as u32).to_le_bytes())?;
        self.out.write_all(&(packet.len() as u32).to_le_bytes())?;
        self.out.write_all(&packet[..len])
    }

    /// Push buffered records to the file (after each batch of packets).
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
