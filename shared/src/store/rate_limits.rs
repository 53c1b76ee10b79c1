//! Fixed-window rate counters in DynamoDB, shared by every Lambda instance.

use aws_sdk_dynamodb::types::ReturnValue;
use aws_sdk_dynamodb::Client;

use super::{n, s};
pub use crate::domain::rate_limit::RateStatus;

#[derive(Clone)]
pub struct RateLimiter {
    client: Client,
    table: String,
}

impl RateLimiter {
    pub fn new(client: Client, table: String) -> Self {
        Self { client, table }
    }

    /// Counts one hit on `subject` in the current window. If DynamoDB itself
    /// fails, the request is let through (logged): an IVR mid-call must not
    /// be refused because a counter could not be written.
    pub async fn hit(
        &self,
        subject: &str,
        limit: u32,
        window_secs: u64,
        now_unix: i64,
    ) -> RateStatus {
        let window_start = now_unix - now_unix.rem_euclid(window_secs as i64);
        let bucket = format!("{subject}#{window_start}");
        // Counters expire a window after they close (TTL; reads never rely on it).
        let expires = window_start + 2 * window_secs as i64;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("bucket", s(bucket))
            .update_expression("ADD hits :one SET expiresAt = :exp")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":exp", n(expires))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await;
        let count = match result {
            Ok(out) => out
                .attributes
                .and_then(|a| a.get("hits").and_then(|v| v.as_n().ok()).cloned())
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(1),
            Err(err) => {
                tracing::warn!(error = %aws_sdk_dynamodb::error::DisplayErrorContext(&err), "rate counter unavailable; allowing request");
                1
            }
        };
        RateStatus::from_count(count, limit, window_secs, now_unix)
    }
}
