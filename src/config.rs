//! The RON configuration: rules per direction, default policies, conntrack
//! limits and timeouts, IPv6 switch and router addresses.
//!
//! [`Config::parse`] validates everything (unknown fields, CIDRs, port ranges,
//! empty state sets, cross-field rule checks, the range of every number) and
//! reports the first problem as `FILE:LINE:COL: message`. A config that
//! parses is safe to swap in.
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

use core::fmt;
use core::net::Ipv4Addr;
use core::time::Duration;

use serde::de::{self, Deserializer};
use serde::Deserialize;

use crate::conntrack::config::{ConntrackConfig, FtpHelperConfig, HelperConfig};
use crate::conntrack::tcp::{TcpConfig, TcpTimeouts};
use crate::conntrack::udp::UdpTimeouts;
use crate::matchers::PortSpec;
use crate::rules::{Action, Rule};

/// The default configuration, embedded in the binary (the file `config/default.ron`).
pub const DEFAULT_CONFIG: &str = include_str!("../config/default.ron");
/// The name under which errors in the embedded default are reported.
pub const DEFAULT_CONFIG_NAME: &str = "config/default.ron (embedded)";

/// A configuration error, with where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The file name as given.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.col, self.message
        )
    }
}

impl std::error::Error for ConfigError {}

/// What happens to IPv6 packets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub enum Ipv6Mode {
    /// Drop and count them (default).
    #[default]
    Drop,
    /// Forward them untracked and unfiltered (hop limit decremented).
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

/// An inclusive range of a numeric field, with the unit its messages name.
#[derive(Clone, Copy, Debug)]
struct Bounds {
    min: u64,
    max: u64,
    unit: &'static str,
}

/// Every conntrack timeout: 1 s to 50 days (ten times Linux's longest
/// default, TCP ESTABLISHED's 432,000 s). Zero is refused: it is not "never".
const TIMEOUT_SECS: Bounds = Bounds {
    min: 1,
    max: 4_320_000,
    unit: " seconds",
};
const FLOWS: Bounds = Bounds {
    min: 1,
    max: crate::conntrack::index::MAX_FLOWS as u64,
    unit: "",
};
const TCP_MAX_RETRANS: Bounds = Bounds {
    min: 0,
    max: u8::MAX as u64,
    unit: "",
};
/// Pending expectations: a table of this size is allocated at start.
const EXPECTATIONS: Bounds = Bounds {
    min: 1,
    max: 65_536,
    unit: "",
};
/// An FTP expectation's lifetime: 1 s to a day (Linux: 300 s).
const EXPECTATION_TIMEOUT_SECS: Bounds = Bounds {
    min: 1,
    max: 86_400,
    unit: " seconds",
};
/// FTP control flows with helper state (a line buffer each, allocated at start).
const FTP_CONTROL_FLOWS: Bounds = Bounds {
    min: 1,
    max: 65_536,
    unit: "",
};
const LOG_PER_SECOND: Bounds = Bounds {
    min: 1,
    max: 1_000_000,
    unit: "",
};
/// 0 is allowed: no log lines at all.
const LOG_BURST: Bounds = Bounds {
    min: 0,
    max: 1_000_000,
    unit: "",
};

impl Bounds {
    fn describe(self) -> String {
        format!("must be {} to {}{}", self.min, self.max, self.unit)
    }
}

impl<'de> de::Visitor<'de> for Bounds {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an integer {} to {}{}", self.min, self.max, self.unit)
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<u64, E> {
        if (self.min..=self.max).contains(&n) {
            Ok(n)
        } else {
            Err(E::custom(format!(
                "{n} is out of range: {}",
                self.describe()
            )))
        }
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<u64, E> {
        match u64::try_from(n) {
            Ok(n) => self.visit_u64(n),
            Err(_) => Err(E::custom(format!(
                "{n} is out of range: {}",
                self.describe()
            ))),
        }
    }

    // Integers beyond i64/u64 arrive as floats (as do `5.0`, `1.5`, `inf`).
    fn visit_f64<E: de::Error>(self, x: f64) -> Result<u64, E> {
        let outside = x < self.min as f64 || x > self.max as f64;
        Err(E::custom(if x.fract() == 0.0 && outside {
            format!("{x:e} is out of range: {}", self.describe())
        } else {
            format!("{x:?} is not an integer: {}", self.describe())
        }))
    }
}

/// A number within `bounds`. `deserialize_any` lets negative numbers and
/// ones beyond `u64` reach the range message too (ron hands them over as
/// `i64` and `f64`); anything else is reported as not being such an integer.
fn in_range<'de, D: Deserializer<'de>>(d: D, bounds: Bounds) -> Result<u64, D::Error> {
    d.deserialize_any(bounds)
}

// The largest bound (16,777,215) fits any usize.
fn count<'de, D: Deserializer<'de>>(d: D, bounds: Bounds) -> Result<usize, D::Error> {
    in_range(d, bounds).map(|n| n as usize)
}

fn timeout<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    in_range(d, TIMEOUT_SECS)
}

