//! The `logging` section: the log lines' rate limit, INVALID logging and
//! the pcap capture.

use serde::Deserialize;

use super::bounds::{log_burst, log_per_second};

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

#[cfg(test)]
mod tests {
    use super::super::bounds::{LOG_BURST, LOG_PER_SECOND};
    use super::*;

    // Omitted fields take these defaults without passing the range checks.
    #[test]
    fn defaults_are_inside_their_bounds() {
        let l = LoggingSection::default();
        LOG_PER_SECOND.assert_default("per_second", l.per_second);
        LOG_BURST.assert_default("burst", l.burst);
    }
}
