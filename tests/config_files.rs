//! Files tunfw is told to read, from a hostile caller: `--check --config`,
//! start-up, reload and `import-iptables` on devices, FIFOs, directories
//! and files over the size limit finish at once with an error at
//! `FILE:1:1`; and `reload FILE` is applied once.
//!
//! Every command runs with a deadline: one that hangs fails its case
//! instead of hanging the test run.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tunfw::config::MAX_FILE_BYTES;
use tunfw::event_loop::ConfigSource;

const DEFAULT: &str = include_str!("../config/default.ron");

/// Longer than any of these commands takes; a command still running then hangs.
const DEADLINE: Duration = Duration::from_secs(10);

/// A temporary directory of this test process, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("tunfw-files-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).unwrap();
        path.display().to_string()
    }

    fn fifo(&self, name: &str) -> String {
        let path = self.0.join(name);
        let c = std::ffi::CString::new(path.display().to_string()).unwrap();
        // SAFETY: `c` is a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
        path.display().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Run tunfw with `args` (and `stdin` on its standard input), killing it at
/// the deadline: exit code, stdout, stderr, or a panic naming the hang.
fn tunfw(args: &[&str], stdin: Option<Vec<u8>>) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tunfw"))
        .args(args)
        .env("RUST_LOG", "off")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tunfw");
    // Written from a thread: tunfw may stop reading (and the pipe fill) at the limit.
    let writer = stdin.map(|bytes| {
        let mut pipe = child.stdin.take().unwrap();
        std::thread::spawn(move || {
            let _ = pipe.write_all(&bytes);
        })
    });
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let readers = (
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        }),
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        }),
    );
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("tunfw {args:?} still running after {DEADLINE:?}: it blocked");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    if let Some(w) = writer {
        let _ = w.join();
    }
    (
        status.code().unwrap_or(-1),
        readers.0.join().unwrap(),
        readers.1.join().unwrap(),
    )
}

