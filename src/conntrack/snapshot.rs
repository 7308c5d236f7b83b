//! The table's state across a restart: every live flow and expectation
//! written to a byte stream ([`Conntrack::save`]) and read back into a
//! fresh table ([`Conntrack::restore`]) with the time each had left.
//!
//! Time in the table is process-relative ([`Instant`]), so a snapshot holds
//! remaining times (`expires - now`), never instants; a restore sets
//! `now + remaining`, less the wall-clock time that passed between the
//! save and the restore (the header holds the wall clock at the save; a
//! clock that went backwards counts as no time passed). A flow or an
//! expectation whose time ran out meanwhile is restored already expired
//! (the expiry sweep removes it at once), so that the ids the file's
//! records refer to stay those of the restored table.
//!
//! # Format (version 1), little-endian
//!
//! | part | bytes |
//! |---|---|
//! | header | magic `TUNFWST\0` (8), version `u16`, helper kind `u16` ([`SnapshotState::KIND`]), reserved `u32` = 0, flows `u32`, expectations `u32`, wall clock at the save in ms since 1970 `u64` |
//! | flows | one record each, below |
//! | expectations | one record each, below |
//! | trailer | CRC-32 (IEEE) of every byte before it, `u32` |
//!
//! A flow record: protocol kind `u8` (0 TCP, 1 UDP, 2 ICMP, 3 other),
//! status bits `u8` (seen reply, assured, expected, from the WAN,
//! translated, has helper state), the original tuple, the reply tuple when
//! translated, the remaining time in ms `u64`, packets and bytes per
//! direction (4 × `u64`), then the protocol's state (TCP: the tracker's
//! state machine, both directions' windows and flags, the last segment and
//! the retransmission count, [`TcpConn::SNAPSHOT_LEN`] bytes; UDP: the
//! time left before it may become a stream, ms `u64`), then, with helper
//! state, the index in the file of the flow's pending expectation `u32`
//! (`u32::MAX`: none) and the helper's own state ([`SnapshotState`]). A
//! tuple: family `u8` (4 or 6), source and destination addresses (4 or 16
//! bytes each), protocol `u8`, source and destination ids `u16`.
//!
//! An expectation record: the index in the file of its control flow `u32`,
//! family `u8`, source and destination addresses, destination port `u16`,
//! remaining time ms `u64`, NAT follow-up `u8` (0 none, 1 original, 2
//! reply direction) and its port `u16`.
//!
//! The checksum detects corruption (a torn write, a flipped bit, a file of
//! another program cut to look like one): a plain CRC-32 is enough for
//! that; the file is not a security boundary (whoever can write it can
//! write any state), so no keyed MAC is used. Every field is also checked
//! for range as it is read.
//!
//! # Guarantees
//!
//! - A restore goes into a table that has never held a flow (as at start)
//!   and either restores the whole file or refuses it with a
//!   [`RestoreError`] that says why, leaving the table empty (its counters
//!   as before). It refuses a file of another format or version, of
//!   another helper's state, with a bad checksum, truncated or followed by
//!   more bytes, with more flows or expectations than the table's limits
//!   (nothing is restored then: all or nothing), with any field out of
//!   range, two flows with one tuple, or translated flows when the config
//!   translates nothing.
//! - A restore allocates nothing beyond a fixed 64 KiB read buffer: flows,
//!   translations, helper states and expectations go into the pools the
//!   table allocated when it was made.
//! - A restored flow's next packets are tracked exactly as they would have
//!   been without the restart: the same tuples and translation, state
//!   machine, windows, status, counters, helper state and expectations.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use core::time::Duration;
use std::io::{self, Read, Write};

use super::expect::{ExpectKey, Expectation, NatFollow};
use super::flow::{Flow, FlowId, HelperSlot, NatSlot, ProtoState};
use super::table::{Conntrack, HelperState};
use super::tcp::TcpConn;
use super::tuple::{Dir, Tuple};
use super::udp::UdpConn;
use crate::side::Side;
use crate::time::Instant;
use crate::wire::{PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};

