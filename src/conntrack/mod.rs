//! Connection tracking: the flow table and the classification of every
//! packet as NEW, ESTABLISHED, RELATED or INVALID, as Linux conntrack and
//! `xt_state` see it.
//!
//! Read it in this order: [`tuple`](mod@tuple) (what identifies a flow in each
//! direction), [`flow`] (the record), [`table`] (storage, index, early drop),
//! [`expiry`], [`track`] (the classification itself, which calls one tracker
//! per protocol: [`tcp`], [`udp`], [`icmp`], [`generic`]), then
//! [`expect`] (flows a helper announced), [`seqadj`] (the sequence
//! numbers a NAT helper moved) and [`events`].

pub mod config;
pub mod events;
pub mod expect;
pub mod expiry;
pub mod flow;
pub mod generic;
pub mod icmp;
pub mod index;
pub mod seqadj;
pub mod snapshot;
pub mod sources;
pub mod state;
pub mod table;
pub mod tcp;
pub mod track;
pub mod translation;
pub mod tuple;
pub mod udp;

pub use config::{ConntrackConfig, FtpHelperConfig, HelperConfig};
pub use flow::{Flow, FlowId, HelperSlot, ProtoState};
pub use state::CtState;
pub use table::{ConfirmError, Conntrack, HelperState, TableStats};
pub use track::{FlowRef, Tracked};
pub use tuple::{Dir, Tuple};
