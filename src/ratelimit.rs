//! Token buckets, refilled from the injected clock: what keeps answers and
//! log lines from amplifying a flood.

use crate::time::Instant;

/// A token bucket: `rate` tokens per second up to `burst`.
///
/// Guarantees: never overflows or panics for any `rate`, `burst` or time
/// (the arithmetic saturates); a bucket with `burst` 0 never gives a token.
#[derive(Clone, Copy, Debug)]
pub struct TokenBucket {
    rate_per_sec: u64,
    burst: u64,
    tokens_milli: u64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate_per_sec: u64, burst: u64) -> TokenBucket {
        TokenBucket {
            rate_per_sec,
            burst,
            tokens_milli: burst.saturating_mul(1000),
            last: Instant::ZERO,
        }
    }

    /// Take a token if one is available at `now`.
    pub fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.total_millis().saturating_sub(self.last.total_millis());
        self.last = self.last.max(now);
        self.tokens_milli = self
            .tokens_milli
            .saturating_add(elapsed.saturating_mul(self.rate_per_sec))
            .min(self.burst.saturating_mul(1000));
        if self.tokens_milli >= 1000 {
            self.tokens_milli -= 1000;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refills_at_its_rate_up_to_its_burst() {
        let mut b = TokenBucket::new(2, 3);
        let t0 = Instant::from_secs(100);
        assert_eq!((0..5).filter(|_| b.take(t0)).count(), 3);
        // Half a second at 2/s is one token.
        assert!(b.take(Instant::from_millis(100_500)));
        assert!(!b.take(Instant::from_millis(100_500)));
        // A long pause refills up to the burst only.
        let later = Instant::from_secs(10_000);
        assert_eq!((0..10).filter(|_| b.take(later)).count(), 3);
        // A zero burst never gives a token; a zero rate never refills.
        let mut off = TokenBucket::new(1000, 0);
        assert!(!off.take(Instant::ZERO) && !off.take(Instant::NEVER));
        let mut once = TokenBucket::new(0, 1);
        assert!(once.take(Instant::ZERO));
        assert!(!once.take(Instant::NEVER));
    }

    #[test]
    fn arithmetic_cannot_overflow() {
        // burst * 1000 would wrap to 384 thousandths: no token at all.
        let mut b = TokenBucket::new(0, 18_446_744_073_709_552);
        assert!((0..1000).all(|_| b.take(Instant::ZERO)));
        for (rate, burst) in [
            (u64::MAX, u64::MAX),
            (u64::MAX, 1),
            (1, u64::MAX),
            (u64::MAX, 0),
            (0, u64::MAX),
        ] {
            let mut b = TokenBucket::new(rate, burst);
            for now in [
                Instant::ZERO,
                Instant::from_millis(1),
                Instant::from_millis(u64::MAX / 2),
                Instant::NEVER,
            ] {
                assert_eq!(b.take(now), burst > 0, "rate {rate} burst {burst}");
            }
            // The clock going back refills nothing (and does not underflow).
            let left = b.tokens_milli;
            b.take(Instant::ZERO);
            assert!(b.tokens_milli <= left);
        }
    }
}