fn flow_count<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    count(d, FLOWS)
}

fn retrans<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    in_range(d, TCP_MAX_RETRANS).map(|n| n as u8)
}

fn expectation_count<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    count(d, EXPECTATIONS)
}

fn expectation_timeout<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    in_range(d, EXPECTATION_TIMEOUT_SECS)
}

fn control_flow_count<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    count(d, FTP_CONTROL_FLOWS)
}

fn log_per_second<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    in_range(d, LOG_PER_SECOND)
}

fn log_burst<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    in_range(d, LOG_BURST)
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
            generic_timeout: secs(t.generic),
            expectation_max: self.expectation_max,
        }
    }
}

/// Which packets go to the pcap file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub enum PcapPackets {
    /// Every dropped packet (default).
    #[default]
    Dropped,
    /// Packets that were logged (by a rule's or policy's `log`, or INVALID/table full).
    Logged,
}

/// A pcap capture of dropped or logged packets.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PcapSection {
    /// File to write (created or truncated at start; raw IP link type).
    pub path: String,
    /// Which packets.
    #[serde(default)]
    pub packets: PcapPackets,
}

/// Logging of rule matches, INVALID and table-full drops.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoggingSection {
    /// Log lines per second at most (token bucket refill), 1 to 1,000,000
    /// (default 10).
    #[serde(deserialize_with = "log_per_second")]
    pub per_second: u64,
    /// Burst of log lines allowed at once, 0 to 1,000,000 (default 20); 0
    /// means no log lines at all (and none in a `Logged` pcap).
    #[serde(deserialize_with = "log_burst")]
    pub burst: u64,
    /// Log INVALID packets that are dropped, with their reason.
    pub invalid: bool,
    /// Write dropped or logged packets to a pcap file.
    pub pcap: Option<PcapSection>,
}

impl Default for LoggingSection {
    fn default() -> Self {
        LoggingSection {
            per_second: 10,
            burst: 20,
            invalid: true,
            pcap: None,
        }
    }
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
    /// Logging and pcap.
    #[serde(default)]
    pub logging: LoggingSection,
    /// Flows on reload.
    #[serde(default)]
    pub on_reload: OnReload,
    /// Control socket path (overridden by `--control`).
    #[serde(default)]
    pub control: Option<String>,
    /// Open the TUN devices with the virtio-net header and kernel offloads
    /// (checksum, TSO, USO): super-packets instead of one read per segment.
    /// Read at start (overridden by `--offload`); a reload does not reopen devices.
    #[serde(default = "default_offload")]
    pub offload: bool,
    /// LAN to WAN.
    pub outbound: ChainConfig,
    /// WAN to LAN.
    pub inbound: ChainConfig,
}

fn default_offload() -> bool {
    true
}

impl Config {
    /// Parse and validate `text`; errors name `file`, line and column.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        ron::Options::default()
            .with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME)
            .from_str::<Config>(text)
            .map_err(|e| ConfigError {
                file: file.to_string(),
                line: e.span.start.line,
                col: e.span.start.col,
                message: e.code.to_string(),
            })
    }

    /// The embedded default configuration.
    pub fn embedded_default() -> Result<Config, ConfigError> {
        Config::parse(DEFAULT_CONFIG, DEFAULT_CONFIG_NAME)
    }

    /// Read and parse a file; an unreadable file is reported at 1:1.
    pub fn load(path: &std::path::Path) -> Result<Config, ConfigError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: name.clone(),
            line: 1,
            col: 1,
            message: format!("cannot read: {e}"),
        })?;
        Config::parse(&text, &name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inside(what: &str, n: u64, b: Bounds) {
        assert!(
            (b.min..=b.max).contains(&n),
            "default {what} = {n}: {}",
            b.describe()
        );
    }

    // Omitted fields take these defaults without passing the range checks.
    #[test]
    fn defaults_are_inside_their_bounds() {
        let c = ConntrackSection::default();
        inside("conntrack.max", c.max as u64, FLOWS);
        inside(
            "tcp_max_retrans",
            u64::from(c.tcp_max_retrans),
            TCP_MAX_RETRANS,
        );
        inside("expectation_max", c.expectation_max as u64, EXPECTATIONS);
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
            ("generic", t.generic),
        ] {
            inside(what, n, TIMEOUT_SECS);
        }
        assert_eq!(t.tcp.established, 432_000);
        inside(
            "expectation_timeout",
            default_expectation_timeout(),
            EXPECTATION_TIMEOUT_SECS,
        );
        inside(
            "max_control_flows",
            default_max_control_flows() as u64,
            FTP_CONTROL_FLOWS,
        );
        let l = LoggingSection::default();
        inside("per_second", l.per_second, LOG_PER_SECOND);
        inside("burst", l.burst, LOG_BURST);
    }

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
