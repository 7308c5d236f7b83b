//! The `sets` section: named address and port sets that rules use as
//! `"@name"` (see [`crate::sets`]), and the resolution of those references.
//!
//! ```ron
//! sets: {
//!     "blocklist": (kind: Address, max: 100000, elements: ["192.0.2.0/24"]),
//!     "admin": (kind: Port, elements: ["22", "8000:8080"]),
//! },
//! ```
//!
//! `max` (1 to [`MAX_SET_ELEMENTS`], default [`DEFAULT_SET_MAX`]) sizes the
//! set's table at start; `elements` (at most `max`) are its elements from
//! the config. At most [`MAX_SETS`] sets; names are 1 to 64 letters,
//! digits, `-` and `_`.

use std::collections::BTreeMap;

use serde::de::{self, Deserializer};
use serde::Deserialize;

use super::error::ConfigError;
use super::ron_text::{locate, Step};
use crate::rules::Rule;
use crate::sets::{Set, SetDefinition, SetKind, DEFAULT_SET_MAX, MAX_SETS, MAX_SET_ELEMENTS};
use crate::time::Instant;

/// One set in the config.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetConfig {
    /// `Address` or `Port`.
    pub kind: SetKind,
    /// The most elements it holds (its table is allocated for that many).
    #[serde(default = "default_max", deserialize_with = "set_max")]
    pub max: usize,
    /// Elements from the config.
    #[serde(default)]
    pub elements: Vec<String>,
}

fn default_max() -> usize {
    DEFAULT_SET_MAX
}

fn set_max<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let n = u64::deserialize(d)?;
    if n == 0 || n > MAX_SET_ELEMENTS as u64 {
        return Err(de::Error::custom(format!(
            "{n} is out of range: a set's max must be 1 to {MAX_SET_ELEMENTS} elements"
        )));
    }
    Ok(n as usize)
}

/// The `sets` section, by name (in name order: rules refer to a set by its
/// index in that order).
pub type SetsSection = BTreeMap<String, SetConfig>;

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The definitions of `sets`, in index order.
pub fn definitions(sets: &SetsSection) -> Vec<SetDefinition> {
    sets.iter()
        .map(|(name, c)| SetDefinition {
            name: name.clone(),
            kind: c.kind,
            max: c.max,
            elements: c.elements.clone(),
        })
        .collect()
}

fn error_at(text: &str, file: &str, at: &[Step<'_>], message: String) -> ConfigError {
    let (line, col) = locate(text, at).unwrap_or((1, 1));
    ConfigError {
        file: file.to_string(),
        line,
        col,
        message,
    }
}

/// Check the section (names, element counts, every element parses as its
/// set's kind), then resolve every `"@name"` of `chains` to its set's index,
/// or report the first reference to a set that is missing or of the other
/// kind, at the rule's field.
pub(super) fn check_and_resolve(
    sets: &SetsSection,
    chains: [(&'static str, &mut [Rule]); 2],
    text: &str,
    file: &str,
) -> Result<(), ConfigError> {
    if sets.len() > MAX_SETS {
        return Err(error_at(
            text,
            file,
            &[Step::Field("sets")],
            format!("more than {MAX_SETS} sets"),
        ));
    }
    for (name, c) in sets {
        let here = [Step::Field("sets")];
        if !valid_name(name) {
            return Err(error_at(
                text,
                file,
                &here,
                format!("set name {name:?}: 1 to 64 letters, digits, - and _"),
            ));
        }
        if c.elements.len() > c.max {
            return Err(error_at(
                text,
                file,
                &here,
                format!(
                    "set {name:?} has {} elements, more than its max of {}",
                    c.elements.len(),
                    c.max
                ),
            ));
        }
        let mut probe = Set::new(c.kind, c.elements.len().max(1));
        for e in &c.elements {
            probe
                .add(e, None, false, Instant::from_secs(0))
                .map_err(|err| error_at(text, file, &here, format!("set {name:?}: {err}")))?;
        }
    }
    let index: BTreeMap<&str, (usize, SetKind)> = sets
        .iter()
        .enumerate()
        .map(|(i, (n, c))| (n.as_str(), (i, c.kind)))
        .collect();
    for (chain, rules) in chains {
        for (i, rule) in rules.iter_mut().enumerate() {
            for (field, r) in rule.set_refs_mut() {
                let want = match field {
                    "src" | "dst" | "limit" => SetKind::Address,
                    _ => SetKind::Port,
                };
                let at = [
                    Step::Field(chain),
                    Step::Field("rules"),
                    Step::Index(i),
                    Step::Field(field),
                ];
                match index.get(r.name.as_str()) {
                    Some(&(k, kind)) if kind == want => r.index = k,
                    Some(&(_, kind)) => {
                        return Err(error_at(
                            text,
                            file,
                            &at,
                            format!(
                                "{field}: @{} is a set of kind {}; {field} needs a set of kind {}",
                                r.name,
                                kind.as_str(),
                                want.as_str()
                            ),
                        ))
                    }
                    None => {
                        return Err(error_at(
                            text,
                            file,
                            &at,
                            format!("{field}: no set named {:?} in the sets section", r.name),
                        ))
                    }
                }
            }
        }
    }
    Ok(())
}
