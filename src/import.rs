//! `tunfw import-iptables`: iptables commands or `iptables-save` output to a
//! tunfw config, mapping OUTPUT to outbound and INPUT to inbound (as the
//! default config does) and FORWARD to both.
//!
//! Understood: `-P CHAIN POLICY` and `:CHAIN POLICY [..]`; `-A`/`-I` on
//! INPUT, OUTPUT, FORWARD with `-p`, `-s`, `-d`, `--sport`, `--dport`
//! (ranges, `-m multiport --sports/--dports`), `-m state --state`,
//! `-m conntrack --ctstate`, `--icmp-type`, `-j ACCEPT|DROP|REJECT`
//! (`--reject-with` tcp-reset or icmp-port-unreachable); and in the raw table
//! `-p tcp --dport N -j CT --helper ftp`. Anything else (negation,
//! interfaces, other targets or matches) is an error that names the line:
//! a config that silently means something else is worse than none.

use std::fmt::Write as _;

/// An import error: line number (1-based) and what cannot be translated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportError {
    /// 1-based line number in the input.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

#[derive(Default)]
struct RuleOut {
    line: usize,
    text: String,
    fields: Vec<String>,
}

#[derive(Default)]
struct Chain {
    policy: Option<&'static str>,
    rules: Vec<RuleOut>,
}

/// Translate `input` (named `file` in comments) into RON config text.
pub fn translate(input: &str, file: &str) -> Result<String, ImportError> {
    let mut outbound = Chain::default();
    let mut inbound = Chain::default();
    let mut forward_policy: Option<&'static str> = None;
    let mut ftp_ports: Vec<String> = Vec::new();
    let mut table = "filter";
    for (n, raw) in input.lines().enumerate() {
        let line = n + 1;
        let err = |m: String| ImportError { line, message: m };
        let text = raw.trim();
        if text.is_empty() || text.starts_with('#') || text == "COMMIT" {
            continue;
        }
        if let Some(t) = text.strip_prefix('*') {
            table = match t.trim() {
                "filter" => "filter",
                "raw" => "raw",
                other => {
                    return Err(err(format!(
                        "table {other:?} is not supported (filter, raw)"
                    )))
                }
            };
            continue;
        }
        let mut words: Vec<String> = text
            .split_whitespace()
            .map(|w| w.trim_matches(|c| c == '"' || c == '\'').to_string())
            .collect();
        if let Some(chain) = text.strip_prefix(':') {
            // iptables-save chain line ":INPUT DROP [0:0]".
            let mut it = chain.split_whitespace();
            let (name, policy) = (it.next().unwrap_or(""), it.next().unwrap_or("-"));
            if table == "filter" && policy != "-" {
                let p = policy_of(policy).map_err(err)?;
                match name {
                    "INPUT" => inbound.policy = Some(p),
                    "OUTPUT" => outbound.policy = Some(p),
                    "FORWARD" => forward_policy = Some(p),
                    _ => {}
                }
            }
            continue;
        }
        if matches!(
            words.first().map(String::as_str),
            Some("iptables") | Some("sudo")
        ) {
            while matches!(
                words.first().map(String::as_str),
                Some("iptables") | Some("sudo")
            ) {
                words.remove(0);
            }
            table = "filter";
        }
        let mut i = 0;
        let mut this_table = table;
        if words.first().map(String::as_str) == Some("-t") {
            this_table = match words.get(1).map(String::as_str) {
                Some("filter") => "filter",
                Some("raw") => "raw",
                other => {
                    return Err(err(format!(
                        "table {other:?} is not supported (filter, raw)"
                    )))
                }
            };
            i = 2;
        }
        let Some(op) = words.get(i).cloned() else {
            return Err(err("empty command".into()));
        };
        let chain_name = words.get(i + 1).cloned().unwrap_or_default();
        match op.as_str() {
            "-P" | "--policy" => {
                let policy =
                    policy_of(words.get(i + 2).map(String::as_str).unwrap_or("")).map_err(err)?;
                match chain_name.as_str() {
                    "INPUT" => inbound.policy = Some(policy),
                    "OUTPUT" => outbound.policy = Some(policy),
                    "FORWARD" => forward_policy = Some(policy),
                    c => {
                        return Err(err(format!(
                            "policy of chain {c:?}: only INPUT, OUTPUT, FORWARD"
                        )))
                    }
                }
            }
            "-A" | "--append" | "-I" | "--insert" => {
                let mut rest = &words[i + 2..];
                let mut insert_at = None;
                if op.starts_with("-I") || op == "--insert" {
                    if let Some(pos) = rest.first().and_then(|w| w.parse::<usize>().ok()) {
                        insert_at = Some(pos.saturating_sub(1));
                        rest = &rest[1..];
                    } else {
                        insert_at = Some(0);
                    }
                }
                if this_table == "raw" {
                    ftp_ports.push(raw_helper(rest).map_err(err)?);
                    continue;
                }
                let rule = RuleOut {
                    line,
                    text: text.to_string(),
                    fields: rule_fields(rest).map_err(err)?,
                };
                let targets: Vec<&mut Chain> = match chain_name.as_str() {
                    "INPUT" => vec![&mut inbound],
                    "OUTPUT" => vec![&mut outbound],
                    "FORWARD" => vec![&mut outbound, &mut inbound],
                    c => return Err(err(format!("chain {c:?}: only INPUT, OUTPUT, FORWARD"))),
                };
                for chain in targets {
                    let r = RuleOut {
                        line: rule.line,
                        text: rule.text.clone(),
                        fields: rule.fields.clone(),
                    };
                    match insert_at {
                        Some(at) => chain.rules.insert(at.min(chain.rules.len()), r),
                        None => chain.rules.push(r),
                    }
                }
            }
            other => {
                return Err(err(format!(
                    "command {other:?} is not supported (-P, -A, -I)"
                )))
            }
        }
    }
    for chain in [&mut outbound, &mut inbound] {
        if chain.policy.is_none() {
            chain.policy = forward_policy;
        }
    }
    let mut out = String::new();
    let _ = writeln!(out, "// Imported from {file} by tunfw import-iptables.");
    let _ = writeln!(
        out,
        "// OUTPUT -> outbound (LAN to WAN), INPUT -> inbound (WAN to LAN), FORWARD -> both."
    );
    out.push_str("(\n");
    if ftp_ports.is_empty() {
        out.push_str("    helpers: (ftp: None),\n");
    } else {
        let _ = writeln!(
            out,
            "    helpers: (ftp: (ports: \"{}\")),",
            ftp_ports.join(",")
        );
    }
    for (name, chain) in [("outbound", &outbound), ("inbound", &inbound)] {
        let _ = writeln!(out, "    {name}: (");
        let _ = writeln!(out, "        policy: {},", chain.policy.unwrap_or("Accept"));
        out.push_str("        rules: [\n");
        for r in &chain.rules {
            let _ = writeln!(out, "            // line {}: {}", r.line, r.text);
            let _ = writeln!(out, "            ({}),", r.fields.join(", "));
        }
        out.push_str("        ],\n    ),\n");
    }
    out.push_str(")\n");
    Ok(out)
}

