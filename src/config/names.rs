//! Rule names are unique within each chain.
//!
//! A reload carries a rule's packet and byte counters over to the rule of
//! the same name in the same chain (see `Chain::inherit_counters`), and
//! `ctl rules` and the log lines name a rule by its chain and name; two
//! rules of one name in a chain would make each of those ambiguous. One
//! name in each chain is allowed (an `ssh` rule outbound and one inbound,
//! as iptables' chains each have their own rules). Rules without a name
//! are not affected.

use std::collections::HashMap;

use super::error::ConfigError;
use super::ron_text::{locate, Step};
use crate::rules::Rule;

/// Where a rule is: its chain's field name and its 0-based index.
type Place = (&'static str, usize);

/// `Err` for the first name given to two rules of `chains` (each named by
/// its field in the config), pointing at the one later in `text` (at its
/// name when it can be found, else at its chain's rules).
pub(super) fn check_unique(
    chains: [(&'static str, &[Rule]); 2],
    text: &str,
    file: &str,
) -> Result<(), ConfigError> {
    for (chain, rules) in chains {
        let mut seen: HashMap<&str, Place> = HashMap::new();
        for (i, rule) in rules.iter().enumerate() {
            let Some(name) = rule.name.as_deref() else {
                continue;
            };
            if let Some(&first) = seen.get(name) {
                return Err(duplicate(text, file, name, first, (chain, i)));
            }
            seen.insert(name, (chain, i));
        }
    }
    Ok(())
}

fn duplicate(text: &str, file: &str, name: &str, a: Place, b: Place) -> ConfigError {
    let at = |(chain, i): Place| {
        locate(
            text,
            &[
                Step::Field(chain),
                Step::Field("rules"),
                Step::Index(i),
                Step::Field("name"),
            ],
        )
        .or_else(|| locate(text, &[Step::Field(chain), Step::Field("rules")]))
        .unwrap_or((1, 1))
    };
    let (pos_a, pos_b) = (at(a), at(b));
    let (first, second, pos) = if pos_b >= pos_a {
        (a, b, pos_b)
    } else {
        (b, a, pos_a)
    };
    let rule = |(chain, i): Place| format!("{chain} rule {}", i + 1);
    ConfigError {
        file: file.to_string(),
        line: pos.0,
        col: pos.1,
        message: format!(
            "duplicate rule name {name:?}: {} has the name of {}; names must be unique \
             in a chain (a reload carries counters over by name)",
            rule(second),
            rule(first)
        ),
    }
}
