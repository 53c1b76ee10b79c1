//! Call workflows: process (idempotent on the vendor's id), complete (exactly
//! one e-mail however many completions race), and the e-mail retry.

use chrono::{DateTime, Duration, Utc};

use crate::app::AppState;
use crate::auth::IvrCaller;
use crate::domain::analysis::analyze;
use crate::domain::call::{
    CallRecord, CallStatus, CompleteCallRequest, Completion, EmailState, EmailStatus,
    ProcessCallRequest,
};
use crate::domain::email;
use crate::domain::restaurant::Restaurant;
use crate::error::ApiError;
use crate::http::record_restaurant_id;
use crate::store::StoreError;

use super::find_restaurant;

/// A completion whose e-mail is still "sending" after this long was cut off
/// mid-way (both SQS and SES failed, or the instance died): queue it again.
const STUCK_SENDING_MINUTES: i64 = 5;

fn short(err: impl std::fmt::Display) -> String {
    err.to_string().chars().take(300).collect()
}

fn email_job(call_id: &str) -> String {
    serde_json::json!({ "callId": call_id }).to_string()
}

/// `POST /ivr/call`: returns the call and whether this request created it.
pub async fn process_call(
    state: &AppState,
    caller: &IvrCaller,
    body: ProcessCallRequest,
    now: DateTime<Utc>,
) -> Result<(CallRecord, bool), ApiError> {
    let valid = body.validate(now, state.config.default_phone_region)?;
    let restaurant = find_restaurant(state, &valid.restaurant_ident)
        .await?
        .ok_or(ApiError::NotFound("restaurant"))?;
    caller.ensure_access(&restaurant.restaurant_id)?;
    record_restaurant_id(&restaurant.restaurant_id);
    let call = CallRecord::new(
        valid,
        &restaurant.restaurant_id,
        caller.key.owner(),
        &caller.key.key_id,
        now,
        state.config.call_retention_days,
    );
    match state.calls.insert(&call).await {
        Ok(()) => {
            crate::metrics::count(crate::metrics::CALLS_PROCESSED, 1);
            return Ok((call, true));
        }
        Err(StoreError::AlreadyExists) => {}
        Err(e) => return Err(e.into()),
    }
    // A retry, or a later post with more of the transcript.
    let existing = state
        .calls
        .get(&call.call_id)
        .await?
        .ok_or_else(|| ApiError::internal("call vanished after a conflicting insert"))?;
    if existing.completion.is_none() && call.transcript_bytes > existing.transcript_bytes {
        let changed = state
            .calls
            .extend_transcript(
                &call.call_id,
                &call.transcript,
                call.transcript_bytes,
                &call.analysis,
                now,
            )
            .await?;
        if changed {
            let mut updated = existing;
            updated.transcript = call.transcript;
            updated.transcript_bytes = call.transcript_bytes;
            updated.analysis = call.analysis;
            updated.updated_at = now;
            return Ok((updated, false));
        }
        // Someone else extended it further meanwhile: report what is stored.
        let current = state.calls.get(&call.call_id).await?;
        return Ok((current.unwrap_or(existing), false));
    }
    Ok((existing, false))
}

/// A call the caller may see: its own key family's, within retention, and
/// for a restaurant the key may use. Anything else is simply not found.
pub async fn own_call(
    state: &AppState,
    caller: &IvrCaller,
    call_id: &str,
    now: DateTime<Utc>,
) -> Result<CallRecord, ApiError> {
    let call = state.calls.get(call_id).await?;
    match call {
        Some(c)
            if !c.expired(now)
                && c.owner_id == caller.key.owner()
                && caller.key.may_access(&c.restaurant_id) =>
        {
            record_restaurant_id(&c.restaurant_id);
            Ok(c)
        }
        _ => Err(ApiError::NotFound("call")),
    }
}

/// `POST /ivr/call/{callId}/complete`.
pub async fn complete_call(
    state: &AppState,
    caller: &IvrCaller,
    call_id: &str,
    body: CompleteCallRequest,
    now: DateTime<Utc>,
) -> Result<CallRecord, ApiError> {
    let valid = body.validate()?;
    let call = own_call(state, caller, call_id, now).await?;
    if call.completion.is_some() {
        requeue_if_stuck(state, &call, now).await;
        return Ok(call);
    }
    let restaurant = state.restaurants.get(&call.restaurant_id).await?;
    let recipients = restaurant
        .as_ref()
        .map(|r| r.notification_emails.clone())
        .unwrap_or_default();

    let mut done = call.clone();
    let (final_turns, final_bytes) = valid.turns.unwrap_or_default();
    if !final_turns.is_empty() {
        done.analysis = analyze(&final_turns);
    }
    done.transcript_bytes = done.transcript_bytes.max(final_bytes);
    done.completion = Some(Completion {
        duration: valid.duration,
        forwarded_to: valid.forwarded_to,
        final_transcript: final_turns,
        audio_url: valid.audio_url.or_else(|| call.audio_url.clone()),
        completed_at: now,
    });
    done.status = CallStatus::Completed;
    done.updated_at = now;
    done.email = Some(EmailState {
        status: if recipients.is_empty() {
            EmailStatus::NotConfigured
        } else {
            EmailStatus::Sending
        },
        recipients,
        message_id: None,
        attempts: 0,
        last_error: None,
        updated_at: now,
    });
    if !state.calls.complete(&done).await? {
        // Another completion won the race; it sends the one e-mail.
        return state
            .calls
            .get(call_id)
            .await?
            .ok_or_else(|| ApiError::internal("completed call vanished"));
    }
    tracing::info!(reason = done.analysis.reason.as_str(), "call completed");
    crate::metrics::count(crate::metrics::CALLS_COMPLETED, 1);
    if let (Some(r), Some(EmailStatus::Sending)) =
        (&restaurant, done.email.as_ref().map(|e| e.status))
    {
        done.email = Some(first_delivery(state, &done, r).await);
    }
    Ok(done)
}

