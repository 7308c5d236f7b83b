//! `tunfw import-iptables`: iptables and ip6tables commands, or
//! `iptables-save` and `ip6tables-save` output, to one tunfw config,
//! mapping OUTPUT to outbound and INPUT to inbound (as the default config
//! does) and FORWARD to both.
//!
//! Understood: `-P CHAIN POLICY` and `:CHAIN POLICY [..]`; `-A`/`-I` on
//! INPUT, OUTPUT, FORWARD with `-p`, `-s`, `-d`, `--sport`, `--dport`
//! (ranges, `-m multiport --sports/--dports`), `-m state --state`,
//! `-m conntrack --ctstate` (NEW, ESTABLISHED, RELATED, INVALID,
//! UNTRACKED), `--icmp-type` (iptables) and `--icmpv6-type` (ip6tables:
//! the numbers `N` and `N/CODE` that `ip6tables-save` prints, and the names
//! `ip6tables -p icmpv6 -h` lists, such as `echo-request`, `packet-too-big`,
//! `neighbour-solicitation` or `port-unreachable`), `-j ACCEPT|DROP|REJECT`
//! (`--reject-with` `tcp-reset` on a `-p tcp` rule, `icmp-port-unreachable`
//! for iptables, `icmp6-port-unreachable` for ip6tables); and in the raw
//! table `-p tcp --dport N -j CT --helper ftp`. Anything else (negation,
//! interfaces, other targets or matches) is an error that names the file and
//! line: a config that silently means something else is worse than none.
//!
//! # Which lines are IPv6
//!
//! Each input has a family, IPv4 unless it was given as ip6tables input
//! (`tunfw import-iptables -6 FILE`, [`Input::family`]); a line that starts
//! with `ip6tables` (after an optional `sudo`) is IPv6 and one that starts
//! with `iptables` IPv4 whatever its input, and the other lines (the
//! `iptables-save` form, or commands without the program's name) take their
//! input's family. So `tunfw import-iptables rules.v4 -6 rules.v6` reads the
//! two save files, and one file of commands may mix `iptables` and
//! `ip6tables` lines. Nothing is guessed from a rule's contents: an IPv6
//! address in an IPv4 rule (or the reverse), `--icmpv6-type` in iptables or
//! `--icmp-type` in ip6tables is an error, as iptables and ip6tables refuse
//! them. `-p icmpv6` (`ipv6-icmp`, `58`) is ICMPv6 in ip6tables; in iptables
//! it is protocol 58 over IPv4, kept as `proto: Number(58)`, and ip6tables'
//! `-p icmp` likewise is `proto: Number(1)` over IPv6.
//!
//! # Families in one ruleset
//!
//! A tunfw rule without addresses matches both families, an iptables rule
//! only IPv4 and an ip6tables rule only IPv6: so an imported rule whose
//! addresses or protocol (ICMP, ICMPv6) do not already tie it to its family
//! gets `family: Ipv4` or `family: Ipv6` (written last, after the action).
//! Then each chain's IPv4 and IPv6 rules are laid into one list in which
//! each family meets its own rules in its own order (a rule of one family
//! is invisible to the other's packets, so interleaving them changes no
//! first match). A pair of rules that are identical except for their family,
//! at places the two orders share, is written once, without a family: the
//! pairs are a longest common subsequence of the two lists (rules at the
//! same position only, when (IPv4 rules + 1) × (IPv6 rules + 1) of a chain
//! exceeds [`LCS_MAX_CELLS`]). Rules are compared in canonical form (ports
//! as `1024:`, states in tunfw's order), so `iptables-save`'s `1024:65535`
//! and `RELATED,ESTABLISHED` pair with a command's `1024:` and
//! `ESTABLISHED,RELATED`. ICMP and ICMPv6 rules are never identical.
//!
//! tunfw has one policy per chain: it is the iptables policy, and when the
//! ip6tables policy of that chain differs, a last rule
//! `(action: POLICY, family: Ipv6)` gives IPv6 packets their own. A chain
//! without `-P` has policy ACCEPT, as iptables' built-in chains start. An
//! import with lines of one family only says nothing of the other: that
//! family meets the chains' policies alone (the rendered config says so).
//! The FTP helper serves both families, so when both are imported their
//! raw-table helper ports must be the same (else an error at the helper
//! line that only one family has).
//!
//! Ports keep iptables' limits: `--sport`/`--dport` take one port or one
//! range (the tcp and udp matches), a list needs `-m multiport` and holds
//! at most [`MULTIPORT_MAX_PORTS`] ports, a range counting as two (as
//! `xt_multiport` stores it). Address lists keep the config's bound,
//! [`MAX_CIDRS`].

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::matchers::{Cidr, Family, PortSpec, MAX_CIDRS, MAX_PORT_ELEMENTS, MULTIPORT_MAX_PORTS};

