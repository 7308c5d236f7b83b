//! Files tunfw is told to read, from a hostile caller: `--check --config`,
//! start-up and `import-iptables` on devices, FIFOs, directories and files
//! over the size limit finish at once with an error at `FILE:1:1`; rule
//! names are unique; port and address lists are bounded; the iptables
//! import keeps iptables' port limits; and `reload FILE` is applied once.
//!
//! Every command runs with a deadline: one that hangs fails its case
//! instead of hanging the test run.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tunfw::config::{Config, MAX_FILE_BYTES};
use tunfw::event_loop::ConfigSource;
use tunfw::matchers::{MAX_CIDRS, MAX_PORT_ELEMENTS, MULTIPORT_MAX_PORTS};

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

/// The 1-based line and column of `needle` in `text` (after `skip` earlier
/// occurrences), plus `inside` (1 for a string: ron points inside the quote).
fn position(text: &str, needle: &str, skip: usize, inside: usize) -> String {
    let i = text
        .match_indices(needle)
        .nth(skip)
        .unwrap_or_else(|| panic!("{needle:?} in the text"))
        .0;
    let before = &text[..i];
    let line_start = before.rfind('\n').map_or(0, |n| n + 1);
    let col = before[line_start..].chars().count() + 1 + inside;
    format!("{}:{col}", before.matches('\n').count() + 1)
}

/// `DEFAULT` with `from` replaced by `to` once (which must change it).
fn edit(from: &str, to: &str) -> String {
    let text = DEFAULT.replacen(from, to, 1);
    assert_ne!(text, DEFAULT, "the edit of {from:?} did not apply");
    text
}

/// `n` port elements: single ports.
fn ports(n: usize) -> String {
    (1..=n).map(|p| p.to_string()).collect::<Vec<_>>().join(",")
}

/// `n` addresses as a RON list.
fn addresses(n: usize) -> String {
    let list: Vec<String> = (0..n)
        .map(|i| format!("\"10.0.{}.{}\"", i / 256, i % 256))
        .collect();
    format!("[{}]", list.join(", "))
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
fn rule_names_are_unique_and_lists_bounded() {
    let dir = TempDir::new("lists");
    let long_ports = edit(
        "dport: \"21\"",
        &format!("dport: \"{}\"", ports(MAX_PORT_ELEMENTS + 1)),
    );
    let long_helper = edit(
        "ports: \"21\"",
        &format!("ports: \"{}\"", ports(MAX_PORT_ELEMENTS + 1)),
    );
    let long_src = edit(
        "(name: \"udp-out\", proto: Udp,",
        &format!(
            "(name: \"udp-out\", proto: Udp, src: {},",
            addresses(MAX_CIDRS + 1)
        ),
    );
    let in_chain = edit("(name: \"tcp-out\"", "(name: \"udp-out\"");
    let across = edit("(name: \"tcp-in\"", "(name: \"udp-out\"");
    // inbound written before outbound: the error is at the name later in the file.
    let inbound_first = "(\n    inbound: (policy: Drop, rules: [(name: \"a\", action: Accept)]),\n    \
        outbound: (policy: Drop, rules: [(name: \"a\", action: Accept), (name: \"a\", action: Drop)]),\n)\n"
        .to_string();
    let cases: Vec<(&str, String, Expect)> = vec![
        (
            "a duplicate in one chain",
            in_chain.clone(),
            error(
                position(&in_chain, "\"udp-out\"", 1, 1),
                "duplicate rule name \"udp-out\": outbound rule 2 has the name of outbound rule 1",
            ),
        ),
        // Counters are carried per chain: one name in each chain is two rules
        // that cannot be confused (`ctl rules` and the log name the chain).
        ("one name in each chain", across.clone(), Expect::Ok),
        (
            "inbound written first, a duplicate in outbound",
            inbound_first.clone(),
            error(
                position(&inbound_first, "\"a\"", 2, 1),
                "duplicate rule name \"a\": outbound rule 2 has the name of outbound rule 1",
            ),
        ),
        (
            "65 port elements",
            long_ports.clone(),
            error(
                position(&long_ports, "1,2,3,", 0, 0),
                "more than 64 ports or ranges",
            ),
        ),
        (
            "65 FTP helper ports",
            long_helper.clone(),
            error(
                position(&long_helper, "1,2,3,", 0, 0),
                "more than 64 ports or ranges",
            ),
        ),
        (
            "257 addresses",
            long_src.clone(),
            error(
                position(&long_src, "\"10.0.1.0\"", 0, 1),
                "more than 256 addresses in one list",
            ),
        ),
        (
            "64 port elements",
            edit("dport: \"21\"", &format!("dport: \"{}\"", ports(64))),
            Expect::Ok,
        ),
        (
            "256 addresses",
            edit(
                "(name: \"udp-out\",",
                &format!("(name: \"udp-out\", src: {},", addresses(256)),
            ),
            Expect::Ok,
        ),
        (
            "unnamed rules",
            edit("(name: \"tcp-out\", ", "(").replacen("(name: \"udp-out\", ", "(", 1),
            Expect::Ok,
        ),
    ];
    for (i, (what, text, expect)) in cases.into_iter().enumerate() {
        let path = dir.write(&format!("{i}.ron"), &text);
        let (code, out, err) = tunfw(&["--check", "--config", &path], None);
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
            }
        }
    }
}

