//! Webhook workflows: registration and management by the owning key family,
//! fan-out of restaurant changes, and delivery with retries.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::auth::IvrCaller;
use crate::domain::restaurant::Restaurant;
use crate::domain::ssrf::TargetRules;
use crate::domain::validate::Errors;
use crate::domain::webhook::{
    self, changes, delivery_id, payload, random_id, Attempt, DeliveryRecord, DeliveryStatus,
    RegisterRequest, WebhookRecord, WebhookStatus, EVENT_TYPES, MAX_WEBHOOKS_PER_OWNER, TEST_EVENT,
};
use crate::error::ApiError;
use crate::queue::MAX_DELAY_SECONDS;
use crate::store::StoreError;

pub const MAX_SECRET_GRACE_SECONDS: i64 = 7 * 86_400;
pub const DEFAULT_SECRET_GRACE_SECONDS: i64 = 86_400;
/// A claim older than this is from a worker that died mid-send.
const CLAIM_STALE_SECONDS: i64 = 120;

/// A dispatcher job: the delivery to attempt, not before `not_before`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryJob {
    pub delivery_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<DateTime<Utc>>,
}

fn rules(state: &AppState) -> TargetRules {
    TargetRules {
        allow_loopback_http: state.config.webhook_allow_loopback_http,
    }
}

pub async fn enqueue(
    state: &AppState,
    delivery_id: &str,
    delay: u64,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let job = DeliveryJob {
        delivery_id: delivery_id.to_string(),
        not_before: (delay > MAX_DELAY_SECONDS).then(|| now + Duration::seconds(delay as i64)),
    };
    let body = serde_json::to_string(&job).map_err(ApiError::internal)?;
    state
        .webhook_queue()
        .send(&body, delay.min(MAX_DELAY_SECONDS))
        .await
        .map_err(ApiError::internal)
}

pub async fn register(
    state: &AppState,
    caller: &IvrCaller,
    req: RegisterRequest,
    now: DateTime<Utc>,
) -> Result<WebhookRecord, ApiError> {
    let mut e = Errors::new();
    let url = match crate::webhook_client::check_target(&req.callback_url, rules(state)).await {
        Ok(u) => Some(u),
        Err(why) => {
            e.add("callbackUrl", why);
            None
        }
    };
    let mut events: Vec<String> = Vec::new();
    if req.events.is_empty() {
        e.add(
            "events",
            format!("must list at least one of {}", EVENT_TYPES.join(", ")),
        );
    }
    for (i, ev) in req.events.iter().enumerate() {
        if !EVENT_TYPES.contains(&ev.as_str()) {
            e.add(
                format!("events[{i}]"),
                format!("must be one of {}", EVENT_TYPES.join(", ")),
            );
        } else if !events.contains(ev) {
            events.push(ev.clone());
        }
    }
    let description = req.description.map(|d| e.text("description", &d, 200));
    e.finish()?;
    let owner = caller.key.owner();
    if state.webhooks.by_owner(owner).await?.len() >= MAX_WEBHOOKS_PER_OWNER {
        return Err(ApiError::conflict(format!(
            "a key may register at most {MAX_WEBHOOKS_PER_OWNER} webhooks; delete one first"
        )));
    }
    let record = WebhookRecord {
        webhook_id: random_id("wh_"),
        owner_id: owner.to_string(),
        key_id: caller.key.key_id.clone(),
        callback_url: url.map(|u| u.to_string()).unwrap_or_default(),
        events,
        description,
        secret: webhook::generate_secret(),
        previous_secret: None,
        previous_secret_expires_at: None,
        restaurant_ids: caller.key.restaurant_ids.clone(),
        status: WebhookStatus::Active,
        disabled_reason: None,
        failing_since: None,
        created_at: now,
        updated_at: now,
    };
    state.webhooks.put(&record).await?;
    Ok(record)
}

/// A webhook of the caller's key family, or 404.
pub async fn own(
    state: &AppState,
    caller: &IvrCaller,
    webhook_id: &str,
) -> Result<WebhookRecord, ApiError> {
    match state.webhooks.get(webhook_id).await? {
        Some(w) if w.owner_id == caller.key.owner() => Ok(w),
        _ => Err(ApiError::NotFound("webhook")),
    }
}