/// An import error: the input and line, and what cannot be translated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportError {
    /// The name of the input the line is in (as given in [`Input::name`]).
    pub file: String,
    /// 1-based line number in the input.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// One input text to translate.
#[derive(Clone, Copy, Debug)]
pub struct Input<'a> {
    /// The text: iptables or ip6tables commands, or `iptables-save` or
    /// `ip6tables-save` output.
    pub text: &'a str,
    /// Its name, for comments and errors.
    pub name: &'a str,
    /// The family of its lines that do not start with `iptables` or
    /// `ip6tables` (the save form): IPv4 for iptables input, IPv6 for
    /// ip6tables input.
    pub family: Family,
}

/// The largest table, (IPv4 rules + 1) × (IPv6 rules + 1) of one chain,
/// for which the merge pairs rules as a longest common subsequence (2 bytes
/// a cell, at most 32 MiB, and a shorter side under 4096 rules); beyond, only
/// rules at the same position are paired.
pub const LCS_MAX_CELLS: usize = 16 << 20;

/// One translated rule: where it came from and its RON fields.
#[derive(Clone)]
struct RuleOut {
    /// Where: the index of its input, and its 1-based line.
    file: usize,
    line: usize,
    text: String,
    /// The fields before the action, in canonical form (what two rules are
    /// compared by).
    fields: Vec<String>,
    action: &'static str,
    family: Family,
    /// Whether the fields already tie the rule to its family (addresses,
    /// ICMP or ICMPv6).
    implied: bool,
}

impl RuleOut {
    /// The same rule for the other family (what may be written once).
    fn same_but_family(&self, other: &RuleOut) -> bool {
        !self.implied
            && !other.implied
            && self.fields == other.fields
            && self.action == other.action
    }
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

/// What the lines of one family add up to.
#[derive(Default)]
struct Rules {
    /// Whether any line was of this family.
    seen: bool,
    outbound: Chain,
    inbound: Chain,
    forward_policy: Option<&'static str>,
    /// Helper ports and where each was attached (input, line).
    ftp_ports: Vec<(String, usize, usize)>,
}

impl Rules {
    /// The policy of `chain` (outbound or inbound) if this family was seen:
    /// its own, else FORWARD's, else ACCEPT.
    fn policy(&self, chain: &Chain) -> Option<&'static str> {
        self.seen
            .then(|| chain.policy.or(self.forward_policy).unwrap_or("Accept"))
    }
}

/// What the lines read so far add up to.
struct Import<'a> {
    inputs: &'a [Input<'a>],
    v4: Rules,
    v6: Rules,
    /// The input being read.
    input: usize,
    /// The table of an iptables-save section (`*raw`); a line naming
    /// `iptables` or `ip6tables` resets it, as does a new input.
    table: &'static str,
}

/// Translate iptables `input` (named `file` in comments; lines that start
/// with `ip6tables` are IPv6) into RON config text; as [`translate_inputs`]
/// with one IPv4 input.
pub fn translate(input: &str, file: &str) -> Result<String, ImportError> {
    translate_inputs(&[Input {
        text: input,
        name: file,
        family: Family::V4,
    }])
}

