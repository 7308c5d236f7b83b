//! Configs as RON text: the options they are read with, and where a value
//! is in the text, for checks made after parsing (duplicate rule names,
//! the memory budget) whose errors must still point at `FILE:LINE:COL`.
//!
//! serde hands values over without positions, but ron gives every error
//! the position it was raised at. [`locate`] reads the text again with a
//! visitor that walks down a path, skipping everything beside it, and
//! raises an error at the value the path ends at: that error's position is
//! the value's, the one any error about that value would have had.

use core::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// How configs are read: optional fields take bare values (`proto: Tcp`).
pub(super) fn options() -> ron::Options {
    ron::Options::default().with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME)
}

/// One step of a path into a config: a struct field or a list element.
#[derive(Clone, Copy, Debug)]
pub(super) enum Step<'a> {
    /// The field of this name.
    Field(&'a str),
    /// The element at this 0-based index.
    Index(usize),
}

/// The error that marks the value found; any other error means "not found".
const FOUND: &str = "tunfw: located";

/// The 1-based line and column of the value at `path` in `text` (a string's
/// position is just inside its opening quote, as ron reports it), or `None`
/// if the text has no such value.
pub(super) fn locate(text: &str, path: &[Step<'_>]) -> Option<(usize, usize)> {
    match options().from_str_seed(text, Seek(path)) {
        Err(e) if e.code == ron::Error::Message(FOUND.to_string()) => {
            Some((e.span.start.line, e.span.start.col))
        }
        _ => None,
    }
}

/// Walks the rest of the path from the value about to be read.
struct Seek<'p, 'a>(&'p [Step<'a>]);

impl<'de> DeserializeSeed<'de> for Seek<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        match self.0.first() {
            None => d.deserialize_any(Here),
            // Unnamed RON structs and maps both read as maps.
            Some(Step::Field(_)) => d.deserialize_struct("", &[], self),
            Some(Step::Index(_)) => d.deserialize_seq(self),
        }
    }
}

impl<'de> Visitor<'de> for Seek<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a struct or a list")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some(Step::Field(want)) = self.0.first() else {
            return Err(de::Error::custom("not a list"));
        };
        while let Some(key) = map.next_key::<Key>()? {
            if key.0 == *want {
                return map.next_value_seed(Seek(&self.0[1..]));
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some(&Step::Index(want)) = self.0.first() else {
            return Err(de::Error::custom("not a struct"));
        };
        for _ in 0..want {
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Ok(());
            }
        }
        seq.next_element_seed(Seek(&self.0[1..])).map(|_| ())
    }
}

/// A field name.
struct Key(String);

impl<'de> de::Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Key, E> {
                Ok(Key(s.to_string()))
            }
        }
        d.deserialize_identifier(V)
    }
}

/// The value found: fails as soon as ron has read its first token, so the
/// error carries the position an error about the value would.
struct Here;

impl<'de> Visitor<'de> for Here {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Err(E::custom(FOUND))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Err(E::custom(FOUND))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Err(E::custom(FOUND))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Err(E::custom(FOUND))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Err(E::custom(FOUND))
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Err(E::custom(FOUND))
    }
    fn visit_some<D: Deserializer<'de>>(self, _: D) -> Result<(), D::Error> {
        Err(de::Error::custom(FOUND))
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(E::custom(FOUND))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(de::Error::custom(FOUND))
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(de::Error::custom(FOUND))
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(de::Error::custom(FOUND))
    }
}

#[cfg(test)]
mod tests {
    use super::Step::{Field, Index};
    use super::*;

    const DEFAULT: &str = crate::config::DEFAULT_CONFIG;

    /// The 1-based line and column of the first `needle` in the default config.
    fn at(needle: &str) -> (usize, usize) {
        let i = DEFAULT.find(needle).expect("in the default config");
        let before = &DEFAULT[..i];
        let line_start = before.rfind('\n').map_or(0, |n| n + 1);
        (before.matches('\n').count() + 1, i - line_start + 1)
    }

    #[test]
    fn finds_values_past_enums_lists_comments_and_options() {
        let max = [Field("conntrack"), Field("max")];
        let (line, col) = at("65536");
        assert_eq!(locate(DEFAULT, &max), Some((line, col)));
        // Past every other field and rule; a string points inside its quotes.
        let name = [Field("inbound"), Field("rules"), Index(6), Field("name")];
        let (line, col) = at("ftp-passive-data-in");
        assert_eq!(locate(DEFAULT, &name), Some((line, col)));
        let ports = [Field("helpers"), Field("ftp"), Field("ports")];
        let (line, col) = at("21\", expectation_timeout");
        assert_eq!(locate(DEFAULT, &ports), Some((line, col)));
    }

    #[test]
    fn a_missing_value_is_none() {
        for path in [
            &[Field("outbound"), Field("rules"), Index(7), Field("name")][..],
            &[Field("outbound"), Field("rules"), Index(0), Field("dport")][..],
            &[Field("colour")][..],
            &[Field("ipv6"), Field("x")][..],
        ] {
            assert_eq!(locate(DEFAULT, path), None, "{path:?}");
        }
        assert_eq!(locate("(", &[Field("x")]), None);
    }
}
