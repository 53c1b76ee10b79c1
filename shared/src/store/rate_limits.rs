//! Fixed-window rate counters in DynamoDB, shared by every Lambda instance.

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use aws_sdk_dynamodb::Client;

use super::s;
use crate::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateStatus {
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the current window ends.
    pub reset_secs: u64,
    pub allowed: bool,
}

impl RateStatus {
    /// IETF `RateLimit-*` headers for a response.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        vec![
            ("ratelimit-limit", self.limit.to_string()),
            ("ratelimit-remaining", self.remaining.to_string()),
            ("ratelimit-reset", self.reset_secs.to_string()),
        ]
    }

    pub fn check(&self) -> Result<(), ApiError> {
        if self.allowed {
            Ok(())
        } else {
            Err(ApiError::RateLimited {
                limit: self.limit,
                retry_after: self.reset_secs.max(1),
            })
        }
    }

    /// Pure window arithmetic: the count after this hit decides.
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
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":exp", AttributeValue::N(expires.to_string()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_arithmetic() {
        let s = RateStatus::from_count(3, 5, 60, 125);
        assert_eq!((s.allowed, s.remaining, s.reset_secs), (true, 2, 55));
        let s = RateStatus::from_count(6, 5, 60, 179);
        assert_eq!((s.allowed, s.remaining, s.reset_secs), (false, 0, 1));
        assert!(s.check().is_err());
        let s = RateStatus::from_count(5, 5, 60, 120);
        assert!(s.allowed && s.reset_secs == 60);
    }
}
