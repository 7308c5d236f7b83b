//! Rule names are unique in the whole config, across both chains.
//!
//! A reload carries a rule's packet and byte counters over to the rule of
//! the same name (see `Chain::inherit_counters`), and `ctl rules`, the log
//! lines and the counters name rules by it; two rules of one name would
//! make each of those ambiguous. Unique in the whole config rather than per
//! chain because it is the simpler rule to state and to grep for. Rules
//! without a name are not affected.

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
    let mut seen: HashMap<&str, Place> = HashMap::new();
    for (chain, rules) in chains {
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
             in the whole config (a reload carries counters over by name)",
            rule(second),
            rule(first)
        ),
    }
}
