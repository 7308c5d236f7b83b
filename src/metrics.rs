//! The Prometheus text (exposition format 0.0.4) of a running firewall: the
//! pure part of `--metrics` and `tunfw ctl metrics`. Nothing here does I/O.
//!
//! Every counter of [`report::counters`] becomes a sample of a metric
//! family named by Prometheus conventions (`tunfw_..._total` for counters,
//! base units, no unit-less sums of labelled series), with the per-device
//! part of its name as a `side` label and the reason as a `reason` label;
//! [`family_of`] is that mapping, and a test holds every counter name to it.
//! Rule counters come from [`report::rules`] (labels `direction`, `number`,
//! `rule`), and the table's flows per protocol and state from a [`Census`],
//! a walk over the table that the event loop spreads over several turns
//! ([`Census::step`] does at most [`CENSUS_CHUNK`] slots a call) so a
//! scrape of a full table never makes one turn long.
//!
//! The text is written by the `prometheus-client` crate's Prometheus text
//! encoder (the official Rust client), which escapes help text and label
//! values, appends `_total` to counters and writes the `# HELP` and
//! `# TYPE` lines.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::conntrack::flow::ProtoState;
use crate::conntrack::tcp::TcpState;
use crate::filter::Firewall;
use crate::report::{self, LoopCounters};
use crate::time::Instant;

/// The `Content-Type` of the text: the Prometheus text format 0.0.4.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Table slots a [`Census::step`] looks at, at most: about half a millisecond's
/// walk (README "Metrics" has the measurement).
pub const CENSUS_CHUNK: u32 = 32_768;

/// Counters of [`report::counters`] that are sums of a labelled family
/// (`drop.total` is the sum of `drop.REASON`): Prometheus leaves the sum to
/// the query (`sum(tunfw_dropped_packets_total)`), so they have no family.
pub const SUMS: [&str; 2] = ["drop.total", "invalid.total"];

/// One metric family: its name (without `_total`, which the encoder adds
/// to counters), help, type, and the label its counters' last name part
/// goes into (`None`: the counter's name is the whole key).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FamilySpec {
    /// The counter name, or its head before the labelled part (`drop`).
    pub key: &'static str,
    /// The metric name (`tunfw_dropped_packets`).
    pub metric: &'static str,
    /// The help text.
    pub help: &'static str,
    /// A gauge (true) or a counter.
    pub gauge: bool,
    /// The label the last part of the counter name becomes.
    pub label: Option<&'static str>,
}

const fn c(key: &'static str, metric: &'static str, help: &'static str) -> FamilySpec {
    FamilySpec {
        key,
        metric,
        help,
        gauge: false,
        label: None,
    }
}

const fn g(key: &'static str, metric: &'static str, help: &'static str) -> FamilySpec {
    FamilySpec {
        gauge: true,
        ..c(key, metric, help)
    }
}

const fn side(spec: FamilySpec) -> FamilySpec {
    FamilySpec {
        label: Some("side"),
        ..spec
    }
}

const fn reason(spec: FamilySpec) -> FamilySpec {
    FamilySpec {
        label: Some("reason"),
        ..spec
    }
}

