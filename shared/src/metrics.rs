//! CloudWatch embedded-metric-format counters: one JSON line on stdout per
//! count, which Lambda's log pipeline turns into metrics (no API call, no
//! client, nothing to configure).

use std::io::Write;

pub const NAMESPACE: &str = "Pulsara/IVR";

pub const CALLS_PROCESSED: &str = "CallsProcessed";
pub const CALLS_COMPLETED: &str = "CallsCompleted";
pub const EMAILS_SENT: &str = "EmailsSent";
pub const EMAILS_QUEUED: &str = "EmailsQueued";
pub const EMAILS_FAILED: &str = "EmailsFailed";
pub const EMAILS_SUPPRESSED: &str = "EmailsSuppressed";
pub const EMAILS_BOUNCED: &str = "EmailsBounced";
pub const EMAILS_COMPLAINED: &str = "EmailsComplained";
pub const DELIVERIES_SUCCEEDED: &str = "WebhookDeliveriesSucceeded";
pub const DELIVERIES_FAILED: &str = "WebhookDeliveriesFailed";
pub const RATE_LIMITED: &str = "RateLimitedRequests";

/// The EMF document for one counter (pure, for tests).
pub fn document(name: &str, value: u64, function: &str, timestamp_ms: i64) -> serde_json::Value {
    serde_json::json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Function"]],
                "Metrics": [{"Name": name, "Unit": "Count"}],
            }],
        },
        "Function": function,
        name: value,
    })
}

pub fn count(name: &str, value: u64) {
    let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "local".into());
    let line = document(
        name,
        value,
        &function,
        chrono::Utc::now().timestamp_millis(),
    );
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
}

#[cfg(test)]
mod tests {
    #[test]
    fn emf_shape() {
        let d = super::document(super::EMAILS_SENT, 1, "complete-call", 1);
        assert_eq!(d["EmailsSent"], 1);
        assert_eq!(
            d["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"],
            "EmailsSent"
        );
        assert_eq!(
            d["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0][0],
            "Function"
        );
    }
}