/// Translate the inputs, in order, into the RON text of one config for
/// both families (the module doc says how); the error names the input and
/// line that cannot be translated.
pub fn translate_inputs(inputs: &[Input<'_>]) -> Result<String, ImportError> {
    let mut import = Import {
        inputs,
        v4: Rules::default(),
        v6: Rules::default(),
        input: 0,
        table: "filter",
    };
    for (i, input) in inputs.iter().enumerate() {
        import.input = i;
        import.table = "filter";
        for (n, raw) in input.text.lines().enumerate() {
            let line = n + 1;
            import
                .line(line, raw.trim())
                .map_err(|message| ImportError {
                    file: input.name.to_string(),
                    line,
                    message,
                })?;
        }
    }
    import.render()
}

impl Import<'_> {
    fn rules(&mut self, family: Family) -> &mut Rules {
        match family {
            Family::V4 => &mut self.v4,
            Family::V6 => &mut self.v6,
        }
    }

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
        let family = self.inputs[self.input].family;
        match text.strip_prefix(':') {
            Some(chain) => self.chain_line(family, chain),
            None => self.command(family, line, text),
        }
    }

    /// An iptables-save chain line, `:INPUT DROP [0:0]`, without its colon.
    fn chain_line(&mut self, family: Family, chain: &str) -> Result<(), String> {
        let mut it = chain.split_whitespace();
        let (name, policy) = (it.next().unwrap_or(""), it.next().unwrap_or("-"));
        let table = self.table;
        let rules = self.rules(family);
        rules.seen = true;
        if table == "filter" && policy != "-" {
            let p = policy_of(policy)?;
            if let Some(slot) = rules.policy_slot(name) {
                *slot = Some(p);
            }
        }
        Ok(())
    }

    /// An iptables or ip6tables command (with or without `iptables` or
    /// `ip6tables`, `sudo`, `-t TABLE`); `family` is the input's.
    fn command(&mut self, family: Family, line: usize, text: &str) -> Result<(), String> {
        let mut words: Vec<String> = text
            .split_whitespace()
            .map(|w| w.trim_matches(|c| c == '"' || c == '\'').to_string())
            .collect();
        let prefix = words
            .iter()
            .take_while(|w| matches!(w.as_str(), "iptables" | "ip6tables" | "sudo"))
            .count();
        let mut family = family;
        if prefix > 0 {
            match words[..prefix].iter().rev().find(|w| *w != "sudo") {
                Some(w) if w == "iptables" => family = Family::V4,
                Some(_) => family = Family::V6,
                None => {}
            }
            words.drain(..prefix);
            self.table = "filter";
        }
        self.rules(family).seen = true;
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
            "-P" | "--policy" => self.rules(family).set_policy(chain, words.get(i + 2)),
            "-A" | "--append" | "-I" | "--insert" => {
                if chain.is_empty() {
                    return Err(format!("{op} needs a chain name"));
                }
                let (at, rest) = position(op, words.get(i + 2..).unwrap_or_default());
                let (file, rules) = (self.input, self.rules(family));
                rules.add_rule(family, table, chain, at, rest, (file, line), text)
            }
            other => Err(format!("command {other:?} is not supported (-P, -A, -I)")),
        }
    }

    /// The config text: both families' chains merged, the policies, the
    /// helper.
    fn render(&self) -> Result<String, ImportError> {
        let ftp_ports = self.helper_ports()?;
        let names: Vec<&str> = self.inputs.iter().map(|i| i.name).collect();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "// Imported from {} by tunfw import-iptables.",
            names.join(" and ")
        );
        let _ = writeln!(
            out,
            "// OUTPUT -> outbound (LAN to WAN), INPUT -> inbound (WAN to LAN), FORWARD -> both."
        );
        match (self.v4.seen, self.v6.seen) {
            (true, true) => {
                out.push_str(
                    "// iptables rules apply to IPv4, ip6tables rules to IPv6; a rule both give \
                     in the same place of their order is written once, for both.\n",
                );
            }
            (true, false) => out.push_str(
                "// No ip6tables lines: the rules are IPv4's, IPv6 meets the policies alone.\n",
            ),
            (false, true) => out.push_str(
                "// No iptables lines: the rules are IPv6's, IPv4 meets the policies alone.\n",
            ),
            (false, false) => {}
        }
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
        let chains = [
            ("outbound", "OUTPUT", &self.v4.outbound, &self.v6.outbound),
            ("inbound", "INPUT", &self.v4.inbound, &self.v6.inbound),
        ];
        for (name, iptables_name, c4, c6) in chains {
            self.render_chain(&mut out, name, iptables_name, c4, c6);
        }
        out.push_str(")\n");
        Ok(out)
    }

    /// The helper's ports; when both families were imported, they must be
    /// the same set.
    fn helper_ports(&self) -> Result<Vec<String>, ImportError> {
        if !(self.v4.seen && self.v6.seen) {
            let rules = if self.v4.seen { &self.v4 } else { &self.v6 };
            return Ok(rules.ftp_ports.iter().map(|p| p.0.clone()).collect());
        }
        let covered = |ports: &[(String, usize, usize)]| -> Vec<bool> {
            let specs: Vec<PortSpec> = ports
                .iter()
                .filter_map(|p| PortSpec::parse(&p.0).ok())
                .collect();
            (0..=u16::MAX)
                .map(|p| specs.iter().any(|s| s.contains(p)))
                .collect()
        };
        let (c4, c6) = (covered(&self.v4.ftp_ports), covered(&self.v6.ftp_ports));
        if c4 == c6 {
            return Ok(self.v4.ftp_ports.iter().map(|p| p.0.clone()).collect());
        }
        // The first helper line with a port the other family lacks.
        let lacking = |ports: &[(String, usize, usize)], other: &[bool]| {
            ports
                .iter()
                .find(|p| {
                    PortSpec::parse(&p.0).is_ok_and(|s| {
                        s.0.iter()
                            .any(|&(lo, hi)| (lo..=hi).any(|q| !other[usize::from(q)]))
                    })
                })
                .cloned()
        };
        let (port, file, line, family, missing) = match lacking(&self.v4.ftp_ports, &c6) {
            Some((port, file, line)) => (port, file, line, "IPv4", "ip6tables"),
            None => {
                let (port, file, line) = lacking(&self.v6.ftp_ports, &c4).unwrap_or_default();
                (port, file, line, "IPv6", "iptables")
            }
        };
        Err(ImportError {
            file: self.inputs.get(file).map_or("", |i| i.name).to_string(),
            line,
            message: format!(
                "the FTP helper is attached to port {port} for {family} only: tunfw's helper \
                 serves both families (attach it in {missing} too, or in neither)"
            ),
        })
    }

    fn render_chain(
        &self,
        out: &mut String,
        name: &str,
        iptables_name: &str,
        c4: &Chain,
        c6: &Chain,
    ) {
        let (p4, p6) = (self.v4.policy(c4), self.v6.policy(c6));
        let _ = writeln!(out, "    {name}: (");
        let policy = p4.or(p6).unwrap_or("Accept");
        let _ = writeln!(out, "        policy: {policy},");
        out.push_str("        rules: [\n");
        for m in merge(&c4.rules, &c6.rules) {
            match m {
                Merged::One(r) => {
                    self.comment(out, r);
                    let family = if r.implied {
                        String::new()
                    } else {
                        format!(", family: {}", family_ron(r.family))
                    };
                    let _ = writeln!(out, "            ({}{family}),", fields_ron(r));
                }
                Merged::Both(a, b) => {
                    self.comment(out, a);
                    self.comment(out, b);
                    let _ = writeln!(out, "            ({}),", fields_ron(a));
                }
            }
        }
        if let (Some(p4), Some(p6)) = (p4, p6) {
            if p4 != p6 {
                let _ = writeln!(
                    out,
                    "            // ip6tables -P {iptables_name} {}: tunfw has one policy per chain \
                     (IPv4's), this is IPv6's",
                    p6.to_uppercase()
                );
                let _ = writeln!(out, "            (action: {p6}, family: Ipv6),");
            }
        }
        out.push_str("        ],\n    ),\n");
    }

    /// The comment naming a rule's source line.
    fn comment(&self, out: &mut String, r: &RuleOut) {
        if self.inputs.len() == 1 {
            let _ = writeln!(out, "            // line {}: {}", r.line, r.text);
        } else {
            let name = self.inputs.get(r.file).map_or("", |i| i.name);
            let _ = writeln!(out, "            // {name}:{}: {}", r.line, r.text);
        }
    }
}