/// Every family a counter of [`report::counters`] maps to, in the order of
/// the text.
pub const FAMILIES: &[FamilySpec] = &[
    side(c(
        "in",
        "tunfw_packets",
        "Packets read from a device (side: the device)",
    )),
    side(c(
        "in_bytes",
        "tunfw_received_bytes",
        "Bytes of packets read from a device",
    )),
    side(c(
        "forwarded",
        "tunfw_forwarded_packets",
        "Packets read from this side and forwarded to the other",
    )),
    side(c(
        "ipv6.in",
        "tunfw_ipv6_packets",
        "IPv6 packets read from a device",
    )),
    side(c(
        "ipv6.forwarded",
        "tunfw_ipv6_forwarded_packets",
        "IPv6 packets read from this side and forwarded",
    )),
    reason(c(
        "drop",
        "tunfw_dropped_packets",
        "Packets dropped, by reason",
    )),
    reason(c(
        "invalid",
        "tunfw_invalid_packets",
        "Packets conntrack found INVALID, by reason",
    )),
    side(c(
        "offload.gso_in",
        "tunfw_offload_super_packets",
        "Super-packets (TSO/USO) read from a device",
    )),
    side(c(
        "offload.checksum_offloaded",
        "tunfw_offload_partial_checksum_packets",
        "Packets read with a partial checksum left to the kernel",
    )),
    c(
        "offload.resegmented",
        "tunfw_offload_resegmented",
        "Super-packets cut into segments by tunfw",
    ),
    c(
        "defrag.queued",
        "tunfw_defrag_queued_fragments",
        "Fragments queued for reassembly",
    ),
    c(
        "defrag.reassembled",
        "tunfw_defrag_reassembled_datagrams",
        "Datagrams reassembled",
    ),
    c(
        "defrag.timed_out",
        "tunfw_defrag_timed_out_queues",
        "Reassembly queues that timed out",
    ),
    c(
        "defrag.evicted",
        "tunfw_defrag_evicted_queues",
        "Reassembly queues evicted for memory",
    ),
    g(
        "defrag.queues",
        "tunfw_fragment_queues",
        "Reassembly queues now",
    ),
    g(
        "defrag.memory",
        "tunfw_fragment_queue_bytes",
        "Bytes held by reassembly queues now",
    ),
    g(
        "defrag.memory_high_water",
        "tunfw_fragment_queue_bytes_high_water",
        "Most bytes reassembly queues have held",
    ),
    g(
        "defrag.memory_max",
        "tunfw_fragment_queue_bytes_limit",
        "Bytes reassembly queues may hold (defrag.high_thresh)",
    ),
    reason(c(
        "defrag.dropped",
        "tunfw_defrag_dropped_fragments",
        "Fragments dropped by the reassembler, by reason",
    )),
    side(c(
        "defrag.held",
        "tunfw_defrag_held_fragments",
        "Fragments from a side held for reassembly",
    )),
    side(c(
        "defrag.fragments_out",
        "tunfw_defrag_sent_fragments",
        "Fragments sent on, read from this side",
    )),
    g(
        "conntrack.count",
        "tunfw_conntrack_table_entries",
        "Flows in the table, expired ones not yet collected included",
    ),
    g(
        "conntrack.max",
        "tunfw_conntrack_entries_limit",
        "Flows the table holds at most (conntrack.max)",
    ),
    c(
        "conntrack.searched",
        "tunfw_conntrack_searched",
        "Table lookups",
    ),
    c(
        "conntrack.inserted",
        "tunfw_conntrack_inserted",
        "Flows inserted",
    ),
    c(
        "conntrack.deleted",
        "tunfw_conntrack_deleted",
        "Flows deleted",
    ),
    c(
        "conntrack.expired",
        "tunfw_conntrack_expired",
        "Flows expired",
    ),
    c(
        "conntrack.early_drop",
        "tunfw_conntrack_early_drop",
        "Flows evicted early to make room",
    ),
    c(
        "conntrack.table_full",
        "tunfw_conntrack_table_full",
        "New flows refused because the table was full",
    ),
    c("conntrack.clash", "tunfw_conntrack_clash", "Insert clashes"),
    c(
        "conntrack.reopened",
        "tunfw_conntrack_reopened",
        "TCP flows reopened by a new SYN",
    ),
    g(
        "expect.count",
        "tunfw_expectations",
        "Pending expectations now",
    ),
    c(
        "expect.created",
        "tunfw_expectations_created",
        "Expectations created",
    ),
    c(
        "expect.used",
        "tunfw_expectations_used",
        "Expectations a new flow used",
    ),
    c(
        "expect.expired",
        "tunfw_expectations_expired",
        "Expectations expired unused",
    ),
    c(
        "expect.replaced",
        "tunfw_expectations_replaced",
        "Expectations replaced by a newer one",
    ),
    c(
        "expect.removed_with_master",
        "tunfw_expectations_removed_with_master",
        "Expectations removed with their control flow",
    ),
    c(
        "expect.table_full",
        "tunfw_expectations_table_full",
        "Expectations refused because the table was full",
    ),
    c(
        "ftp.announcements",
        "tunfw_ftp_announcements",
        "FTP PORT/EPRT/PASV/EPSV announcements seen",
    ),
    c(
        "ftp.refused_address",
        "tunfw_ftp_refused_address",
        "FTP announcements refused for their address",
    ),
    c(
        "ftp.refused_port_zero",
        "tunfw_ftp_refused_port_zero",
        "FTP announcements refused for port 0",
    ),
    c(
        "ftp.split_commands",
        "tunfw_ftp_split_commands",
        "FTP commands split over segments",
    ),
    c(
        "ftp.malformed",
        "tunfw_ftp_malformed",
        "Malformed FTP announcements",
    ),
    c(
        "ftp.overlong",
        "tunfw_ftp_overlong",
        "FTP lines too long to parse",
    ),
    c(
        "ftp.no_state_slot",
        "tunfw_ftp_no_state_slot",
        "FTP control flows without helper state (pool full)",
    ),
    c(
        "ftp.expectation_table_full",
        "tunfw_ftp_expectation_table_full",
        "FTP announcements with no room for an expectation",
    ),
    c(
        "ftp.nat_announcements",
        "tunfw_ftp_nat_announcements",
        "FTP announcements translated for NAT",
    ),
    c(
        "ftp.nat_split_dropped",
        "tunfw_ftp_nat_split_dropped",
        "Split FTP commands on a translated flow, dropped",
    ),
    c(
        "ftp.nat_ports_exhausted",
        "tunfw_ftp_nat_ports_exhausted",
        "FTP announcements with no free translated port",
    ),
    c(
        "limits.evicted",
        "tunfw_limits_evicted",
        "Per-source rate buckets evicted to make room (the table was full)",
    ),
    c(
        "limits.overloaded",
        "tunfw_limits_overloaded",
        "Sources added to an overload set for exceeding a per-source limit",
    ),
    c(
        "limits.overload_failed",
        "tunfw_limits_overload_failed",
        "Sources over a limit that their overload set had no room for",
    ),
    c(
        "sent.tcp_rst",
        "tunfw_sent_tcp_rst",
        "TCP resets tunfw sent (Reject)",
    ),
    c("sent.icmp", "tunfw_sent_icmp", "ICMP errors tunfw sent"),
    c(
        "sent.rate_limited",
        "tunfw_sent_rate_limited",
        "Answers not sent for the rate limit",
    ),
    side(c(
        "tx_error",
        "tunfw_transmit_errors",
        "Writes to the device that failed",
    )),
    side(c(
        "loop.short_frame",
        "tunfw_loop_short_frames",
        "Frames too short for a virtio-net header and a packet",
    )),
    side(c(
        "loop.unsegmentable",
        "tunfw_loop_unsegmentable",
        "Super-packets that could not be cut into segments",
    )),
    side(c(
        "loop.fragment_queue_read",
        "tunfw_loop_fragment_queue_reads",
        "Packets read from the device's fragment queue",
    )),
    FamilySpec {
        label: Some("queue"),
        ..c(
            "loop.queue_read",
            "tunfw_loop_queue_reads",
            "Packets read from each device queue (queue: the side and the queue's number)",
        )
    },
    c(
        "nat.mapped",
        "tunfw_nat_mapped",
        "Flows given a translation",
    ),
    c(
        "nat.exhausted",
        "tunfw_nat_exhausted",
        "Flows refused for want of a free translated port",
    ),
    c(
        "nat.translated",
        "tunfw_nat_translated_packets",
        "Packets rewritten by NAT",
    ),
    c(
        "nat.errors_translated",
        "tunfw_nat_errors_translated",
        "ICMP errors translated inside and out",
    ),
    c(
        "nat.followed",
        "tunfw_nat_followed",
        "Expected flows given their control flow's translation",
    ),
    c(
        "nat.ftp_rewritten",
        "tunfw_nat_ftp_rewritten",
        "FTP announcements rewritten in the segment",
    ),
    c(
        "nat.ftp_unwritable",
        "tunfw_nat_ftp_unwritable",
        "FTP announcements with no room to rewrite",
    ),
    c(
        "nat.seq_adjusted",
        "tunfw_nat_seq_adjusted",
        "Segments whose sequence numbers were moved",
    ),
    c(
        "control.accepted",
        "tunfw_control_accepted",
        "Control connections accepted",
    ),
    c(
        "control.closed_idle",
        "tunfw_control_closed_idle",
        "Control clients closed for no request in time",
    ),
    c(
        "control.evicted",
        "tunfw_control_evicted",
        "Control clients evicted to make room",
    ),
    c(
        "control.events_lost",
        "tunfw_control_events_lost",
        "Events dropped for subscribers that were behind",
    ),
    c(
        "control.closed_slow",
        "tunfw_control_closed_slow",
        "Control clients closed for not reading",
    ),
    c(
        "control.refused",
        "tunfw_control_refused",
        "Control connections or requests refused at a bound",
    ),
    g(
        "control.clients",
        "tunfw_control_clients",
        "Control clients connected (as of the last control request)",
    ),
];