/// Queues the safety-net job first (so a crash can't lose the mail), then
/// tries SES at once. If SES works, the job later finds the mail sent.
async fn first_delivery(
    state: &AppState,
    call: &CallRecord,
    restaurant: &Restaurant,
) -> EmailState {
    let now = Utc::now();
    let mut next = call.email.clone().expect("a sending call has e-mail state");
    let queued = match state
        .email_queue()
        .send(
            &email_job(&call.call_id),
            state.config.email_retry_base_seconds,
        )
        .await
    {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(error = %e, "could not queue the e-mail job");
            false
        }
    };
    let content = email::render(call, restaurant, state.config.default_phone_region);
    next.attempts = 1;
    next.updated_at = now;
    match state.mailer().send(&next.recipients, &content).await {
        Ok(message_id) => {
            next.status = EmailStatus::Sent;
            next.message_id = Some(message_id);
            tracing::info!(recipients = next.recipients.len(), "call e-mail sent");
            crate::metrics::count(crate::metrics::EMAILS_SENT, 1);
        }
        Err(e) => {
            tracing::warn!(error = %e, queued, "SES failed; e-mail left to the retry queue");
            next.last_error = Some(short(&e));
            if queued {
                next.status = EmailStatus::Queued;
                crate::metrics::count(crate::metrics::EMAILS_QUEUED, 1);
            }
        }
    }
    if let Err(e) = state
        .calls
        .set_email(&call.call_id, &[EmailStatus::Sending], &next)
        .await
    {
        tracing::error!(error = %e, "could not record the e-mail status");
    }
    next
}

async fn requeue_if_stuck(state: &AppState, call: &CallRecord, now: DateTime<Utc>) {
    let Some(e) = &call.email else { return };
    if e.status == EmailStatus::Sending
        && e.updated_at < now - Duration::minutes(STUCK_SENDING_MINUTES)
    {
        if let Err(err) = state.email_queue().send(&email_job(&call.call_id), 0).await {
            tracing::error!(error = %err, "could not re-queue a stuck e-mail");
        }
    }
}

/// What the retry worker did with one job.
#[derive(Debug, PartialEq, Eq)]
pub enum RetryOutcome {
    /// Sent now, or nothing (left) to send: delete the job.
    Done,
    /// Failed; try again after `delay` seconds.
    Later { delay: u64 },
    /// Failed for the last time: recorded as failed; the job goes to the DLQ.
    GaveUp,
}

/// One e-mail job: `receive_count` is SQS's ApproximateReceiveCount.
pub async fn retry_email(
    state: &AppState,
    call_id: &str,
    receive_count: u32,
) -> Result<RetryOutcome, ApiError> {
    let Some(call) = state.calls.get(call_id).await? else {
        return Ok(RetryOutcome::Done);
    };
    record_restaurant_id(&call.restaurant_id);
    let Some(mut next) = call.email.clone() else {
        return Ok(RetryOutcome::Done);
    };
    if !matches!(next.status, EmailStatus::Queued | EmailStatus::Sending) {
        return Ok(RetryOutcome::Done);
    }
    let from = [EmailStatus::Queued, EmailStatus::Sending];
    let Some(restaurant) = state.restaurants.get(&call.restaurant_id).await? else {
        next.status = EmailStatus::Failed;
        next.last_error = Some("restaurant no longer exists".into());
        next.updated_at = Utc::now();
        state.calls.set_email(call_id, &from, &next).await?;
        return Ok(RetryOutcome::Done);
    };
    let content = email::render(&call, &restaurant, state.config.default_phone_region);
    next.attempts += 1;
    next.updated_at = Utc::now();
    let cfg = &state.config;
    let outcome = match state.mailer().send(&next.recipients, &content).await {
        Ok(message_id) => {
            next.status = EmailStatus::Sent;
            next.message_id = Some(message_id);
            next.last_error = None;
            tracing::info!(attempt = next.attempts, "call e-mail sent on retry");
            crate::metrics::count(crate::metrics::EMAILS_SENT, 1);
            RetryOutcome::Done
        }
        Err(e) if receive_count >= cfg.email_max_attempts => {
            tracing::error!(error = %e, attempts = next.attempts, "call e-mail failed for good");
            crate::metrics::count(crate::metrics::EMAILS_FAILED, 1);
            next.status = EmailStatus::Failed;
            next.last_error = Some(short(&e));
            RetryOutcome::GaveUp
        }
        Err(e) => {
            next.status = EmailStatus::Queued;
            next.last_error = Some(short(&e));
            let delay = crate::queue::backoff_seconds(
                cfg.email_retry_base_seconds,
                receive_count,
                crate::queue::MAX_DELAY_SECONDS,
            );
            tracing::warn!(error = %e, attempt = next.attempts, delay, "call e-mail failed; retrying");
            RetryOutcome::Later { delay }
        }
    };
    state.calls.set_email(call_id, &from, &next).await?;
    Ok(outcome)
}