fn policy_of(word: &str) -> Result<&'static str, String> {
    match word {
        "ACCEPT" => Ok("Accept"),
        "DROP" => Ok("Drop"),
        other => Err(format!("policy {other:?}: only ACCEPT or DROP")),
    }
}

fn raw_helper(words: &[String]) -> Result<String, String> {
    let mut proto = None;
    let mut dport = None;
    let mut target = None;
    let mut helper = None;
    let mut i = 0;
    while i < words.len() {
        let w = words[i].as_str();
        let val = words.get(i + 1).map(String::as_str);
        match w {
            "-p" | "--protocol" => proto = val,
            "--dport" | "--destination-port" => dport = val,
            "-m" => {}
            "-j" | "--jump" => target = val,
            "--helper" => helper = val,
            _ => {
                return Err(format!(
                    "raw table: {w:?} is not supported (only -p tcp --dport N -j CT --helper ftp)"
                ))
            }
        }
        i += 2;
    }
    match (proto, dport, target, helper) {
        (Some("tcp"), Some(port), Some("CT"), Some("ftp")) => Ok(port.to_string()),
        _ => Err("raw table: only -p tcp --dport N -j CT --helper ftp".into()),
    }
}

fn states(list: &str) -> Result<String, String> {
    let mut out = Vec::new();
    for s in list.split(',') {
        out.push(match s {
            "NEW" => "New",
            "ESTABLISHED" => "Established",
            "RELATED" => "Related",
            "INVALID" => "Invalid",
            other => return Err(format!("state {other:?} is not supported")),
        });
    }
    Ok(format!("state: [{}]", out.join(", ")))
}