/// The family and labels of a [`report::counters`] name: the whole name
/// when a family has it as key, else the head before its last `.` with
/// the last part as the family's label; `None` for a name no family has
/// (and for [`SUMS`]).
pub fn family_of(name: &str) -> Option<(&'static FamilySpec, Option<(&'static str, &str)>)> {
    if SUMS.contains(&name) {
        return None;
    }
    if let Some(spec) = FAMILIES.iter().find(|f| f.key == name && f.label.is_none()) {
        return Some((spec, None));
    }
    let (head, tail) = name.rsplit_once('.')?;
    let spec = FAMILIES.iter().find(|f| f.key == head)?;
    Some((spec, Some((spec.label?, tail))))
}

/// The protocols the census counts, as the `protocol` label.
const PROTOCOLS: [&str; 5] = ["tcp", "udp", "icmp", "icmpv6", "other"];
/// States of flows other than TCP: whether a reply was seen (conntrack's
/// `[UNREPLIED]`).
const REPLY_STATES: [&str; 2] = ["unreplied", "replied"];
/// TCP states, as [`TcpState`] numbers them.
const TCP_STATES: usize = 10;

/// Flows per protocol and state, counted by walking the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Census {
    /// Per protocol ([`PROTOCOLS`]): TCP by [`TcpState`] number, the others
    /// at 0 (unreplied) and 1 (replied).
    counts: [[u64; TCP_STATES]; 5],
    /// The next table slot to look at.
    next: u32,
    /// Whether the walk has reached the end of the table.
    done: bool,
}

