//! Webhook workflows: registration and management by the owning key family,
//! fan-out of restaurant changes, and delivery with retries.

use crate::error::Chain;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::claim;
use crate::faults;
use crate::store::persist;
use crate::store::webhooks::InsertError;

use crate::app::AppState;
use crate::auth::IvrCaller;
use crate::crypto::envelope::{seal_with, Plaintext};
use crate::domain::ids::{DeliveryId, WebhookId};
use crate::domain::restaurant::Restaurant;
use crate::domain::ssrf::TargetRules;
use crate::domain::validate::Errors;
use crate::domain::webhook::{
    self, changes, delivery_step, judge, payload, Attempt, DeliveryRecord, DeliveryStatus,
    DeliveryStep, EventType, RegisterRequest, StoredSecret, WebhookRecord, WebhookStatus,
    MAX_WEBHOOKS_PER_OWNER,
};
use crate::error::ApiError;
use crate::store::StoreError;

pub const MAX_SECRET_GRACE_SECONDS: i64 = 7 * 86_400;
pub const DEFAULT_SECRET_GRACE_SECONDS: i64 = 86_400;

/// A dispatcher job: one SQS message per delivery, alive until the delivery
/// ends. Retries wait by the message's visibility, not by new messages, so a
/// failure anywhere leaves the job to come back and carry on.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryJob {
    pub delivery_id: DeliveryId,
}

fn rules(state: &AppState) -> TargetRules {
    TargetRules {
        allow_loopback_http: state.config.webhook_allow_loopback_http,
    }
}

pub async fn enqueue(state: &AppState, delivery_id: &DeliveryId) -> Result<(), ApiError> {
    let job = DeliveryJob {
        delivery_id: delivery_id.clone(),
    };
    let body = serde_json::to_string(&job).map_err(ApiError::internal)?;
    state
        .webhook_queue()
        .send(&body, 0)
        .await
        .map_err(ApiError::internal)
}

/// Registers a webhook: its signing secret is sealed (KMS) before anything
/// is stored, so a KMS failure is a 5xx that stored nothing. Returns the
/// record and the secret in the clear, to be shown this once.
pub async fn register(
    state: &AppState,
    caller: &IvrCaller,
    req: RegisterRequest,
    now: DateTime<Utc>,
) -> Result<(WebhookRecord, Plaintext), ApiError> {
    let mut e = Errors::new();
    let url = match crate::webhook_client::check_target(&req.callback_url, rules(state)).await {
        Ok(u) => Some(u),
        Err(why) => {
            e.add("callbackUrl", why);
            None
        }
    };
    let names = EventType::SUBSCRIBABLE.map(EventType::as_str).join(", ");
    let mut events: Vec<EventType> = Vec::new();
    if req.events.is_empty() {
        e.add("events", format!("must list at least one of {names}"));
    }
    for (i, name) in req.events.iter().enumerate() {
        match EventType::subscribable(name) {
            None => e.add(format!("events[{i}]"), format!("must be one of {names}")),
            Some(ev) if !events.contains(&ev) => events.push(ev),
            Some(_) => {}
        }
    }
    let description = req.description.map(|d| e.text("description", &d, 200));
    e.finish()?;
    let owner = caller.key.owner();
    let webhook_id = WebhookId::generate();
    let secret = webhook::generate_secret();
    let sealed = state
        .sealer()?
        .seal(
            &webhook::secret_context(&webhook_id),
            secret.expose().as_bytes(),
        )
        .await?;
    let record = WebhookRecord {
        webhook_id,
        owner_id: owner.clone(),
        key_id: caller.key.key_id.clone(),
        callback_url: url.map(|u| u.to_string()).unwrap_or_default(),
        events,
        description,
        secret: StoredSecret::Sealed(sealed),
        previous_secret: None,
        previous_secret_expires_at: None,
        restaurant_ids: caller.key.restaurant_ids.clone(),
        status: WebhookStatus::Active,
        disabled_reason: None,
        failing_since: None,
        created_at: now,
        updated_at: now,
    };
    match state.webhooks.insert(&record, MAX_WEBHOOKS_PER_OWNER).await {
        Ok(()) => Ok((record, secret)),
        Err(InsertError::LimitReached) => Err(ApiError::conflict(format!(
            "a key may register at most {MAX_WEBHOOKS_PER_OWNER} webhooks; delete one first"
        ))),
        Err(InsertError::Store(e)) => Err(e.into()),
    }
}

