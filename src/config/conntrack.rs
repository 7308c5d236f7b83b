//! The `conntrack` and `helpers` sections: table size, TCP switches,
//! timeouts in seconds and the FTP helper's attachment, with their
//! conversions to the tracker's settings.

use core::time::Duration;

use serde::Deserialize;

use super::bounds::{
    control_flow_count, expectation_count, expectation_timeout, flow_count, retrans, timeout,
};
use crate::conntrack::config::{ConntrackConfig, FtpHelperConfig, HelperConfig};
use crate::conntrack::tcp::{TcpConfig, TcpTimeouts};
use crate::conntrack::udp::UdpTimeouts;
use crate::matchers::PortSpec;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// TCP timeouts in seconds, each 1 to 4,320,000 (50 days; Linux's longest
/// default, ESTABLISHED, is 432,000).
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TcpTimeoutSecs {
    /// SYN_SENT; 1 to 4,320,000 s.
    #[serde(deserialize_with = "timeout")]
    pub syn_sent: u64,
    /// SYN_RECV; 1 to 4,320,000 s.
    #[serde(deserialize_with = "timeout")]
    pub syn_recv: u64,
    /// ESTABLISHED; 1 to 4,320,000 s.
    #[serde(deserialize_with = "timeout")]
    pub established: u64,
    /// FIN_WAIT; 1 to 4,320,000 s.
    #[serde(deserialize_with = "timeout")]
    pub fin_wait: u64,
    /// CLOSE_WAIT; 1 to 4,320,000 s.
    #[serde(deserialize_with = "timeout")]
    pub close_wait: u64,
    /// LAST_ACK; 1 to 4,320,000 s.
    #[serde(deserialize_with = "timeout")]
    pub last_ack: u64,
    /// TIME_WAIT; 1 to 4,320,000 s.
    #[serde(deserialize_with = "timeout")]
    pub time_wait: u64,
    /// CLOSE (and after a RST); 1 to 4,320,000 s.
    #[serde(deserialize_with = "timeout")]
    pub close: u64,
    /// SYN_SENT2; 1 to 4,320,000 s.
    #[serde(deserialize_with = "timeout")]
    pub syn_sent2: u64,
    /// Cap after repeated retransmissions or on a zero window; 1 to 4,320,000 s.
    #[serde(deserialize_with = "timeout")]
    pub max_retrans: u64,
    /// Cap while data is unacknowledged; 1 to 4,320,000 s.
    #[serde(deserialize_with = "timeout")]
    pub unacknowledged: u64,
}

impl Default for TcpTimeoutSecs {
    fn default() -> Self {
        let t = TcpTimeouts::default();
        TcpTimeoutSecs {
            syn_sent: t.syn_sent.as_secs(),
            syn_recv: t.syn_recv.as_secs(),
            established: t.established.as_secs(),
            fin_wait: t.fin_wait.as_secs(),
            close_wait: t.close_wait.as_secs(),
            last_ack: t.last_ack.as_secs(),
            time_wait: t.time_wait.as_secs(),
            close: t.close.as_secs(),
            syn_sent2: t.syn_sent2.as_secs(),
            max_retrans: t.max_retrans.as_secs(),
            unacknowledged: t.unacknowledged.as_secs(),
        }
    }
}

/// UDP timeouts in seconds, each 1 to 4,320,000.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UdpTimeoutSecs {
    /// Before a reply (and for two seconds after creation); 1 to 4,320,000 s.
    #[serde(deserialize_with = "timeout")]
    pub unreplied: u64,
    /// Once a stream; 1 to 4,320,000 s.
    #[serde(deserialize_with = "timeout")]
    pub replied: u64,
}

impl Default for UdpTimeoutSecs {
    fn default() -> Self {
        let t = UdpTimeouts::default();
        UdpTimeoutSecs {
            unreplied: t.unreplied.as_secs(),
            replied: t.replied.as_secs(),
        }
    }
}