impl Default for Census {
    fn default() -> Census {
        Census::new()
    }
}

impl Census {
    /// A census not yet started.
    pub fn new() -> Census {
        Census {
            counts: [[0; TCP_STATES]; 5],
            next: 0,
            done: false,
        }
    }

    /// The whole table at once (for small tables, tests and benchmarks).
    pub fn complete(fw: &Firewall, now: Instant) -> Census {
        let mut census = Census::new();
        while !census.step(fw, now, u32::MAX) {}
        census
    }

    /// Whether the walk has seen every slot.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Look at up to `slots` more table slots (flows live at `now`); true
    /// once the walk has reached the table's end. Flows inserted or removed
    /// behind the walk between two steps are missed or counted: the counts
    /// are as exact as the table's churn during the walk allows.
    pub fn step(&mut self, fw: &Firewall, now: Instant, slots: u32) -> bool {
        let ct = fw.conntrack();
        let end = u32::try_from(ct.config().max).unwrap_or(u32::MAX);
        let stop = self.next.saturating_add(slots).min(end);
        for id in self.next..stop {
            let Some(flow) = ct.get(id) else { continue };
            if flow.expires <= now {
                continue;
            }
            let (proto, state) = match flow.proto {
                ProtoState::Tcp(conn) => (0, conn.state as usize),
                ProtoState::Udp(_) => (1, usize::from(flow.seen_reply)),
                ProtoState::Icmp if flow.original.src.is_ipv4() => {
                    (2, usize::from(flow.seen_reply))
                }
                ProtoState::Icmp => (3, usize::from(flow.seen_reply)),
                ProtoState::Generic => (4, usize::from(flow.seen_reply)),
            };
            if let Some(n) = self.counts[proto].get_mut(state) {
                *n += 1;
            }
        }
        self.next = stop;
        self.done = stop >= end;
        self.done
    }