/// A webhook of the caller's key family, or 404.
pub async fn own(
    state: &AppState,
    caller: &IvrCaller,
    webhook_id: &WebhookId,
) -> Result<WebhookRecord, ApiError> {
    match state.webhooks.get(webhook_id).await? {
        Some(w) if &w.owner_id == caller.key.owner() => Ok(w),
        _ => Err(ApiError::NotFound("webhook")),
    }
}

/// Deletes one of the caller's webhooks.
pub async fn delete_webhook(
    state: &AppState,
    caller: &IvrCaller,
    webhook_id: &WebhookId,
) -> Result<(), ApiError> {
    let w = own(state, caller, webhook_id).await?;
    state.webhooks.delete(&w).await?;
    tracing::info!(webhook_id = %webhook_id, "webhook deleted");
    Ok(())
}

/// The latest `limit` deliveries of one of the caller's webhooks.
pub async fn deliveries(
    state: &AppState,
    caller: &IvrCaller,
    webhook_id: &WebhookId,
    limit: i32,
) -> Result<Vec<DeliveryRecord>, ApiError> {
    let w = own(state, caller, webhook_id).await?;
    Ok(state.webhooks.deliveries_of(&w.webhook_id, limit).await?)
}

/// Rotates the signing secret of an active webhook, keeping the old one
/// valid for `grace_seconds` (a day when `None`). Only the secret changes: a webhook the
/// dispatcher disabled meanwhile stays disabled (409). The new secret is
/// sealed, and so is a legacy plaintext one as it becomes the previous:
/// after a rotation the item holds no secret in the clear. Returns the new
/// secret in the clear, to be shown this once.
pub async fn rotate_secret(
    state: &AppState,
    w: WebhookRecord,
    grace_seconds: Option<i64>,
    now: DateTime<Utc>,
) -> Result<(WebhookRecord, Plaintext), ApiError> {
    let grace = grace_seconds.unwrap_or(DEFAULT_SECRET_GRACE_SECONDS);
    if !(0..=MAX_SECRET_GRACE_SECONDS).contains(&grace) {
        return Err(ApiError::validation(
            "gracePeriodSeconds",
            format!("must be from 0 to {MAX_SECRET_GRACE_SECONDS}"),
        ));
    }
    if w.status != WebhookStatus::Active {
        return Err(disabled_conflict());
    }
    let secret = webhook::generate_secret();
    let context = webhook::secret_context(&w.webhook_id);
    // One data key for both: they belong to the same record.
    let key = state.sealer()?.data_key(&context).await?;
    let next = StoredSecret::Sealed(seal_with(&key, &context, secret.expose().as_bytes()));
    let previous = match &w.secret {
        StoredSecret::Legacy(plain) => {
            StoredSecret::Sealed(seal_with(&key, &context, plain.as_bytes()))
        }
        sealed => sealed.clone(),
    };
    let until = now + Duration::seconds(grace);
    let rotated = state
        .webhooks
        .rotate_secret(&w.webhook_id, &w.secret, &next, &previous, until, now)
        .await?;
    match rotated {
        Some(r) => {
            faults::point("webhook.rotate.after", &[&w.webhook_id])?;
            Ok((r, secret))
        }
        None => match state.webhooks.get(&w.webhook_id).await? {
            // Our own write whose answer was lost and retried.
            Some(r) if r.secret == next => Ok((r, secret)),
            Some(r) if r.status != WebhookStatus::Active => Err(disabled_conflict()),
            Some(_) => Err(ApiError::conflict(
                "the secret was rotated concurrently; fetch the webhook and retry",
            )),
            None => Err(ApiError::NotFound("webhook")),
        },
    }
}

fn disabled_conflict() -> ApiError {
    ApiError::conflict("the webhook is disabled; register it again to receive deliveries")
}

async fn new_delivery(
    state: &AppState,
    w: &WebhookRecord,
    id: DeliveryId,
    event_type: EventType,
    body: String,
    replay_of: Option<DeliveryId>,
    now: DateTime<Utc>,
) -> Result<DeliveryRecord, ApiError> {
    let mut d = DeliveryRecord::new(id, w, event_type, body, now);
    d.replay_of = replay_of;
    state.webhooks.insert_delivery(&d).await?;
    if let Err(e) = enqueue(state, &d.delivery_id).await {
        // Not left pending without a job: the caller sees the error and retries.
        let _ = state
            .webhooks
            .fail_delivery(&d.delivery_id, "could not be queued", now)
            .await;
        return Err(e);
    }
    Ok(d)
}

