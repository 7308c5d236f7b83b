//! The RON configuration: rules per direction, default policies, conntrack
//! limits and timeouts, IPv6 switch and router addresses.
//!
//! [`Config::load`] reads a file through [`read_text_file`] (a regular file
//! of at most [`MAX_FILE_BYTES`], never blocking); [`Config::parse`]
//! validates everything (unknown fields, CIDRs, port ranges, empty state
//! sets, cross-field rule checks, the range of every number, the length of
//! every list, unique rule names, the memory budget) and reports the first
//! problem as `FILE:LINE:COL: message`. A config that parses is safe to
//! swap in.
//!
//! Every numeric field has an inclusive range, written in its documentation
//! and checked while deserializing (the error points at the value):
//!
//! | field | range |
//! |---|---|
//! | `conntrack.max` | 1 to 16,777,215 flows |
//! | `conntrack.tcp_max_retrans` | 0 to 255 |
//! | `conntrack.expectation_max` | 1 to 65,536 |
//! | `conntrack.timeouts.*` (every TCP state, UDP, ICMP, generic) | 1 to 4,320,000 s (50 days) |
//! | `helpers.ftp.expectation_timeout` | 1 to 86,400 s (1 day) |
//! | `helpers.ftp.max_control_flows` | 1 to 65,536 |
//! | `logging.per_second` | 1 to 1,000,000 |
//! | `logging.burst` | 0 (no log lines) to 1,000,000 |
//! | `queue_len` | 16 to 65,536 packets |
//! | `limits.sources` | 1 to 16,777,215 sources |
//! | a rule's `limit.per_source_states` | 1 to 16,777,215 flows |
//! | a rule's `limit.per_source_rate` | (1 to 1,000,000 per second, burst 1 to 1,000,000) |
//! | a rule's `limit.overload_timeout` | 1 to 4,320,000 s |
//!
//! and so does every list: a port spec (`sport`, `dport`,
//! `helpers.ftp.ports`) has at most [`MAX_PORT_ELEMENTS`] ports or ranges,
//! an address list (`src`, `dst`) at most [`MAX_CIDRS`] blocks. The tables
//! the sizes above allocate must fit [`MEMORY_BUDGET_BYTES`] together
//! ([`TableMemory`]); the error points at `conntrack.max`.
//!
//! [`MAX_PORT_ELEMENTS`]: crate::matchers::MAX_PORT_ELEMENTS
//! [`MAX_CIDRS`]: crate::matchers::MAX_CIDRS

mod bounds;
mod conntrack;
mod defrag;
mod error;
mod file;
mod logging;
mod memory;
mod names;
mod nat;
mod ron_text;
mod sets;

use core::net::{Ipv4Addr, Ipv6Addr};

use serde::de::{self, Deserializer};
use serde::Deserialize;

use crate::rules::{Action, Rule};
use ron_text::Step;

pub use conntrack::{
    ConntrackSection, FtpHelperSection, HelpersSection, TcpTimeoutSecs, TimeoutSecs, UdpTimeoutSecs,
};
pub use defrag::DefragSection;
pub use error::ConfigError;
pub use file::{read_text, read_text_file, MAX_FILE_BYTES};
pub use logging::{LoggingSection, PcapPackets, PcapSection};
pub use memory::{TableMemory, DATAGRAM_BUFFER, MEMORY_BUDGET_BYTES};
pub use nat::{
    DestinationNatConfig, NatSection, SideName, SourceNatConfig, SourceToConfig, MAX_NAT_RULES,
};
pub use sets::{definitions as set_definitions, SetConfig, SetsSection};

/// The default configuration, embedded in the binary (the file `config/default.ron`).
pub const DEFAULT_CONFIG: &str = include_str!("../../config/default.ron");
/// The name under which errors in the embedded default are reported.
pub const DEFAULT_CONFIG_NAME: &str = "config/default.ron (embedded)";

/// What happens to IPv6 packets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub enum Ipv6Mode {
    /// Track and filter them as IPv4 (default): one table, one ruleset.
    #[default]
    Track,
    /// Drop and count them all.
    Drop,
    /// Forward them untracked and unfiltered (hop limit decremented): no
    /// rule, no conntrack, no answer; for a link whose IPv6 is filtered
    /// elsewhere.
    Pass,
}

/// Addresses tunfw uses as the source of the ICMP errors it sends itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouterAddresses {
    /// Source of errors sent to the LAN side (time exceeded, reject).
    #[serde(default)]
    pub lan: Option<Ipv4Addr>,
    /// Source of errors sent to the WAN side.
    #[serde(default)]
    pub wan: Option<Ipv4Addr>,
    /// Source of ICMPv6 errors sent to the LAN side (hop limit exceeded, reject).
    #[serde(default)]
    pub lan6: Option<Ipv6Addr>,
    /// Source of ICMPv6 errors sent to the WAN side.
    #[serde(default)]
    pub wan6: Option<Ipv6Addr>,
}