fn icmp_type(v: &str) -> Result<(u8, Option<u8>), String> {
    let named = match v {
        "echo-reply" | "pong" => Some((0, None)),
        "destination-unreachable" => Some((3, None)),
        "port-unreachable" => Some((3, Some(3))),
        "host-unreachable" => Some((3, Some(1))),
        "network-unreachable" => Some((3, Some(0))),
        "fragmentation-needed" => Some((3, Some(4))),
        "source-quench" => Some((4, None)),
        "redirect" => Some((5, None)),
        "echo-request" | "ping" => Some((8, None)),
        "time-exceeded" | "ttl-exceeded" => Some((11, None)),
        "parameter-problem" => Some((12, None)),
        "timestamp-request" => Some((13, None)),
        "timestamp-reply" => Some((14, None)),
        _ => None,
    };
    if let Some(n) = named {
        return Ok(n);
    }
    let (t, c) = match v.split_once('/') {
        Some((t, c)) => (t, Some(c)),
        None => (v, None),
    };
    let t = t
        .parse()
        .map_err(|_| format!("icmp type {v:?} is not supported"))?;
    let c = c
        .map(|c| {
            c.parse()
                .map_err(|_| format!("icmp code in {v:?} is not a number"))
        })
        .transpose()?;
    Ok((t, c))
}

fn rule_fields(words: &[String]) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut action = None;
    let mut i = 0;
    while i < words.len() {
        let w = words[i].as_str();
        let val = words.get(i + 1).map(String::as_str);
        let need = || val.ok_or_else(|| format!("{w} needs a value"));
        match w {
            "!" => return Err("negation (!) cannot be translated".into()),
            "-p" | "--protocol" => {
                let p = need()?;
                match p {
                    "tcp" => fields.push("proto: Tcp".into()),
                    "udp" => fields.push("proto: Udp".into()),
                    "icmp" => fields.push("proto: Icmp".into()),
                    "all" => {}
                    n => {
                        let n: u8 = n.parse().map_err(|_| format!("protocol {n:?} is not supported"))?;
                        fields.push(format!("proto: Number({n})"));
                    }
                }
            }
            "-s" | "--source" | "--src" => fields.push(format!("src: {}", cidrs(need()?))),
            "-d" | "--destination" | "--dst" => fields.push(format!("dst: {}", cidrs(need()?))),
            "--sport" | "--source-port" | "--sports" | "--source-ports" => {
                fields.push(format!("sport: \"{}\"", need()?))
            }
            "--dport" | "--destination-port" | "--dports" | "--destination-ports" => {
                fields.push(format!("dport: \"{}\"", need()?))
            }
            "-m" | "--match" => match need()? {
                "state" | "conntrack" | "tcp" | "udp" | "icmp" | "multiport" => {}
                m => return Err(format!("match module {m:?} is not supported")),
            },
            "--state" | "--ctstate" => fields.push(states(need()?)?),
            "--icmp-type" => {
                let (t, c) = icmp_type(need()?)?;
                fields.push(format!("icmp_type: {t}"));
                if let Some(c) = c {
                    fields.push(format!("icmp_code: {c}"));
                }
            }
            "-j" | "--jump" => {
                action = Some(match need()? {
                    "ACCEPT" => "Accept",
                    "DROP" => "Drop",
                    "REJECT" => "Reject",
                    t => return Err(format!("target {t:?} is not supported (ACCEPT, DROP, REJECT)")),
                })
            }
            "--reject-with" => match need()? {
                "tcp-reset" | "icmp-port-unreachable" => {}
                r => return Err(format!("--reject-with {r}: tunfw rejects with tcp-reset for TCP and icmp-port-unreachable otherwise")),
            },
            "-i" | "--in-interface" | "-o" | "--out-interface" => {
                return Err(format!("{w}: tunfw rules have no interfaces (direction is the chain)"))
            }
            other => return Err(format!("option {other:?} is not supported")),
        }
        i += 2;
    }
    let Some(action) = action else {
        return Err("a rule needs -j ACCEPT, DROP or REJECT".into());
    };
    fields.push(format!("action: {action}"));
    Ok(fields)
}

fn cidrs(v: &str) -> String {
    let list: Vec<String> = v.split(',').map(|c| format!("\"{c}\"")).collect();
    format!("[{}]", list.join(", "))
}
