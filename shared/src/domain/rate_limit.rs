//! Fixed-window rate limiting: the arithmetic of one counted hit.

/// Where a subject stands in the current window after one more hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateStatus {
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the current window ends.
    pub reset_secs: u64,
    pub allowed: bool,
}

/// A hit over the limit: retry once the window has passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("rate limit of {limit} exceeded, retry in {retry_after} s")]
pub struct RateLimited {
    pub limit: u32,
    pub retry_after: u64,
}

impl RateStatus {
    pub fn check(&self) -> Result<(), RateLimited> {
        if self.allowed {
            Ok(())
        } else {
            Err(RateLimited {
                limit: self.limit,
                retry_after: self.reset_secs.max(1),
            })
        }
    }

    /// The count after this hit decides.
    pub fn from_count(count: u64, limit: u32, window_secs: u64, now_unix: i64) -> Self {
        let into_window = now_unix.rem_euclid(window_secs as i64) as u64;
        RateStatus {
            limit,
            remaining: (limit as u64).saturating_sub(count) as u32,
            reset_secs: window_secs - into_window,
            allowed: count <= limit as u64,
        }
    }
}

/// The start of the fixed window `now_unix` falls in.
pub fn window_start(now_unix: i64, window_secs: u64) -> i64 {
    now_unix - now_unix.rem_euclid(window_secs as i64)
}

/// One instance's share of a subject's current window for request quotas, so that a key far
/// below its limit costs no counter write per request: an instance admits up to a tenth of
/// the limit (and only while the window looks at most half used) before it adds what it
/// admitted to the shared counter, then counts every hit there. A burst spread over `n`
/// instances can pass the limit by at most `n` tenths of it; limits under 10 are exact.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LocalWindow {
    window_start: i64,
    /// Hits admitted here and not yet added to the shared counter.
    unflushed: u64,
    /// The shared counter's value at this instance's last write in the window.
    known_total: u64,
}

/// What to do with one more hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalDecision {
    /// Admitted without a write; the status is this instance's estimate.
    Admit(RateStatus),
    /// Add this many hits to the shared counter; its new value decides (`flushed`).
    Flush(u64),
}

impl LocalWindow {
    pub fn hit(&mut self, limit: u32, window_secs: u64, now_unix: i64) -> LocalDecision {
        let window_start = window_start(now_unix, window_secs);
        if window_start != self.window_start {
            *self = LocalWindow {
                window_start,
                ..LocalWindow::default()
            };
        }
        let allowance = u64::from(limit) / 10;
        let estimate = self.known_total + self.unflushed + 1;
        if self.unflushed < allowance && estimate * 2 <= u64::from(limit) {
            self.unflushed += 1;
            return LocalDecision::Admit(RateStatus::from_count(
                estimate,
                limit,
                window_secs,
                now_unix,
            ));
        }
        LocalDecision::Flush(self.unflushed + 1)
    }

    /// The shared counter answered `total` to a flush of this window's hits.
    pub fn flushed(&mut self, total: u64) {
        self.unflushed = 0;
        self.known_total = total;
    }

    pub fn window_start(&self) -> i64 {
        self.window_start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn far_below_the_limit_an_instance_writes_once_per_tenth() {
        let mut w = LocalWindow::default();
        // 600 a minute: 60 admitted locally, the 61st adds all 61 to the counter.
        for n in 1..=60 {
            match w.hit(600, 60, 120) {
                LocalDecision::Admit(s) => assert!(s.allowed && s.remaining == 600 - n),
                other => panic!("hit {n}: {other:?}"),
            }
        }
        assert_eq!(w.hit(600, 60, 130), LocalDecision::Flush(61));
        w.flushed(300); // other instances counted too
                        // Half the limit is used: from now on every hit is counted in the shared counter.
        assert_eq!(w.hit(600, 60, 131), LocalDecision::Flush(1));
        w.flushed(301);
        assert_eq!(w.hit(600, 60, 131), LocalDecision::Flush(1));
    }

    #[test]
    fn a_new_window_starts_afresh_and_small_limits_are_exact() {
        let mut w = LocalWindow::default();
        assert!(matches!(w.hit(600, 60, 100), LocalDecision::Admit(_)));
        assert_eq!(w.window_start(), 60);
        assert!(matches!(w.hit(600, 60, 125), LocalDecision::Admit(s) if s.remaining == 599));
        assert_eq!(w.window_start(), 120);
        let mut small = LocalWindow::default();
        for _ in 0..3 {
            assert_eq!(small.hit(9, 60, 0), LocalDecision::Flush(1));
            small.flushed(1);
        }
    }

    #[test]
    fn a_window_that_looks_half_used_is_counted_exactly() {
        let mut w = LocalWindow::default();
        assert_eq!(
            w.hit(100, 60, 0),
            LocalDecision::Admit(RateStatus::from_count(1, 100, 60, 0))
        );
        assert!(matches!(w.hit(100, 60, 0), LocalDecision::Admit(_)));
        w.flushed(49); // as if a flush had seen 49 (ours included)
        assert_eq!(
            w.hit(100, 60, 1),
            LocalDecision::Admit(RateStatus::from_count(50, 100, 60, 1))
        );
        assert_eq!(w.hit(100, 60, 1), LocalDecision::Flush(2));
    }

    #[test]
    fn window_arithmetic() {
        let s = RateStatus::from_count(3, 5, 60, 125);
        assert_eq!((s.allowed, s.remaining, s.reset_secs), (true, 2, 55));
        let s = RateStatus::from_count(6, 5, 60, 179);
        assert_eq!((s.allowed, s.remaining, s.reset_secs), (false, 0, 1));
        assert_eq!(
            s.check(),
            Err(RateLimited {
                limit: 5,
                retry_after: 1
            })
        );
        let s = RateStatus::from_count(5, 5, 60, 120);
        assert!(s.allowed && s.reset_secs == 60);
    }
}
