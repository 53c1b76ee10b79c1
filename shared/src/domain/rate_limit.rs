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

#[cfg(test)]
mod tests {
    use super::*;

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
