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
//!
//! Ports keep iptables' limits: `--sport`/`--dport` take one port or one
//! range (the tcp and udp matches), a list needs `-m multiport` and holds
//! at most [`MULTIPORT_MAX_PORTS`] ports, a range counting as two (as
//! `xt_multiport` stores it). Address lists keep the config's bound,
//! [`MAX_CIDRS`].

use std::fmt::Write as _;

use crate::matchers::{PortSpec, MAX_CIDRS, MAX_PORT_ELEMENTS, MULTIPORT_MAX_PORTS};

/// An import error: line number (1-based) and what cannot be translated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportError {
    /// 1-based line number in the input.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// One translated rule: where it came from and its RON fields.
#[derive(Clone)]
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

impl Chain {
    /// Insert at `at` (0-based, clamped to the end), or append when `None`.
    fn add(&mut self, at: Option<usize>, rule: RuleOut) {
        match at {
            Some(at) => self.rules.insert(at.min(self.rules.len()), rule),
            None => self.rules.push(rule),
        }
    }
}

/// What the lines read so far add up to.
struct Import {
    outbound: Chain,
    inbound: Chain,
    forward_policy: Option<&'static str>,
    ftp_ports: Vec<String>,
    /// The table of an iptables-save section (`*raw`); `iptables` resets it.
    table: &'static str,
}

/// Translate `input` (named `file` in comments) into RON config text.
pub fn translate(input: &str, file: &str) -> Result<String, ImportError> {
    let mut import = Import {
        outbound: Chain::default(),
        inbound: Chain::default(),
        forward_policy: None,
        ftp_ports: Vec::new(),
        table: "filter",
    };
    for (n, raw) in input.lines().enumerate() {
        let line = n + 1;
        import
            .line(line, raw.trim())
            .map_err(|message| ImportError { line, message })?;
    }
    Ok(import.finish().render(file))
}

impl Import {
    /// One trimmed input line.
    fn line(&mut self, line: usize, text: &str) -> Result<(), String> {
        if text.is_empty() || text.starts_with('#') || text == "COMMIT" {
            return Ok(());
        }
        if let Some(t) = text.strip_prefix('*') {
            let t = t.trim();
            self.table = table_of(Some(t))
                .ok_or_else(|| format!("table {t:?} is not supported (filter, raw)"))?;
            return Ok(());
        }
        match text.strip_prefix(':') {
            Some(chain) => self.chain_line(chain),
            None => self.command(line, text),
        }
    }

    /// An iptables-save chain line, `:INPUT DROP [0:0]`, without its colon.
    fn chain_line(&mut self, chain: &str) -> Result<(), String> {
        let mut it = chain.split_whitespace();
        let (name, policy) = (it.next().unwrap_or(""), it.next().unwrap_or("-"));
        if self.table == "filter" && policy != "-" {
            let p = policy_of(policy)?;
            if let Some(slot) = self.policy_slot(name) {
                *slot = Some(p);
            }
        }
        Ok(())
    }