/// A rule's RON fields and action, without its family.
fn fields_ron(r: &RuleOut) -> String {
    let mut all = r.fields.clone();
    all.push(format!("action: {}", r.action));
    all.join(", ")
}

fn family_ron(f: Family) -> &'static str {
    match f {
        Family::V4 => "Ipv4",
        Family::V6 => "Ipv6",
    }
}

/// A place in a merged chain: a rule of one family, or a pair identical
/// except for their family, written once for both.
enum Merged<'a> {
    One(&'a RuleOut),
    Both(&'a RuleOut, &'a RuleOut),
}

/// Lay `a` (IPv4's rules) and `b` (IPv6's) into one list that keeps each
/// family's order, writing once the pairs of a longest common subsequence of
/// rules identical except for their family (pairs at the same position only
/// when the table would exceed [`LCS_MAX_CELLS`]). Between two such pairs,
/// IPv4's rules come before IPv6's.
fn merge<'a>(a: &'a [RuleOut], b: &'a [RuleOut]) -> Vec<Merged<'a>> {
    let pairs = if (a.len() + 1).saturating_mul(b.len() + 1) <= LCS_MAX_CELLS {
        lcs_pairs(a, b)
    } else {
        (0..a.len().min(b.len()))
            .filter(|&k| a[k].same_but_family(&b[k]))
            .map(|k| (k, k))
            .collect()
    };
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    for (pi, pj) in pairs.into_iter().chain([(a.len(), b.len())]) {
        out.extend(a[i..pi].iter().map(Merged::One));
        out.extend(b[j..pj].iter().map(Merged::One));
        if pi < a.len() && pj < b.len() {
            out.push(Merged::Both(&a[pi], &b[pj]));
        }
        (i, j) = (pi + 1, pj + 1);
    }
    out
}

