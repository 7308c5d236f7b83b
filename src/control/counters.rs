//! The control server's counters, the `control.*` of `ctl stats` (their
//! own file: the report that prints them sits below the server).

/// What the server did with its clients: the `control.*` counters of
/// `ctl stats`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ControlCounters {
    /// Connections accepted.
    pub accepted: u64,
    /// Clients closed for not sending a complete request line within
    /// [`REQUEST_DEADLINE`](super::limits::REQUEST_DEADLINE).
    pub closed_idle: u64,
    /// Clients closed to make room for a new connection (the longest idle).
    pub evicted: u64,
    /// Events not queued for a subscriber that was behind, summed over the
    /// subscribers; each was told with a `LOST` line.
    pub events_lost: u64,
    /// Clients closed for not taking their output: an answer not read
    /// within [`ANSWER_DEADLINE`](super::limits::ANSWER_DEADLINE) (a
    /// listing within [`LISTING_DEADLINE`](super::limits::LISTING_DEADLINE)),
    /// or a subscriber that took nothing for
    /// [`STALL_DEADLINE`](super::limits::STALL_DEADLINE).
    pub closed_slow: u64,
    /// Connections or requests turned away at a bound: a new connection when
    /// no client could be evicted, an `events` request beyond
    /// [`MAX_SUBSCRIBERS`](super::limits::MAX_SUBSCRIBERS), a listing while
    /// more than [`ANSWER_BUDGET`](super::limits::ANSWER_BUDGET) bytes
    /// of answers wait.
    pub refused: u64,
    /// Clients connected now.
    pub clients: u64,
}