    /// Where the policy of `chain` goes, if it is one that maps.
    fn policy_slot(&mut self, chain: &str) -> Option<&mut Option<&'static str>> {
        match chain {
            "INPUT" => Some(&mut self.inbound.policy),
            "OUTPUT" => Some(&mut self.outbound.policy),
            "FORWARD" => Some(&mut self.forward_policy),
            _ => None,
        }
    }

    /// An iptables command (with or without `iptables`, `sudo`, `-t TABLE`).
    fn command(&mut self, line: usize, text: &str) -> Result<(), String> {
        let mut words: Vec<String> = text
            .split_whitespace()
            .map(|w| w.trim_matches(|c| c == '"' || c == '\'').to_string())
            .collect();
        let prefix = words
            .iter()
            .take_while(|w| matches!(w.as_str(), "iptables" | "sudo"))
            .count();
        if prefix > 0 {
            words.drain(..prefix);
            self.table = "filter";
        }
        let (table, i) = if words.first().map(String::as_str) == Some("-t") {
            let name = words.get(1).map(String::as_str);
            let t = table_of(name)
                .ok_or_else(|| format!("table {name:?} is not supported (filter, raw)"))?;
            (t, 2)
        } else {
            (self.table, 0)
        };
        let Some(op) = words.get(i).map(String::as_str) else {
            return Err("empty command".into());
        };
        let chain = words.get(i + 1).map_or("", String::as_str);
        match op {
            "-P" | "--policy" => self.set_policy(chain, words.get(i + 2)),
            "-A" | "--append" | "-I" | "--insert" => {
                if chain.is_empty() {
                    return Err(format!("{op} needs a chain name"));
                }
                let (at, rest) = position(op, words.get(i + 2..).unwrap_or_default());
                self.add_rule(table, chain, at, rest, line, text)
            }
            other => Err(format!("command {other:?} is not supported (-P, -A, -I)")),
        }
    }

    /// `-P CHAIN POLICY`.
    fn set_policy(&mut self, chain: &str, policy: Option<&String>) -> Result<(), String> {
        let p = policy_of(policy.map_or("", String::as_str))?;
        let slot = self
            .policy_slot(chain)
            .ok_or_else(|| format!("policy of chain {chain:?}: only INPUT, OUTPUT, FORWARD"))?;
        *slot = Some(p);
        Ok(())
    }

    /// `-A`/`-I`: a raw-table helper attachment, or a rule for the chains
    /// `chain` maps to.
    fn add_rule(
        &mut self,
        table: &str,
        chain: &str,
        at: Option<usize>,
        rest: &[String],
        line: usize,
        text: &str,
    ) -> Result<(), String> {
        if table == "raw" {
            if self.ftp_ports.len() == MAX_PORT_ELEMENTS {
                return Err(format!(
                    "raw table: more than {MAX_PORT_ELEMENTS} helper ports, the most a port spec takes"
                ));
            }
            self.ftp_ports.push(raw_helper(rest)?);
            return Ok(());
        }
        let rule = RuleOut {
            line,
            text: text.to_string(),
            fields: rule_fields(rest)?,
        };
        let targets: Vec<&mut Chain> = match chain {
            "INPUT" => vec![&mut self.inbound],
            "OUTPUT" => vec![&mut self.outbound],
            "FORWARD" => vec![&mut self.outbound, &mut self.inbound],
            c => return Err(format!("chain {c:?}: only INPUT, OUTPUT, FORWARD")),
        };
        for target in targets {
            target.add(at, rule.clone());
        }
        Ok(())
    }

    /// Chains without a policy of their own take FORWARD's.
    fn finish(mut self) -> Import {
        for chain in [&mut self.outbound, &mut self.inbound] {
            if chain.policy.is_none() {
                chain.policy = self.forward_policy;
            }
        }
        self
    }

    /// The RON config text.
    fn render(&self, file: &str) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "// Imported from {file} by tunfw import-iptables.");
        let _ = writeln!(
            out,
            "// OUTPUT -> outbound (LAN to WAN), INPUT -> inbound (WAN to LAN), FORWARD -> both."
        );
        out.push_str("(\n");
        if self.ftp_ports.is_empty() {
            out.push_str("    helpers: (ftp: None),\n");
        } else {
            let ports = self.ftp_ports.join(",");
            let _ = writeln!(out, "    helpers: (ftp: (ports: \"{ports}\")),");
        }
        render_chain(&mut out, "outbound", &self.outbound);
        render_chain(&mut out, "inbound", &self.inbound);
        out.push_str(")\n");
        out
    }
}

fn render_chain(out: &mut String, name: &str, chain: &Chain) {
    let _ = writeln!(out, "    {name}: (");
    let _ = writeln!(out, "        policy: {},", chain.policy.unwrap_or("Accept"));
    out.push_str("        rules: [\n");
    for r in &chain.rules {
        let _ = writeln!(out, "            // line {}: {}", r.line, r.text);
        let _ = writeln!(out, "            ({}),", r.fields.join(", "));
    }
    out.push_str("        ],\n    ),\n");
}

fn table_of(name: Option<&str>) -> Option<&'static str> {
    match name {
        Some("filter") => Some("filter"),
        Some("raw") => Some("raw"),
        _ => None,
    }
}

/// Where `-I CHAIN [N]` inserts (0-based; `None` for `-A`), and the words
/// after the position.
fn position<'a>(op: &str, rest: &'a [String]) -> (Option<usize>, &'a [String]) {
    if !(op.starts_with("-I") || op == "--insert") {
        return (None, rest);
    }
    match rest.first().and_then(|w| w.parse::<usize>().ok()) {
        Some(pos) => (Some(pos.saturating_sub(1)), &rest[1..]),
        None => (Some(0), rest),
    }
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
        (Some("tcp"), Some(port), Some("CT"), Some("ftp")) => {
            if port.contains(',') {
                return Err("raw table: --dport takes one port or one range \
                            (a line per helper port)"
                    .into());
            }
            PortSpec::parse(port).map_err(|e| format!("raw table: --dport: {e}"))?;
            Ok(port.to_string())
        }
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
    let mut multiport = false;
    let mut i = 0;
    while i < words.len() {
        let w = words[i].as_str();
        let val = words.get(i + 1).map(String::as_str);
        match w {
            "-j" | "--jump" => {
                action = Some(target(val.ok_or_else(|| format!("{w} needs a value"))?)?)
            }
            "-m" | "--match" if val == Some("multiport") => multiport = true,
            _ => option(w, val, multiport, &mut fields)?,
        }
        i += 2;
    }
    let Some(action) = action else {
        return Err("a rule needs -j ACCEPT, DROP or REJECT".into());
    };
    fields.push(format!("action: {action}"));
    Ok(fields)
}