pub async fn send_test(
    state: &AppState,
    w: &WebhookRecord,
    now: DateTime<Utc>,
) -> Result<DeliveryRecord, ApiError> {
    let body = payload(EventType::Test, None, &[], now);
    new_delivery(
        state,
        w,
        DeliveryId::generate(),
        EventType::Test,
        body,
        None,
        now,
    )
    .await
}

pub async fn replay(
    state: &AppState,
    w: &WebhookRecord,
    delivery_id: &DeliveryId,
    now: DateTime<Utc>,
) -> Result<DeliveryRecord, ApiError> {
    let original = match state.webhooks.delivery(delivery_id).await? {
        Some(d) if d.webhook_id == w.webhook_id => d,
        _ => return Err(ApiError::NotFound("delivery")),
    };
    if w.status != WebhookStatus::Active {
        return Err(disabled_conflict());
    }
    new_delivery(
        state,
        w,
        DeliveryId::generate(),
        original.event_type,
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
            let id =
                DeliveryId::for_event(source_event_id, &w.webhook_id, change.event_type.as_str());
            let d = DeliveryRecord::new(id, w, change.event_type, body.clone(), now);
            let ids = [
                w.webhook_id.as_str(),
                d.delivery_id.as_str(),
                new.restaurant_id.as_str(),
            ];
            match state.webhooks.insert_delivery(&d).await {
                Ok(()) => {
                    faults::point("fanout.delivery.after", &ids)?;
                    enqueue(state, &d.delivery_id).await?;
                    faults::point("fanout.job.after", &ids)?;
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
                            enqueue(state, &d.delivery_id).await?;
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
    /// The delivery has ended (now or before): the job is done.
    Finished(DeliveryStatus),
    /// Bring the job back in `secs`: the next retry, or another worker's
    /// claim lapsing.
    Later { secs: u64 },
}

/// What the dead-letter queue holds of a failed delivery: enough to find it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct DeadLetter<'a> {
    delivery_id: &'a DeliveryId,
    webhook_id: &'a WebhookId,
    event_type: EventType,
}

async fn to_dead_letter(state: &AppState, d: &DeliveryRecord) -> Result<(), ApiError> {
    crate::metrics::count(crate::metrics::DELIVERIES_FAILED, 1);
    let letter = DeadLetter {
        delivery_id: &d.delivery_id,
        webhook_id: &d.webhook_id,
        event_type: d.event_type,
    };
    let body = serde_json::to_string(&letter).map_err(ApiError::internal)?;
    state
        .webhook_dlq()
        .send(&body, 0)
        .await
        .map_err(ApiError::internal)
}

/// Fails a delivery for good without another attempt: dead-letters it first
/// (a crash then only repeats a dead letter), then records why.
async fn abandon(state: &AppState, d: &DeliveryRecord, why: &str) -> Result<Dispatched, ApiError> {
    tracing::warn!(delivery_id = %d.delivery_id, "delivery failed for good: {why}");
    to_dead_letter(state, d).await?;
    state
        .webhooks
        .fail_delivery(&d.delivery_id, why, Utc::now())
        .await?;
    Ok(Dispatched::Finished(DeliveryStatus::Failed))
}

/// The webhook's signing secrets at `now`, in the clear (in memory only).
async fn open_secrets(
    state: &AppState,
    w: &WebhookRecord,
    now: DateTime<Utc>,
) -> Result<Vec<Plaintext>, ApiError> {
    let context = webhook::secret_context(&w.webhook_id);
    let mut out = Vec::new();
    for stored in w.signing_secrets(now) {
        out.push(match stored {
            StoredSecret::Sealed(sealed) => state.sealer()?.open(&context, sealed).await?,
            StoredSecret::Legacy(plain) => Plaintext::new(plain.clone()),
        });
    }
    Ok(out)
}

pub async fn dispatch(state: &AppState, job: &DeliveryJob) -> Result<Dispatched, ApiError> {
    let now = Utc::now();
    let Some(d) = state.webhooks.delivery(&job.delivery_id).await? else {
        return Ok(Dispatched::Finished(DeliveryStatus::Failed)); // expired: nothing to send
    };
    match delivery_step(&d, now) {
        DeliveryStep::Finished => return Ok(Dispatched::Finished(d.status)),
        DeliveryStep::Later { secs } => return Ok(Dispatched::Later { secs }),
        DeliveryStep::Abandon => {
            return abandon(
                state,
                &d,
                "the delivery worker was cut off on every attempt",
            )
            .await
        }
        DeliveryStep::Attempt => {}
    }
    let w = match state.webhooks.get(&d.webhook_id).await? {
        Some(w) if w.status == WebhookStatus::Active => w,
        Some(_) => return abandon(state, &d, "the webhook is disabled").await,
        None => return abandon(state, &d, "the webhook was deleted").await,
    };
    // The secrets first: if KMS fails, the job fails before any claim and
    // comes back (SQS), the delivery untouched.
    let secrets = open_secrets(state, &w, now).await?;
    let lease = state.config.claim_lease_seconds;
    let claim_id = claim::new_id();
    if !state
        .webhooks
        .claim(
            &d.delivery_id,
            &claim_id,
            d.attempts.len(),
            now,
            claim::until(now, lease),
        )
        .await?
    {
        // Claimed or finished by another copy of the job since we read it.
        return Ok(Dispatched::Later { secs: lease });
    }
    let ids = [w.webhook_id.as_str(), d.delivery_id.as_str()];
    faults::point("dispatch.claim.after", &ids)?;
    let attempt_no = d.attempts.len() + 1;
    let sent_at = Utc::now();
    let timestamp = sent_at.timestamp();
    let secrets: Vec<&str> = secrets.iter().map(Plaintext::expose).collect();
    let signature = webhook::signature_header(&secrets, &d.delivery_id, timestamp, &d.payload);
    let headers = [
        ("webhook-id", d.delivery_id.to_string()),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", signature),
    ];
    let result = state
        .webhook_client()
        .send(&w.callback_url, &headers, d.payload.clone())
        .await;
    tracing::info!(webhook_id = %w.webhook_id, delivery_id = %d.delivery_id, attempt = attempt_no, status = ?result.status, latency_ms = result.latency_ms, "webhook attempt");
    let attempt = Attempt {
        at: sent_at,
        status_code: result.status,
        latency_ms: result.latency_ms,
        error: result.error.clone(),
    };
    let cfg = &state.config;
    let ok = result.status.is_some_and(|s| (200..300).contains(&s));
    // A failure (other than 410) extends the endpoint's run of failures.
    let failing_since = if ok || result.status == Some(410) {
        sent_at
    } else {
        state
            .webhooks
            .mark_failing(&w.webhook_id, sent_at)
            .await?
            .unwrap_or(sent_at)
    };
    let verdict = judge(
        result.status,
        attempt_no,
        &cfg.webhook_retry_schedule,
        failing_since,
        cfg.webhook_disable_after_seconds,
        sent_at,
    );
    if verdict.status == DeliveryStatus::Failed {
        to_dead_letter(state, &d).await?;
    }
    let next_at = verdict
        .retry_in
        .map(|secs| sent_at.timestamp_millis() + secs as i64 * 1000);
    // The receiver has answered: losing this record would mean sending again.
    let recorded = persist("recording a webhook attempt", || async {
        faults::point("dispatch.post.after", &ids)?;
        state
            .webhooks
            .record_attempt(&d.delivery_id, &claim_id, &attempt, verdict.status, next_at)
            .await
    })
    .await?;
    if !recorded {
        tracing::warn!(delivery_id = %d.delivery_id, "attempt not recorded: the claim is no longer ours");
    }
    faults::point("dispatch.record.after", &ids)?;
    // Endpoint health: best effort, the delivery itself is settled.
    if ok && w.failing_since.is_some() {
        if let Err(e) = state.webhooks.mark_healthy(&w.webhook_id).await {
            tracing::warn!(error = %Chain(&e), "could not mark the webhook healthy");
        }
    }
    if let Some(why) = &verdict.disable {
        match state.webhooks.disable(&w.webhook_id, why, sent_at).await {
            Ok(()) => tracing::warn!(webhook_id = %w.webhook_id, "webhook disabled: {why}"),
            Err(e) => tracing::warn!(error = %Chain(&e), "could not disable the webhook"),
        }
    }
    match (verdict.status, verdict.retry_in) {
        (DeliveryStatus::Succeeded, _) => {
            crate::metrics::count(crate::metrics::DELIVERIES_SUCCEEDED, 1);
            Ok(Dispatched::Finished(DeliveryStatus::Succeeded))
        }
        (DeliveryStatus::Pending, Some(secs)) => Ok(Dispatched::Later { secs }),
        (status, _) => Ok(Dispatched::Finished(status)),
    }
}
