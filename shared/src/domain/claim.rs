//! Claims: a worker marks a record as its own for a lease before a side
//! effect (an e-mail, a webhook POST), so copies of a job never both do it,
//! and a worker that died mid-way is taken over once its lease lapses.

use chrono::{DateTime, Utc};

/// Seconds until a claim that holds until `claimed_until` (epoch ms) lapses,
/// rounded up; `None` when there is no claim or it has lapsed.
pub fn seconds_left(claimed_until: Option<i64>, now: DateTime<Utc>) -> Option<u64> {
    let left_ms = claimed_until? - now.timestamp_millis();
    (left_ms > 0).then(|| (left_ms as u64).div_ceil(1000))
}

/// The end of a lease of `lease_seconds` taken at `now`, in epoch ms.
pub fn until(now: DateTime<Utc>, lease_seconds: u64) -> i64 {
    now.timestamp_millis() + (lease_seconds as i64) * 1000
}

/// A fresh claim id: tells this worker's writes apart from a successor's.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn leases_lapse_after_their_seconds() {
        let now = Utc::now();
        let until = until(now, 45);
        assert_eq!(seconds_left(Some(until), now), Some(45));
        assert_eq!(
            seconds_left(Some(until), now + Duration::milliseconds(44_001)),
            Some(1)
        );
        assert_eq!(seconds_left(Some(until), now + Duration::seconds(45)), None);
        assert_eq!(seconds_left(None, now), None);
    }
}