/// One option of a rule other than `-j` and `-m multiport` (`multiport`:
/// whether that came earlier), with its value if any: the fields it adds,
/// or why it cannot be translated.
fn option(
    w: &str,
    val: Option<&str>,
    multiport: bool,
    fields: &mut Vec<String>,
) -> Result<(), String> {
    let need = || val.ok_or_else(|| format!("{w} needs a value"));
    match w {
        "!" => return Err("negation (!) cannot be translated".into()),
        "-p" | "--protocol" => fields.extend(proto(need()?)?),
        "-s" | "--source" | "--src" => fields.push(format!("src: {}", cidrs(w, need()?)?)),
        "-d" | "--destination" | "--dst" => fields.push(format!("dst: {}", cidrs(w, need()?)?)),
        "--sport" | "--source-port" => fields.push(ports("sport", w, need()?, None)?),
        "--dport" | "--destination-port" => fields.push(ports("dport", w, need()?, None)?),
        "--sports" | "--source-ports" => fields.push(ports("sport", w, need()?, Some(multiport))?),
        "--dports" | "--destination-ports" => {
            fields.push(ports("dport", w, need()?, Some(multiport))?)
        }
        "-m" | "--match" => match need()? {
            "state" | "conntrack" | "tcp" | "udp" | "icmp" => {}
            m => return Err(format!("match module {m:?} is not supported")),
        },
        "--state" | "--ctstate" => fields.push(states(need()?)?),
        "--icmp-type" => {
            let (t, c) = icmp_type(need()?)?;
            fields.push(format!("icmp_type: {t}"));
            fields.extend(c.map(|c| format!("icmp_code: {c}")));
        }
        "--reject-with" => reject_with(need()?)?,
        "-i" | "--in-interface" | "-o" | "--out-interface" => {
            return Err(format!(
                "{w}: tunfw rules have no interfaces (direction is the chain)"
            ))
        }
        other => return Err(format!("option {other:?} is not supported")),
    }
    Ok(())
}

/// A port option's RON field (`sport` or `dport`). `multiport` is `None`
/// for the tcp/udp match's `--sport`/`--dport` (one port or one range),
/// else whether `-m multiport` came before this `--sports`/`--dports` (at
/// most [`MULTIPORT_MAX_PORTS`], a range counting as two).
fn ports(field: &str, w: &str, v: &str, multiport: Option<bool>) -> Result<String, String> {
    match multiport {
        None if v.contains(',') => {
            return Err(format!(
                "{w} takes one port or one range, as iptables \
                 (a list needs -m multiport --{field}s)"
            ))
        }
        Some(false) => return Err(format!("{w} needs -m multiport before it (as iptables)")),
        Some(true) => {
            // Counted on the text, so that a list of any length gets this message.
            let slots: usize = v
                .split(',')
                .take(MULTIPORT_MAX_PORTS + 1)
                .map(|p| if p.contains(':') { 2 } else { 1 })
                .sum();
            if slots > MULTIPORT_MAX_PORTS {
                return Err(format!(
                    "{w}: more than {MULTIPORT_MAX_PORTS} ports (a range counts as two), \
                     the most iptables' multiport takes"
                ));
            }
        }
        None => {}
    }
    PortSpec::parse(v).map_err(|e| format!("{w}: {e}"))?;
    Ok(format!("{field}: \"{v}\""))
}

/// `-p`: the `proto` field, none for `all`.
fn proto(p: &str) -> Result<Option<String>, String> {
    Ok(Some(match p {
        "tcp" => "proto: Tcp".into(),
        "udp" => "proto: Udp".into(),
        "icmp" => "proto: Icmp".into(),
        "all" => return Ok(None),
        n => {
            let n: u8 = n
                .parse()
                .map_err(|_| format!("protocol {n:?} is not supported"))?;
            format!("proto: Number({n})")
        }
    }))
}

/// `-j`: the rule's action.
fn target(t: &str) -> Result<&'static str, String> {
    match t {
        "ACCEPT" => Ok("Accept"),
        "DROP" => Ok("Drop"),
        "REJECT" => Ok("Reject"),
        t => Err(format!(
            "target {t:?} is not supported (ACCEPT, DROP, REJECT)"
        )),
    }
}

/// `--reject-with`: only what tunfw's reject sends anyway.
fn reject_with(r: &str) -> Result<(), String> {
    match r {
        "tcp-reset" | "icmp-port-unreachable" => Ok(()),
        r => Err(format!(
            "--reject-with {r}: tunfw rejects with tcp-reset for TCP and \
             icmp-port-unreachable otherwise"
        )),
    }
}

/// `-s`/`-d` (option `w`): a RON list of at most [`MAX_CIDRS`] addresses.
fn cidrs(w: &str, v: &str) -> Result<String, String> {
    if v.split(',').nth(MAX_CIDRS).is_some() {
        return Err(format!(
            "{w}: more than {MAX_CIDRS} addresses, the most a tunfw address list takes"
        ));
    }
    let list: Vec<String> = v.split(',').map(|c| format!("\"{c}\"")).collect();
    Ok(format!("[{}]", list.join(", ")))
}