pub async fn rotate_secret(
    state: &AppState,
    mut w: WebhookRecord,
    grace: i64,
    now: DateTime<Utc>,
) -> Result<WebhookRecord, ApiError> {
    w.previous_secret = Some(std::mem::replace(&mut w.secret, webhook::generate_secret()));
    w.previous_secret_expires_at = Some(now + Duration::seconds(grace));
    w.updated_at = now;
    state.webhooks.put(&w).await?;
    Ok(w)
}

async fn new_delivery(
    state: &AppState,
    w: &WebhookRecord,
    id: String,
    event_type: &str,
    body: String,
    replay_of: Option<String>,
    now: DateTime<Utc>,
) -> Result<DeliveryRecord, ApiError> {
    let mut d = DeliveryRecord::new(id, w, event_type, body, now);
    d.replay_of = replay_of;
    state.webhooks.insert_delivery(&d).await?;
    enqueue(state, &d.delivery_id, 0, now).await?;
    Ok(d)
}

pub async fn send_test(
    state: &AppState,
    w: &WebhookRecord,
    now: DateTime<Utc>,
) -> Result<DeliveryRecord, ApiError> {
    let body = payload(TEST_EVENT, None, &[], now);
    new_delivery(state, w, random_id("msg_"), TEST_EVENT, body, None, now).await
}

pub async fn replay(
    state: &AppState,
    w: &WebhookRecord,
    delivery_id: &str,
    now: DateTime<Utc>,
) -> Result<DeliveryRecord, ApiError> {
    let original = match state.webhooks.delivery(delivery_id).await? {
        Some(d) if d.webhook_id == w.webhook_id => d,
        _ => return Err(ApiError::NotFound("delivery")),
    };
    if w.status != WebhookStatus::Active {
        return Err(ApiError::conflict(
            "the webhook is disabled; register it again to receive deliveries",
        ));
    }
    new_delivery(
        state,
        w,
        random_id("msg_"),
        &original.event_type,
        original.payload.clone(),
        Some(original.delivery_id),
        now,
    )
    .await
}