/// The first bytes of a state file.
pub const MAGIC: [u8; 8] = *b"TUNFWST\0";
/// The format version this build writes and reads.
pub const VERSION: u16 = 1;
/// Bytes of the header.
pub const HEADER_LEN: usize = 32;
/// Bytes buffered between the stream and the encoder.
const CHUNK: usize = 64 * 1024;

const KIND_TCP: u8 = 0;
const KIND_UDP: u8 = 1;
const KIND_ICMP: u8 = 2;
const KIND_GENERIC: u8 = 3;

mod status {
    pub const SEEN_REPLY: u8 = 0x01;
    pub const ASSURED: u8 = 0x02;
    pub const EXPECTED: u8 = 0x04;
    pub const FROM_WAN: u8 = 0x08;
    pub const TRANSLATED: u8 = 0x10;
    pub const HELPER: u8 = 0x20;
    pub const ALL: u8 = 0x3f;
}

/// Why a restore refused a file. Every variant says what was wrong
/// ([`core::fmt::Display`]); the table is left empty.
#[derive(Debug)]
pub enum RestoreError {
    /// Reading failed.
    Io(io::Error),
    /// Not a tunfw state file (the first 8 bytes are not [`MAGIC`]).
    Foreign,
    /// A state file of another format version.
    Version(u16),
    /// The file holds the state of other helpers than this table's.
    HelperKind {
        /// The file's.
        file: u16,
        /// The table's.
        table: u16,
    },
    /// The file ends before its last record or its checksum.
    Truncated,
    /// Bytes follow the checksum.
    TrailingBytes,
    /// The checksum does not match the bytes.
    Checksum {
        /// Stored in the file.
        stored: u32,
        /// Computed over the file.
        computed: u32,
    },
    /// More flows or expectations than the table holds.
    TooMany {
        /// "flows" or "expectations".
        what: &'static str,
        /// In the file.
        count: u64,
        /// The table's limit.
        max: usize,
    },
    /// A field is out of range, or records contradict each other.
    Field {
        /// Which record: `flow N`, `expectation N` or `header`.
        record: String,
        /// What is wrong.
        what: &'static str,
    },
    /// The table already held flows: a restore goes into a fresh table.
    NotFresh,
}

impl core::fmt::Display for RestoreError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RestoreError::Io(e) => write!(f, "cannot read: {e}"),
            RestoreError::Foreign => write!(f, "not a tunfw state file (bad magic)"),
            RestoreError::Version(v) => write!(
                f,
                "state file format version {v}; this tunfw reads version {VERSION}"
            ),
            RestoreError::HelperKind { file, table } => write!(
                f,
                "state file holds helper state of kind {file}; this table's is {table}"
            ),
            RestoreError::Truncated => write!(f, "truncated (ends before its checksum)"),
            RestoreError::TrailingBytes => write!(f, "bytes after the checksum"),
            RestoreError::Checksum { stored, computed } => write!(
                f,
                "checksum mismatch (stored {stored:08x}, computed {computed:08x}): corrupt"
            ),
            RestoreError::TooMany { what, count, max } => write!(
                f,
                "{count} {what} in the file, over the table's limit of {max}"
            ),
            RestoreError::Field { record, what } => write!(f, "{record}: {what}"),
            RestoreError::NotFresh => write!(f, "the table is not empty"),
        }
    }
}

impl std::error::Error for RestoreError {}

impl From<io::Error> for RestoreError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            RestoreError::Truncated
        } else {
            RestoreError::Io(e)
        }
    }
}

/// What a save wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SaveSummary {
    /// Flows written (the live ones).
    pub flows: u64,
    /// Expectations written (the live ones of written flows).
    pub expectations: u64,
    /// Bytes written.
    pub bytes: u64,
}

