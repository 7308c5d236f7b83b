//! Counters: why packets were dropped, why they were INVALID, and what the
//! table did. Every counter is a plain `u64` in a fixed-size array, so counting
//! never allocates.

use serde::Serialize;

macro_rules! reason_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every variant, in declaration order (the index of a variant in this
            /// slice is its counter slot).
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];
            /// Number of variants.
            pub const COUNT: usize = Self::ALL.len();

            /// The stable short name used in logs, the control socket and the summary.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// The counter slot of this variant.
            pub const fn index(self) -> usize {
                self as usize
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

reason_enum! {
    /// Why a packet is INVALID: either it could not be parsed, or connection
    /// tracking refused it (as Linux conntrack would, see the reference).
    InvalidReason {
        /// Shorter than an IPv4/IPv6 header, or shorter than its total length field.
        IpTruncated => "ip_truncated",
        /// IPv4 header length below 20 bytes or total length below the header.
        IpBadHeader => "ip_bad_header",
        /// IPv4 header checksum wrong.
        IpBadChecksum => "ip_bad_checksum",
        /// An IPv6 extension header runs past the end of the packet.
        Ipv6BadExtHeader => "ipv6_bad_ext_header",
        /// The IPv6 extension-header chain ends in No Next Header (59):
        /// there is no transport to track (Linux's `ipv6_skip_exthdr` fails).
        Ipv6NoNextHeader => "ipv6_no_next_header",
        /// The IPv6 Hop-by-Hop Options header holds an option Linux drops
        /// the packet for before netfilter (`ip6_parse_tlv`): padding over
        /// 7 bytes or not zero, more than 8 options, a bad Router Alert,
        /// IOAM, Jumbo or CALIPSO option, an unknown one whose action is
        /// not "skip".
        Ipv6BadHopByHop => "ipv6_bad_hop_by_hop",
        /// TCP header shorter than 20 bytes or than its data offset.
        TcpTruncated => "tcp_truncated",
        /// TCP checksum wrong.
        TcpBadChecksum => "tcp_bad_checksum",
        /// Illegal TCP flag combination (NULL, XMAS, SYN+FIN, bare FIN, ...).
        TcpBadFlags => "tcp_bad_flags",
        /// The first packet of a flow is not a SYN (or an ACK with loose pickup).
        TcpInvalidNew => "tcp_invalid_new",
        /// The TCP state table says this packet is invalid in the flow's state.
        TcpInvalidState => "tcp_invalid_state",
        /// Sequence number beyond what the receiver's window allows (check I).
        TcpSeqOverWindow => "tcp_seq_over_window",
        /// Acknowledges data that was never sent (check III).
        TcpAckUnsentData => "tcp_ack_unsent_data",
        /// RST whose sequence number is below what the peer already acknowledged.
        TcpInvalidRst => "tcp_invalid_rst",
        /// UDP header truncated.
        UdpTruncated => "udp_truncated",
        /// UDP length field larger than the packet or smaller than 8.
        UdpBadLength => "udp_bad_length",
        /// UDP checksum (non-zero) wrong.
        UdpBadChecksum => "udp_bad_checksum",
        /// ICMP header shorter than 8 bytes.
        IcmpTruncated => "icmp_truncated",
        /// ICMP checksum wrong.
        IcmpBadChecksum => "icmp_bad_checksum",
        /// An ICMP reply (echo reply, ...) with no request seen.
        IcmpUnsolicitedReply => "icmp_unsolicited_reply",
        /// An ICMP type that neither starts a flow nor is an error.
        IcmpUntrackedType => "icmp_untracked_type",
        /// ICMP error whose embedded header is truncated or unparsable.
        IcmpErrorBadInner => "icmp_error_bad_inner",
        /// ICMP error whose embedded packet matches no tracked flow.
        IcmpErrorNoFlow => "icmp_error_no_flow",
        /// ICMP error whose outer destination is not the embedded packet's source.
        IcmpErrorWrongDestination => "icmp_error_wrong_destination",
        /// A super-packet (TUN offloads) whose GSO type does not fit the
        /// packet (e.g. TCP segmentation of a UDP packet) or has no segment size.
        VnetBadGso => "vnet_bad_gso",
    }
}

reason_enum! {
    /// Why a packet was not forwarded.
    DropReason {
        /// Malformed: failed parsing or checksum (see [`InvalidReason`]); dropped before the rules.
        Malformed => "malformed",
        /// No outbound rule matched and the outbound policy is drop.
        PolicyOutbound => "policy_outbound",
        /// No inbound rule matched and the inbound policy is drop.
        PolicyInbound => "policy_inbound",
        /// A rule with target drop matched.
        RuleDrop => "rule_drop",
        /// A rule with target reject matched (an answer may have been sent).
        RuleReject => "rule_reject",
        /// TTL was 0 or 1 on arrival: a router may not forward it.
        TtlExceeded => "ttl_exceeded",
        /// IPv6 packet while IPv6 forwarding is off (`ipv6: Drop`).
        Ipv6Disabled => "ipv6_disabled",
        /// IPv6 packet from or to an address a router never forwards:
        /// unspecified, loopback, multicast or link-local.
        Ipv6Scope => "ipv6_scope",
        /// A fragment the reassembler refused (see `defrag.dropped.*` for
        /// why), or whose datagram could not be cut again.
        Fragment => "fragment",
        /// A reassembled datagram larger than the outgoing MTU allows to
        /// cut (IPv4 with DF, IPv6): answered with fragmentation needed or
        /// packet too big.
        TooBig => "too_big",
        /// New flow while the table was full and no entry could be evicted.
        TableFull => "table_full",
        /// New flow one of whose tuples was already tracked when it was
        /// confirmed (the kernel's `insert_failed`).
        Clash => "clash",
        /// A helper dropped it: no room for the expectation it announces
        /// (as Linux, the sender retransmits the command).
        Helper => "helper",
        /// New flow that a NAT rule translates, but no free port or ICMP
        /// identifier was found for it (`nat.exhausted`).
        NatExhausted => "nat_exhausted",
        /// An ICMP redirect about a translated flow (Linux drops those: the
        /// ends would talk around the translation).
        NatRedirect => "nat_redirect",
        /// New flow over its rule's per-source limit (`limit:
        /// per_source_states` or `per_source_rate`, see [`crate::limits`]).
        SourceLimit => "source_limit",
    }
}

/// Counters of the packet path. All fields only grow.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Packets handed to the packet path, by side they came from (0 = LAN, 1 = WAN).
    pub packets_in: [u64; 2],
    /// Bytes handed to the packet path, by side they came from.
    pub bytes_in: [u64; 2],
    /// Packets forwarded, by side they came from.
    pub packets_forwarded: [u64; 2],
    /// IPv6 packets handed to the packet path, by side (included in `packets_in`).
    pub ipv6_in: [u64; 2],
    /// IPv6 packets forwarded, by side they came from (included in `packets_forwarded`).
    pub ipv6_forwarded: [u64; 2],
    /// Super-packets (TUN offloads) handed to the packet path, by side.
    pub gso_in: [u64; 2],
    /// Packets with a partial or kernel-verified transport checksum (TUN
    /// offloads), by side: their transport checksum was not recomputed.
    pub checksum_offloaded: [u64; 2],
    /// Super-packets sent back to be cut into segments (a helper reads their flow).
    pub resegmented: u64,
    /// Fragments kept for reassembly, by side they came from.
    pub fragments_held: [u64; 2],
    /// Fragments written for reassembled datagrams, by side they came from.
    pub fragments_out: [u64; 2],
    /// Packets dropped, by reason.
    pub dropped: [u64; DropReason::COUNT],
    /// Packets classified INVALID, by reason (dropped or not, as the rules said).
    pub invalid: [u64; InvalidReason::COUNT],
    /// TCP RSTs generated by reject rules.
    pub sent_tcp_rst: u64,
    /// ICMP errors generated (reject, time exceeded).
    pub sent_icmp: u64,
    /// Generated answers suppressed by the rate limit.
    pub sent_rate_limited: u64,
}

impl Stats {
    /// Count one drop.
    pub fn count_drop(&mut self, reason: DropReason) {
        self.dropped[reason.index()] += 1;
    }

    /// Count one INVALID classification.
    pub fn count_invalid(&mut self, reason: InvalidReason) {
        self.invalid[reason.index()] += 1;
    }

    /// Total packets dropped for any reason.
    pub fn total_dropped(&self) -> u64 {
        self.dropped.iter().sum()
    }

    /// Total packets classified INVALID.
    pub fn total_invalid(&self) -> u64 {
        self.invalid.iter().sum()
    }
}

/// A name/value pair of a counter, for the control socket and the exit summary.
#[derive(Clone, Debug, Serialize)]
pub struct NamedCounter {
    /// Dotted counter name, e.g. `drop.policy_inbound`.
    pub name: String,
    /// Its value.
    pub value: u64,
}
