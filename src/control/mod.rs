//! The control socket: a Unix stream socket (mode 0600, owned by the user
//! tunfw runs as) that answers requests with JSON.
//!
//! Protocol: the client sends one line, a verb and `key=value` arguments:
//!
//! | request | answer |
//! |---|---|
//! | `stats` | all counters, one JSON object |
//! | `flows [proto=P] [state=S] [addr=A] [port=N]` | matching flows, a JSON array |
//! | `expectations` | pending expectations |
//! | `rules` | rules and policies with counters |
//! | `flush` | `{"removed": N}`: every flow and expectation removed |
//! | `kill FILTER` | `{"removed": N}`: matching flows removed (a filter is required) |
//! | `reload [FILE]` | `{"ok": ...}` or `{"error": "FILE:LINE:COL: ..."}` |
//! | `events` | one JSON line per flow event until the client hangs up |
//! | `metrics` | `{"metrics": TEXT}`: the Prometheus text (see [`crate::metrics`]) |
//! | `trace FILTER` | one JSON line per live packet matching FILTER (at most 100 a second, 4 tracers) until the client hangs up |
//!
//! A request line ends with a newline or with the end of the client's stream.
//!
//! The server is non-blocking and driven by the event loop; it never touches
//! the packet path.
//!
//! A client cannot hold the server: it is bounded in number, time and
//! memory, and a legitimate request is served even while others hold or
//! churn connections.
//!
//! - At most [`MAX_CLIENTS`] clients. A connection whose request has already
//!   arrived is answered at once; one that must wait takes a slot, and at the
//!   bound the client idle longest is evicted (after a last read: a request
//!   that has arrived is served, not evicted). Only clients still to send
//!   their request and subscribers that are behind can be evicted, never one
//!   being answered nor a subscriber keeping up; if none can, the new
//!   connection is refused with an error line.
//! - [`ACCEPTS_PER_WAKEUP`] accepts per wakeup, so a connect flood costs the
//!   packet path one bounded batch per turn.
//! - Deadlines: the request line within [`REQUEST_DEADLINE`] of the accept,
//!   the whole answer written within [`ANSWER_DEADLINE`] of the request, and
//!   a subscriber with output waiting takes some of it within
//!   [`STALL_DEADLINE`]. Clients past their deadline are closed.
//! - Memory: a request is at most [`MAX_REQUEST`] bytes, a subscriber's
//!   backlog at most [`MAX_BACKLOG`], at most [`MAX_SUBSCRIBERS`]
//!   subscribers, and listings (`flows`, `expectations`, `rules`) are
//!   refused while more than [`ANSWER_BUDGET`] bytes of answers wait.
//! - Time: a `flows` answer is written over many turns of the loop (see
//!   [`listing`]): one step formats at most [`LISTING_FLOWS`] flows, and
//!   runs only while its client has less than [`LISTING_ROOM`] bytes
//!   waiting; no request holds the packet path for long.
//! - A subscriber that falls behind is not disconnected: events that do not
//!   fit its backlog are dropped and counted, and once it is down to
//!   [`RESUME_BACKLOG`] it gets `{"event":"LOST","lost":N}` (see
//!   [`lost_line`]) and then new events again.

mod client;
pub mod counters;
pub mod dispatch;
pub mod limits;
pub mod listing;
pub mod query;
pub mod request;
pub mod server;

pub use client::lost_line;
pub use dispatch::{dispatch, Dispatch};
pub use limits::*;
pub use listing::{FlowListing, LISTING_FLOWS, LISTING_ROOM, LISTING_SLOTS};
pub use query::{connect, query, turned_away, ALL_BUSY, CLIENT_RETRIES, EVICTED};
pub use request::{error_answer, request_line, FlowFilter, Request};
pub use server::{Answer, ControlCounters, ControlServer};
