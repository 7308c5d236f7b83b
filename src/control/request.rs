//! The control protocol's requests: one line, a verb and `key=value`
//! arguments, and the flow filters of `flows` and `kill`.

use std::net::IpAddr;
use std::path::PathBuf;

use super::limits::MAX_REQUEST;
use crate::conntrack::flow::Flow;
use crate::conntrack::state::CtState;
use crate::conntrack::tuple::Tuple;
use crate::filter::trace::TraceFilter;
use crate::wire::{PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};

/// Which flows a `flows` or `kill` request means. Absent fields match all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlowFilter {
    /// IP protocol number.
    pub protocol: Option<u8>,
    /// TCP state name (`ESTABLISHED`, ...), or `ASSURED` / `UNREPLIED`.
    pub state: Option<String>,
    /// An address on either end of the flow.
    pub addr: Option<IpAddr>,
    /// A port on either end of the flow.
    pub port: Option<u16>,
    /// IP version: 4 or 6.
    pub family: Option<u8>,
}

impl FlowFilter {
    /// Parse `key=value` words.
    pub fn parse(words: &[&str]) -> Result<FlowFilter, String> {
        let mut f = FlowFilter::default();
        for w in words {
            let (k, v) = w
                .split_once('=')
                .ok_or_else(|| format!("bad filter {w:?}: use key=value"))?;
            match k {
                "proto" => {
                    f.protocol = Some(match v.to_ascii_lowercase().as_str() {
                        "tcp" => PROTO_TCP,
                        "udp" => PROTO_UDP,
                        "icmp" => PROTO_ICMP,
                        "icmpv6" => PROTO_ICMPV6,
                        n => n.parse().map_err(|_| format!("bad proto {v:?}"))?,
                    })
                }
                "state" => f.state = Some(v.to_ascii_uppercase()),
                "addr" => f.addr = Some(v.parse().map_err(|_| format!("bad addr {v:?}"))?),
                "port" => f.port = Some(v.parse().map_err(|_| format!("bad port {v:?}"))?),
                "family" => {
                    f.family = Some(match v.to_ascii_lowercase().as_str() {
                        "4" | "ipv4" | "inet" => 4,
                        "6" | "ipv6" | "inet6" => 6,
                        _ => return Err(format!("bad family {v:?}: 4 or 6")),
                    })
                }
                _ => {
                    return Err(format!(
                        "unknown filter {k:?}: proto, state, addr, port, family"
                    ))
                }
            }
        }
        Ok(f)
    }

    /// The filter of `trace`: the same fields, `state` a conntrack state
    /// (NEW, ESTABLISHED, RELATED, INVALID, UNTRACKED).
    pub fn trace_filter(&self) -> Result<TraceFilter, String> {
        let state = match self.state.as_deref() {
            None => None,
            Some(s) => Some(
                CtState::ALL
                    .into_iter()
                    .find(|c| c.as_str() == s)
                    .ok_or_else(|| {
                        format!("bad trace state {s:?}: NEW, ESTABLISHED, RELATED, INVALID or UNTRACKED")
                    })?,
            ),
        };
        Ok(TraceFilter {
            protocol: self.protocol,
            addr: self.addr,
            port: self.port,
            family: self.family,
            state,
        })
    }

    /// Whether no field is set.
    pub fn is_empty(&self) -> bool {
        *self == FlowFilter::default()
    }

    /// Whether `flow`, whose reply tuple is `reply`, matches: an address
    /// or port filter matches either tuple (a translated flow's reply tuple
    /// holds the addresses and ports translation gave it), as `conntrack -L`
    /// filters do.
    pub fn matches(&self, flow: &Flow, reply: &Tuple) -> bool {
        let t = &flow.original;
        if self.protocol.is_some_and(|p| p != t.protocol) {
            return false;
        }
        if self
            .addr
            .is_some_and(|a| ![t.src, t.dst, reply.src, reply.dst].contains(&a))
        {
            return false;
        }
        let version = if t.src.is_ipv4() { 4 } else { 6 };
        if self.family.is_some_and(|f| f != version) {
            return false;
        }
        let ported = matches!(t.protocol, PROTO_TCP | PROTO_UDP);
        if self.port.is_some_and(|p| {
            !ported || ![t.src_id, t.dst_id, reply.src_id, reply.dst_id].contains(&p)
        }) {
            return false;
        }
        match self.state.as_deref() {
            None => true,
            Some("ASSURED") => flow.assured,
            Some("UNREPLIED") => !flow.seen_reply,
            Some(s) => flow.tcp_state().is_some_and(|st| st.as_str() == s),
        }
    }
}

/// A request the event loop must answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Counters.
    Stats,
    /// Conntrack table, filtered.
    Flows(FlowFilter),
    /// Pending expectations.
    Expectations,
    /// Rules with counters.
    Rules,
    /// Remove every flow.
    Flush,
    /// Remove matching flows.
    Kill(FlowFilter),
    /// Reload the config (from this file, or the one tunfw started with).
    Reload(Option<PathBuf>),
    /// Subscribe to flow events.
    Events,
    /// Every counter and gauge as Prometheus text.
    Metrics,
    /// Trace live packets matching the filter.
    Trace(TraceFilter),
    /// Save the table's flows and expectations to this file.
    Save(PathBuf),
    /// Change or list a named set.
    Set(SetCommand),
}