/// What a restore brought back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RestoreSummary {
    /// Flows restored (`expired` of them already expired).
    pub flows: u64,
    /// Expectations restored.
    pub expectations: u64,
    /// Flows whose time ran out between the save and the restore.
    pub expired: u64,
    /// Flows restored without their helper state: the config has no room
    /// for helper state (no helper, or fewer control flows).
    pub helper_dropped: u64,
    /// Wall-clock time between the save and the restore, ms.
    pub age_ms: u64,
    /// Flows whose sequence numbers a NAT helper had moved.
    pub seq_adjusted: u64,
}

/// Per-flow helper state that a snapshot carries (implemented by the
/// helpers; `()` for a table without). The pending expectation is the
/// table's to write: [`HelperState::pending_expectation`] and
/// [`SnapshotState::set_pending_expectation`].
pub trait SnapshotState: HelperState + Sized {
    /// Which helper state the file holds, checked at restore (0: none).
    const KIND: u16;

    /// Write the state, without its pending expectation.
    fn save_state<W: Write>(&self, w: &mut SnapWriter<W>) -> io::Result<()>;

    /// Read what [`SnapshotState::save_state`] wrote; `Err(what)` names a
    /// field out of range.
    fn load_state<R: Read>(r: &mut SnapReader<R>) -> Result<Self, LoadError>;

    /// Set the pending expectation (an id of the table's expectations).
    fn set_pending_expectation(&mut self, id: Option<u32>);
}

/// Why a record did not load: the stream failed, or a field is out of range.
#[derive(Debug)]
pub enum LoadError {
    /// Reading failed.
    Io(RestoreError),
    /// This field is out of range.
    Field(&'static str),
}

impl From<RestoreError> for LoadError {
    fn from(e: RestoreError) -> Self {
        LoadError::Io(e)
    }
}

impl SnapshotState for () {
    const KIND: u16 = 0;

    fn save_state<W: Write>(&self, _: &mut SnapWriter<W>) -> io::Result<()> {
        Ok(())
    }

    fn load_state<R: Read>(_: &mut SnapReader<R>) -> Result<Self, LoadError> {
        Ok(())
    }

    fn set_pending_expectation(&mut self, _: Option<u32>) {}
}

/// A buffered writer that checksums what it writes.
pub struct SnapWriter<W: Write> {
    inner: W,
    buf: Vec<u8>,
    crc: crc32fast::Hasher,
    written: u64,
}

impl<W: Write> SnapWriter<W> {
    fn new(inner: W) -> Self {
        SnapWriter {
            inner,
            buf: Vec::with_capacity(CHUNK + 1024),
            crc: crc32fast::Hasher::new(),
            written: 0,
        }
    }

    /// Append bytes.
    pub fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= CHUNK {
            self.flush_buf()?;
        }
        Ok(())
    }

    /// Append a byte.
    pub fn u8(&mut self, v: u8) -> io::Result<()> {
        self.put(&[v])
    }

    /// Append a `u16`, little-endian.
    pub fn u16(&mut self, v: u16) -> io::Result<()> {
        self.put(&v.to_le_bytes())
    }

    /// Append a `u32`, little-endian.
    pub fn u32(&mut self, v: u32) -> io::Result<()> {
        self.put(&v.to_le_bytes())
    }

    /// Append a `u64`, little-endian.
    pub fn u64(&mut self, v: u64) -> io::Result<()> {
        self.put(&v.to_le_bytes())
    }

