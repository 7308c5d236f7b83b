//! The range of every numeric config field, checked while deserializing:
//! a [`Bounds`] per kind of number (the table in the `config` module's
//! documentation) and a `deserialize_with` function per field, whose
//! errors name the value and the range.

use core::fmt;

use serde::de::{self, Deserializer};

/// An inclusive range of a numeric field, with the unit its messages name.
#[derive(Clone, Copy, Debug)]
pub(super) struct Bounds {
    min: u64,
    max: u64,
    unit: &'static str,
}

/// Every conntrack timeout: 1 s to 50 days (ten times Linux's longest
/// default, TCP ESTABLISHED's 432,000 s). Zero is refused: it is not "never".
pub(super) const TIMEOUT_SECS: Bounds = Bounds {
    min: 1,
    max: 4_320_000,
    unit: " seconds",
};
pub(super) const FLOWS: Bounds = Bounds {
    min: 1,
    max: crate::conntrack::index::MAX_FLOWS as u64,
    unit: "",
};
pub(super) const TCP_MAX_RETRANS: Bounds = Bounds {
    min: 0,
    max: u8::MAX as u64,
    unit: "",
};
/// Pending expectations: a table of this size is allocated at start.
pub(super) const EXPECTATIONS: Bounds = Bounds {
    min: 1,
    max: 65_536,
    unit: "",
};
/// An FTP expectation's lifetime: 1 s to a day (Linux: 300 s).
pub(super) const EXPECTATION_TIMEOUT_SECS: Bounds = Bounds {
    min: 1,
    max: 86_400,
    unit: " seconds",
};
/// FTP control flows with helper state (a line buffer each, allocated at start).
pub(super) const FTP_CONTROL_FLOWS: Bounds = Bounds {
    min: 1,
    max: 65_536,
    unit: "",
};
pub(super) const LOG_PER_SECOND: Bounds = Bounds {
    min: 1,
    max: 1_000_000,
    unit: "",
};
/// 0 is allowed: no log lines at all.
pub(super) const LOG_BURST: Bounds = Bounds {
    min: 0,
    max: 1_000_000,
    unit: "",
};

/// Reassembly memory (both thresholds): 64 KiB to 256 MiB (64 times
/// Linux's default), allocated at start.
pub(super) const DEFRAG_BYTES: Bounds = Bounds {
    min: 65_536,
    max: 256 << 20,
    unit: " bytes",
};
/// A reassembly queue's lifetime: 1 s to 10 minutes (Linux: 30 s IPv4, 60 s IPv6).
pub(super) const DEFRAG_TIMEOUT_SECS: Bounds = Bounds {
    min: 1,
    max: 600,
    unit: " seconds",
};

/// The transmit queue of each TUN device (the kernel's ring of packets
/// waiting for tunfw's read): Linux's TUN default is 500.
pub(super) const QUEUE_LEN: Bounds = Bounds {
    min: 16,
    max: 65_536,
    unit: " packets",
};

impl Bounds {
    fn describe(self) -> String {
        format!("must be {} to {}{}", self.min, self.max, self.unit)
    }

    /// Panics unless `n`, the default of `what`, is inside: omitted fields
    /// take their defaults without passing the range checks.
    #[cfg(test)]
    pub(super) fn assert_default(self, what: &str, n: u64) {
        assert!(
            (self.min..=self.max).contains(&n),
            "default {what} = {n}: {}",
            self.describe()
        );
    }
}

impl<'de> de::Visitor<'de> for Bounds {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an integer {} to {}{}", self.min, self.max, self.unit)
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<u64, E> {
        if (self.min..=self.max).contains(&n) {
            Ok(n)
        } else {
            Err(E::custom(format!(
                "{n} is out of range: {}",
                self.describe()
            )))
        }
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<u64, E> {
        match u64::try_from(n) {
            Ok(n) => self.visit_u64(n),
            Err(_) => Err(E::custom(format!(
                "{n} is out of range: {}",
                self.describe()
            ))),
        }
    }

    // Integers beyond i64/u64 arrive as floats (as do `5.0`, `1.5`, `inf`).
    fn visit_f64<E: de::Error>(self, x: f64) -> Result<u64, E> {
        let outside = x < self.min as f64 || x > self.max as f64;
        Err(E::custom(if x.fract() == 0.0 && outside {
            format!("{x:e} is out of range: {}", self.describe())
        } else {
            format!("{x:?} is not an integer: {}", self.describe())
        }))
    }
}

/// A number within `bounds`. `deserialize_any` lets negative numbers and
/// ones beyond `u64` reach the range message too (ron hands them over as
/// `i64` and `f64`); anything else is reported as not being such an integer.
fn in_range<'de, D: Deserializer<'de>>(d: D, bounds: Bounds) -> Result<u64, D::Error> {
    d.deserialize_any(bounds)
}

// The largest bound (16,777,215) fits any usize.
fn count<'de, D: Deserializer<'de>>(d: D, bounds: Bounds) -> Result<usize, D::Error> {
    in_range(d, bounds).map(|n| n as usize)
}

pub(super) fn timeout<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    in_range(d, TIMEOUT_SECS)
}

pub(super) fn flow_count<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    count(d, FLOWS)
}

pub(super) fn retrans<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    in_range(d, TCP_MAX_RETRANS).map(|n| n as u8)
}

pub(super) fn expectation_count<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    count(d, EXPECTATIONS)
}

pub(super) fn expectation_timeout<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    in_range(d, EXPECTATION_TIMEOUT_SECS)
}

pub(super) fn control_flow_count<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    count(d, FTP_CONTROL_FLOWS)
}

pub(super) fn log_per_second<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    in_range(d, LOG_PER_SECOND)
}

pub(super) fn log_burst<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    in_range(d, LOG_BURST)
}

pub(super) fn defrag_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    count(d, DEFRAG_BYTES)
}

pub(super) fn defrag_timeout<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    in_range(d, DEFRAG_TIMEOUT_SECS)
}

pub(super) fn queue_len<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    in_range(d, QUEUE_LEN).map(|n| n as u32)
}
