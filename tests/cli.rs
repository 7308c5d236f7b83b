//! The tunfw binary's config handling: --check, and errors as FILE:LINE:COL
//! with exit code 2 before any device is touched.

use std::process::Command;

fn tunfw(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tunfw"))
        .args(args)
        .env("RUST_LOG", "off")
        .output()
        .expect("run tunfw");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A file in a temporary directory that is removed when the value is dropped.
struct TempFile {
    dir: std::path::PathBuf,
    path: String,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn write(name: &str, text: &str) -> TempFile {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("tunfw-cli-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    TempFile {
        path: path.display().to_string(),
        dir,
    }
}

const DEFAULT: &str = include_str!("../config/default.ron");

#[test]
fn check_accepts_the_embedded_default_and_the_file() {
    let (code, out, _) = tunfw(&["--check"]);
    assert_eq!(code, 0);
    assert!(out.contains("ok (7 outbound rules"), "{out}");
    let (code, _, _) = tunfw(&["--check", "--config", "config/default.ron"]);
    assert_eq!(code, 0);
}

#[test]
fn bad_configs_exit_2_with_file_line_col() {
    let cases = [
        (
            "unknown-field",
            DEFAULT.replacen("proto: Udp,", "proto: Udp, colour: 1,", 1),
            "Unexpected field named `colour`",
        ),
        (
            "bad-cidr",
            DEFAULT.replacen("proto: Udp,", "proto: Udp, src: \"10.1.2.300/8\",", 1),
            "bad CIDR",
        ),
        (
            "range-upside-down",
            DEFAULT.replacen("dport: \"21\"", "dport: \"90:21\"", 1),
            "upside down",
        ),
        (
            "empty-state",
            DEFAULT.replacen("state: [Established], action", "state: [], action", 1),
            "empty state set",
        ),
        (
            "ports-without-proto",
            DEFAULT.replacen(
                "(name: \"udp-out\", proto: Udp,",
                "(name: \"udp-out\", dport: 53,",
                1,
            ),
            "need proto",
        ),
        (
            "policy-reject",
            DEFAULT.replacen("policy: Drop", "policy: Reject", 1),
            "policy is Accept or Drop",
        ),
        ("syntax", "(outbound: (policy: Drop".to_string(), "Expected"),
    ];
    for (name, text, message) in cases {
        assert_ne!(text, DEFAULT, "{name}: the edit did not apply");
        // The error must point at the edited line (for the syntax case, line 1).
        let line = text
            .lines()
            .zip(DEFAULT.lines())
            .position(|(a, b)| a != b)
            .map_or(1, |i| i + 1);
        let file = write(&format!("{name}.ron"), &text);
        let path = file.path.clone();
        // --lan/--wan name devices that would be created if the config were accepted.
        let (code, _, err) = tunfw(&[
            "--config",
            &path,
            "--lan",
            "tfwcli0",
            "--wan",
            "tfwcli1",
            "--control",
            "none",
        ]);
        assert_eq!(code, 2, "{name}: {err}");
        let prefix = format!("{path}:{line}:");
        assert!(
            err.starts_with(&prefix),
            "{name}: expected {prefix}…, got {err}"
        );
        assert!(err.contains(message), "{name}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{name}: one line: {err}");
    }
}

#[test]
fn missing_device_names_is_a_usage_error() {
    let (code, _, err) = tunfw(&["--lan", "x"]);
    assert_eq!(code, 2);
    assert!(err.contains("--wan"), "{err}");
}

#[test]
fn version_man_page_and_completions() {
    let (code, out, _) = tunfw(&["--version"]);
    assert_eq!(code, 0);
    assert_eq!(out.trim(), format!("tunfw {}", env!("CARGO_PKG_VERSION")));
    let (code, man, _) = tunfw(&["man"]);
    assert_eq!(code, 0);
    assert!(man.contains(".TH tunfw 1"), "roff header");
    assert!(
        man.contains("import\\-iptables") && man.contains("\\-\\-lan"),
        "documents the CLI"
    );
    for shell in ["bash", "zsh", "fish"] {
        let (code, script, _) = tunfw(&["completions", shell]);
        assert_eq!(code, 0, "{shell}");
        assert!(
            script.contains("import-iptables") && script.contains("reload"),
            "{shell}"
        );
    }
}

#[test]
fn import_iptables_cli() {
    let (code, out, _) = tunfw(&["import-iptables", "netns-tests/seed.iptables"]);
    assert_eq!(code, 0);
    assert!(out.contains("helpers: (ftp: (ports: \"21\"))"));
    let bad = write(
        "bad.iptables",
        "iptables -P INPUT DROP\niptables -A INPUT -i eth0 -j ACCEPT\n",
    );
    let (code, _, err) = tunfw(&["import-iptables", &bad.path]);
    assert_eq!(code, 2);
    assert!(err.starts_with(&format!("{}:2: ", bad.path)), "{err}");
}

#[test]
fn import_iptables_cli_reads_ip6tables_with_dash_6() {
    let (code, out, err) = tunfw(&[
        "import-iptables",
        "netns-tests/seed.iptables",
        "-6",
        "netns-tests/seed.ip6tables",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("proto: Icmpv6") && out.contains("proto: Icmp,"),
        "{out}"
    );
    assert!(
        !out.contains("family:"),
        "the seeds' shared rules are written once: {out}"
    );
    // The ip6tables file alone, as --ipv6: its rules are IPv6's.
    let (code, out, err) = tunfw(&["import-iptables", "--ipv6", "netns-tests/seed.ip6tables"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("family: Ipv6") && !out.contains("family: Ipv4"),
        "{out}"
    );
    // The iptables seed alone: IPv4's.
    let (code, out, _) = tunfw(&["import-iptables", "netns-tests/seed.iptables"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("family: Ipv4") && !out.contains("family: Ipv6"),
        "{out}"
    );
    // An error names the file it is in.
    let v6 = write(
        "rules.v6",
        "*filter\n:INPUT DROP [0:0]\n-A INPUT -s 10.0.0.1 -j ACCEPT\nCOMMIT\n",
    );
    let (code, _, err) = tunfw(&[
        "import-iptables",
        "netns-tests/seed.iptables",
        "-6",
        &v6.path,
    ]);
    assert_eq!(code, 2);
    assert!(
        err.starts_with(&format!(
            "{}:3: -s 10.0.0.1: an IPv4 address in an ip6tables rule",
            v6.path
        )),
        "{err}"
    );
    // Standard input can be only one of them; one of them is needed.
    let (code, _, err) = tunfw(&["import-iptables", "-", "-6", "-"]);
    assert_eq!(code, 2);
    assert!(err.contains("standard input"), "{err}");
    let (code, _, err) = tunfw(&["import-iptables"]);
    assert_eq!(code, 2);
    assert!(err.contains("FILE"), "{err}");
}

#[test]
fn explain_prints_the_deciding_rule_with_exit_codes() {
    let cfg = write(
        "explain.ron",
        r#"(
    outbound: (policy: Drop, rules: [
        (name: "web-out", proto: Tcp, dport: "80", action: Accept),
    ]),
    inbound: (policy: Drop, rules: []),
)"#,
    );
    let (code, out, _) = tunfw(&[
        "explain",
        "--config",
        &cfg.path,
        "tcp 10.0.0.2:5555 -> 192.0.2.1:80 syn from lan",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("decision:  rule web-out (#1)"), "{out}");
    assert!(out.contains("verdict:   ACCEPT"), "{out}");
    // Words may come one by one too (`to` spares quoting `->`).
    let (code, out, _) = tunfw(&[
        "explain",
        "--config",
        &cfg.path,
        "tcp",
        "10.0.0.2:5555",
        "to",
        "192.0.2.1:81",
        "from",
        "lan",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("verdict:   DROP (drop reason policy_outbound)"),
        "{out}"
    );
    let (code, _, err) = tunfw(&[
        "explain",
        "--config",
        &cfg.path,
        "tcp 10.0.0.2:5555 -> 192.0.2.1:80",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("missing `from lan`"), "{err}");
    let bad = write(
        "bad.ron",
        "(outbound: (policy: Drop, rules: [(action: Maybe)]))",
    );
    let (code, _, err) = tunfw(&[
        "explain",
        "--config",
        &bad.path,
        "udp 10.0.0.2:1 -> 10.0.0.3:2 from lan",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("bad.ron:1:"), "{err}");
}