    fn flush_buf(&mut self) -> io::Result<()> {
        self.crc.update(&self.buf);
        self.inner.write_all(&self.buf)?;
        self.written += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    /// Write the checksum of everything so far, flush; bytes written.
    fn finish(mut self) -> io::Result<u64> {
        self.flush_buf()?;
        let crc = self.crc.clone().finalize();
        self.inner.write_all(&crc.to_le_bytes())?;
        self.inner.flush()?;
        Ok(self.written + 4)
    }
}

/// A buffered reader that checksums what it reads.
pub struct SnapReader<R: Read> {
    inner: R,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    crc: crc32fast::Hasher,
}

impl<R: Read> SnapReader<R> {
    fn new(inner: R) -> Self {
        SnapReader {
            inner,
            buf: vec![0; CHUNK],
            pos: 0,
            len: 0,
            crc: crc32fast::Hasher::new(),
        }
    }

    /// The next `n` bytes (at most 1024), checksummed.
    pub fn take(&mut self, n: usize) -> Result<&[u8], RestoreError> {
        if self.len - self.pos < n {
            self.refill(n)?;
        }
        let at = self.pos;
        self.pos += n;
        let bytes = self.buf.get(at..at + n).ok_or(RestoreError::Truncated)?;
        self.crc.update(bytes);
        Ok(bytes)
    }