/// All timeouts, in seconds, each 1 to 4,320,000 (50 days).
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimeoutSecs {
    /// TCP per state.
    pub tcp: TcpTimeoutSecs,
    /// UDP.
    pub udp: UdpTimeoutSecs,
    /// ICMP queries; 1 to 4,320,000 s.
    #[serde(deserialize_with = "timeout")]
    pub icmp: u64,
    /// ICMPv6 queries; 1 to 4,320,000 s.
    #[serde(deserialize_with = "timeout")]
    pub icmpv6: u64,
    /// Other protocols; 1 to 4,320,000 s.
    #[serde(deserialize_with = "timeout")]
    pub generic: u64,
}

impl Default for TimeoutSecs {
    fn default() -> Self {
        TimeoutSecs {
            tcp: TcpTimeoutSecs::default(),
            udp: UdpTimeoutSecs::default(),
            icmp: crate::conntrack::icmp::DEFAULT_TIMEOUT.as_secs(),
            icmpv6: crate::conntrack::icmp::DEFAULT_V6_TIMEOUT.as_secs(),
            generic: crate::conntrack::generic::DEFAULT_TIMEOUT.as_secs(),
        }
    }
}

/// The conntrack section.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConntrackSection {
    /// Maximum number of tracked flows (`nf_conntrack_max`), 1 to 16,777,215
    /// (the flow index's limit).
    #[serde(deserialize_with = "flow_count")]
    pub max: usize,
    /// Pick up TCP flows mid-stream (`nf_conntrack_tcp_loose`).
    pub tcp_loose: bool,
    /// Never mark out-of-window TCP INVALID (`nf_conntrack_tcp_be_liberal`).
    pub tcp_be_liberal: bool,
    /// Identical retransmissions before the `max_retrans` cap
    /// (`nf_conntrack_tcp_max_retrans`), 0 to 255 (the whole `u8`, as Linux's).
    #[serde(deserialize_with = "retrans")]
    pub tcp_max_retrans: u8,
    /// Maximum pending expectations (`nf_ct_expect_max`), 1 to 65,536. The
    /// expectation table (index and slots, about 150 bytes each) is allocated
    /// for this many at start: under 10 MiB at the maximum.
    #[serde(deserialize_with = "expectation_count")]
    pub expectation_max: usize,
    /// Timeouts.
    pub timeouts: TimeoutSecs,
}

impl Default for ConntrackSection {
    fn default() -> Self {
        let d = ConntrackConfig::default();
        ConntrackSection {
            max: d.max,
            tcp_loose: d.tcp.loose,
            tcp_be_liberal: d.tcp.be_liberal,
            tcp_max_retrans: d.tcp.max_retrans,
            expectation_max: d.expectation_max,
            timeouts: TimeoutSecs::default(),
        }
    }
}

impl ConntrackSection {
    /// The tracker's settings.
    pub fn to_conntrack_config(&self) -> ConntrackConfig {
        let t = &self.timeouts;
        ConntrackConfig {
            max: self.max,
            tcp: TcpConfig {
                loose: self.tcp_loose,
                be_liberal: self.tcp_be_liberal,
                max_retrans: self.tcp_max_retrans,
                timeouts: TcpTimeouts {
                    syn_sent: secs(t.tcp.syn_sent),
                    syn_recv: secs(t.tcp.syn_recv),
                    established: secs(t.tcp.established),
                    fin_wait: secs(t.tcp.fin_wait),
                    close_wait: secs(t.tcp.close_wait),
                    last_ack: secs(t.tcp.last_ack),
                    time_wait: secs(t.tcp.time_wait),
                    close: secs(t.tcp.close),
                    syn_sent2: secs(t.tcp.syn_sent2),
                    max_retrans: secs(t.tcp.max_retrans),
                    unacknowledged: secs(t.tcp.unacknowledged),
                },
            },
            udp: UdpTimeouts {
                unreplied: secs(t.udp.unreplied),
                replied: secs(t.udp.replied),
            },
            icmp_timeout: secs(t.icmp),
            icmpv6_timeout: secs(t.icmpv6),
            generic_timeout: secs(t.generic),
            expectation_max: self.expectation_max,
            nat: false,
        }
    }
}

