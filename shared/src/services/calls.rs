//! Call workflows: process (idempotent on the vendor's id), complete (exactly
//! one e-mail however many completions race), and the e-mail's delivery.
//!
//! The e-mail is never lost: the completion write itself is its outbox (the
//! calls table's stream queues its job), and never sent twice: every sender
//! claims it before calling SES. The one window left is a sender dying (or
//! losing SES's answer) after SES accepted and before the status is written.

use crate::error::Chain;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::auth::IvrCaller;
use crate::domain::analysis::analyze;
use crate::domain::call::{
    after_send, email_step, exhausted, needs_job, without_suppressed, CallRecord, CallRow,
    CompleteCallRequest, Completion, EmailNext, EmailState, EmailStatus, EmailStep, ListRange,
    Poster, ProcessCallRequest, SendFailure, ValidComplete, ValidProcess,
};
use crate::domain::ids::{CallId, RestaurantId};
use crate::domain::restaurant::Restaurant;
use crate::domain::{claim, email};
use crate::error::ApiError;
use crate::faults;
use crate::http::record_restaurant_id;
use crate::store::calls::{CompletionChanges, Transcripts};
use crate::store::{persist, StoreError};

use super::find_restaurant;

fn short(err: impl std::fmt::Display) -> String {
    err.to_string().chars().take(300).collect()
}

/// `POST /ivr/call`, its first half (no caller needed, so it can run
/// concurrently with the key's rate-limit count): the validated call and
/// the restaurant it names.
pub async fn call_restaurant(
    state: &AppState,
    body: ProcessCallRequest,
    now: DateTime<Utc>,
) -> Result<(ValidProcess, Restaurant), ApiError> {
    let valid = body.validate(now, state.config.default_phone_region)?;
    let restaurant = find_restaurant(state, &valid.restaurant_ident)
        .await?
        .ok_or(ApiError::NotFound("restaurant"))?;
    Ok((valid, restaurant))
}