    /// Every (protocol, state, flows) the census reports: every TCP state
    /// and both reply states of the others, zeros included.
    pub fn samples(&self) -> Vec<(&'static str, String, u64)> {
        let mut out = Vec::new();
        for (i, proto) in PROTOCOLS.iter().enumerate() {
            if i == 0 {
                for (state, n) in TCP_STATE_LIST.iter().zip(self.counts[0]) {
                    out.push((*proto, state.as_str().to_ascii_lowercase(), n));
                }
            } else {
                for (s, label) in REPLY_STATES.iter().enumerate() {
                    out.push((*proto, label.to_string(), self.counts[i][s]));
                }
            }
        }
        out
    }
}

/// Every TCP state, in [`TcpState`]'s order (its number indexes the census).
const TCP_STATE_LIST: [TcpState; TCP_STATES] = [
    TcpState::None,
    TcpState::SynSent,
    TcpState::SynRecv,
    TcpState::Established,
    TcpState::FinWait,
    TcpState::CloseWait,
    TcpState::LastAck,
    TcpState::TimeWait,
    TcpState::Close,
    TcpState::SynSent2,
];

/// The metrics server's own counters (see `metrics_http`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HttpCounters {
    /// Connections accepted.
    pub accepted: u64,
    /// `GET /metrics` requests answered with the text.
    pub scrapes: u64,
    /// Requests answered with an error status (400, 404, 405, 431).
    pub errors: u64,
    /// Clients closed for not sending a request or not reading the answer
    /// in time.
    pub closed_slow: u64,
    /// Clients closed to make room for a new connection.
    pub evicted: u64,
    /// Clients connected now.
    pub clients: u64,
}

/// One family's samples, to encode.
#[derive(Debug)]
struct Family {
    name: &'static str,
    help: &'static str,
    gauge: bool,
    samples: Vec<(Vec<(&'static str, String)>, u64)>,
}

/// The families of one scrape, as a `prometheus-client` collector.
#[derive(Debug)]
struct Scrape(Vec<Family>);

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for f in &self.0 {
            let kind = if f.gauge {
                MetricType::Gauge
            } else {
                MetricType::Counter
            };
            let mut family = encoder.encode_descriptor(f.name, f.help, None, kind)?;
            for (labels, value) in &f.samples {
                let sample = family.encode_family(labels)?;
                if f.gauge {
                    ConstGauge::new(*value).encode(sample)?;
                } else {
                    ConstCounter::new(*value).encode(sample)?;
                }
            }
        }
        Ok(())
    }
}

impl Scrape {
    fn family(&mut self, name: &'static str, help: &'static str, gauge: bool) -> &mut Family {
        match self.0.iter().position(|f| f.name == name) {
            Some(i) => &mut self.0[i],
            None => {
                self.0.push(Family {
                    name,
                    help,
                    gauge,
                    samples: Vec::new(),
                });
                let last = self.0.len() - 1;
                &mut self.0[last]
            }
        }
    }
}

