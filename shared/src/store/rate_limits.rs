//! Fixed-window rate counters in DynamoDB, shared by every Lambda instance.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::types::ReturnValue;
use aws_sdk_dynamodb::Client;

use super::{n, s};
pub use crate::domain::rate_limit::RateStatus;
use crate::domain::rate_limit::{window_start, LocalDecision, LocalWindow};

/// Subjects whose local windows an instance keeps before it forgets closed ones.
const LOCAL_WINDOWS: usize = 1024;

#[derive(Clone)]
pub struct RateLimiter {
    client: Client,
    table: String,
    local: Arc<Mutex<HashMap<String, LocalWindow>>>,
}

impl RateLimiter {
    pub fn new(client: Client, table: String) -> Self {
        Self {
            client,
            table,
            local: Arc::default(),
        }
    }

    /// Counts one request against a quota, writing to the shared counter only once this
    /// instance has admitted a tenth of the limit in the window (`LocalWindow`): a key far below
    /// its limit costs no write per request. For failure budgets, where every hit must count
    /// at once, use `hit`.
    pub async fn hit_quota(
        &self,
        subject: &str,
        limit: u32,
        window_secs: u64,
        now_unix: i64,
    ) -> RateStatus {
        let decision = {
            let mut local = self.local.lock().unwrap_or_else(|e| e.into_inner());
            if local.len() >= LOCAL_WINDOWS && !local.contains_key(subject) {
                let current = window_start(now_unix, window_secs);
                local.retain(|_, w| w.window_start() == current);
            }
            local
                .entry(subject.to_string())
                .or_default()
                .hit(limit, window_secs, now_unix)
        };
        let add = match decision {
            LocalDecision::Admit(status) => return status,
            LocalDecision::Flush(add) => add,
        };
        let count = self.add(subject, add, window_secs, now_unix).await;
        if let Some(total) = count {
            let mut local = self.local.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(w) = local.get_mut(subject) {
                w.flushed(total);
            }
        }
        RateStatus::from_count(count.unwrap_or(1), limit, window_secs, now_unix)
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
        let count = self.add(subject, 1, window_secs, now_unix).await;
        RateStatus::from_count(count.unwrap_or(1), limit, window_secs, now_unix)
    }

    /// Adds `hits` to the subject's counter of the current window: its new value, or `None`
    /// (logged) when DynamoDB fails.
    async fn add(&self, subject: &str, hits: u64, window_secs: u64, now_unix: i64) -> Option<u64> {
        let window_start = window_start(now_unix, window_secs);
        let bucket = format!("{subject}#{window_start}");
        // Counters expire a window after they close (TTL; reads never rely on it).
        let expires = window_start + 2 * window_secs as i64;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("bucket", s(bucket))
            .update_expression("ADD hits :one SET expiresAt = :exp")
            .expression_attribute_values(":one", n(hits))
            .expression_attribute_values(":exp", n(expires))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await;
        match result {
            Ok(out) => out
                .attributes
                .and_then(|a| a.get("hits").and_then(|v| v.as_n().ok()).cloned())
                .and_then(|n| n.parse::<u64>().ok()),
            Err(err) => {
                tracing::warn!(error = %aws_sdk_dynamodb::error::DisplayErrorContext(&err), "rate counter unavailable; allowing request");
                None
            }
        }
    }
}
