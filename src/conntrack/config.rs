//! Conntrack settings: the table size, per-protocol timeouts and switches,
//! and where helpers are attached.

use core::time::Duration;

use super::tcp::TcpConfig;
use super::udp::UdpTimeouts;
use super::{generic, icmp};
use crate::matchers::PortSpec;

/// Conntrack settings: the table size and the per-protocol timeouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConntrackConfig {
    /// Maximum number of flows (`nf_conntrack_max`).
    pub max: usize,
    /// TCP switches and timeouts.
    pub tcp: TcpConfig,
    /// UDP timeouts.
    pub udp: UdpTimeouts,
    /// ICMP query timeout.
    pub icmp_timeout: Duration,
    /// ICMPv6 query timeout.
    pub icmpv6_timeout: Duration,
    /// Timeout of other protocols.
    pub generic_timeout: Duration,
    /// Maximum number of pending expectations (`nf_ct_expect_max`).
    pub expectation_max: usize,
    /// The config translates addresses: the table keeps room for as many
    /// translated flows as flows (their reply tuples, a second index
    /// entry each).
    pub nat: bool,
}

impl ConntrackConfig {
    /// How many flows can be translated at once: `max` with NAT, else 0.
    pub fn translated_max(&self) -> usize {
        if self.nat {
            self.max
        } else {
            0
        }
    }
}

impl Default for ConntrackConfig {
    fn default() -> Self {
        ConntrackConfig {
            max: 65_536,
            tcp: TcpConfig::default(),
            udp: UdpTimeouts::default(),
            icmp_timeout: icmp::DEFAULT_TIMEOUT,
            icmpv6_timeout: icmp::DEFAULT_V6_TIMEOUT,
            generic_timeout: generic::DEFAULT_TIMEOUT,
            expectation_max: 1024,
            nat: false,
        }
    }
}

/// Helpers attached to control flows, as the raw table's `-j CT --helper`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HelperConfig {
    /// The FTP helper: `None` when off.
    pub ftp: Option<FtpHelperConfig>,
}

/// Where the FTP helper is attached and how long its expectations live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FtpHelperConfig {
    /// TCP destination ports of control flows that get the helper.
    pub ports: PortSpec,
    /// Lifetime of an expectation (Linux: 300 s).
    pub expectation_timeout: Duration,
    /// Control flows that can have the helper at once.
    pub max_control_flows: usize,
}

impl HelperConfig {
    /// Whether a new TCP flow to `dst_port` gets a helper.
    pub fn attaches_to(&self, dst_port: u16) -> bool {
        self.ftp
            .as_ref()
            .is_some_and(|f| f.ports.contains(dst_port))
    }

    /// Whether a TCP segment between these ports may belong to a control
    /// flow a helper reads (either port is a helper port).
    pub fn may_read(&self, src_port: u16, dst_port: u16) -> bool {
        self.ftp
            .as_ref()
            .is_some_and(|f| f.ports.contains(src_port) || f.ports.contains(dst_port))
    }

    /// How many helper states the table keeps at most.
    pub fn max_helped_flows(&self) -> usize {
        self.ftp.as_ref().map_or(0, |f| f.max_control_flows)
    }
}