/// The whole text of a scrape: every counter of [`report::counters`]
/// (`fw`'s and the event loop's `shell`), the rules' counters, the
/// census's flows per protocol and state, the expectation limit, and the
/// metrics server's `http` counters when there is a server.
pub fn render(
    fw: &Firewall,
    shell: &LoopCounters,
    census: &Census,
    http: Option<&HttpCounters>,
) -> String {
    let mut scrape = Scrape(Vec::new());
    for spec in FAMILIES {
        scrape.family(spec.metric, spec.help, spec.gauge);
    }
    for (name, value) in report::counters(fw, shell) {
        let Some((spec, label)) = family_of(&name) else {
            continue;
        };
        let labels = label.map_or_else(Vec::new, |(k, v)| vec![(k, v.to_string())]);
        scrape
            .family(spec.metric, spec.help, spec.gauge)
            .samples
            .push((labels, value));
    }
    scrape
        .family(
            "tunfw_expectations_limit",
            "Pending expectations at most (conntrack.expectation_max)",
            true,
        )
        .samples
        .push((Vec::new(), fw.conntrack().config().expectation_max as u64));
    let entries = scrape.family(
        "tunfw_conntrack_entries",
        "Live flows by protocol and state (TCP state; others replied or unreplied), by a walk of the table",
        true,
    );
    for (protocol, state, n) in census.samples() {
        entries.samples.push((
            vec![("protocol", protocol.to_string()), ("state", state)],
            n,
        ));
    }
    for rule in report::rules(fw) {
        let labels = vec![
            ("direction", rule.direction.clone()),
            ("number", rule.number.to_string()),
            ("rule", rule.name.clone()),
        ];
        scrape
            .family(
                "tunfw_rule_packets",
                "Packets a rule (number 0: the policy) decided",
                false,
            )
            .samples
            .push((labels.clone(), rule.packets));
        scrape
            .family(
                "tunfw_rule_bytes",
                "Bytes of the packets a rule decided",
                false,
            )
            .samples
            .push((labels, rule.bytes));
    }
    if let Some(h) = http {
        for (name, help, value) in [
            (
                "tunfw_metrics_http_accepted",
                "Metrics connections accepted",
                h.accepted,
            ),
            (
                "tunfw_metrics_http_scrapes",
                "Metrics requests answered with the text",
                h.scrapes,
            ),
            (
                "tunfw_metrics_http_errors",
                "Metrics requests answered with an error status",
                h.errors,
            ),
            (
                "tunfw_metrics_http_closed_slow",
                "Metrics clients closed at a deadline",
                h.closed_slow,
            ),
            (
                "tunfw_metrics_http_evicted",
                "Metrics clients evicted to make room",
                h.evicted,
            ),
        ] {
            scrape
                .family(name, help, false)
                .samples
                .push((Vec::new(), value));
        }
        scrape
            .family(
                "tunfw_metrics_http_clients",
                "Metrics clients connected",
                true,
            )
            .samples
            .push((Vec::new(), h.clients));
    }
    let mut registry = Registry::default();
    registry.register_collector(Box::new(scrape));
    let mut text = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &registry);
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn every_counter_name_has_a_family_or_is_a_sum() {
        let fw = Firewall::new(&Config::embedded_default().expect("default"));
        for (name, _) in report::counters(&fw, &LoopCounters::default()) {
            assert!(
                family_of(&name).is_some() || SUMS.contains(&name.as_str()),
                "{name} has no metric family: add it to metrics::FAMILIES"
            );
        }
    }

    #[test]
    fn family_names_follow_the_conventions() {
        for f in FAMILIES {
            assert!(f.metric.starts_with("tunfw_"), "{}", f.metric);
            assert!(
                !f.metric.ends_with("_total"),
                "{}: the encoder adds _total",
                f.metric
            );
            assert!(
                f.metric
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{}",
                f.metric
            );
        }
        let mut names: Vec<_> = FAMILIES.iter().map(|f| f.metric).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), FAMILIES.len(), "a metric name used twice");
    }

    #[test]
    fn names_map_to_labels() {
        let (spec, label) = family_of("in.lan").expect("in.lan");
        assert_eq!(
            (spec.metric, label),
            ("tunfw_packets", Some(("side", "lan")))
        );
        let (spec, label) = family_of("drop.policy_inbound").expect("drop");
        assert_eq!(
            (spec.metric, label),
            ("tunfw_dropped_packets", Some(("reason", "policy_inbound")))
        );
        let (spec, label) = family_of("conntrack.count").expect("count");
        assert_eq!(
            (spec.metric, spec.gauge, label),
            ("tunfw_conntrack_table_entries", true, None)
        );
        assert!(family_of("drop.total").is_none(), "a sum has no family");
        assert!(family_of("nope").is_none());
    }
}