/// What a case expects: exit 0 and `ok`, or exit 2 with an error at
/// `FILE:AT: ` containing the message.
enum Expect {
    Ok,
    Error { at: String, message: &'static str },
}

fn error(at: impl Into<String>, message: &'static str) -> Expect {
    Expect::Error {
        at: at.into(),
        message,
    }
}

#[test]
fn check_refuses_what_is_not_a_small_regular_file_at_once() {
    let dir = TempDir::new("check");
    // A file of exactly the limit passes (the default padded with a comment); one byte more does not.
    let pad = |n: usize| format!("{DEFAULT}//{}\n", "x".repeat(n - DEFAULT.len() - 3));
    let limit = dir.write("limit.ron", pad(MAX_FILE_BYTES));
    let over = dir.write("over.ron", pad(MAX_FILE_BYTES + 1));
    let fifo = dir.fifo("fifo.ron");
    let not_utf8 = dir.write(
        "latin1.ron",
        b"(\n  outbound: (policy: Drop),\n  // caf\xe9\n)",
    );
    let directory = dir.0.display().to_string();
    let cases: Vec<(&str, String, Expect)> = vec![
        (
            "/dev/zero",
            "/dev/zero".into(),
            error("1:1", "not a regular file (a character device)"),
        ),
        (
            "a FIFO without a writer",
            fifo,
            error("1:1", "not a regular file (a FIFO)"),
        ),
        (
            "a directory",
            directory,
            error("1:1", "not a regular file (a directory)"),
        ),
        (
            "limit + 1 bytes",
            over,
            error("1:1", "1048577 bytes: over the limit of 1 MiB"),
        ),
        ("exactly the limit", limit, Expect::Ok),
        (
            "invalid UTF-8",
            not_utf8,
            error("3:9", "not UTF-8 text (byte 0xe9)"),
        ),
        (
            "missing",
            "/nonexistent/tunfw.ron".into(),
            error("1:1", "cannot read: No such file"),
        ),
    ];
    for (what, path, expect) in cases {
        let started = Instant::now();
        let (code, out, err) = tunfw(&["--check", "--config", &path], None);
        let took = started.elapsed();
        match expect {
            Expect::Ok => assert_eq!((code, out.contains(": ok (")), (0, true), "{what}: {err}"),
            Expect::Error { at, message } => {
                assert_eq!(code, 2, "{what}: {err}");
                let prefix = format!("{path}:{at}: ");
                assert!(
                    err.starts_with(&prefix),
                    "{what}: expected {prefix}…, got {err}"
                );
                assert!(
                    err.contains(message),
                    "{what}: expected {message:?}, got {err}"
                );
                assert_eq!(err.trim_end().lines().count(), 1, "{what}: one line: {err}");
            }
        }
        assert!(took < Duration::from_secs(5), "{what}: took {took:?}");
    }
}

#[test]
fn start_up_refuses_them_before_opening_a_device() {
    let dir = TempDir::new("start");
    let fifo = dir.fifo("fifo.ron");
    for path in ["/dev/zero", fifo.as_str()] {
        let args = [
            "--config",
            path,
            "--lan",
            "tfwfile0",
            "--wan",
            "tfwfile1",
            "--control",
            "none",
        ];
        let (code, _, err) = tunfw(&args, None);
        assert_eq!(code, 2, "{path}: {err}");
        assert!(
            err.starts_with(&format!("{path}:1:1: not a regular file")),
            "{err}"
        );
    }
}

#[test]
fn import_iptables_reads_safely() {
    let dir = TempDir::new("import");
    let fifo = dir.fifo("rules.fifo");
    for (path, message) in [
        ("/dev/zero", "not a regular file (a character device)"),
        (fifo.as_str(), "not a regular file (a FIFO)"),
    ] {
        let (code, _, err) = tunfw(&["import-iptables", path], None);
        assert_eq!(code, 1, "{path}: {err}");
        let prefix = format!("tunfw import-iptables: {path}:1:1: {message}");
        assert!(
            err.starts_with(&prefix),
            "{path}: expected {prefix}, got {err}"
        );
    }
    // Standard input has the same limit.
    let rule = b"iptables -P INPUT DROP\niptables -A INPUT -p tcp --dport 22 -j ACCEPT\n";
    let mut big = rule.to_vec();
    big.resize(MAX_FILE_BYTES + 1, b'\n');
    let (code, _, err) = tunfw(&["import-iptables", "-"], Some(big));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("<stdin>:1:1: more than 1048576 bytes: over the limit"),
        "{err}"
    );
    let (code, out, err) = tunfw(&["import-iptables", "-"], Some(rule.to_vec()));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("dport: \"22\""), "{out}");
}

/// The reload path reads through the same function: a FIFO or a device
/// named to `ctl reload` is refused at once, without blocking the loop.
#[test]
fn a_reload_source_reads_safely() {
    let dir = TempDir::new("reload");
    let fifo = dir.fifo("fifo.ron");
    for path in ["/dev/zero", fifo.as_str(), "/dev/null"] {
        let started = Instant::now();
        let e = ConfigSource::File(PathBuf::from(path)).load().unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(1), "{path}");
        assert_eq!((e.line, e.col), (1, 1), "{e}");
        assert!(e.message.starts_with("not a regular file"), "{e}");
    }
    let good = dir.write("good.ron", DEFAULT);
    assert!(ConfigSource::File(PathBuf::from(&good)).load().is_ok());
}

/// `reload FILE` reads FILE this once; SIGHUP and a plain `reload` read the
/// config tunfw started with, whatever was reloaded in between.
#[test]
fn reload_file_is_not_sticky() {
    let startup = ConfigSource::File(PathBuf::from("/etc/tunfw.ron"));
    let other = PathBuf::from("/tmp/other.ron");
    assert_eq!(
        startup.for_reload(Some(other.clone())),
        ConfigSource::File(other)
    );
    assert_eq!(startup.for_reload(None), startup);
    assert_eq!(startup.for_reload(None).name(), "/etc/tunfw.ron");
    let embedded = ConfigSource::Embedded;
    assert_eq!(embedded.for_reload(None), ConfigSource::Embedded);
    assert_eq!(embedded.name(), tunfw::config::DEFAULT_CONFIG_NAME);
    assert!(
        matches!(embedded.for_reload(Some("/x.ron".into())), ConfigSource::File(p) if p == Path::new("/x.ron"))
    );
}