/// `set add|del|list|flush`: a change to a named set, or a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetCommand {
    /// Add (or refresh) elements, with an optional timeout in seconds.
    Add {
        /// The set.
        name: String,
        /// Elements as text.
        elements: Vec<String>,
        /// Timeout of each, in seconds.
        timeout: Option<u64>,
    },
    /// Remove elements.
    Del {
        /// The set.
        name: String,
        /// Elements as text.
        elements: Vec<String>,
    },
    /// List one set's live elements, or every set with its size.
    List(Option<String>),
    /// Remove every element of a set.
    Flush(String),
}

impl SetCommand {
    /// Parse the words after `set`.
    fn parse(args: &[&str]) -> Result<SetCommand, String> {
        let usage = "set add NAME ELEMENT... [timeout SECONDS] | set del NAME ELEMENT... | set list [NAME] | set flush NAME";
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        match args {
            ["add", name, rest @ ..] => {
                let (elements, timeout) = match rest {
                    [e @ .., "timeout", t] => {
                        let t = t
                            .parse::<u64>()
                            .map_err(|_| format!("timeout {t:?} is not a number of seconds"))?;
                        (e, Some(t))
                    }
                    e => (e, None),
                };
                if elements.is_empty() {
                    return Err(format!("set add needs elements: {usage}"));
                }
                Ok(SetCommand::Add {
                    name: name.to_string(),
                    elements: words(elements),
                    timeout,
                })
            }
            ["del", name, rest @ ..] if !rest.is_empty() => Ok(SetCommand::Del {
                name: name.to_string(),
                elements: words(rest),
            }),
            ["list"] => Ok(SetCommand::List(None)),
            ["list", name] => Ok(SetCommand::List(Some(name.to_string()))),
            ["flush", name] => Ok(SetCommand::Flush(name.to_string())),
            _ => Err(format!("usage: {usage}")),
        }
    }
}

impl Request {
    /// Parse a request line.
    pub fn parse(line: &str) -> Result<Request, String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some((&verb, args)) = words.split_first() else {
            return Err("empty request".into());
        };
        let no_args = |r: Request| {
            if args.is_empty() {
                Ok(r)
            } else {
                Err(format!("{verb} takes no arguments"))
            }
        };
        match verb {
            "stats" => no_args(Request::Stats),
            "expectations" => no_args(Request::Expectations),
            "rules" => no_args(Request::Rules),
            "flush" => no_args(Request::Flush),
            "events" => no_args(Request::Events),
            "metrics" => no_args(Request::Metrics),
            "flows" => Ok(Request::Flows(FlowFilter::parse(args)?)),
            "trace" => Ok(Request::Trace(FlowFilter::parse(args)?.trace_filter()?)),
            "kill" => {
                let f = FlowFilter::parse(args)?;
                if f.is_empty() {
                    return Err("kill needs a filter (use flush to remove every flow)".into());
                }
                Ok(Request::Kill(f))
            }
            "set" => SetCommand::parse(args).map(Request::Set),
            "reload" => match args {
                [] => Ok(Request::Reload(None)),
                [file] => Ok(Request::Reload(Some(PathBuf::from(file)))),
                _ => Err("reload takes at most one file".into()),
            },
            "save" => match args {
                [file] => Ok(Request::Save(PathBuf::from(file))),
                _ => Err("save takes one file".into()),
            },
            _ => Err(format!(
                "unknown request {verb:?}: stats, flows, expectations, rules, flush, kill, reload, events, metrics, trace, save, set"
            )),
        }
    }
}

/// The request line in the bytes a client sent (the server reads at most
/// one byte more than [`MAX_REQUEST`]): the bytes before the first newline
/// without a trailing `\r`, or all of them when the client ended its stream
/// without a newline; invalid UTF-8 becomes U+FFFD. A line of more than
/// [`MAX_REQUEST`] bytes is an error, so an `Ok` line has at most
/// [`MAX_REQUEST`] characters.
pub fn request_line(bytes: &[u8]) -> Result<String, String> {
    match bytes.iter().position(|&b| b == b'\n') {
        Some(end) if end <= MAX_REQUEST => Ok(String::from_utf8_lossy(&bytes[..end])
            .trim_end_matches('\r')
            .to_string()),
        None if bytes.len() <= MAX_REQUEST => Ok(String::from_utf8_lossy(bytes).into_owned()),
        _ => Err(format!("request longer than {MAX_REQUEST} bytes")),
    }
}

/// An error message as the JSON answer.
pub fn error_answer(message: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "error": message })).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_line_is_the_first_line_within_the_bound() {
        assert_eq!(request_line(b"stats\r\nflush\n"), Ok("stats".to_string()));
        assert_eq!(
            request_line(b"flows port=1"),
            Ok("flows port=1".to_string())
        );
        assert_eq!(request_line(b"a\xffb\n"), Ok("a\u{fffd}b".to_string()));
        let mut long = vec![b'x'; MAX_REQUEST];
        assert_eq!(request_line(&long).map(|l| l.len()), Ok(MAX_REQUEST));
        long.push(b'\n');
        assert_eq!(request_line(&long).map(|l| l.len()), Ok(MAX_REQUEST));
        long.insert(0, b'x');
        assert!(request_line(&long).is_err());
        long.pop();
        assert!(request_line(&long).is_err());
    }
}
