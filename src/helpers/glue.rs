//! The FTP helper's glue with conntrack: run the parser on a control
//! flow's accepted segments and turn announcements into expectations
//! (as the kernel's `help()` in `nf_conntrack_ftp.c`), with its counters.

use serde::Serialize;

use core::net::IpAddr;

use super::ftp::{announced_address, Command, FtpState, Inspect};
use crate::conntrack::expect::ExpectKey;
use crate::conntrack::flow::FlowId;
use crate::conntrack::table::Conntrack;
use crate::conntrack::tuple::Dir;
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
}

/// What the helper decided about a packet the rules accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HelpVerdict {
    /// Forward it.
    Accept,
    /// Drop it: no room for its expectation (as Linux, the sender retransmits).
    Drop,
}

/// The FTP helper: its counters and the rate limit of its log lines (every
/// line about a packet takes a token first, at any level). Its
/// per-flow state ([`FtpState`]) lives in the conntrack table's pool.
#[derive(Clone, Debug)]
pub struct FtpHelper {
    /// Counters.
    pub stats: FtpStats,
    log_limit: TokenBucket,
}

impl Default for FtpHelper {
    fn default() -> Self {
        FtpHelper {
            stats: FtpStats::default(),
            log_limit: TokenBucket::new(1, 10),
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
    ) -> Option<(Command, Option<IpAddr>, u16)> {
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
            } => return Some((command, addr, port)),
        }
        None
    }

    /// Run flow `id`'s helper on a packet the rules accepted, in state
    /// ESTABLISHED (as Linux helpers run only on ESTABLISHED packets).
    /// Flows without a helper, and non-TCP packets, pass untouched.
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
        let sender = tuple(dir).src;
        let peer = tuple(dir.other()).src;
        let family = Family::of(sender);
        let inspected = view.state.inspect(dir, family, seg.seq, seg.payload);
        let Some((command, addr, port)) = self.announcement(inspected, describe, now) else {
            return HelpVerdict::Accept;
        };
        self.stats.announcements += 1;
        // The kernel's anti-bounce check: the address must be the sender's
        // own (on IPv6, PORT and 227 overwrite only its first 4 bytes).
        let announced = announced_address(addr, sender);
        if announced != sender {
            self.stats.refused_address += 1;
            if self.log_limit.take(now) {
                let written = addr.unwrap_or(announced);
                let note = if written.is_ipv4() && family == Family::V6 {
                    " (an IPv4 address on an IPv6 control flow)"
                } else {
                    ""
                };
                log::info!(
                    "ftp {}: {} announces {written}:{port}{note}, not the sender's own address {sender}; nothing expected (FTP bounce refused)",
                    describe(),
                    command.as_str()
                );
            }
            return HelpVerdict::Accept;
        }
        // One pending expectation per control flow: a new one replaces it.
        if let Some(old) = view.state.expectation.take() {
            if view.expectations.remove(old).is_some() {
                view.expectations.stats.replaced += 1;
            }
        }
        let key = ExpectKey {
            src: peer,
            dst: announced,
            dport: port,
        };
        match view.expectations.insert(key, id, timeout, now) {
            Ok(eid) => {
                view.state.expectation = Some(eid);
                if log::log_enabled!(log::Level::Debug) && self.log_limit.take(now) {
                    log::debug!(
                        "ftp {}: {} expects {peer} -> {announced}:{port}",
                        describe(),
                        command.as_str()
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
}
