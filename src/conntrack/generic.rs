//! Generic tracking for IP protocols other than TCP, UDP and ICMP: one flow per
//! address pair and protocol, one timeout (kernel `nf_conntrack_proto_generic`).

use core::time::Duration;

/// Default generic timeout (600 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