/// One direction's rules and default policy.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainConfig {
    /// `Accept` or `Drop` when no rule matches.
    #[serde(deserialize_with = "policy")]
    pub policy: Action,
    /// Rules in order; the first match decides.
    #[serde(default, deserialize_with = "validated_rules")]
    pub rules: Vec<Rule>,
    /// Log packets that fall through to the policy (rate-limited).
    #[serde(default)]
    pub log: bool,
}

fn policy<'de, D: Deserializer<'de>>(d: D) -> Result<Action, D::Error> {
    match Action::deserialize(d)? {
        Action::Reject => Err(de::Error::custom(
            "a policy is Accept or Drop (Reject needs a rule)",
        )),
        a => Ok(a),
    }
}

fn validated_rules<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Rule>, D::Error> {
    struct Checked(Rule);
    impl<'de> Deserialize<'de> for Checked {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let rule = Rule::deserialize(d)?;
            rule.validate().map_err(de::Error::custom)?;
            Ok(Checked(rule))
        }
    }
    Ok(Vec::<Checked>::deserialize(d)?
        .into_iter()
        .map(|c| c.0)
        .collect())
}

/// What a reload does with flows the new rules would not accept now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub enum OnReload {
    /// Keep every flow (default): established connections survive any reload.
    #[default]
    Keep,
    /// Re-check each flow's first packet against the new rules; drop the
    /// flows they would refuse.
    Recheck,
}

/// A whole configuration file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// IPv6 switch.
    #[serde(default)]
    pub ipv6: Ipv6Mode,
    /// Source addresses for tunfw's own ICMP errors.
    #[serde(default)]
    pub router: RouterAddresses,
    /// Table size and timeouts.
    #[serde(default)]
    pub conntrack: ConntrackSection,
    /// Helpers attached to control flows.
    #[serde(default)]
    pub helpers: HelpersSection,
    /// Reassembly of fragments before tracking.
    #[serde(default)]
    pub defrag: DefragSection,
    /// Address translation (IPv4): source NAT and masquerade, destination
    /// NAT (port forwarding).
    #[serde(default)]
    pub nat: NatSection,
    /// Named address and port sets, used by rules as `"@name"`.
    #[serde(default)]
    pub sets: SetsSection,
    /// The size of the per-source tables of rules' `limit`s.
    #[serde(default)]
    pub limits: crate::limits::LimitsSection,
    /// Logging and pcap.
    #[serde(default)]
    pub logging: LoggingSection,
    /// Flows on reload.
    #[serde(default)]
    pub on_reload: OnReload,
    /// Control socket path (overridden by `--control`).
    #[serde(default)]
    pub control: Option<String>,
    /// Address to serve Prometheus metrics on, `"127.0.0.1:9100"` or
    /// `"[::1]:9100"` (overridden by `--metrics`); none by default. Read at
    /// start.
    #[serde(default, deserialize_with = "metrics_address")]
    pub metrics: Option<std::net::SocketAddr>,
    /// The state file (overridden by `--state-file`): at start the flows
    /// and expectations it holds are restored (a missing file: none yet;
    /// a corrupt or foreign one is refused, logged, and tunfw starts
    /// empty), and at SIGTERM or SIGINT the table is saved to it. Read at
    /// start; a reload does not change it.
    #[serde(default, deserialize_with = "state_file")]
    pub state_file: Option<String>,
    /// Open the TUN devices with the virtio-net header and kernel offloads
    /// (checksum, TSO, USO): super-packets instead of one read per segment.
    /// Read at start (overridden by `--offload`); a reload does not reopen devices.
    #[serde(default = "default_offload")]
    pub offload: bool,
    /// The transmit queue length (packets) tunfw sets on both TUN devices
    /// at start: the kernel's ring of packets waiting for tunfw's read
    /// (Linux's TUN default is 500). A flood fills this ring; a packet of
    /// the other traffic arriving at a full ring is lost before tunfw sees
    /// it, so a deeper ring loses less under a flood and queues longer
    /// (README "Event loop" has the figures). Read at start; a reload does
    /// not reopen devices.
    #[serde(default = "default_queue_len", deserialize_with = "bounds::queue_len")]
    pub queue_len: u32,
    /// LAN to WAN.
    pub outbound: ChainConfig,
    /// WAN to LAN.
    pub inbound: ChainConfig,
}

fn metrics_address<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<std::net::SocketAddr>, D::Error> {
    let Some(text) = Option::<String>::deserialize(d)? else {
        return Ok(None);
    };
    text.parse().map(Some).map_err(|_| {
        de::Error::custom(format!(
            "bad metrics address {text:?}: use IP:PORT, e.g. \"127.0.0.1:9100\" or \"[::1]:9100\""
        ))
    })
}

fn state_file<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Option::<String>::deserialize(d)? {
        Some(p) if p.is_empty() => Err(de::Error::custom("the state file path is empty")),
        p => Ok(p),
    }
}

fn default_offload() -> bool {
    true
}

/// The default [`Config::queue_len`]: 2048 packets (four times Linux's TUN
/// default), measured to keep ping loss under a forwarded flood at 1-2%
/// where 500 lost 6-14% (README "Event loop").
pub const DEFAULT_QUEUE_LEN: u32 = 2048;

