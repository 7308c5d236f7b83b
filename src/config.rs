//! The RON configuration: rules per direction, default policies, conntrack
//! limits and timeouts, IPv6 switch and router addresses.
//!
//! [`Config::parse`] validates everything (unknown fields, CIDRs, port ranges,
//! empty state sets, cross-field rule checks) and reports the first problem as
//! `FILE:LINE:COL: message`. A config that parses is safe to swap in.

use core::fmt;
use core::net::Ipv4Addr;
use core::time::Duration;

use serde::de::{self, Deserializer};
use serde::Deserialize;

use crate::conntrack::tcp::{TcpConfig, TcpTimeouts};
use crate::conntrack::udp::UdpTimeouts;
use crate::conntrack::{ConntrackConfig, FtpHelperConfig, HelperConfig};
use crate::rules::{Action, PortSpec, Rule};

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

/// TCP timeouts in seconds.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TcpTimeoutSecs {
    /// SYN_SENT.
    pub syn_sent: u64,
    /// SYN_RECV.
    pub syn_recv: u64,
    /// ESTABLISHED.
    pub established: u64,
    /// FIN_WAIT.
    pub fin_wait: u64,
    /// CLOSE_WAIT.
    pub close_wait: u64,
    /// LAST_ACK.
    pub last_ack: u64,
    /// TIME_WAIT.
    pub time_wait: u64,
    /// CLOSE (and after a RST).
    pub close: u64,
    /// SYN_SENT2.
    pub syn_sent2: u64,
    /// Cap after repeated retransmissions or on a zero window.
    pub max_retrans: u64,
    /// Cap while data is unacknowledged.
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

/// UDP timeouts in seconds.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UdpTimeoutSecs {
    /// Before a reply (and for two seconds after creation).
    pub unreplied: u64,
    /// Once a stream.
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

/// All timeouts, in seconds.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimeoutSecs {
    /// TCP per state.
    pub tcp: TcpTimeoutSecs,
    /// UDP.
    pub udp: UdpTimeoutSecs,
    /// ICMP queries.
    pub icmp: u64,
    /// Other protocols.
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
    /// Maximum number of tracked flows (`nf_conntrack_max`), 1 to 16,777,215.
    #[serde(deserialize_with = "flow_count")]
    pub max: usize,
    /// Pick up TCP flows mid-stream (`nf_conntrack_tcp_loose`).
    pub tcp_loose: bool,
    /// Never mark out-of-window TCP INVALID (`nf_conntrack_tcp_be_liberal`).
    pub tcp_be_liberal: bool,
    /// Identical retransmissions before the `max_retrans` cap (`nf_conntrack_tcp_max_retrans`).
    pub tcp_max_retrans: u8,
    /// Maximum pending expectations (`nf_ct_expect_max`).
    #[serde(deserialize_with = "positive")]
    pub expectation_max: usize,
    /// Timeouts.
    pub timeouts: TimeoutSecs,
}

fn positive<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let n = usize::deserialize(d)?;
    if n == 0 {
        return Err(de::Error::custom("must be at least 1"));
    }
    Ok(n)
}

fn flow_count<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let n = positive(d)?;
    let most = crate::conntrack::index::MAX_FLOWS;
    if n > most {
        return Err(de::Error::custom(format!("must be at most {most}")));
    }
    Ok(n)
}

/// The FTP helper's attachment: like `iptables -t raw -p tcp --dport 21 -j CT --helper ftp`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FtpHelperSection {
    /// Destination ports of FTP control flows (default `"21"`; e.g. `"21,2121"`).
    #[serde(default = "default_ftp_ports")]
    pub ports: PortSpec,
    /// Seconds an expectation waits for its data connection (default 300).
    #[serde(default = "default_expectation_timeout")]
    pub expectation_timeout: u64,
    /// Control flows that can have the helper at once (each holds a small
    /// line buffer, allocated at start); further ones get no helper (default 4096).
    #[serde(default = "default_max_control_flows", deserialize_with = "positive")]
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
    /// Log lines per second at most (token bucket refill).
    pub per_second: u64,
    /// Burst of log lines allowed at once.
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
