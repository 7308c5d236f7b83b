//! Every numeric config field has a range: `tunfw --check` accepts both ends
//! and refuses the values just outside with exit code 2 and
//! `FILE:LINE:COL: message`, the position pointing at the value and the
//! message naming the range.

use std::process::Command;

const DEFAULT: &str = include_str!("../config/default.ron");

/// Where the value goes in an edit of `DEFAULT`.
const HOLE: &str = "@";

/// A field: its name, text of `DEFAULT` to replace (exactly once) and what
/// replaces it, with `HOLE` where the value goes, and its range.
struct Field {
    name: &'static str,
    anchor: &'static str,
    edit: &'static str,
    min: i128,
    max: i128,
    seconds: bool,
}

const fn field(
    name: &'static str,
    anchor: &'static str,
    edit: &'static str,
    min: i128,
    max: i128,
) -> Field {
    Field {
        name,
        anchor,
        edit,
        min,
        max,
        seconds: false,
    }
}

const fn timeout(name: &'static str, anchor: &'static str, edit: &'static str) -> Field {
    Field {
        seconds: true,
        ..field(name, anchor, edit, 1, 4_320_000)
    }
}

const LOGGING: &str = "    offload: true,\n";

const FIELDS: &[Field] = &[
    field("conntrack.max", "max: 65536,", "max: @,", 1, 16_777_215),
    field("queue_len", "queue_len: 2048,", "queue_len: @,", 16, 65_536),
    field(
        "conntrack.tcp_max_retrans",
        "tcp_max_retrans: 3,",
        "tcp_max_retrans: @,",
        0,
        255,
    ),
    field(
        "conntrack.expectation_max",
        "expectation_max: 1024,",
        "expectation_max: @,",
        1,
        65_536,
    ),
    timeout("tcp.syn_sent", "syn_sent: 120,", "syn_sent: @,"),
    timeout("tcp.syn_recv", "syn_recv: 60,", "syn_recv: @,"),
    timeout("tcp.established", "established: 432000,", "established: @,"),
    timeout("tcp.fin_wait", "fin_wait: 120,", "fin_wait: @,"),
    timeout("tcp.close_wait", "close_wait: 60,", "close_wait: @,"),
    timeout("tcp.last_ack", "last_ack: 30,", "last_ack: @,"),
    timeout("tcp.time_wait", "time_wait: 120,", "time_wait: @,"),
    timeout("tcp.close", " close: 10,", " close: @,"),
    timeout("tcp.syn_sent2", "syn_sent2: 120,", "syn_sent2: @,"),
    timeout("tcp.max_retrans", " max_retrans: 300,", " max_retrans: @,"),
    timeout(
        "tcp.unacknowledged",
        "unacknowledged: 300,",
        "unacknowledged: @,",
    ),
    timeout("udp.unreplied", "unreplied: 30,", "unreplied: @,"),
    timeout("udp.replied", " replied: 120)", " replied: @)"),
    timeout("icmp", "icmp: 30,", "icmp: @,"),
    timeout("generic", "generic: 600,", "generic: @,"),
    Field {
        seconds: true,
        ..field(
            "helpers.ftp.expectation_timeout",
            "expectation_timeout: 300,",
            "expectation_timeout: @,",
            1,
            86_400,
        )
    },
    field(
        "helpers.ftp.max_control_flows",
        "max_control_flows: 4096)",
        "max_control_flows: @)",
        1,
        65_536,
    ),
    field(
        "logging.per_second",
        LOGGING,
        "    offload: true,\n    logging: (per_second: @),\n",
        1,
        1_000_000,
    ),
    field(
        "logging.burst",
        LOGGING,
        "    offload: true,\n    logging: (burst: @),\n",
        0,
        1_000_000,
    ),
];

