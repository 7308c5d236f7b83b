//! tunfw: a userspace stateful firewall and router between two TUN devices,
//! with Linux conntrack semantics.
//!
//! The packet path ([`filter::Firewall::process`]) is a pure function of the
//! packet bytes, the side it came from, the injected time and the state: no
//! I/O, no clock, no allocation. The binary's event loop is a thin shell
//! around it.

pub mod answer;
pub mod config;
pub mod conntrack;
pub mod control;
pub mod device;
pub mod event_loop;
pub mod filter;
pub mod helpers;
pub mod import;
pub mod offload;
pub mod packet;
pub mod pcap;
pub mod privilege;
pub mod report;
pub mod rules;
pub mod slab;
pub mod stats;
pub mod time;
