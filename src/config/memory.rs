//! The memory budget: what the tables a config sizes will take at most,
//! and the limit a config must stay under.
//!
//! tunfw allocates its tables when it starts (and when a reload raises a
//! size), so that tracking never allocates: the flow pool and the flow
//! index for `conntrack.max` flows, the expectation table for
//! `conntrack.expectation_max`, the FTP helper's line buffers for
//! `helpers.ftp.max_control_flows`. [`TableMemory::for_sizes`] computes
//! their worst case from the sizes of the types themselves, so the figure stays
//! true when a record grows.

use core::mem::size_of;

use crate::conntrack::expect::{ExpectKey, Expectation};
use crate::conntrack::flow::Flow;
use crate::conntrack::translation::Translation;
use crate::helpers::ftp::FtpState;

/// The most memory a config may make tunfw's tables take: 4 GiB.
///
/// Every maximum of the config's ranges fits in it at once (16,777,215 flows,
/// 65,536 expectations and 65,536 FTP control flows take 2.7 GiB), so
/// no valid combination of sizes is refused today. The budget stands for
/// what the ranges promise: whatever `--check` accepts, tunfw can be
/// trusted not to ask for more, and a range that is widened later or a
/// record that grows is refused here rather than discovered as an
/// out-of-memory kill.
pub const MEMORY_BUDGET_BYTES: u64 = 4 << 30;

/// Bytes of one pool slot holding a `T`: the slot and its free-list entry
/// (see [`crate::slab::Slab`]).
const fn slot<T>() -> u64 {
    (size_of::<Option<T>>() + size_of::<u32>()) as u64
}

/// Entries of the flow index for `max` flows: a power of two at least
/// twice `max`, at least 16 (as `FlowIndex::for_flows` sizes it).
fn index_entries(max: usize) -> u64 {
    (2 * max.max(1)).next_power_of_two().max(16) as u64
}

/// Buckets of std's `HashMap::with_capacity(cap)`: a power of two with
/// room for `cap` at 7/8 load (4 or 8 for small tables).
fn hash_buckets(cap: usize) -> u64 {
    match cap {
        0..4 => 4,
        4..8 => 8,
        _ => (cap * 8 / 7).next_power_of_two() as u64,
    }
}

/// The worst-case bytes of the tables a config sizes, by table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableMemory {
    /// The flow pool: `conntrack.max` × (the flow record's slot + 4 bytes
    /// of free list).
    pub flows: u64,
    /// The flow index: 4 bytes per entry, the next power of two at or above
    /// 2 × `conntrack.max` entries (between 8 and 16 bytes per flow).
    pub flow_index: u64,
    /// The expectation table: `conntrack.expectation_max` slots and a hash
    /// map of as many keys.
    pub expectations: u64,
    /// The FTP helper's per-flow state (line buffers):
    /// `helpers.ftp.max_control_flows` slots; 0 without the helper.
    pub ftp_helper: u64,
    /// The reassembler: at most twice `defrag.high_thresh` (its chunks,
    /// `high_thresh` bytes; as many queue records, 1,144 bytes each, as that
    /// memory could hold queues, and their index, under `high_thresh`
    /// again) and three datagram-sized buffers (the reassembled datagram,
    /// the firewall's copy of it, its first fragment rebuilt for ICMP
    /// quotes); 0 unless [`TableMemory::with_defrag`].
    pub defrag: u64,
    /// Address translation: a translation slot (the reply tuple) per flow
    /// and the flow index's second entry per flow (the index sized for
    /// twice `conntrack.max`); 0 without NAT rules.
    pub nat: u64,
    /// Named sets: 264 bytes (`SET_ELEMENT_BYTES`) per element of every set's `max`
    /// (hash table slots at the worst load), and a port set's 8 KiB bit map.
    pub sets: u64,
    /// Per-source limits: [`crate::limits::LIMITER_SOURCE_BYTES`] per
    /// source of the token-bucket table, and the live-flow counts' hash
    /// map (for twice `conntrack.max` sources), when rules have such limits.
    pub limits: u64,
}

/// The most bytes one set element takes in its table: a 57-byte slot
/// (32-byte key, 24 bytes of timeout and origin, a control byte), for
/// twice `max` slots (so that churn never makes the table grow) at a
/// load as low as 7/16 after the table's rounding to a power of two.
pub const SET_ELEMENT_BYTES: u64 = 264;

/// The largest IP datagram a buffer must hold (65,535 bytes of IPv6
/// payload and its 40-byte header).
pub const DATAGRAM_BUFFER: u64 = 65_575;