/// Turns one restaurant change (a stream record) into deliveries: one per
/// kind of change and subscribed webhook. Idempotent on `source_event_id`.
pub async fn fan_out(
    state: &AppState,
    audience: &[WebhookRecord],
    source_event_id: &str,
    old: &Restaurant,
    new: &Restaurant,
    now: DateTime<Utc>,
) -> Result<usize, ApiError> {
    let mut created = 0;
    for change in changes(old, new) {
        let body = payload(
            change.event_type,
            Some(&new.restaurant_id),
            &change.changed_fields,
            now,
        );
        for w in audience
            .iter()
            .filter(|w| w.wants(change.event_type, &new.restaurant_id))
        {
            let id = delivery_id(source_event_id, &w.webhook_id, change.event_type);
            let d = DeliveryRecord::new(id, w, change.event_type, body.clone(), now);
            match state.webhooks.insert_delivery(&d).await {
                Ok(()) => {
                    enqueue(state, &d.delivery_id, 0, now).await?;
                    created += 1;
                }
                // Replayed record: this delivery exists. Re-queue it only if it
                // never got a first attempt (we may have died before queueing);
                // the dispatcher's claim keeps a duplicate job from double-sending.
                Err(StoreError::AlreadyExists) => {
                    if let Some(existing) = state.webhooks.delivery(&d.delivery_id).await? {
                        if existing.status == DeliveryStatus::Pending
                            && existing.attempts.is_empty()
                        {
                            enqueue(state, &d.delivery_id, 0, now).await?;
                        }
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(created)
}

/// What the dispatcher did with one job.
#[derive(Debug, PartialEq, Eq)]
pub enum Dispatched {
    Succeeded,
    /// Failed; the next attempt is queued.
    Retrying {
        delay: u64,
    },
    /// Failed for good (schedule exhausted, endpoint gone/disabled); in the DLQ.
    Failed,
    /// Nothing to do (already finished, claimed elsewhere, or re-delayed).
    Skipped,
}

async fn to_dead_letter(state: &AppState, d: &DeliveryRecord) -> Result<(), ApiError> {
    crate::metrics::count(crate::metrics::DELIVERIES_FAILED, 1);
    let body = serde_json::json!({
        "deliveryId": d.delivery_id, "webhookId": d.webhook_id, "eventType": d.event_type,
    })
    .to_string();
    state
        .webhook_dlq()
        .send(&body, 0)
        .await
        .map_err(ApiError::internal)
}

pub async fn dispatch(state: &AppState, job: &DeliveryJob) -> Result<Dispatched, ApiError> {
    let now = Utc::now();
    if let Some(at) = job.not_before {
        if at > now {
            // Waits past SQS's 15-minute delay limit hop through the queue.
            let left = (at - now).num_seconds().max(1) as u64;
            let next = DeliveryJob {
                delivery_id: job.delivery_id.clone(),
                not_before: Some(at),
            };
            let body = serde_json::to_string(&next).map_err(ApiError::internal)?;
            state
                .webhook_queue()
                .send(&body, left.min(MAX_DELAY_SECONDS))
                .await
                .map_err(ApiError::internal)?;
            return Ok(Dispatched::Skipped);
        }
    }
    let Some(d) = state.webhooks.delivery(&job.delivery_id).await? else {
        return Ok(Dispatched::Skipped);
    };
    if d.status != DeliveryStatus::Pending {
        return Ok(Dispatched::Skipped);
    }
    let w = match state.webhooks.get(&d.webhook_id).await? {
        Some(w) if w.status == WebhookStatus::Active => w,
        _ => {
            state.webhooks.fail_delivery(&d.delivery_id, now).await?;
            to_dead_letter(state, &d).await?;
            return Ok(Dispatched::Failed);
        }
    };
    let attempt_no = d.attempts.len() + 1;
    if !state
        .webhooks
        .claim(
            &d.delivery_id,
            d.attempts.len(),
            now,
            now - Duration::seconds(CLAIM_STALE_SECONDS),
        )
        .await?
    {
        return Ok(Dispatched::Skipped);
    }
    let sent_at = Utc::now();
    let timestamp = sent_at.timestamp();
    let signature = webhook::signature_header(
        &w.signing_secrets(sent_at),
        &d.delivery_id,
        timestamp,
        &d.payload,
    );
    let headers = [
        ("webhook-id", d.delivery_id.clone()),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", signature),
    ];
    let result = state
        .webhook_client()
        .send(&w.callback_url, &headers, d.payload.clone())
        .await;
    let attempt = Attempt {
        at: sent_at,
        status_code: result.status,
        latency_ms: result.latency_ms,
        error: result.error.clone(),
    };
    let ok = result.status.is_some_and(|s| (200..300).contains(&s));
    let gone = result.status == Some(410);
    let cfg = &state.config;
    tracing::info!(webhook_id = %w.webhook_id, delivery_id = %d.delivery_id, attempt = attempt_no, status = ?result.status, latency_ms = result.latency_ms, "webhook attempt");

    if ok {
        state
            .webhooks
            .record_attempt(&d.delivery_id, &attempt, DeliveryStatus::Succeeded)
            .await?;
        if w.failing_since.is_some() {
            state.webhooks.mark_healthy(&w.webhook_id).await?;
        }
        crate::metrics::count(crate::metrics::DELIVERIES_SUCCEEDED, 1);
        return Ok(Dispatched::Succeeded);
    }
    if gone {
        state
            .webhooks
            .record_attempt(&d.delivery_id, &attempt, DeliveryStatus::Failed)
            .await?;
        state
            .webhooks
            .disable(&w.webhook_id, "the endpoint answered 410 Gone", now)
            .await?;
        to_dead_letter(state, &d).await?;
        return Ok(Dispatched::Failed);
    }
    let failing_since = state
        .webhooks
        .mark_failing(&w.webhook_id, sent_at)
        .await?
        .unwrap_or(sent_at);
    let failing_for = (sent_at - failing_since).num_seconds();
    let disable = failing_for >= cfg.webhook_disable_after_seconds;
    if disable {
        let why = format!(
            "deliveries failed continuously since {}",
            failing_since.to_rfc3339()
        );
        state.webhooks.disable(&w.webhook_id, &why, sent_at).await?;
        tracing::warn!(webhook_id = %w.webhook_id, "webhook disabled after failing for {failing_for} s");
    }
    match cfg
        .webhook_retry_schedule
        .delay_before(attempt_no + 1)
        .filter(|_| !disable)
    {
        Some(delay) => {
            state
                .webhooks
                .record_attempt(&d.delivery_id, &attempt, DeliveryStatus::Pending)
                .await?;
            enqueue(state, &d.delivery_id, delay, sent_at).await?;
            Ok(Dispatched::Retrying { delay })
        }
        None => {
            state
                .webhooks
                .record_attempt(&d.delivery_id, &attempt, DeliveryStatus::Failed)
                .await?;
            to_dead_letter(state, &d).await?;
            Ok(Dispatched::Failed)
        }
    }
}
