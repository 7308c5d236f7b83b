//! The virtio-net header (`struct virtio_net_hdr`, 10 bytes) that leads
//! every packet read from or written to a TUN device opened with
//! `IFF_VNET_HDR`: checksum-offload flags and the GSO (super-packet) type.

/// Length of the header (the kernel's default `TUNSETVNETHDRSZ`).
pub const LEN: usize = 10;

/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the checksum at `csum_start + csum_offset`
/// holds only the pseudo-header sum.
pub const F_NEEDS_CSUM: u8 = 1;
/// `VIRTIO_NET_HDR_F_DATA_VALID`: the kernel already verified the checksums.
pub const F_DATA_VALID: u8 = 2;
/// `VIRTIO_NET_HDR_GSO_NONE`.
pub const GSO_NONE: u8 = 0;
/// `VIRTIO_NET_HDR_GSO_TCPV4`.
pub const GSO_TCPV4: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_UDP` (UFO, no longer produced).
pub const GSO_UDP: u8 = 3;
/// `VIRTIO_NET_HDR_GSO_TCPV6`.
pub const GSO_TCPV6: u8 = 4;
/// `VIRTIO_NET_HDR_GSO_UDP_L4` (USO).
pub const GSO_UDP_L4: u8 = 5;
/// `VIRTIO_NET_HDR_GSO_ECN`: or-ed into the GSO type.
pub const GSO_ECN: u8 = 0x80;

/// `struct virtio_net_hdr` (10 bytes, the host's byte order, as TUN uses it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VnetHeader {
    /// `F_NEEDS_CSUM`, `F_DATA_VALID`.
    pub flags: u8,
    /// `GSO_*`, possibly or-ed with [`GSO_ECN`].
    pub gso_type: u8,
    /// Length of the headers (IP + transport) of a super-packet.
    pub hdr_len: u16,
    /// Payload bytes per segment of a super-packet.
    pub gso_size: u16,
    /// Offset from the IP header to where checksumming starts.
    pub csum_start: u16,
    /// Offset from `csum_start` to the checksum field.
    pub csum_offset: u16,
}

/// The header of a plain packet: no offload, complete checksums.
pub const PLAIN: VnetHeader = VnetHeader {
    flags: 0,
    gso_type: GSO_NONE,
    hdr_len: 0,
    gso_size: 0,
    csum_start: 0,
    csum_offset: 0,
};

impl VnetHeader {
    /// Read the header from the first 10 bytes of `b`; `None` when shorter.
    pub fn read(b: &[u8]) -> Option<VnetHeader> {
        let b: &[u8; LEN] = b.get(..LEN)?.try_into().ok()?;
        let u16_at = |i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
        Some(VnetHeader {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u16_at(2),
            gso_size: u16_at(4),
            csum_start: u16_at(6),
            csum_offset: u16_at(8),
        })
    }

    /// Write the header into the first 10 bytes of `b` (no-op when shorter).
    pub fn write(&self, b: &mut [u8]) {
        let Some(b) = b.get_mut(..LEN) else {
            return;
        };
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_ne_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_ne_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_ne_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_ne_bytes());
    }

    /// The GSO type without the ECN bit.
    pub fn gso(&self) -> u8 {
        self.gso_type & !GSO_ECN
    }

    /// A super-packet: more than one segment's worth of payload may follow.
    pub fn is_gso(&self) -> bool {
        self.gso() != GSO_NONE
    }

    /// The kernel left the transport checksum partial or verified it
    /// (`NEEDS_CSUM` or `DATA_VALID`).
    pub fn checksum_offloaded(&self) -> bool {
        self.flags & (F_NEEDS_CSUM | F_DATA_VALID) != 0
    }

    /// Whether the transport checksum of a packet whose IP header is
    /// `ip_header_len` bytes and whose checksum field sits `field` bytes into
    /// the transport header may be left unverified: the kernel verified it
    /// (`DATA_VALID`), or it is a partial checksum at exactly that field
    /// (`NEEDS_CSUM`), which the device that transmits the packet completes,
    /// as Linux treats `CHECKSUM_PARTIAL` and `CHECKSUM_UNNECESSARY` skbs.
    pub fn transport_checksum_trusted(&self, ip_header_len: usize, field: usize) -> bool {
        if self.flags & F_DATA_VALID != 0 {
            return true;
        }
        self.flags & F_NEEDS_CSUM != 0
            && usize::from(self.csum_start) == ip_header_len
            && usize::from(self.csum_offset) == field
    }
}
