//! Answering a control request against the firewall: the part of the
//! protocol that needs no socket. [`dispatch`] takes what the server read
//! (a parsed request, or why it is not one) and gives the JSON answer, or
//! says what only the event loop can do (reload a config from a file,
//! subscribe a client to events). The event loop and the `control` fuzz
//! target call it alike.

use std::path::PathBuf;

use core::time::Duration;

use super::listing::FlowListing;
use super::request::{error_answer, Request, SetCommand};
use crate::filter::Firewall;
use crate::metrics;
use crate::report::{self, LoopCounters};
use crate::sets::{SetError, MAX_ELEMENT_TIMEOUT_SECS};
use crate::time::Instant;

/// What a request comes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dispatch {
    /// One JSON document, to write and then close: the answer, or
    /// `{"error": ...}`.
    Answer(Vec<u8>),
    /// The `flows` answer, to write step by step (see [`FlowListing`]) and
    /// then close.
    Listing(FlowListing),
    /// Reload the config (from this file, or the one tunfw started with):
    /// the caller reads the file and answers.
    Reload(Option<PathBuf>),
    /// Keep the connection open and stream events to it.
    Subscribe,
    /// Trace the live packets this filter matches: the caller adds a
    /// tracer and streams its records.
    Trace(crate::filter::trace::TraceFilter),
    /// Save the table to this file: the caller writes it and answers.
    Save(PathBuf),
}

/// Answer `request` against `fw` at `now`, with the event loop's own
/// counters `shell` for `stats`. Guarantees:
///
/// - a request that did not parse, and every request but `flows`,
///   `reload`, `save`, `events` and `trace`, is answered with one JSON
///   document; `flows` with a [`FlowListing`] of its filter;
/// - listings (`stats`, `flows`, `expectations`, `rules`) change nothing;
/// - `flush` removes every flow and expectation, `kill` exactly the live
///   flows its filter matches, and each answers `{"removed": N}` with the
///   number of flows removed;
/// - the table is told the time first, so the events of a flush or kill
///   carry `now`.
pub fn dispatch(
    fw: &mut Firewall,
    shell: &LoopCounters,
    now: Instant,
    request: Result<Request, String>,
) -> Dispatch {
    fw.conntrack_mut().set_clock(now);
    let json = |v: serde_json::Value| Dispatch::Answer(serde_json::to_vec(&v).unwrap_or_default());
    let request = match request {
        Ok(r) => r,
        Err(e) => return Dispatch::Answer(error_answer(&e)),
    };
    match request {
        Request::Stats => {
            let map: serde_json::Map<String, serde_json::Value> = report::counters(fw, shell)
                .into_iter()
                .map(|(k, v)| (k, v.into()))
                .collect();
            json(serde_json::Value::Object(map))
        }
        Request::Flows(filter) => Dispatch::Listing(FlowListing::new(filter)),
        Request::Expectations => {
            json(serde_json::to_value(report::expectations(fw, now)).unwrap_or_default())
        }
        Request::Rules => json(serde_json::to_value(report::rules(fw)).unwrap_or_default()),
        Request::Flush => {
            let before = fw.conntrack().len();
            fw.conntrack_mut().flush();
            json(serde_json::json!({ "removed": before }))
        }
        Request::Kill(filter) => {
            let ct = fw.conntrack();
            let ids: Vec<u32> = ct
                .flow_ids(now)
                .filter(|&id| {
                    ct.get(id)
                        .is_some_and(|f| filter.matches(f, &ct.reply_tuple(f)))
                })
                .collect();
            for &id in &ids {
                fw.conntrack_mut().remove(id);
            }
            json(serde_json::json!({ "removed": ids.len() }))
        }
        Request::Reload(file) => Dispatch::Reload(file),
        Request::Events => Dispatch::Subscribe,
        Request::Metrics => {
            // An operator's command: the census walks the table at once
            // (as `flows` does, far cheaper); scrapes spread it over turns.
            let census = metrics::Census::complete(fw, now);
            let text = metrics::render(fw, shell, &census, None);
            json(serde_json::json!({ "metrics": text }))
        }
        Request::Trace(filter) => Dispatch::Trace(filter),
        Request::Save(file) => Dispatch::Save(file),
        Request::Set(command) => match set_command(fw, command, now) {
            Ok(v) => json(v),
            Err(e) => Dispatch::Answer(error_answer(&e.to_string())),
        },
    }
}

