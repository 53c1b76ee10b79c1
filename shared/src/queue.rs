//! SQS job queues (e-mail retries, webhook deliveries).

use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::Client;

#[derive(Debug, thiserror::Error)]
#[error("SQS request failed: {0}")]
pub struct QueueError(pub String);

/// SQS caps DelaySeconds at 15 minutes.
pub const MAX_DELAY_SECONDS: u64 = 900;
/// SQS caps a message's visibility timeout at 12 hours: longer waits take
/// several receives (the job sees it isn't due yet and waits again).
pub const MAX_VISIBILITY_SECONDS: u64 = 43_200;

#[derive(Clone)]
pub struct JobQueue {
    client: Client,
    url: String,
}

impl JobQueue {
    pub fn new(client: Client, url: String) -> Self {
        Self { client, url }
    }

    pub async fn send(&self, body: &str, delay_seconds: u64) -> Result<(), QueueError> {
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .delay_seconds(delay_seconds.min(MAX_DELAY_SECONDS) as i32)
            .send()
            .await
            .map_err(|e| QueueError(DisplayErrorContext(&e).to_string()))?;
        Ok(())
    }

    /// Hides a received message for `seconds` more: the retry backoff.
    pub async fn retry_in(&self, receipt_handle: &str, seconds: u64) -> Result<(), QueueError> {
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(seconds.min(MAX_VISIBILITY_SECONDS) as i32)
            .send()
            .await
            .map_err(|e| QueueError(DisplayErrorContext(&e).to_string()))?;
        Ok(())
    }
}

/// Exponential backoff with jitter: base·2^(attempt-1), capped, plus up to
/// half a base of random spread so retries of a burst don't align.
pub fn backoff_seconds(base: u64, attempt: u32, cap: u64) -> u64 {
    let exp = base.saturating_mul(1u64 << attempt.saturating_sub(1).min(20));
    let mut b = [0u8; 2];
    crate::domain::hashing::random_bytes(&mut b);
    let jitter = (u16::from_le_bytes(b) as u64) % (base / 2 + 1);
    exp.min(cap) + jitter.min(cap.saturating_sub(exp.min(cap)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 1..=12 {
            let d = backoff_seconds(30, attempt, 900);
            let floor = (30u64 << (attempt - 1)).min(900);
            assert!(
                d >= floor && d <= 900.max(floor) && d <= floor + 15,
                "{attempt}: {d}"
            );
        }
        assert!(backoff_seconds(1, 1, 900) <= 1);
    }
}
