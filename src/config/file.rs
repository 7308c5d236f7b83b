//! Reading a config or iptables file without trusting the path: the one
//! reader behind `--check`, start-up, reload and `import-iptables`.
//!
//! A reload reads inside the event loop, so nothing the path names may
//! block it or make it allocate without bound: [`read_text_file`] reads
//! only regular files of at most [`MAX_FILE_BYTES`], and never waits for a
//! writer (a FIFO) or reads forever (`/dev/zero`).

use std::fs::{FileType, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use super::error::ConfigError;

/// The largest config or iptables file tunfw reads: 1 MiB.
///
/// The embedded default config is 5 KB and an `iptables-save` of 5,000
/// rules about half a megabyte, so real files fit with room to spare. The
/// limit bounds what one file costs: the memory to hold and parse it, and,
/// because a reload reads and parses inside the event loop, how long
/// packets wait behind a reload: a 1 MiB config of 18,000 rules parses in
/// about 20 ms on the project's machine.
pub const MAX_FILE_BYTES: usize = 1 << 20;

fn whole_file(name: &str, message: String) -> ConfigError {
    ConfigError {
        file: name.to_string(),
        line: 1,
        col: 1,
        message,
    }
}

/// What a file that is not regular is, for the message.
fn kind(t: FileType) -> &'static str {
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "of an unknown kind"
    }
}

fn refuse_unless_regular(name: &str, t: FileType) -> Result<(), ConfigError> {
    if t.is_file() {
        Ok(())
    } else {
        Err(whole_file(
            name,
            format!("not a regular file ({})", kind(t)),
        ))
    }
}

/// Read the text of the file at `path`, named in errors as the path is
/// written. Guarantees:
///
/// - only a regular file is read; anything else (FIFO, device, directory,
///   socket) is refused with "not a regular file". The type that counts is
///   the opened file's (`fstat` on the descriptor, not the path), so a path
///   swapped between the check and the read cannot slip through. The path
///   is also checked before opening (following symlinks), so a device is
///   not even opened (opening some, a watchdog or a tape, acts);
/// - the open never blocks (`O_NONBLOCK`: a FIFO swapped in after that
///   first check is opened without waiting for a writer, then refused) and
///   never makes a terminal tunfw's controlling terminal (`O_NOCTTY`);
/// - at most [`MAX_FILE_BYTES`] are read: a larger file is refused, and so
///   is one that grows past the limit while it is read (at most one byte
///   more than the limit is ever read);
/// - the text is UTF-8, or the error points at the first invalid byte.
///
/// Every error is a [`ConfigError`] at line 1, column 1 (the invalid UTF-8
/// error at its byte).
pub fn read_text_file(path: &Path) -> Result<String, ConfigError> {
    let name = path.display().to_string();
    let cannot = |e: std::io::Error| whole_file(&name, format!("cannot read: {e}"));
    refuse_unless_regular(&name, std::fs::metadata(path).map_err(cannot)?.file_type())?;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(cannot)?;
    let meta = file.metadata().map_err(cannot)?;
    refuse_unless_regular(&name, meta.file_type())?;
    if meta.len() > MAX_FILE_BYTES as u64 {
        return Err(too_large(&name, &format!("{} bytes", meta.len())));
    }
    read_bounded(file, &name, meta.len() as usize)
}

/// Read text from `reader` (standard input for `import-iptables -`),
/// named `name` in errors, with the limits of [`read_text_file`]: at most
/// [`MAX_FILE_BYTES`] (one more byte is read to tell), UTF-8.
pub fn read_text(reader: impl Read, name: &str) -> Result<String, ConfigError> {
    read_bounded(reader, name, 0)
}

fn too_large(name: &str, what: &str) -> ConfigError {
    whole_file(
        name,
        format!("{what}: over the limit of 1 MiB ({MAX_FILE_BYTES} bytes) for a file tunfw reads"),
    )
}

fn read_bounded(reader: impl Read, name: &str, size_hint: usize) -> Result<String, ConfigError> {
    let mut bytes = Vec::with_capacity(size_hint.min(MAX_FILE_BYTES) + 1);
    reader
        .take(MAX_FILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| whole_file(name, format!("cannot read: {e}")))?;
    if bytes.len() > MAX_FILE_BYTES {
        return Err(too_large(
            name,
            &format!("more than {MAX_FILE_BYTES} bytes"),
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        // The prefix is valid UTF-8; lines and columns count characters, as ron's do.
        let valid = std::str::from_utf8(valid).unwrap_or_default();
        let line_start = valid.rfind('\n').map_or(0, |i| i + 1);
        ConfigError {
            file: name.to_string(),
            line: valid.matches('\n').count() + 1,
            col: valid[line_start..].chars().count() + 1,
            message: format!("not UTF-8 text (byte 0x{:02x})", e.as_bytes()[valid.len()]),
        }
    })
}
