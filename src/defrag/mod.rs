//! IP reassembly before connection tracking, and refragmentation on
//! output: what Linux's `nf_defrag_ipv4` (`ip_defrag`) and
//! `nf_defrag_ipv6` (`nf_ct_frag6_gather`) do before conntrack sees a
//! packet, and what `ip_do_fragment` / `ip6_fragment` do when a
//! defragmented datagram leaves.
//!
//! Read it in this order: [`config`] (limits), [`outcome`] (what a push
//! returns), [`fragment`] (a fragment as the family readers see it),
//! [`v4`] and [`v6`] (reading fragments, the rules where the families
//! differ, the reassembled header), [`queue`] (one datagram's fragments
//! and the insertion rules), [`pool`] (the byte arena), [`index`] and
//! [`slots`] (finding and ageing queues), [`reassembler`] (the whole),
//! [`refragment`](mod@refragment) and [`stats`].
//!
//! # What each type guarantees
//!
//! [`Reassembler`] allocates everything in [`Reassembler::new`]: a pool of
//! 256-byte chunks for `high_thresh` bytes, as many queue records as that
//! memory could hold, their index and a 65,575-byte datagram buffer.
//! After that [`Reassembler::push`], [`Reassembler::tick`] and every other
//! method never allocate and never panic, and the packet path stays a
//! pure function of the bytes, the side, the injected time and the state.
//! Memory held (chunks at their full size, plus one queue record per
//! queue, as the kernel charges truesize and `qsize`) never exceeds
//! `high_thresh`. The work a fragment costs is bounded: a keyed-hash
//! lookup, a binary search and a shift over at most 64 runs, one copy of
//! its bytes; evictions and completions free whole queues, each queue
//! once.
//!
//! # Using it
//!
//! Give every packet read from a device to [`Reassembler::push`] before
//! parsing it (or every packet the parser calls a fragment), then:
//!
//! * [`Outcome::NotFragment`]: process the packet as it is.
//! * [`Outcome::Queued`]: nothing to forward; the fragment is held.
//! * [`Outcome::Dropped`]: drop the packet and count the reason.
//! * [`Outcome::Complete`]: process [`Reassembler::datagram_mut`] as the
//!   packet (it is a whole, valid datagram; change it in place). To
//!   forward it, ask [`Reassembled::forward_size`] with the outgoing
//!   MTU: `Ok(size)` means write pieces `0..fragment_count_with(dg, size,
//!   b)` of [`refragment_with`] with `b` = [`Reassembled::boundaries_for`]
//!   `(size)` (the fragments as they came, when they fit; IPv6: with
//!   [`Reassembled::ident`]);
//!   `Err(mtu)` means drop it and send fragmentation needed / packet too
//!   big. An ICMP error about the datagram quotes the first fragment:
//!   [`Reassembler::first_fragment`] writes it (or a prefix of it).
//!   The buffer is valid until the next push.
//!
//! Call [`Reassembler::tick`] when [`Reassembler::next_deadline`] is
//! due; [`Reassembler::stats`] for counters.
//!
//! # The rules, as the kernel has them
//!
//! * Queues are keyed IPv4 by (side, source, destination, identification,
//!   protocol), IPv6 by (side, source, destination, identification); the
//!   side stands for the kernel's incoming interface (`vif`, `iif`).
//! * A queue lives `timeout_v4` / `timeout_v6` from its first fragment,
//!   never extended; expiry sends no ICMP (Linux's defrag users skip the
//!   reassembly-timeout message).
//! * A fragment inside one run of queued bytes is a duplicate, dropped
//!   alone; any other overlap discards the datagram (RFC 5722,
//!   `inet_frag_queue_insert`).
//! * Where the families differ (see [`FragDrop`]): IPv4 rounds a
//!   fragment with MF set down to 8 bytes and discards the datagram on a
//!   last-fragment inconsistency or an empty fragment (`ip_frag_queue`);
//!   IPv6 discards it when such a fragment is not a multiple of 8, and
//!   drops inconsistent, empty and too-far fragments alone
//!   (`nf_ct_frag6_queue`).
//! * IPv6 first fragments must hold every header through the upper-layer
//!   header (RFC 8200 4.5); an atomic fragment is queued as any other
//!   (`nf_ct_frag6_gather`; not RFC 6946's whole packet).
//! * The reassembled IPv4 header is the first fragment's, total length
//!   set, ECN merged (RFC 3168 5.3), offset and MF cleared and DF set
//!   exactly when the largest fragment had DF, checksum valid. The IPv6
//!   one has the fragment header removed, the byte before it patched and
//!   the payload length set. [`Reassembled`] tells the largest fragment's
//!   size (to refragment to), the first fragment's length and the
//!   identification, and [`Reassembler::first_fragment`] rebuilds the
//!   first fragment for ICMP errors.
//! * At most [`DefragConfig::max_fragments`] (64, pf's limit) fragments a
//!   datagram; more discard it.
//!
//! # Memory: the high and the low threshold
//!
//! Linux (since 4.17) refuses every fragment while memory is above
//! `high_thresh` and no longer uses `low_thresh`: a sender of incomplete
//! datagrams can hold the cap for as long as it keeps sending, and every
//! fragmented datagram in that time is lost. Here, as pf does, a fragment
//! that would take memory above `high_thresh` first evicts the oldest
//! queues (either family, by age) until memory is at most `low_thresh`,
//! and is then accepted: a flood only shortens the time an incomplete
//! datagram can wait, and fragments sent close together still meet.
//! [`FragDrop::NoMemory`] is left for a fragment that does not fit even
//! with every other queue gone.
//!
//! # Left out
//!
//! `ipfrag_max_dist` (an IPv4 queue reinitialised when 64 other fragments
//! from its source came in between): the fragment cap, the fixed lifetime
//! and eviction bound what a stale queue costs.

pub mod config;
pub mod fragment;
pub mod index;
pub mod outcome;
pub mod pool;
pub mod queue;
pub mod reassembler;
pub mod refragment;
pub mod slots;
pub mod stats;
pub mod v4;
pub mod v6;

pub use config::DefragConfig;
pub use outcome::{Boundaries, Family, FragDrop, Outcome, Reassembled, IPV6_MIN_MTU};
pub use reassembler::Reassembler;
pub use refragment::{
    fragment_count, fragment_count_with, refragment, refragment_with, RefragError,
};
pub use stats::DefragStats;

#[cfg(test)]
mod tests;