/// Carry out a `set` request. `add` and `del` change every element named
/// or, at the first that does not parse or fit, stop there and say which
/// (the ones before it stay changed, as `ipset add` of a list does).
fn set_command(
    fw: &mut Firewall,
    command: SetCommand,
    now: Instant,
) -> Result<serde_json::Value, SetError> {
    match command {
        SetCommand::Add {
            name,
            elements,
            timeout,
        } => {
            let timeout = match timeout {
                Some(t) if t == 0 || t > MAX_ELEMENT_TIMEOUT_SECS => {
                    return Err(SetError::BadTimeout(t))
                }
                t => t.map(Duration::from_secs),
            };
            let set = fw.sets_mut().get_mut(&name)?;
            for (i, e) in elements.iter().enumerate() {
                set.add(e, timeout, true, now).map_err(|err| {
                    SetError::BadElement(format!("{e}: {err} ({i} of {} added)", elements.len()))
                })?;
            }
            Ok(serde_json::json!({ "added": elements.len() }))
        }
        SetCommand::Del { name, elements } => {
            let set = fw.sets_mut().get_mut(&name)?;
            let mut removed = 0;
            for e in &elements {
                removed += usize::from(set.remove(e)?);
            }
            Ok(serde_json::json!({ "removed": removed }))
        }
        SetCommand::Flush(name) => {
            let set = fw.sets_mut().get_mut(&name)?;
            let n = set.len(now);
            set.clear();
            Ok(serde_json::json!({ "removed": n }))
        }
        SetCommand::List(Some(name)) => {
            let set = fw.sets_mut().get_mut(&name)?;
            Ok(serde_json::json!({
                "name": name,
                "kind": set.kind(),
                "elements": set.list(now),
            }))
        }
        SetCommand::List(None) => {
            let sets = fw.sets();
            let all: Vec<serde_json::Value> = sets
                .names()
                .filter_map(|(n, kind)| {
                    let len = sets.get(n)?.len(now);
                    Some(serde_json::json!({ "name": n, "kind": kind, "elements": len }))
                })
                .collect();
            Ok(serde_json::Value::Array(all))
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::config::Config;
    use crate::side::Side;
    use crate::wire::checksum::internet_checksum;

    /// A UDP datagram from 10.0.1.2:`sport` to 10.0.2.2:53 (no UDP checksum).
    pub(in crate::control) fn udp(sport: u16) -> Vec<u8> {
        let mut p = vec![0u8; 28];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&28u16.to_be_bytes());
        p[8] = 64;
        p[9] = 17;
        p[12..16].copy_from_slice(&[10, 0, 1, 2]);
        p[16..20].copy_from_slice(&[10, 0, 2, 2]);
        let c = internet_checksum(&[&p[..20]]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        p[20..22].copy_from_slice(&sport.to_be_bytes());
        p[22..24].copy_from_slice(&53u16.to_be_bytes());
        p[24..26].copy_from_slice(&8u16.to_be_bytes());
        p
    }

    fn json(d: Dispatch) -> serde_json::Value {
        match d {
            Dispatch::Answer(bytes) => serde_json::from_slice(&bytes).expect("JSON"),
            other => panic!("not an answer: {other:?}"),
        }
    }

    /// The answer of a `flows` request, written whole.
    fn listed(fw: &mut Firewall, now: Instant, line: &str) -> serde_json::Value {
        match dispatch(fw, &LoopCounters::default(), now, Request::parse(line)) {
            Dispatch::Listing(l) => serde_json::from_slice(&l.complete(fw, now)).expect("JSON"),
            other => panic!("not a listing: {other:?}"),
        }
    }

    #[test]
    fn answers_listings_kill_and_flush_against_the_table() {
        let cfg = Config::embedded_default().expect("default");
        let mut fw = Firewall::new(&cfg);
        let now = Instant::from_secs(1);
        let mut answer = [0u8; 256];
        for sport in [1000, 1001, 1002] {
            fw.process(Side::Lan, &mut udp(sport), &mut answer, now);
        }
        assert_eq!(fw.conntrack().len(), 3);
        let shell = LoopCounters::default();
        let ask =
            |fw: &mut Firewall, line: &str| json(dispatch(fw, &shell, now, Request::parse(line)));
        assert_eq!(
            listed(&mut fw, now, "flows").as_array().map(Vec::len),
            Some(3)
        );
        assert_eq!(
            listed(&mut fw, now, "flows port=1001")
                .as_array()
                .map(Vec::len),
            Some(1)
        );
        assert!(ask(&mut fw, "stats").get("in.lan").is_some());
        assert!(ask(&mut fw, "rules").is_array());
        assert!(ask(&mut fw, "expectations").is_array());
        assert_eq!(fw.conntrack().len(), 3, "listings change nothing");
        assert_eq!(ask(&mut fw, "kill port=1001")["removed"], 1);
        assert_eq!(fw.conntrack().len(), 2);
        assert_eq!(ask(&mut fw, "flush")["removed"], 2);
        assert_eq!(fw.conntrack().len(), 0);
        assert!(ask(&mut fw, "kill").get("error").is_some());
        assert!(ask(&mut fw, "colour").get("error").is_some());
    }

    #[test]
    fn reload_and_events_are_left_to_the_caller() {
        let cfg = Config::embedded_default().expect("default");
        let mut fw = Firewall::new(&cfg);
        let shell = LoopCounters::default();
        let now = Instant::from_secs(1);
        let d = |fw: &mut Firewall, r| dispatch(fw, &shell, now, Ok(r));
        assert_eq!(d(&mut fw, Request::Events), Dispatch::Subscribe);
        assert_eq!(d(&mut fw, Request::Reload(None)), Dispatch::Reload(None));
        let f = Some(PathBuf::from("x.ron"));
        assert_eq!(d(&mut fw, Request::Reload(f.clone())), Dispatch::Reload(f));
        let save = Request::parse("save /var/lib/tunfw/state");
        let file = PathBuf::from("/var/lib/tunfw/state");
        assert_eq!(save, Ok(Request::Save(file.clone())));
        assert_eq!(dispatch(&mut fw, &shell, now, save), Dispatch::Save(file));
        assert!(Request::parse("save").is_err());
        assert!(Request::parse("save a b").is_err());
        let e = json(dispatch(&mut fw, &shell, now, Err("bad".into())));
        assert_eq!(e, serde_json::json!({ "error": "bad" }));
    }
}