impl TableMemory {
    /// The tables for `max` flows, `expectation_max` expectations and
    /// `ftp_control_flows` FTP control flows with helper state (0 without
    /// the helper), at their full size: the most they take once every slot
    /// has been used.
    pub fn for_sizes(max: usize, expectation_max: usize, ftp_control_flows: usize) -> TableMemory {
        let max = max.max(1);
        let expectations = expectation_max.max(1);
        TableMemory {
            flows: max as u64 * slot::<Flow>(),
            flow_index: index_entries(max) * size_of::<u32>() as u64,
            expectations: expectations as u64 * slot::<Expectation>()
                + hash_buckets(expectations) * (size_of::<(ExpectKey, u32)>() as u64 + 1),
            ftp_helper: ftp_control_flows as u64 * slot::<FtpState>(),
            defrag: 0,
            nat: 0,
            sets: 0,
            limits: 0,
        }
    }

    /// These tables and a reassembler of `high_thresh` bytes.
    pub fn with_defrag(self, high_thresh: usize) -> TableMemory {
        TableMemory {
            defrag: 2 * high_thresh as u64 + 3 * DATAGRAM_BUFFER,
            ..self
        }
    }

    /// These tables with room to translate `max` flows, when `nat`.
    pub fn with_nat(self, nat: bool, max: usize) -> TableMemory {
        let max = max.max(1);
        let nat = if nat {
            max as u64 * slot::<Translation>()
                + (index_entries(2 * max) - index_entries(max)) * size_of::<u32>() as u64
        } else {
            0
        };
        TableMemory { nat, ..self }
    }

    /// With named sets of these maxima (`true`: a port set).
    pub fn with_sets(self, sets: impl Iterator<Item = (usize, bool)>) -> TableMemory {
        let sets = sets
            .map(|(max, port)| max as u64 * SET_ELEMENT_BYTES + if port { 8192 } else { 0 })
            .sum();
        TableMemory { sets, ..self }
    }

    /// With a token-bucket table for `limiter` sources and live-flow
    /// counts for `counted` sources (0: none).
    pub fn with_limits(self, limiter: usize, counted: usize) -> TableMemory {
        let counts = if counted == 0 {
            0
        } else {
            hash_buckets(2 * counted) * (size_of::<(core::net::IpAddr, u32)>() as u64 + 1)
        };
        TableMemory {
            limits: limiter as u64 * crate::limits::LIMITER_SOURCE_BYTES + counts,
            ..self
        }
    }

    /// All tables together.
    pub fn total(&self) -> u64 {
        self.flows
            + self.flow_index
            + self.expectations
            + self.ftp_helper
            + self.defrag
            + self.nat
            + self.sets
            + self.limits
    }

    /// The total for people: `11.3 MiB`.
    pub fn total_human(&self) -> String {
        human(self.total())
    }

    /// `Ok` when the total is at most `budget` bytes; otherwise a message
    /// giving the total, each table and the budget.
    pub fn check(&self, budget: u64) -> Result<(), String> {
        if self.total() <= budget {
            return Ok(());
        }
        Err(format!(
            "the tables this config sizes would take {} (flows {}, flow index {}, \
             expectations {}, FTP helper {}, reassembly {}, NAT {}, sets {}, limits {}), over the \
             memory budget of {}: lower conntrack.max, the sets' max or limits.sources",
            human(self.total()),
            human(self.flows),
            human(self.flow_index),
            human(self.expectations),
            human(self.ftp_helper),
            human(self.defrag),
            human(self.nat),
            human(self.sets),
            human(self.limits),
            human(budget)
        ))
    }
}

/// Bytes in the largest binary unit that keeps the figure at least 1.
fn human(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, DEFAULT_CONFIG};
    use crate::conntrack::index::{FlowIndex, MAX_FLOWS};

    #[test]
    fn the_index_is_sized_as_the_table_sizes_it() {
        for max in [1, 7, 8, 9, 1000, 65_536, 65_537, 1 << 20, MAX_FLOWS / 2] {
            let index = FlowIndex::for_flows(max);
            assert_eq!(index_entries(max), 2 * index.capacity() as u64, "{max}");
        }
    }

    #[test]
    fn the_largest_config_fits_the_budget() {
        let text = DEFAULT_CONFIG
            .replacen("max: 65536,", &format!("max: {MAX_FLOWS},"), 1)
            .replacen("expectation_max: 1024,", "expectation_max: 65536,", 1)
            .replacen("max_control_flows: 4096)", "max_control_flows: 65536)", 1);
        let config = Config::parse(&text, "max.ron").expect("the largest sizes pass");
        let m = config.table_memory();
        assert!(m.total() <= MEMORY_BUDGET_BYTES, "{m:?}");
        assert_eq!(m.flow_index, 128 << 20);
        // Doubling the flows would not fit: the budget is not vacuous.
        assert!(m.total() + m.flows > MEMORY_BUDGET_BYTES, "{m:?}");
    }

    #[test]
    fn over_the_budget_names_the_size() {
        let config = Config::embedded_default().unwrap();
        let m = config.table_memory();
        assert!(m.check(MEMORY_BUDGET_BYTES).is_ok());
        let e = m.check(m.total() - 1).unwrap_err();
        assert!(e.contains(&human(m.total())), "{e}");
        assert!(e.contains("over the memory budget"), "{e}");
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(512), "512 bytes");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(4 << 30), "4.0 GiB");
    }
}
