//! tunfw: a userspace stateful firewall and router between two TUN devices,
//! with Linux conntrack semantics.
//!
//! The packet path ([`filter::Firewall::process`]) is a pure function of the
//! packet bytes, the side it came from, the injected time and the state: no
//! I/O, no clock, no allocation. The binary's event loop is a thin shell
//! around it.
//!
//! Modules in pipeline order, each importing only from those above it:
//! [`wire`] (facts about bytes), [`time`], [`side`], [`slab`],
//! [`ratelimit`], [`stats`], [`matchers`], [`packet`] (parsing),
//! [`segment`] (cutting super-packets), [`conntrack`], [`helpers`],
//! [`rules`], [`chain`], [`verdict`], [`answer`], [`config`], [`filter`]
//! (the pipeline), then the shell: [`report`], [`control`], [`pcap`],
//! [`device`], [`privilege`], [`import`], [`event_loop`].

#![deny(missing_docs)]

pub mod answer;
pub mod chain;
pub mod config;
pub mod conntrack;
pub mod control;
pub mod datagram;
pub mod defrag;
pub mod device;
pub mod event_loop;
pub mod explain;
pub mod filter;
pub mod helpers;
pub mod import;
pub mod limits;
pub mod matchers;
pub mod metrics;
pub mod metrics_http;
pub mod nat;
pub mod packet;
pub mod pcap;
pub mod privilege;
pub mod ratelimit;
pub mod report;
pub mod rules;
pub mod segment;
pub mod sets;
pub mod side;
pub mod slab;
pub mod state_file;
pub mod stats;
pub mod time;
pub mod verdict;
pub mod wire;