    /// Move what is left to the front and read until `n` bytes are there.
    fn refill(&mut self, n: usize) -> Result<(), RestoreError> {
        self.buf.copy_within(self.pos..self.len, 0);
        self.len -= self.pos;
        self.pos = 0;
        while self.len < n {
            match self.inner.read(&mut self.buf[self.len..]) {
                Ok(0) => return Err(RestoreError::Truncated),
                Ok(k) => self.len += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// A byte.
    pub fn u8(&mut self) -> Result<u8, RestoreError> {
        Ok(self.take(1)?[0])
    }

    /// A little-endian `u16`.
    pub fn u16(&mut self) -> Result<u16, RestoreError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    /// A little-endian `u32`.
    pub fn u32(&mut self) -> Result<u32, RestoreError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A little-endian `u64`.
    pub fn u64(&mut self) -> Result<u64, RestoreError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// Read the trailer: the stored checksum must match, and nothing may follow.
    fn finish(mut self) -> Result<(), RestoreError> {
        let computed = self.crc.clone().finalize();
        if self.len - self.pos < 4 {
            self.refill(4)?;
        }
        let b = &self.buf[self.pos..self.pos + 4];
        let stored = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        self.pos += 4;
        if stored != computed {
            return Err(RestoreError::Checksum { stored, computed });
        }
        if self.len > self.pos {
            return Err(RestoreError::TrailingBytes);
        }
        let mut one = [0u8; 1];
        loop {
            match self.inner.read(&mut one) {
                Ok(0) => return Ok(()),
                Ok(_) => return Err(RestoreError::TrailingBytes),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}

fn put_addr<W: Write>(w: &mut SnapWriter<W>, a: IpAddr) -> io::Result<()> {
    match a {
        IpAddr::V4(a) => w.put(&a.octets()),
        IpAddr::V6(a) => w.put(&a.octets()),
    }
}

/// Family byte and both addresses.
fn put_pair<W: Write>(w: &mut SnapWriter<W>, src: IpAddr, dst: IpAddr) -> io::Result<()> {
    w.u8(if src.is_ipv4() { 4 } else { 6 })?;
    put_addr(w, src)?;
    put_addr(w, dst)
}

fn put_tuple<W: Write>(w: &mut SnapWriter<W>, t: &Tuple) -> io::Result<()> {
    put_pair(w, t.src, t.dst)?;
    w.u8(t.protocol)?;
    w.u16(t.src_id)?;
    w.u16(t.dst_id)
}

fn get_pair<R: Read>(r: &mut SnapReader<R>) -> Result<(IpAddr, IpAddr), LoadError> {
    match r.u8()? {
        4 => {
            let b = r.take(8)?;
            let src = Ipv4Addr::new(b[0], b[1], b[2], b[3]);
            let dst = Ipv4Addr::new(b[4], b[5], b[6], b[7]);
            Ok((IpAddr::V4(src), IpAddr::V4(dst)))
        }
        6 => {
            let b = r.take(32)?;
            let mut s = [0u8; 16];
            let mut d = [0u8; 16];
            s.copy_from_slice(&b[..16]);
            d.copy_from_slice(&b[16..]);
            Ok((IpAddr::V6(Ipv6Addr::from(s)), IpAddr::V6(Ipv6Addr::from(d))))
        }
        _ => Err(LoadError::Field("address family is not 4 or 6")),
    }
}

fn get_tuple<R: Read>(r: &mut SnapReader<R>) -> Result<Tuple, LoadError> {
    let (src, dst) = get_pair(r)?;
    let t = Tuple {
        src,
        dst,
        protocol: r.u8()?,
        src_id: r.u16()?,
        dst_id: r.u16()?,
    };
    if t.invert().is_none() {
        return Err(LoadError::Field("a tuple no flow can have (ICMP type)"));
    }
    Ok(t)
}

/// Milliseconds from `now` to `at` (0 when past).
fn remaining(at: Instant, now: Instant) -> u64 {
    at.saturating_since(now).as_millis() as u64
}

/// The wire form of `Option<NatFollow>`.
fn nat_code(nat: Option<NatFollow>) -> (u8, u16) {
    match nat {
        None => (0, 0),
        Some(n) => (1 + n.dir.index() as u8, n.port),
    }
}

impl<S: SnapshotState> Conntrack<S> {
    /// Write every flow live at `now` and the live expectations of those
    /// flows to `w` (see the module documentation for the format);
    /// `wall_ms` is the wall clock (ms since 1970), for the downtime a
    /// restore subtracts. The table is not changed; the whole snapshot is
    /// streamed through a 64 KiB buffer.
    pub fn save<W: Write>(&self, w: W, now: Instant, wall_ms: u64) -> io::Result<SaveSummary> {
        // Each saved flow's index in the file, by slot id.
        let mut flow_ord = vec![u32::MAX; self.flows.slot_count()];
        let mut flows = 0u32;
        for (id, f) in self.flows.iter() {
            if f.expires > now {
                flow_ord[id as usize] = flows;
                flows += 1;
            }
        }
        let ord_of = |id: FlowId| flow_ord.get(id as usize).copied().unwrap_or(u32::MAX);
        // Each saved expectation's index in the file, by id.
        let mut exp_ids: Vec<u32> = Vec::new();
        for (eid, e) in self.expectations.iter_ids(now) {
            if ord_of(e.master) != u32::MAX {
                exp_ids.push(eid);
            }
        }
        let exp_ord = |eid: u32| exp_ids.binary_search(&eid).ok().map(|i| i as u32);
        let mut w = SnapWriter::new(w);
        w.put(&MAGIC)?;
        w.u16(VERSION)?;
        w.u16(S::KIND)?;
        w.u32(0)?;
        w.u32(flows)?;
        w.u32(exp_ids.len() as u32)?;
        w.u64(wall_ms)?;
        for (id, f) in self.flows.iter() {
            if f.expires <= now {
                continue;
            }
            let state = match f.helper {
                HelperSlot::Attached(_) => self.helper_state(f),
                _ => None,
            };
            // The pending expectation, when it is a saved one of this flow's.
            let pending = state
                .and_then(|s| s.pending_expectation())
                .filter(|&eid| self.expectations.get(eid).is_some_and(|e| e.master == id))
                .and_then(exp_ord);
            self.save_flow(&mut w, f, now, state, pending)?;
        }
        for &eid in &exp_ids {
            let Some(e) = self.expectations.get(eid) else {
                continue;
            };
            w.u32(ord_of(e.master))?;
            put_pair(&mut w, e.key.src, e.key.dst)?;
            w.u16(e.key.dport)?;
            w.u64(remaining(e.expires, now))?;
            let (code, port) = nat_code(e.nat);
            w.u8(code)?;
            w.u16(port)?;
        }
        let bytes = w.finish()?;
        Ok(SaveSummary {
            flows: u64::from(flows),
            expectations: exp_ids.len() as u64,
            bytes,
        })
    }

    fn save_flow<W: Write>(
        &self,
        w: &mut SnapWriter<W>,
        f: &Flow,
        now: Instant,
        state: Option<&S>,
        pending: Option<u32>,
    ) -> io::Result<()> {
        let kind = match f.proto {
            ProtoState::Tcp(_) => KIND_TCP,
            ProtoState::Udp(_) => KIND_UDP,
            ProtoState::Icmp => KIND_ICMP,
            ProtoState::Generic => KIND_GENERIC,
        };
        let translated = f.nat.index().is_some();
        let bits = [
            (f.seen_reply, status::SEEN_REPLY),
            (f.assured, status::ASSURED),
            (f.expected, status::EXPECTED),
            (f.origin == Side::Wan, status::FROM_WAN),
            (translated, status::TRANSLATED),
            (state.is_some(), status::HELPER),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .fold(0u8, |acc, (_, bit)| acc | bit);
        w.u8(kind)?;
        w.u8(bits)?;
        put_tuple(w, &f.original)?;
        if translated {
            put_tuple(w, &self.reply_tuple(f))?;
        }
        w.u64(remaining(f.expires, now))?;
        for v in [f.packets[0], f.packets[1], f.bytes[0], f.bytes[1]] {
            w.u64(v)?;
        }
        match f.proto {
            ProtoState::Tcp(c) => w.put(&c.encode())?,
            ProtoState::Udp(u) => w.u64(remaining(u.stream_after, now))?,
            ProtoState::Icmp | ProtoState::Generic => {}
        }
        if let Some(s) = state {
            w.u32(pending.unwrap_or(u32::MAX))?;
            s.save_state(w)?;
        }
        Ok(())
    }

    /// Read a snapshot [`Conntrack::save`] wrote into this table, which
    /// must never have held a flow (as at start), at `now`; `wall_ms` is
    /// the wall clock (ms since 1970). All or nothing: on any error the
    /// table is left empty, its counters as before (see the module
    /// documentation for what is refused). A firewall restores through
    /// `Firewall::restore`, which also keeps moving the sequence numbers of
    /// restored flows a NAT helper had moved.
    pub fn restore<R: Read>(
        &mut self,
        r: R,
        now: Instant,
        wall_ms: u64,
    ) -> Result<RestoreSummary, RestoreError> {
        if self.flows.slot_count() != 0 || !self.expectations.is_empty() {
            return Err(RestoreError::NotFresh);
        }
        let (stats, exp_stats) = (self.stats, self.expectations.stats);
        self.set_clock(now);
        let result = self.restore_all(SnapReader::new(r), now, wall_ms);
        if result.is_err() {
            self.flush();
        }
        self.stats = stats;
        self.expectations.stats = exp_stats;
        result
    }

    fn restore_all<R: Read>(
        &mut self,
        mut r: SnapReader<R>,
        now: Instant,
        wall_ms: u64,
    ) -> Result<RestoreSummary, RestoreError> {
        let mut header = [0u8; HEADER_LEN];
        // The magic first: a short foreign file is foreign, not truncated.
        let magic = r.take(8).map_err(|e| match e {
            RestoreError::Truncated => RestoreError::Foreign,
            e => e,
        })?;
        if magic != MAGIC {
            return Err(RestoreError::Foreign);
        }
        header[..8].copy_from_slice(&MAGIC);
        header[8..].copy_from_slice(r.take(HEADER_LEN - 8)?);
        let le16 = |at: usize| u16::from_le_bytes([header[at], header[at + 1]]);
        let le32 = |at: usize| {
            u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
        };
        let version = le16(8);
        if version != VERSION {
            return Err(RestoreError::Version(version));
        }
        let kind = le16(10);
        if kind != S::KIND {
            return Err(RestoreError::HelperKind {
                file: kind,
                table: S::KIND,
            });
        }
        let (reserved, flows, exps) = (le32(12), le32(16), le32(20));
        let mut saved_at = [0u8; 8];
        saved_at.copy_from_slice(&header[24..32]);
        let saved_at = u64::from_le_bytes(saved_at);
        if reserved != 0 {
            return Err(RestoreError::Field {
                record: "header".into(),
                what: "reserved bytes are not zero",
            });
        }
        if flows as usize > self.flows.limit() {
            return Err(RestoreError::TooMany {
                what: "flows",
                count: u64::from(flows),
                max: self.flows.limit(),
            });
        }
        if exps as usize > self.expectations.limit() {
            return Err(RestoreError::TooMany {
                what: "expectations",
                count: u64::from(exps),
                max: self.expectations.limit(),
            });
        }
        let age_ms = wall_ms.saturating_sub(saved_at);
        let mut summary = RestoreSummary {
            age_ms,
            ..RestoreSummary::default()
        };
        let mut pending_flows = 0u32;
        for ord in 0..flows {
            let field = |what| RestoreError::Field {
                record: format!("flow {ord}"),
                what,
            };
            let (flow, reply, state) = match self.load_flow(&mut r, now, age_ms, exps) {
                Ok(loaded) => loaded,
                Err(LoadError::Io(e)) => return Err(e),
                Err(LoadError::Field(what)) => return Err(field(what)),
            };
            if flow.expires <= now {
                summary.expired += 1;
            }
            let id = match self.confirm(flow, reply, now) {
                Ok(id) => id,
                Err(super::table::ConfirmError::Clash) => {
                    return Err(field("its tuple is another flow's"))
                }
                Err(super::table::ConfirmError::TableFull) if reply.is_some() => {
                    return Err(field(
                        "translated, and the config translates nothing (no nat rules)",
                    ))
                }
                Err(super::table::ConfirmError::TableFull) => return Err(field("no room")),
            };
            if id != ord {
                return Err(field("restored out of order (the table was not fresh)"));
            }
            if let Some(state) = state {
                match self.helper_view(id) {
                    Some(view) => {
                        if state.pending_expectation().is_some() {
                            pending_flows += 1;
                        }
                        *view.state = state;
                        summary.seq_adjusted += u64::from(self.seq_adjust(id).is_some());
                    }
                    None => summary.helper_dropped += 1,
                }
            }
            summary.flows += 1;
        }
        let mut patched = 0u32;
        for ord in 0..exps {
            let field = |what| RestoreError::Field {
                record: format!("expectation {ord}"),
                what,
            };
            let exp = match load_expectation(&mut r, now, age_ms, flows) {
                Ok(e) => e,
                Err(LoadError::Io(e)) => return Err(e),
                Err(LoadError::Field(what)) => return Err(field(what)),
            };
            let master = exp.master;
            let Some(eid) = self.expectations.insert_restored(exp) else {
                return Err(field("its key is another expectation's"));
            };
            // The control flow's pending expectation was written as this
            // record's index: make it the id.
            if let Some(view) = self.helper_view(master) {
                if view.state.pending_expectation() == Some(ord) {
                    view.state.set_pending_expectation(Some(eid));
                    patched += 1;
                }
            }
            summary.expectations += 1;
        }
        if patched != pending_flows {
            return Err(RestoreError::Field {
                record: "flows".into(),
                what: "a pending expectation that is not the flow's own",
            });
        }
        r.finish()?;
        Ok(summary)
    }

    /// One flow record: the flow (its helper tag `Wanted` when it has
    /// helper state), its translated reply tuple, its helper state (its
    /// pending expectation still the record index).
    #[allow(clippy::type_complexity)]
    fn load_flow<R: Read>(
        &self,
        r: &mut SnapReader<R>,
        now: Instant,
        age_ms: u64,
        exps: u32,
    ) -> Result<(Flow, Option<Tuple>, Option<S>), LoadError> {
        let kind = r.u8()?;
        let bits = r.u8()?;
        if bits & !status::ALL != 0 {
            return Err(LoadError::Field("unknown status bits"));
        }
        let original = get_tuple(r)?;
        let reply = if bits & status::TRANSLATED != 0 {
            let reply = get_tuple(r)?;
            if reply.protocol != original.protocol || reply.src.is_ipv4() != original.src.is_ipv4()
            {
                return Err(LoadError::Field(
                    "reply tuple of another protocol or family",
                ));
            }
            Some(reply)
        } else {
            None
        };
        let left = |ms: u64| now + Duration::from_millis(ms.saturating_sub(age_ms));
        let expires = left(r.u64()?);
        let mut counts = [0u64; 4];
        for c in &mut counts {
            *c = r.u64()?;
        }
        let proto = match (kind, original.protocol) {
            (KIND_TCP, PROTO_TCP) => {
                let mut b = [0u8; TcpConn::SNAPSHOT_LEN];
                b.copy_from_slice(r.take(TcpConn::SNAPSHOT_LEN)?);
                ProtoState::Tcp(TcpConn::decode(&b).ok_or(LoadError::Field("TCP state"))?)
            }
            (KIND_UDP, PROTO_UDP) => {
                let ms = r.u64()?;
                // Saved as time left; what has passed since counts too.
                ProtoState::Udp(UdpConn {
                    stream_after: now + Duration::from_millis(ms.saturating_sub(age_ms)),
                })
            }
            (KIND_ICMP, PROTO_ICMP | PROTO_ICMPV6) => ProtoState::Icmp,
            (KIND_GENERIC, p) if !matches!(p, PROTO_TCP | PROTO_UDP | PROTO_ICMP) => {
                ProtoState::Generic
            }
            _ => return Err(LoadError::Field("protocol state of another protocol")),
        };
        let state = if bits & status::HELPER != 0 {
            let pending = r.u32()?;
            let mut s = S::load_state(r)?;
            let pending = match pending {
                u32::MAX => None,
                p if p < exps => Some(p),
                _ => return Err(LoadError::Field("pending expectation out of range")),
            };
            s.set_pending_expectation(pending);
            Some(s)
        } else {
            None
        };
        let flow = Flow {
            original,
            proto,
            seen_reply: bits & status::SEEN_REPLY != 0,
            assured: bits & status::ASSURED != 0,
            expected: bits & status::EXPECTED != 0,
            expires,
            packets: [counts[0], counts[1]],
            bytes: [counts[2], counts[3]],
            helper: if state.is_some() {
                HelperSlot::Wanted
            } else {
                HelperSlot::None
            },
            origin: if bits & status::FROM_WAN != 0 {
                Side::Wan
            } else {
                Side::Lan
            },
            nat: NatSlot::NONE,
        };
        Ok((flow, reply, state))
    }
}

fn load_expectation<R: Read>(
    r: &mut SnapReader<R>,
    now: Instant,
    age_ms: u64,
    flows: u32,
) -> Result<Expectation, LoadError> {
    let master = r.u32()?;
    if master >= flows {
        return Err(LoadError::Field("control flow out of range"));
    }
    let (src, dst) = get_pair(r)?;
    let dport = r.u16()?;
    let ms = r.u64()?;
    let (code, port) = (r.u8()?, r.u16()?);
    let nat = match code {
        0 => None,
        1 => Some(NatFollow {
            dir: Dir::Original,
            port,
        }),
        2 => Some(NatFollow {
            dir: Dir::Reply,
            port,
        }),
        _ => return Err(LoadError::Field("NAT follow-up direction")),
    };
    Ok(Expectation {
        key: ExpectKey { src, dst, dport },
        master,
        expires: now + Duration::from_millis(ms.saturating_sub(age_ms)),
        nat,
    })
}