/// `DEFAULT` with `field` set to `value`, and the 1-based line and column of the value.
fn with_value(field: &Field, value: &str) -> (String, usize, usize) {
    assert_eq!(
        DEFAULT.matches(field.anchor).count(),
        1,
        "{}: the anchor must occur once",
        field.name
    );
    let edited = DEFAULT.replacen(field.anchor, field.edit, 1);
    let at = edited.find(HOLE).expect("the edit has a hole");
    let before = &edited[..at];
    let line = before.matches('\n').count() + 1;
    let col = at - before.rfind('\n').map_or(0, |nl| nl + 1) + 1;
    (edited.replacen(HOLE, value, 1), line, col)
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_dir(tag: &str) -> TempDir {
    let dir = std::env::temp_dir().join(format!("tunfw-bounds-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

/// `tunfw --check --config FILE` on `text`: exit code, stderr and the path.
fn check(dir: &TempDir, name: &str, text: &str) -> (i32, String, String) {
    let path = dir.0.join(format!("{name}.ron")).display().to_string();
    std::fs::write(&path, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tunfw"))
        .args(["--check", "--config", &path])
        .env("RUST_LOG", "off")
        .output()
        .expect("run tunfw");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        path,
    )
}

#[test]
fn values_just_outside_the_range_exit_2_at_the_value() {
    let dir = temp_dir("outside");
    for f in FIELDS {
        for value in [f.min - 1, f.max + 1] {
            let value = value.to_string();
            let (text, line, col) = with_value(f, &value);
            let (code, err, path) = check(&dir, &format!("{}-{value}", f.name), &text);
            assert_eq!(code, 2, "{} = {value}: {err}", f.name);
            // ron's span for a negative number starts after the sign.
            let cols = col..col + value.len();
            let pos = err
                .strip_prefix(&format!("{path}:{line}:"))
                .and_then(|rest| rest.split_once(": "))
                .and_then(|(c, _)| c.parse::<usize>().ok());
            assert!(
                pos.is_some_and(|c| cols.contains(&c)),
                "{} = {value}: expected {path}:{line}:{cols:?}: …, got {err}",
                f.name
            );
            let range = format!(
                "must be {} to {}{}",
                f.min,
                f.max,
                if f.seconds { " seconds" } else { "" }
            );
            assert!(
                err.contains(&format!("{value} is out of range: {range}")),
                "{} = {value}: expected \"{range}\", got {err}",
                f.name
            );
            assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        }
    }
}

#[test]
fn both_ends_of_every_range_pass_check() {
    let dir = temp_dir("inside");
    for f in FIELDS {
        for value in [f.min, f.max] {
            let (text, _, _) = with_value(f, &value.to_string());
            let (code, err, _) = check(&dir, &format!("{}-{value}", f.name), &text);
            assert_eq!(code, 0, "{} = {value}: {err}", f.name);
        }
    }
}

#[test]
fn the_burst_from_the_issue_and_non_integers_are_refused() {
    let dir = temp_dir("issue");
    let burst = &FIELDS[FIELDS.len() - 1];
    assert_eq!(burst.name, "logging.burst");
    for (value, message) in [
        (
            "20000000000000000",
            "20000000000000000 is out of range: must be 0 to 1000000",
        ),
        (
            "18446744073709551616",
            "is out of range: must be 0 to 1000000",
        ),
        ("1.5", "1.5 is not an integer: must be 0 to 1000000"),
        ("\"20\"", "an integer 0 to 1000000"),
    ] {
        let (text, line, col) = with_value(burst, value);
        let (code, err, path) = check(&dir, "burst", &text);
        assert_eq!(code, 2, "{value}: {err}");
        assert!(err.contains(message), "{value}: {err}");
        // A string's span starts inside its quotes.
        let at = format!("{path}:{line}:{col}: ");
        let inside = format!("{path}:{line}:{}: ", col + 1);
        assert!(
            err.starts_with(&at) || (value.starts_with('"') && err.starts_with(&inside)),
            "{value}: expected {at}…, got {err}"
        );
    }
}

// `--check` accepting a config means tunfw can start with it: the tables
// allocated at start for the largest helper limits are built here.
#[test]
fn the_largest_helper_tables_can_be_allocated() {
    let text = DEFAULT
        .replacen("expectation_max: 1024,", "expectation_max: 65536,", 1)
        .replacen("max_control_flows: 4096)", "max_control_flows: 65536)", 1);
    let cfg = tunfw::config::Config::parse(&text, "max.ron").expect("parses");
    assert_eq!(cfg.conntrack.expectation_max, 65_536);
    let fw = tunfw::filter::Firewall::new(&cfg);
    assert_eq!(fw.conntrack().expectations.len(), 0);
}
