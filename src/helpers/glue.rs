//! The FTP helper's glue with conntrack: run the parser on a control
//! flow's accepted segments and turn announcements into expectations
//! (as the kernel's `help()` in `nf_conntrack_ftp.c`), with its counters.

use serde::Serialize;

use core::net::IpAddr;
use core::time::Duration;

use super::ftp::{announced_address, Command, FtpState, Inspect};
use crate::conntrack::expect::{ExpectKey, ExpectRefused, Expectations, NatFollow};
use crate::conntrack::flow::FlowId;
use crate::conntrack::table::Conntrack;
use crate::conntrack::tuple::{Dir, Tuple};
use crate::matchers::Family;
use crate::packet::{Packet, Transport};
use crate::ratelimit::TokenBucket;
use crate::time::Instant;

/// FTP helper counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FtpStats {
    /// Announcements parsed (PORT, EPRT, 227, 229).
    pub announcements: u64,
    /// Announcements refused: the address was not the sender's own (FTP
    /// bounce), among them PORT and 227 on IPv6 naming other than the
    /// sender's first four bytes (see [`announced_address`]).
    pub refused_address: u64,
    /// Announcements of port 0, ignored.
    pub refused_port_zero: u64,
    /// Commands split across segments, kept until their line was complete.
    pub split_commands: u64,
    /// Complete command lines that did not parse (garbage, octets over 255, ...).
    pub malformed: u64,
    /// Command lines longer than the line buffer.
    pub overlong: u64,
    /// Announcements dropped because the expectation table was full.
    pub expectation_table_full: u64,
    /// Announcements on translated control flows, to be rewritten by NAT.
    pub nat_announcements: u64,
    /// Segments of translated control flows dropped because they start a
    /// command line they do not finish: its address could not be rewritten
    /// once forwarded (Linux drops every such segment; the sender resends).
    pub nat_split_dropped: u64,
    /// Announcements on translated control flows dropped because no port
    /// near the announced one was free of other flows' expectations.
    pub nat_ports_exhausted: u64,
}

/// What the helper decided about a packet the rules accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HelpVerdict {
    /// Forward it.
    Accept,
    /// Drop it: no room for its expectation, or (on a translated control
    /// flow) a line it cannot have rewritten (as Linux, the sender
    /// retransmits).
    Drop,
    /// Forward it once NAT has rewritten its announcement (a translated
    /// control flow; the expectation is filed already).
    Rewrite(Announced),
}

/// An announcement on a translated control flow that NAT must rewrite
/// before the packet leaves (the arguments of the kernel's `nf_nat_ftp`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Announced {
    /// Which command.
    pub command: Command,
    /// Offset and length of its arguments in the segment's payload.
    pub span: (usize, usize),
    /// The address the rewritten line announces: where the control
    /// flow's packets in the announcing direction go after translation.
    pub addr: IpAddr,
    /// The port it announces (the expectation's).
    pub port: u16,
}

/// An announcement as the parser found it: command, address as written,
/// port, and where its arguments are in the segment (see [`Inspect`]).
type Announcement = (Command, Option<IpAddr>, u16, Option<(usize, usize)>);

/// An announcement to file: the control flow, the announcing packet's
/// direction and what its line said.
struct Filing {
    /// The control flow.
    master: FlowId,
    /// Its original tuple (for log lines).
    control: Tuple,
    /// The direction of the packet that announced.
    dir: Dir,
    command: Command,
    /// The address announced, as the kernel reads it (see
    /// [`announced_address`]).
    announced: IpAddr,
    port: u16,
    /// The other party: where the data connection comes from.
    peer: IpAddr,
    /// The expectation's timeout.
    timeout: Duration,
}

/// How many ports a translated announcement tries (the kernel's
/// `nf_nat_exp_find_port`: the announced one, then random ones above it).
const NAT_PORT_TRIES: u32 = 128;

/// The FTP helper: its counters and the rate limit of its log lines (every
/// line about a packet takes a token first, at any level). Its
/// per-flow state ([`FtpState`]) lives in the conntrack table's pool.
#[derive(Clone, Debug)]
pub struct FtpHelper {
    /// Counters.
    pub stats: FtpStats,
    log_limit: TokenBucket,
    /// State of the random port choice of translated announcements.
    rng: u64,
}

impl Default for FtpHelper {
    fn default() -> Self {
        use core::hash::BuildHasher;
        let seed = std::collections::hash_map::RandomState::new().hash_one(0x0066_7470_u64);
        FtpHelper {
            stats: FtpStats::default(),
            log_limit: TokenBucket::new(1, 10),
            rng: seed | 1,
        }
    }
}