fn default_queue_len() -> u32 {
    DEFAULT_QUEUE_LEN
}

impl Config {
    /// Parse and validate `text`; errors name `file`, line and column.
    /// Beyond each field's own checks, rule names are unique in the whole
    /// config and the tables it sizes fit [`MEMORY_BUDGET_BYTES`]
    /// ([`TableMemory`]).
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        let mut config = ron_text::options()
            .from_str::<Config>(text)
            .map_err(|e| ConfigError {
                file: file.to_string(),
                line: e.span.start.line,
                col: e.span.start.col,
                message: e.code.to_string(),
            })?;
        names::check_unique(
            [
                ("outbound", &config.outbound.rules),
                ("inbound", &config.inbound.rules),
            ],
            text,
            file,
        )?;
        sets::check_and_resolve(
            &config.sets,
            [
                ("outbound", &mut config.outbound.rules),
                ("inbound", &mut config.inbound.rules),
            ],
            text,
            file,
        )?;
        let router = [config.router.lan, config.router.wan];
        if let Some(i) = config.nat.masquerade_without_address(router) {
            let side = config.nat.source[i].out.side().as_str();
            let at = [
                Step::Field("nat"),
                Step::Field("source"),
                Step::Index(i),
                Step::Field("to"),
            ];
            let (line, col) = ron_text::locate(text, &at).unwrap_or((1, 1));
            return Err(ConfigError {
                file: file.to_string(),
                line,
                col,
                message: format!(
                    "Masquerade leaving by {side} takes router.{side}, which is not set"
                ),
            });
        }
        config
            .table_memory()
            .check(MEMORY_BUDGET_BYTES)
            .map_err(|message| {
                let max = [Step::Field("conntrack"), Step::Field("max")];
                let (line, col) = ron_text::locate(text, &max).unwrap_or((1, 1));
                ConfigError {
                    file: file.to_string(),
                    line,
                    col,
                    message,
                }
            })?;
        Ok(config)
    }

    /// The worst-case memory of the tables this config sizes.
    pub fn table_memory(&self) -> TableMemory {
        TableMemory::for_sizes(
            self.conntrack.max,
            self.conntrack.expectation_max,
            self.helpers.ftp.as_ref().map_or(0, |f| f.max_control_flows),
        )
        .with_defrag(self.defrag.high_thresh)
        .with_nat(!self.nat_rules().is_empty(), self.conntrack.max)
        .with_sets(
            self.sets
                .values()
                .map(|s| (s.max, s.kind == crate::sets::SetKind::Port)),
        )
        .with_limits(self.limiter_sources(), self.counted_sources())
    }

    /// The rules of both chains, outbound first.
    fn all_rules(&self) -> impl Iterator<Item = &Rule> {
        self.outbound.rules.iter().chain(&self.inbound.rules)
    }

    /// The size of the per-source token-bucket table: `limits.sources`
    /// when a rule has a `per_source_rate`, else 0.
    pub fn limiter_sources(&self) -> usize {
        let any = self.all_rules().any(|r| {
            r.limit
                .as_ref()
                .is_some_and(|l| l.per_source_rate.is_some())
        });
        if any {
            self.limits.sources
        } else {
            0
        }
    }

    /// The size of the table of live flows per source: `conntrack.max`
    /// when a rule has a `per_source_states` (every flow has one source,
    /// so the table is never full and the counts are exact), else 0 (not
    /// counted).
    pub fn counted_sources(&self) -> usize {
        let any = self.all_rules().any(|r| {
            r.limit
                .as_ref()
                .is_some_and(|l| l.per_source_states.is_some())
        });
        if any {
            self.conntrack.max
        } else {
            0
        }
    }

    /// The NAT rules, with the router addresses masquerade uses.
    pub fn nat_rules(&self) -> crate::nat::rules::NatRules {
        self.nat.to_rules([self.router.lan, self.router.wan])
    }

    /// The embedded default configuration.
    pub fn embedded_default() -> Result<Config, ConfigError> {
        Config::parse(DEFAULT_CONFIG, DEFAULT_CONFIG_NAME)
    }

    /// Read ([`read_text_file`]: only a regular file of at most
    /// [`MAX_FILE_BYTES`], never blocking) and parse a file; a file that
    /// cannot be read or is refused is reported at 1:1.
    pub fn load(path: &std::path::Path) -> Result<Config, ConfigError> {
        let text = read_text_file(path)?;
        Config::parse(&text, &path.display().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_points_at_the_value() {
        let text = "(\n    conntrack: (timeouts: (tcp: (close: 0))),\n    \
                    outbound: (policy: Drop),\n    inbound: (policy: Drop),\n)";
        let e = Config::parse(text, "t.ron").unwrap_err();
        let col = "    conntrack: (timeouts: (tcp: (close: ".len() + 1;
        assert_eq!((e.line, e.col), (2, col), "{e}");
        assert_eq!(
            e.to_string(),
            format!("t.ron:2:{col}: 0 is out of range: must be 1 to 4320000 seconds")
        );
    }
}