/// The index pairs of a longest common subsequence of `a` and `b` (by
/// [`RuleOut::same_but_family`]), in order; at equal lengths the earliest
/// pairs are taken.
fn lcs_pairs<'r>(a: &'r [RuleOut], b: &'r [RuleOut]) -> Vec<(usize, usize)> {
    // Each rule as a number, equal for rules the same but for their family
    // (a rule its fields tie to its family gets one of its own), so that the
    // table compares numbers.
    let mut ids: HashMap<(&'r [String], &str), u32> = HashMap::new();
    let mut next = 0u32;
    let mut id = |r: &'r RuleOut| -> u32 {
        next += 1;
        if r.implied {
            return next;
        }
        *ids.entry((r.fields.as_slice(), r.action)).or_insert(next)
    };
    let ka: Vec<u32> = a.iter().map(&mut id).collect();
    let kb: Vec<u32> = b.iter().map(&mut id).collect();
    let (n, m) = (ka.len(), kb.len());
    let w = m + 1;
    // len[i * w + j]: the LCS of a[i..] and b[j..]; a table of at most
    // LCS_MAX_CELLS cells has fewer than 65536 rules on its shorter side.
    let mut len = vec![0u16; (n + 1) * w];
    for i in (0..n).rev() {
        let (row, below) = len[i * w..(i + 2) * w].split_at_mut(w);
        for j in (0..m).rev() {
            row[j] = if ka[i] == kb[j] {
                below[j + 1] + 1
            } else {
                below[j].max(row[j + 1])
            };
        }
    }
    let mut pairs = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < n && j < m {
        if ka[i] == kb[j] && len[i * w + j] == len[(i + 1) * w + j + 1] + 1 {
            pairs.push((i, j));
            (i, j) = (i + 1, j + 1);
        } else if len[(i + 1) * w + j] >= len[i * w + j + 1] {
            i += 1;
        } else {
            j += 1;
        }
    }
    pairs
}

