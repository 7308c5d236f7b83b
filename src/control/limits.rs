//! The control server's bounds and deadlines (see the module documentation
//! of [`crate::control`] for what each protects against).

use std::time::Duration;

/// Default control socket path.
pub const DEFAULT_PATH: &str = "/run/tunfw.sock";
/// Longest request line, bytes.
pub const MAX_REQUEST: usize = 4096;
/// Clients connected at once.
pub const MAX_CLIENTS: usize = 32;
/// Events subscribers at once: the other slots stay for requests.
pub const MAX_SUBSCRIBERS: usize = 8;
/// Connections accepted per wakeup.
pub const ACCEPTS_PER_WAKEUP: usize = 64;
/// Output waiting for one events subscriber, bytes; events beyond it are
/// dropped and counted.
pub const MAX_BACKLOG: usize = 1 << 20;
/// A subscriber that dropped events gets them again (after the `LOST`
/// line) once its backlog is down to this.
pub const RESUME_BACKLOG: usize = MAX_BACKLOG / 2;
/// Answers (not yet written) beyond which listings are refused, bytes.
pub const ANSWER_BUDGET: usize = 64 << 20;
/// From the accept to a complete request line.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(2);
/// From the request to the last byte of its answer written; for a `flows`
/// listing, from its last step.
pub const ANSWER_DEADLINE: Duration = Duration::from_secs(10);
/// From a `flows` request to the last step of its listing (a million flows
/// take a few seconds; a client reading too slowly is closed).
pub const LISTING_DEADLINE: Duration = Duration::from_secs(60);
/// A subscriber with output waiting that takes none of it for this long is
/// closed.
pub const STALL_DEADLINE: Duration = Duration::from_secs(30);
/// Accept errors (EMFILE, ...) are logged at most this often.
pub(super) const ACCEPT_WARNING_INTERVAL: Duration = Duration::from_secs(10);