#[test]
fn import_iptables_reads_safely_and_keeps_iptables_port_limits() {
    let dir = TempDir::new("import");
    let fifo = dir.fifo("rules.fifo");
    let rule =
        |opts: &str| format!("iptables -P INPUT DROP\niptables -A INPUT -p tcp {opts} -j ACCEPT\n");
    let multiport = |n: usize| rule(&format!("-m multiport --dports {}", ports(n)));
    // Seven ranges and one port: 15 slots, a range counting as two.
    let ranges: Vec<String> = (0..7)
        .map(|i| format!("{}:{}", 100 * i + 1, 100 * i + 2))
        .collect();
    let ranged = |last: &str| {
        rule(&format!(
            "-m multiport --dports {},{last}",
            ranges.join(",")
        ))
    };
    let files: Vec<(&str, String, i32, &str)> = vec![
        (
            "/dev/zero",
            "/dev/zero".into(),
            1,
            "/dev/zero:1:1: not a regular file",
        ),
        (
            "a FIFO",
            fifo.clone(),
            1,
            ":1:1: not a regular file (a FIFO)",
        ),
        (
            "16 multiport ports",
            dir.write("16.ipt", multiport(16)),
            2,
            ":2: --dports: more than 15 ports",
        ),
        (
            "15 multiport ports",
            dir.write("15.ipt", multiport(MULTIPORT_MAX_PORTS)),
            0,
            "",
        ),
        (
            "7 ranges and a port",
            dir.write("r15.ipt", ranged("900")),
            0,
            "",
        ),
        (
            "7 ranges and 2 ports",
            dir.write("r16.ipt", ranged("900,901")),
            2,
            ":2: --dports: more than 15",
        ),
        (
            "--dport 1,2",
            dir.write("list.ipt", rule("--dport 1,2")),
            2,
            ":2: --dport takes one port or one range, as iptables",
        ),
        (
            "--dports without multiport",
            dir.write("nomp.ipt", rule("--dports 1,2")),
            2,
            ":2: --dports needs -m multiport",
        ),
        (
            "--dport 1024:",
            dir.write("range.ipt", rule("--dport 1024:")),
            0,
            "",
        ),
        (
            "-s with 257 addresses",
            dir.write(
                "src.ipt",
                rule(&format!(
                    "-s {}",
                    (0..257)
                        .map(|i| format!("10.0.{}.{}", i / 256, i % 256))
                        .collect::<Vec<_>>()
                        .join(",")
                )),
            ),
            2,
            ":2: -s: more than 256 addresses",
        ),
    ];
    for (what, path, want, message) in files {
        let (code, out, err) = tunfw(&["import-iptables", &path], None);
        assert_eq!(code, want, "{what}: {err}");
        assert!(
            err.contains(message),
            "{what}: expected {message:?}, got {err}"
        );
        if want == 0 {
            Config::parse(&out, "imported").unwrap_or_else(|e| panic!("{what}: {e}"));
        } else {
            assert!(
                err.starts_with(&path) || err.starts_with("tunfw import-iptables: "),
                "{err}"
            );
        }
    }
    // Standard input has the same limit.
    let mut big = multiport(15).into_bytes();
    big.resize(MAX_FILE_BYTES + 1, b'\n');
    let (code, _, err) = tunfw(&["import-iptables", "-"], Some(big));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("<stdin>:1:1: more than 1048576 bytes: over the limit"),
        "{err}"
    );
    let (code, out, err) = tunfw(&["import-iptables", "-"], Some(multiport(15).into_bytes()));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("dport: \"{}\"", ports(15))), "{out}");
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