/// The FTP helper's attachment: like `iptables -t raw -p tcp --dport 21 -j CT --helper ftp`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FtpHelperSection {
    /// Destination ports of FTP control flows (default `"21"`; e.g. `"21,2121"`).
    #[serde(default = "default_ftp_ports")]
    pub ports: PortSpec,
    /// Seconds an expectation waits for its data connection, 1 to 86,400
    /// (default 300, as Linux).
    #[serde(
        default = "default_expectation_timeout",
        deserialize_with = "expectation_timeout"
    )]
    pub expectation_timeout: u64,
    /// Control flows that can have the helper at once, 1 to 65,536 (each
    /// holds about 600 bytes of line buffers, reserved at start: about 40 MiB
    /// at the maximum); further ones get no helper (default 4096).
    #[serde(
        default = "default_max_control_flows",
        deserialize_with = "control_flow_count"
    )]
    pub max_control_flows: usize,
}

fn default_max_control_flows() -> usize {
    4096
}

fn default_ftp_ports() -> PortSpec {
    PortSpec(vec![(21, 21)])
}

fn default_expectation_timeout() -> u64 {
    300
}

/// Helpers. Absent means off: a control flow gets a helper only where the
/// config attaches one (as Linux since 6.0).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HelpersSection {
    /// The FTP helper, or `None`.
    #[serde(default)]
    pub ftp: Option<FtpHelperSection>,
}

impl HelpersSection {
    /// The tracker's helper settings.
    pub fn to_helper_config(&self) -> HelperConfig {
        HelperConfig {
            ftp: self.ftp.as_ref().map(|f| FtpHelperConfig {
                ports: f.ports.clone(),
                expectation_timeout: secs(f.expectation_timeout),
                max_control_flows: f.max_control_flows,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::bounds::{
        EXPECTATIONS, EXPECTATION_TIMEOUT_SECS, FLOWS, FTP_CONTROL_FLOWS, TCP_MAX_RETRANS,
        TIMEOUT_SECS,
    };
    use super::*;

    // Omitted fields take these defaults without passing the range checks.
    #[test]
    fn defaults_are_inside_their_bounds() {
        let c = ConntrackSection::default();
        FLOWS.assert_default("conntrack.max", c.max as u64);
        TCP_MAX_RETRANS.assert_default("tcp_max_retrans", u64::from(c.tcp_max_retrans));
        EXPECTATIONS.assert_default("expectation_max", c.expectation_max as u64);
        let t = c.timeouts;
        for (what, n) in [
            ("syn_sent", t.tcp.syn_sent),
            ("syn_recv", t.tcp.syn_recv),
            ("established", t.tcp.established),
            ("fin_wait", t.tcp.fin_wait),
            ("close_wait", t.tcp.close_wait),
            ("last_ack", t.tcp.last_ack),
            ("time_wait", t.tcp.time_wait),
            ("close", t.tcp.close),
            ("syn_sent2", t.tcp.syn_sent2),
            ("max_retrans", t.tcp.max_retrans),
            ("unacknowledged", t.tcp.unacknowledged),
            ("udp.unreplied", t.udp.unreplied),
            ("udp.replied", t.udp.replied),
            ("icmp", t.icmp),
            ("icmpv6", t.icmpv6),
            ("generic", t.generic),
        ] {
            TIMEOUT_SECS.assert_default(what, n);
        }
        assert_eq!(t.tcp.established, 432_000);
        EXPECTATION_TIMEOUT_SECS
            .assert_default("expectation_timeout", default_expectation_timeout());
        FTP_CONTROL_FLOWS.assert_default("max_control_flows", default_max_control_flows() as u64);
    }
}
