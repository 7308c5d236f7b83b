//! The state file: the conntrack table's snapshot
//! ([`crate::conntrack::snapshot`]) on disk, for `--state-file`, the
//! config's `state_file` and `ctl save`.
//!
//! A save writes `FILE.tmp` (mode 0600), fsyncs it, renames it over `FILE`
//! and fsyncs the directory, so `FILE` is always a whole snapshot, the old
//! or the new, even after a crash mid-save. A restore reads only a regular
//! file (a FIFO or device is refused without blocking, as config files
//! are), and stamps both with the wall clock, so the time tunfw was
//! stopped is taken off every timeout.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::conntrack::snapshot::{RestoreError, RestoreSummary, SaveSummary, SnapshotState};
use crate::conntrack::Conntrack;
use crate::filter::Firewall;
use crate::time::Instant;

/// Milliseconds since 1970 by the system clock (0 if it is before).
pub fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `FILE.tmp`, next to `FILE`.
fn temporary(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}

/// Write `ct`'s live flows and expectations to `path`, atomically (see the
/// module documentation). On error `path` is unchanged (the temporary
/// file is removed).
pub fn save<S: SnapshotState>(
    ct: &Conntrack<S>,
    path: &Path,
    now: Instant,
) -> io::Result<SaveSummary> {
    let tmp = temporary(path);
    let written = (|| {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let summary = ct.save(&mut out, now, wall_ms())?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        if let Ok(d) = File::open(dir.unwrap_or(Path::new("."))) {
            let _ = d.sync_all();
        }
        Ok(summary)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Read the snapshot at `path` into `fw`, a firewall that has tracked
/// nothing yet ([`Firewall::restore`]: all or nothing, the table empty on
/// error). Only a regular file is read; the open never blocks.
pub fn restore(
    fw: &mut Firewall,
    path: &Path,
    now: Instant,
) -> Result<RestoreSummary, RestoreError> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    if !file.metadata()?.file_type().is_file() {
        return Err(RestoreError::Io(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        )));
    }
    fw.restore(file, now, wall_ms())
}