impl Rules {
    /// Where the policy of `chain` goes, if it is one that maps.
    fn policy_slot(&mut self, chain: &str) -> Option<&mut Option<&'static str>> {
        match chain {
            "INPUT" => Some(&mut self.inbound.policy),
            "OUTPUT" => Some(&mut self.outbound.policy),
            "FORWARD" => Some(&mut self.forward_policy),
            _ => None,
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
    /// `chain` maps to. `at` is the input and line.
    #[allow(clippy::too_many_arguments)]
    fn add_rule(
        &mut self,
        family: Family,
        table: &str,
        chain: &str,
        at: Option<usize>,
        rest: &[String],
        (file, line): (usize, usize),
        text: &str,
    ) -> Result<(), String> {
        if table == "raw" {
            if self.ftp_ports.len() == MAX_PORT_ELEMENTS {
                return Err(format!(
                    "raw table: more than {MAX_PORT_ELEMENTS} helper ports, the most a port spec takes"
                ));
            }
            self.ftp_ports.push((raw_helper(rest)?, file, line));
            return Ok(());
        }
        let parsed = rule_fields(rest, family)?;
        let rule = RuleOut {
            file,
            line,
            text: text.to_string(),
            fields: parsed.fields,
            action: parsed.action,
            family,
            implied: parsed.implied,
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

/// `--state`/`--ctstate`: the states in tunfw's order (NEW, ESTABLISHED,
/// RELATED, INVALID, UNTRACKED), each once, whatever order the list had
/// (`iptables-save` prints `RELATED,ESTABLISHED`).
fn states(list: &str) -> Result<String, String> {
    const ORDER: [(&str, &str); 5] = [
        ("NEW", "New"),
        ("ESTABLISHED", "Established"),
        ("RELATED", "Related"),
        ("INVALID", "Invalid"),
        ("UNTRACKED", "Untracked"),
    ];
    let mut have = [false; ORDER.len()];
    for s in list.split(',') {
        let at = ORDER
            .iter()
            .position(|(name, _)| *name == s)
            .ok_or_else(|| format!("state {s:?} is not supported"))?;
        have[at] = true;
    }
    let out: Vec<&str> = ORDER
        .iter()
        .zip(have)
        .filter_map(|((_, ron), h)| h.then_some(*ron))
        .collect();
    Ok(format!("state: [{}]", out.join(", ")))
}

/// `N` or `N/CODE`, numbers 0-255; `what` names the option for errors.
fn type_and_code(v: &str, what: &str) -> Result<(u8, Option<u8>), String> {
    let (t, c) = match v.split_once('/') {
        Some((t, c)) => (t, Some(c)),
        None => (v, None),
    };
    let t = t
        .parse()
        .map_err(|_| format!("{what} {v:?} is not supported"))?;
    let c = c
        .map(|c| {
            c.parse()
                .map_err(|_| format!("{what} code in {v:?} is not a number (0-255)"))
        })
        .transpose()?;
    Ok((t, c))
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
    match named {
        Some(n) => Ok(n),
        None => type_and_code(v, "icmp type"),
    }
}

/// The ICMPv6 type names ip6tables knows (`ip6tables -p icmpv6 -h`, its
/// icmp6 match's table; a code-less name matches every code), with their
/// aliases: name, type, code.
pub const ICMPV6_NAMES: &[(&str, u8, Option<u8>)] = &[
    ("destination-unreachable", 1, None),
    ("no-route", 1, Some(0)),
    ("communication-prohibited", 1, Some(1)),
    ("beyond-scope", 1, Some(2)),
    ("address-unreachable", 1, Some(3)),
    ("port-unreachable", 1, Some(4)),
    ("failed-policy", 1, Some(5)),
    ("reject-route", 1, Some(6)),
    ("packet-too-big", 2, None),
    ("time-exceeded", 3, None),
    ("ttl-exceeded", 3, None),
    ("ttl-zero-during-transit", 3, Some(0)),
    ("ttl-zero-during-reassembly", 3, Some(1)),
    ("parameter-problem", 4, None),
    ("bad-header", 4, Some(0)),
    ("unknown-header-type", 4, Some(1)),
    ("unknown-option", 4, Some(2)),
    ("echo-request", 128, None),
    ("ping", 128, None),
    ("echo-reply", 129, None),
    ("pong", 129, None),
    ("router-solicitation", 133, None),
    ("router-advertisement", 134, None),
    ("neighbour-solicitation", 135, None),
    ("neighbor-solicitation", 135, None),
    ("neighbour-advertisement", 136, None),
    ("neighbor-advertisement", 136, None),
    ("redirect", 137, None),
];

/// `--icmpv6-type`: a name of [`ICMPV6_NAMES`], or `N` / `N/CODE` as
/// `ip6tables-save` prints it.
fn icmpv6_type(v: &str) -> Result<(u8, Option<u8>), String> {
    match ICMPV6_NAMES.iter().find(|(name, _, _)| *name == v) {
        Some(&(_, t, c)) => Ok((t, c)),
        None => type_and_code(v, "icmpv6 type"),
    }
}

/// A rule's translation: its fields before the action, the action, and
/// whether the fields tie it to its family.
struct RuleFields {
    fields: Vec<String>,
    action: &'static str,
    implied: bool,
}

/// What the options of one rule have said so far.
struct RuleState {
    family: Family,
    fields: Vec<String>,
    multiport: bool,
    implied: bool,
    proto: Option<String>,
    icmp_option: Option<&'static str>,
    /// The first port option (`--sport`, `--dports`, ...), if any.
    port_option: Option<String>,
    reject_with: Option<String>,
}

fn rule_fields(words: &[String], family: Family) -> Result<RuleFields, String> {
    let mut st = RuleState {
        family,
        fields: Vec::new(),
        multiport: false,
        implied: false,
        proto: None,
        icmp_option: None,
        port_option: None,
        reject_with: None,
    };
    let mut action = None;
    let mut i = 0;
    while i < words.len() {
        let w = words[i].as_str();
        let val = words.get(i + 1).map(String::as_str);
        match w {
            "-j" | "--jump" => {
                action = Some(target(val.ok_or_else(|| format!("{w} needs a value"))?)?)
            }
            "-m" | "--match" if val == Some("multiport") => st.multiport = true,
            _ => option(w, val, &mut st)?,
        }
        i += 2;
    }
    let Some(action) = action else {
        return Err("a rule needs -j ACCEPT, DROP or REJECT".into());
    };
    // One of each: iptables refuses a second -p, -s, -d or --dport, and two
    // state matches or ICMP types would be two conditions a tunfw rule
    // cannot hold.
    for (i, f) in st.fields.iter().enumerate() {
        let key = f.split(':').next().unwrap_or_default();
        if st.fields[..i]
            .iter()
            .any(|g| g.split(':').next() == Some(key))
        {
            return Err(format!("{key} is given twice in one rule"));
        }
    }
    if let Some(opt) = st.icmp_option {
        let (need, name) = match family {
            Family::V4 => ("Icmp", "-p icmp"),
            Family::V6 => ("Icmpv6", "-p icmpv6"),
        };
        if st.proto.as_deref() != Some(need) {
            return Err(format!("{opt} needs {name}"));
        }
    }
    // Ports come with the tcp or udp match (or multiport's, which needs one
    // of them too), which only `-p tcp` or `-p udp` loads: iptables refuses
    // `-p icmp --dport 80`, and tunfw's rules cannot hold it.
    if let Some(opt) = st.port_option {
        let ported = ["Tcp", "Udp", "Number(6)", "Number(17)"];
        if !st.proto.as_deref().is_some_and(|p| ported.contains(&p)) {
            return Err(format!("{opt} needs -p tcp or -p udp"));
        }
    }
    if let Some(r) = st.reject_with {
        if action != "Reject" {
            return Err("--reject-with needs -j REJECT".into());
        }
        if r == "tcp-reset" && st.proto.as_deref() != Some("Tcp") {
            return Err(
                "--reject-with tcp-reset needs -p tcp (the kernel's REJECT refuses it otherwise)"
                    .into(),
            );
        }
    }
    Ok(RuleFields {
        fields: st.fields,
        action,
        implied: st.implied,
    })
}

/// One option of a rule other than `-j` and `-m multiport`, with its value
/// if any: the fields it adds, or why it cannot be translated.
fn option(w: &str, val: Option<&str>, st: &mut RuleState) -> Result<(), String> {
    let need = || val.ok_or_else(|| format!("{w} needs a value"));
    let family = st.family;
    let program = match family {
        Family::V4 => "iptables",
        Family::V6 => "ip6tables",
    };
    match w {
        "!" => return Err("negation (!) cannot be translated".into()),
        "-p" | "--protocol" => {
            let (value, implied) = proto(need()?, family)?;
            st.implied |= implied;
            st.fields
                .extend(value.as_ref().map(|v| format!("proto: {v}")));
            st.proto = value;
        }
        "-s" | "--source" | "--src" => {
            st.fields
                .push(format!("src: {}", cidrs(w, need()?, family)?));
            st.implied = true;
        }
        "-d" | "--destination" | "--dst" => {
            st.fields
                .push(format!("dst: {}", cidrs(w, need()?, family)?));
            st.implied = true;
        }
        "--sport"
        | "--source-port"
        | "--dport"
        | "--destination-port"
        | "--sports"
        | "--source-ports"
        | "--dports"
        | "--destination-ports" => {
            let field = if w.starts_with("--s") {
                "sport"
            } else {
                "dport"
            };
            let multiport = w.ends_with('s').then_some(st.multiport);
            st.fields.push(ports(field, w, need()?, multiport)?);
            st.port_option.get_or_insert_with(|| w.to_string());
        }
        "-m" | "--match" => match (need()?, family) {
            ("state" | "conntrack" | "tcp" | "udp", _) | ("icmp", Family::V4) => {}
            ("icmp6", Family::V6) => {}
            (m @ ("icmp" | "icmp6"), _) => {
                return Err(format!("match module {m:?} is not {program}'s"));
            }
            (m, _) => return Err(format!("match module {m:?} is not supported")),
        },
        "--state" | "--ctstate" => st.fields.push(states(need()?)?),
        "--icmp-type" | "--icmpv6-type" => {
            let (t, c) = match (w, family) {
                ("--icmp-type", Family::V4) => icmp_type(need()?)?,
                ("--icmpv6-type", Family::V6) => icmpv6_type(need()?)?,
                _ => {
                    let other = if family == Family::V4 {
                        "--icmp-type"
                    } else {
                        "--icmpv6-type"
                    };
                    return Err(format!(
                        "{w} is not an option of {program} (it has {other})"
                    ));
                }
            };
            st.icmp_option = Some(if w == "--icmp-type" {
                "--icmp-type"
            } else {
                "--icmpv6-type"
            });
            st.fields.push(format!("icmp_type: {t}"));
            st.fields.extend(c.map(|c| format!("icmp_code: {c}")));
        }
        "--reject-with" => st.reject_with = Some(reject_with(need()?, family)?.to_string()),
        "-i" | "--in-interface" | "-o" | "--out-interface" => {
            return Err(format!(
                "{w}: tunfw rules have no interfaces (direction is the chain)"
            ))
        }
        other => return Err(format!("option {other:?} is not supported")),
    }
    Ok(())
}

/// A port option's RON field (`sport` or `dport`), in the canonical form
/// (`1024:65535` is `1024:`). `multiport` is `None` for the tcp/udp match's
/// `--sport`/`--dport` (one port or one range), else whether `-m
/// multiport` came before this `--sports`/`--dports` (at most
/// [`MULTIPORT_MAX_PORTS`], a range counting as two).
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
    let spec = PortSpec::parse(v).map_err(|e| format!("{w}: {e}"))?;
    Ok(format!("{field}: \"{spec}\""))
}

/// `-p` in `family`: the `proto` value (none for `all`), and whether it
/// ties the rule to its family (ICMP in iptables, ICMPv6 in ip6tables).
fn proto(p: &str, family: Family) -> Result<(Option<String>, bool), String> {
    let icmp = matches!(p, "icmp" | "1");
    let icmpv6 = matches!(p, "icmpv6" | "ipv6-icmp" | "58");
    let (value, implied) = match (family, p) {
        (_, "tcp") => ("Tcp".to_string(), false),
        (_, "udp") => ("Udp".to_string(), false),
        (_, "all") => return Ok((None, false)),
        (Family::V4, _) if icmp => ("Icmp".to_string(), true),
        (Family::V6, _) if icmpv6 => ("Icmpv6".to_string(), true),
        // The other family's ICMP: a protocol number that never carries it.
        (Family::V4, _) if icmpv6 => ("Number(58)".to_string(), false),
        (Family::V6, _) if icmp => ("Number(1)".to_string(), false),
        (_, n) => {
            let n: u8 = n
                .parse()
                .map_err(|_| format!("protocol {n:?} is not supported"))?;
            (format!("Number({n})"), false)
        }
    };
    Ok((Some(value), implied))
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

/// `--reject-with` in `family`: only what tunfw's reject sends anyway (a
/// RST for TCP, ICMP or ICMPv6 port unreachable otherwise); the canonical
/// name.
fn reject_with(r: &str, family: Family) -> Result<&'static str, String> {
    match (r, family) {
        ("tcp-reset", _) => Ok("tcp-reset"),
        ("icmp-port-unreachable" | "port-unreach", Family::V4) => Ok("icmp-port-unreachable"),
        ("icmp6-port-unreachable" | "port-unreach", Family::V6) => Ok("icmp6-port-unreachable"),
        (r, Family::V4) => Err(format!(
            "--reject-with {r}: tunfw rejects with tcp-reset for TCP and \
             icmp-port-unreachable otherwise (iptables)"
        )),
        (r, Family::V6) => Err(format!(
            "--reject-with {r}: tunfw rejects with tcp-reset for TCP and \
             icmp6-port-unreachable otherwise (ip6tables)"
        )),
    }
}

/// `-s`/`-d` (option `w`) in `family`: a RON list of at most [`MAX_CIDRS`]
/// addresses, each of `family` (iptables takes only IPv4 addresses,
/// ip6tables only IPv6).
fn cidrs(w: &str, v: &str, family: Family) -> Result<String, String> {
    if v.split(',').nth(MAX_CIDRS).is_some() {
        return Err(format!(
            "{w}: more than {MAX_CIDRS} addresses, the most a tunfw address list takes"
        ));
    }
    let mut list = Vec::new();
    for c in v.split(',') {
        let cidr = Cidr::parse(c).map_err(|e| format!("{w}: {e}"))?;
        if cidr.family() != family {
            let (program, other) = match family {
                Family::V4 => ("iptables", "ip6tables"),
                Family::V6 => ("ip6tables", "iptables"),
            };
            return Err(format!(
                "{w} {c}: an {} address in an {program} rule ({program} refuses it; \
                 give the rule to {other})",
                cidr.family().as_str()
            ));
        }
        list.push(format!("\"{c}\""));
    }
    Ok(format!("[{}]", list.join(", ")))
}