/// `POST /ivr/call`, for what [`call_restaurant`] found: returns the call
/// and whether this request created it.
pub async fn process_call(
    state: &AppState,
    caller: &IvrCaller,
    (valid, restaurant): (ValidProcess, Restaurant),
    now: DateTime<Utc>,
) -> Result<(CallRecord, bool), ApiError> {
    caller.ensure_access(&restaurant.restaurant_id)?;
    record_restaurant_id(&restaurant.restaurant_id);
    let poster = Poster {
        owner: caller.key.owner(),
        key: &caller.key.key_id,
    };
    let call = CallRecord::new(
        valid,
        &restaurant.restaurant_id,
        poster,
        now,
        state.config.call_retention_days,
    );
    // The transcript first: a call record never names a transcript that
    // is not stored. A crash between the two leaves only a transcript item
    // that nothing lists and that expires with the call; the retry writes
    // the same bytes again (or nothing) and then the record.
    if call.transcript_bytes > 0 {
        state
            .calls
            .put_transcript(
                &call.call_id,
                &call.transcript,
                call.transcript_bytes,
                call.expires_at,
            )
            .await?;
        faults::point(
            "call.transcript.after",
            &[call.call_id.as_str(), restaurant.restaurant_id.as_str()],
        )?;
    }
    match state.calls.insert(&call).await {
        Ok(()) => {
            faults::point(
                "call.insert.after",
                &[call.call_id.as_str(), restaurant.restaurant_id.as_str()],
            )?;
            crate::metrics::count(crate::metrics::CALLS_PROCESSED, 1);
            return Ok((call, true));
        }
        Err(StoreError::AlreadyExists) => {}
        Err(e) => return Err(e.into()),
    }
    // A retry, or a later post with more of the transcript (already in its
    // item, unless a longer one was there first).
    let existing = state
        .calls
        .get(&call.call_id)
        .await?
        .ok_or_else(|| ApiError::internal("call vanished after a conflicting insert"))?;
    if existing.completion.is_none() && call.transcript_bytes > existing.transcript_bytes {
        let changed = state
            .calls
            .extend_transcript(&call.call_id, call.transcript_bytes, &call.analysis, now)
            .await?;
        if changed {
            faults::point("call.extend.after", &[call.call_id.as_str()])?;
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
    call_id: &CallId,
    now: DateTime<Utc>,
) -> Result<CallRecord, ApiError> {
    let call = state.calls.get(call_id).await?;
    match call {
        Some(c)
            if !c.expired(now)
                && &c.owner_id == caller.key.owner()
                && caller.key.may_access(&c.restaurant_id) =>
        {
            record_restaurant_id(&c.restaurant_id);
            Ok(c)
        }
        _ => Err(ApiError::NotFound("call")),
    }
}

/// A call for the dashboard (admin): any restaurant's, within retention,
/// with both its transcripts.
pub async fn dashboard_call(
    state: &AppState,
    call_id: &CallId,
    now: DateTime<Utc>,
) -> Result<CallRecord, ApiError> {
    let mut call = state
        .calls
        .get(call_id)
        .await?
        .filter(|c| !c.expired(now))
        .ok_or(ApiError::NotFound("call"))?;
    record_restaurant_id(&call.restaurant_id);
    state
        .calls
        .load_transcripts(&mut call, Transcripts::Both)
        .await?;
    Ok(call)
}

/// One page of a restaurant's calls in `range` (within retention), newest
/// first, and the cursor of the next page.
pub async fn list_calls(
    state: &AppState,
    restaurant_id: &RestaurantId,
    range: ListRange,
    limit: i32,
    cursor: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(Vec<CallRow>, Option<String>), ApiError> {
    if state.restaurants.get(restaurant_id).await?.is_none() {
        return Err(ApiError::NotFound("restaurant"));
    }
    Ok(state
        .calls
        .list(restaurant_id, range.from, range.to, limit, cursor, now)
        .await?)
}

/// `POST /ivr/call/{callId}/complete`.
pub async fn complete_call(
    state: &AppState,
    caller: &IvrCaller,
    call_id: &CallId,
    body: CompleteCallRequest,
    now: DateTime<Utc>,
) -> Result<CallRecord, ApiError> {
    let valid = body.validate()?;
    let call = own_call(state, caller, call_id, now).await?;
    complete_record(state, call, valid, now).await
}

/// Completes `call` (already checked to be the caller's) unless it is
/// completed: the final transcript, the analysis, and the e-mail, sent at
/// once when it can be. A completed call comes back as it is.
pub async fn complete_record(
    state: &AppState,
    call: CallRecord,
    valid: ValidComplete,
    now: DateTime<Utc>,
) -> Result<CallRecord, ApiError> {
    let call_id = &call.call_id.clone();
    if call.completion.is_some() {
        return Ok(call);
    }
    let restaurant = state.restaurants.get(&call.restaurant_id).await?;
    let recipients = restaurant
        .as_ref()
        .map(|r| r.notification_emails.clone())
        .unwrap_or_default();
    let (final_turns, final_bytes) = valid.turns.unwrap_or_default();
    // The final transcript's item first, as for process: the completion
    // names it, so it must be there before the completion is.
    let final_tag = if final_turns.is_empty() {
        None
    } else {
        let tag = state
            .calls
            .put_final_transcript(call_id, &final_turns, final_bytes, call.expires_at)
            .await?;
        faults::point("call.final.after", &[call_id.as_str()])?;
        Some(tag)
    };
    let mut final_analysis = (!final_turns.is_empty()).then(|| {
        (
            analyze(&final_turns),
            call.transcript_bytes.max(final_bytes),
        )
    });
    if let Some(summary) = valid.summary {
        let (analysis, _) =
            final_analysis.get_or_insert_with(|| (call.analysis.clone(), call.transcript_bytes));
        analysis.summary = summary.text;
        analysis.produced_by.summary = summary.by;
    }
    let completion = Completion {
        duration: valid.duration,
        forwarded_to: valid.forwarded_to,
        final_transcript: final_turns,
        // Only a URL the call does not have already: readers fall back to the
        // call's (the e-mail, the detail), and a signed URL is often
        // most of a kilobyte, which every later status write would rewrite.
        audio_url: valid
            .audio_url
            .filter(|u| Some(u) != call.audio_url.as_ref()),
        completed_at: now,
    };
    // With an e-mail to send, the completion write is also this request's
    // claim on it (attempt 1): one write less than claiming after it, and a
    // request that dies here leaves a claim whose lease the job waits out.
    let claim_id = (!recipients.is_empty()).then(claim::new_id);
    let email = EmailState {
        status: if recipients.is_empty() {
            EmailStatus::NotConfigured
        } else {
            EmailStatus::Sending
        },
        recipients,
        suppressed: Vec::new(),
        message_id: None,
        attempts: u32::from(claim_id.is_some()),
        last_error: None,
        updated_at: now,
        claimed_until: claim_id
            .as_ref()
            .map(|_| claim::until(now, state.config.claim_lease_seconds)),
        claim_id: claim_id.clone(),
    };
    faults::point("call.complete.before", &[call_id.as_str()])?;
    let completed = state
        .calls
        .complete(
            call_id,
            &completion,
            CompletionChanges {
                final_analysis: final_analysis.as_ref().map(|(a, b)| (a, *b)),
                final_tag: final_tag.as_deref(),
                platform: valid.platform.as_ref(),
            },
            Some(&email),
            now,
        )
        .await?;
    let Some(mut done) = completed else {
        // Another completion won the race (or this one's answer was lost and
        // the SDK's retry found it done): its e-mail is on its way.
        return state
            .calls
            .get(call_id)
            .await?
            .ok_or_else(|| ApiError::internal("completed call vanished"));
    };
    faults::point("call.complete.after", &[call_id.as_str()])?;
    tracing::info!(reason = done.analysis.reason.as_str(), "call completed");
    crate::metrics::count(crate::metrics::CALLS_COMPLETED, 1);
    if let (Some(claim_id), true) = (
        claim_id.as_deref(),
        done.email.as_ref().is_some_and(EmailState::open),
    ) {
        // Send at once; if this fails or dies, the completion's job sends it.
        // The final transcript and the restaurant are at hand: no reads.
        let mut claimed = done.clone();
        if let Some(c) = claimed.completion.as_mut() {
            c.final_transcript = completion.final_transcript.clone();
        }
        match send_claimed(state, claimed, claim_id, false, restaurant).await {
            Ok(outcome) => {
                if let Some(e) = outcome.state() {
                    done.email = Some(e.clone());
                }
            }
            Err(e) => {
                tracing::warn!(error = %Chain(&e), "first e-mail attempt failed; its job retries")
            }
        }
    }
    Ok(done)
}

/// What one try at a call's e-mail came to.
#[derive(Debug)]
pub enum EmailOutcome {
    /// Nothing (more) to do: sent, failed for good, or nothing to send.
    Finished(Option<EmailState>),
    /// Another sender holds it: look again in `secs`.
    Busy { secs: u64 },
    /// SES failed: try again after `delay` seconds.
    Retry { delay: u64, state: EmailState },
    /// Out of attempts: failed for good, and its job is in the dead-letter queue.
    GaveUp(EmailState),
}

impl EmailOutcome {
    pub fn state(&self) -> Option<&EmailState> {
        match self {
            Self::Finished(s) => s.as_ref(),
            Self::Busy { .. } => None,
            Self::Retry { state, .. } | Self::GaveUp(state) => Some(state),
        }
    }
}

/// An e-mail job: one SQS message per call's e-mail, alive until it is sent
/// or given up on.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmailJob {
    pub call_id: CallId,
    /// Set on a call a platform ended without its transcript source having
    /// reported (a Twilio call handed to an ElevenLabs agent): if it is
    /// still not completed when the job runs, the job completes it so, and
    /// the owner still gets the call's e-mail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complete_if_open: Option<DeferredEnd>,
}

/// How a call ended, as far as its first source knew.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeferredEnd {
    pub duration: u64,
}

fn email_job(call_id: &CallId) -> String {
    let job = EmailJob {
        call_id: call_id.clone(),
        complete_if_open: None,
    };
    serde_json::to_string(&job).expect("a job serializes")
}

/// Queues the completion of a call that is waiting for its transcript, in
/// `wait_seconds` (at most SQS's 15 minutes): the transcript source usually
/// completes it first, and then the job only finds its e-mail handled.
pub async fn complete_later(
    state: &AppState,
    call_id: &CallId,
    end: DeferredEnd,
    wait_seconds: u64,
) -> Result<(), ApiError> {
    let job = EmailJob {
        call_id: call_id.clone(),
        complete_if_open: Some(end),
    };
    let body = serde_json::to_string(&job).expect("a job serializes");
    state
        .email_queue()
        .send(&body, wait_seconds)
        .await
        .map_err(ApiError::internal)
}

/// The e-mail job a completion causes (from the calls table's stream). Its
/// delay gives the completing request time to send at once.
pub async fn queue_email_job(state: &AppState, call_id: &CallId) -> Result<(), ApiError> {
    faults::point("email.job.before", &[call_id.as_str()])?;
    state
        .email_queue()
        .send(&email_job(call_id), state.config.email_retry_base_seconds)
        .await
        .map_err(ApiError::internal)?;
    faults::point("email.job.after", &[call_id.as_str()])?;
    Ok(())
}

/// A completion's stream record: queues the e-mail's job unless the e-mail has ended already
/// (usually the completing request sent it while the stream's batching window held the
/// record), which saves the job's three SQS requests and its invocation. Returns whether it
/// queued one. If the call cannot be read the job is queued anyway: the job reads it again.
pub async fn follow_up_completion(state: &AppState, call_id: &CallId) -> Result<bool, ApiError> {
    match state.calls.get(call_id).await {
        Ok(Some(call)) if needs_job(call.email.as_ref(), Utc::now()) => {}
        Ok(_) => return Ok(false),
        Err(e) => {
            tracing::warn!(error = %Chain(&e), "could not read a completed call; queueing its e-mail job");
        }
    }
    queue_email_job(state, call_id).await?;
    Ok(true)
}

/// One e-mail job: the call's e-mail, as far as it has got.
pub async fn email_job_step(state: &AppState, job: &EmailJob) -> Result<EmailOutcome, ApiError> {
    match state.calls.get(&job.call_id).await? {
        Some(call) => {
            record_restaurant_id(&call.restaurant_id);
            let call = match &job.complete_if_open {
                Some(end) if call.completion.is_none() => {
                    tracing::info!(
                        "no transcript came for the call in time: completing it without"
                    );
                    let valid = ValidComplete {
                        duration: end.duration,
                        ..ValidComplete::default()
                    };
                    complete_record(state, call, valid, Utc::now()).await?
                }
                _ => call,
            };
            attempt_email(state, call, true).await
        }
        None => Ok(EmailOutcome::Finished(None)), // gone (retention): nothing to send
    }
}

/// One try at a call's e-mail: claim it, send it, record how it went.
/// `may_give_up`: only the e-mail job fails it for good (and dead-letters it).
pub async fn attempt_email(
    state: &AppState,
    call: CallRecord,
    may_give_up: bool,
) -> Result<EmailOutcome, ApiError> {
    let now = Utc::now();
    let cfg = &state.config;
    let call_id = &call.call_id;
    match email_step(call.email.as_ref(), now) {
        EmailStep::Finished => return Ok(EmailOutcome::Finished(call.email)),
        EmailStep::Busy { secs } => return Ok(EmailOutcome::Busy { secs }),
        EmailStep::Claim => {}
    }
    let claim_id = claim::new_id();
    let until = claim::until(now, cfg.claim_lease_seconds);
    let Some(claimed) = state
        .calls
        .claim_email(call_id, &claim_id, now, until)
        .await?
    else {
        // Claimed or finished by another sender since we read it.
        return Ok(EmailOutcome::Busy {
            secs: cfg.claim_lease_seconds,
        });
    };
    send_claimed(state, claimed, &claim_id, may_give_up, None).await
}

/// Sends an e-mail this sender holds the claim `claim_id` on (`claimed` is
/// the record as the claim left it), and records how it went. `restaurant`:
/// the call's restaurant, if the caller has just read it.
async fn send_claimed(
    state: &AppState,
    mut claimed: CallRecord,
    claim_id: &str,
    may_give_up: bool,
    restaurant: Option<Restaurant>,
) -> Result<EmailOutcome, ApiError> {
    let now = Utc::now();
    let cfg = &state.config;
    let call_id = &claimed.call_id.clone();
    faults::point("email.claim.after", &[call_id.as_str()])?;
    let email = claimed
        .email
        .clone()
        .ok_or_else(|| ApiError::internal("claimed e-mail has no state"))?;
    let max_attempts = if may_give_up {
        cfg.email_max_attempts
    } else {
        u32::MAX
    };
    if let Some(failed) = exhausted(email.clone(), max_attempts, now) {
        tracing::error!(
            attempts = failed.attempts,
            "call e-mail cut off on every attempt"
        );
        return give_up(state, call_id, claim_id, failed).await;
    }
    let restaurant = match restaurant {
        Some(r) => Some(r),
        None => state.restaurants.get(&claimed.restaurant_id).await?,
    };
    let Some(restaurant) = restaurant else {
        let gone = Err(SendFailure::permanent("restaurant no longer exists"));
        let (mut failed, _) = after_send(email, gone, 0, now);
        failed.status = EmailStatus::Failed;
        record_email(state, call_id, claim_id, &failed).await?;
        return Ok(EmailOutcome::Finished(Some(failed)));
    };
    // Addresses that bounced or complained before are never mailed again
    // (SES counts every repeat against the account's reputation).
    let (to, email) = without_suppressed(email, |a| restaurant.is_suppressed(a), now);
    if to.is_empty() {
        crate::metrics::count(crate::metrics::EMAILS_SUPPRESSED, 1);
        tracing::warn!(
            suppressed = email.suppressed.len(),
            "call e-mail not sent: every recipient is suppressed"
        );
        record_email(state, call_id, claim_id, &email).await?;
        return Ok(EmailOutcome::Finished(Some(email)));
    }
    state
        .calls
        .load_transcripts(&mut claimed, Transcripts::Latest)
        .await?;
    let content = email::render(&claimed, &restaurant, cfg.default_phone_region);
    let tags = [
        ("callId", call_id.as_str()),
        ("restaurantId", claimed.restaurant_id.as_str()),
    ];
    let sent = state
        .mailer()
        .send(&to, &content, &tags)
        .await
        .map_err(|e| SendFailure {
            message: short(&e),
            permanent: e.permanent,
        });
    let (next, what) = after_send(email, sent, max_attempts, Utc::now());
    if what == EmailNext::GiveUp {
        crate::metrics::count(crate::metrics::EMAILS_FAILED, 1);
        tracing::error!(attempts = next.attempts, "call e-mail failed for good");
        return give_up(state, call_id, claim_id, next).await;
    }
    record_email(state, call_id, claim_id, &next).await?;
    match what {
        EmailNext::Retry => {
            crate::metrics::count(crate::metrics::EMAILS_QUEUED, 1);
            let delay = crate::queue::backoff_seconds(
                cfg.email_retry_base_seconds,
                next.attempts,
                crate::queue::MAX_DELAY_SECONDS,
            );
            tracing::warn!(
                attempt = next.attempts,
                delay,
                "call e-mail failed; retrying"
            );
            Ok(EmailOutcome::Retry { delay, state: next })
        }
        _ => {
            crate::metrics::count(crate::metrics::EMAILS_SENT, 1);
            tracing::info!(
                recipients = next.recipients.len(),
                attempt = next.attempts,
                "call e-mail sent"
            );
            Ok(EmailOutcome::Finished(Some(next)))
        }
    }
}

/// Writes how a claimed send ended. SES has already answered, so losing
/// this write would mean sending again: it gets a few more tries.
async fn record_email(
    state: &AppState,
    call_id: &CallId,
    claim_id: &str,
    next: &EmailState,
) -> Result<(), ApiError> {
    let stored = persist("recording the e-mail status", || async move {
        faults::point("email.ses.after", &[call_id.as_str()])?;
        state.calls.finish_email(call_id, claim_id, next).await
    })
    .await?;
    if !stored {
        // A retry of our own write that had landed, or a successor took over.
        tracing::warn!("e-mail status not written: the claim is no longer ours");
    }
    faults::point("email.status.after", &[call_id.as_str()])?;
    Ok(())
}

/// Dead-letters the e-mail's job (first, so a crash can't lose it: a repeat
/// only adds a duplicate dead letter), then records it failed.
async fn give_up(
    state: &AppState,
    call_id: &CallId,
    claim_id: &str,
    failed: EmailState,
) -> Result<EmailOutcome, ApiError> {
    state
        .email_dlq()
        .send(&email_job(call_id), 0)
        .await
        .map_err(ApiError::internal)?;
    record_email(state, call_id, claim_id, &failed).await?;
    Ok(EmailOutcome::GaveUp(failed))
}