impl FtpHelper {
    /// The announcement in what the parser found, if any; the rest is
    /// counted (and a malformed line logged at debug level).
    fn announcement(
        &mut self,
        inspected: Inspect,
        describe: impl Fn() -> String,
        now: Instant,
    ) -> Option<Announcement> {
        match inspected {
            Inspect::Pass => {}
            Inspect::Incomplete(_) => self.stats.split_commands += 1,
            Inspect::Malformed(c) => {
                self.stats.malformed += 1;
                if log::log_enabled!(log::Level::Debug) && self.log_limit.take(now) {
                    log::debug!("ftp {}: malformed {}", describe(), c.as_str());
                }
            }
            Inspect::Overlong => self.stats.overlong += 1,
            Inspect::PortZero(_) => self.stats.refused_port_zero += 1,
            Inspect::Announce {
                command,
                addr,
                port,
                span,
            } => return Some((command, addr, port, span)),
        }
        None
    }

    /// A random number below `n` (n > 0): xorshift64*, seeded per process.
    fn random_below(&mut self, n: u32) -> u32 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        ((x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) % u64::from(n)) as u32
    }

    /// Run flow `id`'s helper on a packet the rules accepted, in state
    /// ESTABLISHED (as Linux helpers run only on ESTABLISHED packets).
    /// Flows without a helper, and non-TCP packets, pass untouched. On a
    /// translated control flow an announcement is filed at the address and
    /// port the other party will see, and comes back as
    /// [`HelpVerdict::Rewrite`] for NAT to write into the packet.
    pub fn help(
        &mut self,
        ct: &mut Conntrack<FtpState>,
        id: FlowId,
        dir: Dir,
        pkt: &Packet<'_>,
        now: Instant,
    ) -> HelpVerdict {
        let Transport::Tcp(seg) = pkt.transport else {
            return HelpVerdict::Accept;
        };
        let Some(timeout) = ct.helpers().ftp.as_ref().map(|f| f.expectation_timeout) else {
            return HelpVerdict::Accept;
        };
        let Some(view) = ct.helper_view(id) else {
            return HelpVerdict::Accept;
        };
        let describe = || view.flow.original.describe();
        let tuple = |d: Dir| match d {
            Dir::Original => view.flow.original,
            Dir::Reply => view.reply,
        };
        let translated = view.reply != view.flow.tuple(Dir::Reply);
        let sender = tuple(dir).src;
        let peer = tuple(dir.other()).src;
        let family = Family::of(sender);
        let inspected = view.state.inspect(dir, family, seg.seq, seg.payload);
        if let (true, Inspect::Incomplete(_)) = (translated, inspected) {
            // Its address could not be rewritten once forwarded: dropped,
            // as Linux drops every partial command; the sender resends.
            view.state.forget_partial(dir);
            self.stats.nat_split_dropped += 1;
            return HelpVerdict::Drop;
        }
        let Some((command, addr, port, span)) = self.announcement(inspected, describe, now) else {
            return HelpVerdict::Accept;
        };
        self.stats.announcements += 1;
        // The kernel's anti-bounce check: the address must be the sender's
        // own (on IPv6, PORT and 227 overwrite only its first 4 bytes).
        let filing = Filing {
            master: id,
            control: view.flow.original,
            dir,
            command,
            announced: announced_address(addr, sender),
            port,
            peer,
            timeout,
        };
        if filing.announced != sender {
            self.refuse_bounce(&filing, addr, sender, now);
            return HelpVerdict::Accept;
        }
        // One pending expectation per control flow: a new one replaces it
        // (if it is still this flow's: once used or expired, its slot may
        // hold another flow's).
        if let Some(old) = view.state.expectation.take() {
            if view.expectations.get(old).is_some_and(|e| e.master == id) {
                view.expectations.remove(old);
                view.expectations.stats.replaced += 1;
            }
        }
        if translated {
            // The data connection comes from where this packet goes.
            let to = tuple(dir.other()).dst;
            return self.expect_rewritten(view.expectations, view.state, &filing, to, span, now);
        }
        self.expect_announced(view.expectations, view.state, &filing, now)
    }

    /// Log (rate-limited) an announcement refused by the anti-bounce
    /// check: its address (`written`, or the sender's with its first bytes
    /// overwritten) is not the sender's own.
    fn refuse_bounce(&mut self, f: &Filing, written: Option<IpAddr>, sender: IpAddr, now: Instant) {
        self.stats.refused_address += 1;
        if self.log_limit.take(now) {
            let written = written.unwrap_or(f.announced);
            let note = if written.is_ipv4() && sender.is_ipv6() {
                " (an IPv4 address on an IPv6 control flow)"
            } else {
                ""
            };
            log::info!(
                "ftp {}: {} announces {written}:{}{note}, not the sender's own address {sender}; nothing expected (FTP bounce refused)",
                f.control.describe(),
                f.command.as_str(),
                f.port,
            );
        }
    }

    /// File the expectation of an untranslated announcement: `peer` to the
    /// announced address and port. Dropped (counted) when the table of
    /// expectations is full.
    fn expect_announced(
        &mut self,
        expectations: &mut Expectations,
        state: &mut FtpState,
        f: &Filing,
        now: Instant,
    ) -> HelpVerdict {
        let key = ExpectKey {
            src: f.peer,
            dst: f.announced,
            dport: f.port,
        };
        match expectations.insert(key, f.master, f.timeout, now) {
            Ok(eid) => {
                state.expectation = Some(eid);
                if log::log_enabled!(log::Level::Debug) && self.log_limit.take(now) {
                    log::debug!(
                        "ftp {}: {} expects {} -> {}:{}",
                        f.control.describe(),
                        f.command.as_str(),
                        f.peer,
                        f.announced,
                        f.port
                    );
                }
                HelpVerdict::Accept
            }
            Err(_) => {
                self.stats.expectation_table_full += 1;
                HelpVerdict::Drop
            }
        }
    }

    /// File the expectation of a translated announcement (the data
    /// connection from `peer` to `to`, the address this packet goes to)
    /// and say what NAT writes into the line at `span`: `to` and the port
    /// filed. Dropped when no port was free.
    fn expect_rewritten(
        &mut self,
        expectations: &mut Expectations,
        state: &mut FtpState,
        f: &Filing,
        to: IpAddr,
        span: Option<(usize, usize)>,
        now: Instant,
    ) -> HelpVerdict {
        let Some(span) = span else {
            // Not reached: a translated flow keeps no partial line.
            return HelpVerdict::Drop;
        };
        let follow = NatFollow {
            dir: f.dir.other(),
            port: f.port,
        };
        let Some((eid, mapped)) =
            self.expect_translated(expectations, f.master, f.peer, to, follow, f.timeout, now)
        else {
            return HelpVerdict::Drop;
        };
        state.expectation = Some(eid);
        self.stats.nat_announcements += 1;
        if log::log_enabled!(log::Level::Debug) && self.log_limit.take(now) {
            log::debug!(
                "ftp {}: {} {}:{} expects {} -> {to}:{mapped} (translated)",
                f.control.describe(),
                f.command.as_str(),
                f.announced,
                f.port,
                f.peer
            );
        }
        HelpVerdict::Rewrite(Announced {
            command: f.command,
            span,
            addr: to,
            port: mapped,
        })
    }

    /// File the expectation of a translated announcement from `peer` to
    /// `addr` at the announced port or, when another control flow expects
    /// that one, at a random port above it (the kernel's
    /// `nf_nat_exp_find_port`: at most [`NAT_PORT_TRIES`] tries); its id
    /// and port, or `None` (counted) when none was free.
    #[allow(clippy::too_many_arguments)]
    fn expect_translated(
        &mut self,
        expectations: &mut Expectations,
        master: FlowId,
        peer: IpAddr,
        addr: IpAddr,
        follow: NatFollow,
        timeout: Duration,
        now: Instant,
    ) -> Option<(u32, u16)> {
        let min = follow.port;
        let range = u32::from(u16::MAX - min);
        let mut tries_left = range.min(NAT_PORT_TRIES);
        let mut port = min;
        loop {
            let key = ExpectKey {
                src: peer,
                dst: addr,
                dport: port,
            };
            match expectations.insert_unique(key, master, follow, timeout, now) {
                Ok(eid) => return Some((eid, port)),
                Err(ExpectRefused::Full) => {
                    self.stats.expectation_table_full += 1;
                    return None;
                }
                Err(ExpectRefused::Busy) if tries_left > 0 => {
                    tries_left -= 1;
                    port = min + self.random_below(range) as u16;
                }
                Err(ExpectRefused::Busy) => {
                    self.stats.nat_ports_exhausted += 1;
                    return None;
                }
            }
        }
    }
}
