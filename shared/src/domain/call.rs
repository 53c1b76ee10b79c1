//! Calls: the vendor's process/complete bodies, their validation, and the
//! stored record (with its analysis and e-mail state).

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use phonenumber::country;
use serde::{Deserialize, Serialize};

use super::analysis::transcript::{TranscriptInput, Turn};
use super::analysis::{analyze, Analysis, WrittenSummary};
use super::email_address::EmailAddress;
use super::ids::{ApiKeyId, CallId, RestaurantId};
use super::phone::{self, E164};
use super::validate::{Errors, ValidationErrors};

/// Why a call body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallInputError {
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
    /// A transcript over its byte limit (refused before anything else is read).
    #[error("{field} exceeds the limit of {limit} bytes")]
    TooLarge { field: &'static str, limit: usize },
}
/// Body limit of the call endpoints (a long transcript plus the rest).
pub const BODY_LIMIT: usize = 256 * 1024;
pub const MAX_TRANSCRIPT_BYTES: usize = 100 * 1024;
pub const MAX_TURNS: usize = 2_000;
pub const MAX_DURATION_SECONDS: u64 = 24 * 3_600;
/// How far back a call's timestamp may lie (vendors retry late, not months late).
pub const MAX_CALL_AGE_DAYS: i64 = 30;
/// Clock skew tolerated for timestamps in the future.
pub const MAX_FUTURE_SKEW_SECONDS: i64 = 600;
const WITHHELD: &[&str] = &[
    "anonymous",
    "withheld",
    "private",
    "unknown",
    "restricted",
    "unavailable",
    "blocked",
];

/// `POST /ivr/call` body, as in the seed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProcessCallRequest {
    pub restaurant_id: String,
    pub call_id: String,
    pub timestamp: String,
    #[serde(default)]
    pub caller_number: Option<String>,
    #[serde(default)]
    pub transcript: Option<TranscriptInput>,
    #[serde(default)]
    pub audio_url: Option<String>,
}

/// `POST /ivr/call/{callId}/complete` body, as in the seed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CompleteCallRequest {
    pub duration: u64,
    #[serde(default)]
    pub forwarded_to: Option<String>,
    #[serde(default)]
    pub final_transcript: Option<TranscriptInput>,
    #[serde(default)]
    pub audio_url: Option<String>,
}

/// A process request that passed validation.
#[derive(Debug, Clone)]
pub struct ValidProcess {
    pub restaurant_ident: String,
    pub external_call_id: String,
    pub started_at: DateTime<Utc>,
    pub caller_number: Option<E164>,
    pub turns: Vec<Turn>,
    pub transcript_bytes: usize,
    pub audio_url: Option<String>,
    /// What the voice platform reported, when a platform sent the call.
    pub platform: Option<PlatformReport>,
}

#[derive(Debug, Clone, Default)]
pub struct ValidComplete {
    pub duration: u64,
    pub forwarded_to: Option<String>,
    pub turns: Option<(Vec<Turn>, usize)>,
    pub audio_url: Option<String>,
    /// A summary written elsewhere (a platform's LLM, or a platform outcome
    /// such as a missed call): it replaces ours; our analyzer still gives the
    /// reason and the sentiment.
    pub summary: Option<WrittenSummary>,
    /// What the platform said at the end, replacing what it said at the start.
    pub platform: Option<PlatformReport>,
}

/// What a voice platform said about a call beyond the transcript, kept on
/// the call record as the platform sent it (bounded).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct PlatformReport {
    /// `elevenlabs`, `twilio`, `vapi` or `retell`.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    /// The Vapi or Retell call id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_call_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_sid: Option<String>,
    /// How the call went, in our words: `answered_by_agent`, `forwarded`,
    /// `missed`, `no_forwarding_number`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// The platform's own verdict: `success`, `failure` or `unknown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_successful: Option<String>,
    /// Retell's own reading of the caller's sentiment (`Positive`,
    /// `Negative`, `Neutral`, `Unknown`), kept beside ours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_sentiment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    /// ElevenLabs' data collection results, by data collection id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_collection: Option<serde_json::Map<String, serde_json::Value>>,
}

/// The most of a platform's data-collection results a call record keeps
/// (serialized bytes): the record is rewritten by every status change.
pub const MAX_DATA_COLLECTION_BYTES: usize = 8 * 1024;

impl PlatformReport {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            conversation_id: None,
            platform_call_id: None,
            call_sid: None,
            outcome: None,
            call_successful: None,
            user_sentiment: None,
            termination_reason: None,
            failure_reason: None,
            data_collection: None,
        }
    }

    /// This report, with what `earlier` said where this one says nothing
    /// (a call recorded at ring time keeps its ring-time facts).
    pub fn over(self, earlier: Option<&PlatformReport>) -> PlatformReport {
        let Some(e) = earlier else { return self };
        let pick = |now: Option<String>, then: &Option<String>| now.or_else(|| then.clone());
        PlatformReport {
            conversation_id: pick(self.conversation_id, &e.conversation_id),
            platform_call_id: pick(self.platform_call_id, &e.platform_call_id),
            call_sid: pick(self.call_sid, &e.call_sid),
            outcome: pick(self.outcome, &e.outcome),
            call_successful: pick(self.call_successful, &e.call_successful),
            user_sentiment: pick(self.user_sentiment, &e.user_sentiment),
            termination_reason: pick(self.termination_reason, &e.termination_reason),
            failure_reason: pick(self.failure_reason, &e.failure_reason),
            data_collection: self.data_collection.or_else(|| e.data_collection.clone()),
            name: self.name,
        }
    }

    /// Keeps `results` if they fit in [`MAX_DATA_COLLECTION_BYTES`];
    /// otherwise only each result's `value`, and if even that is too big,
    /// nothing (the platform keeps the full results).
    pub fn with_data_collection(
        mut self,
        results: Option<serde_json::Map<String, serde_json::Value>>,
    ) -> Self {
        let fits = |m: &serde_json::Map<String, serde_json::Value>| {
            serde_json::to_vec(m).is_ok_and(|b| b.len() <= MAX_DATA_COLLECTION_BYTES)
        };
        self.data_collection = results.and_then(|m| {
            if fits(&m) {
                return Some(m);
            }
            let values: serde_json::Map<String, serde_json::Value> = m
                .into_iter()
                .map(|(k, v)| {
                    let value = v.get("value").cloned().unwrap_or(serde_json::Value::Null);
                    (k, serde_json::json!({ "value": value }))
                })
                .collect();
            fits(&values).then_some(values)
        });
        self
    }
}

/// An https URL without credentials, at most 2 KB.
pub fn check_https_url(e: &mut Errors, field: &str, raw: &str) -> Option<String> {
    if raw.len() > 2048 {
        e.add(field, "must be at most 2048 characters");
        return None;
    }
    match url::Url::parse(raw.trim()) {
        Ok(u) if u.scheme() == "https" && u.host_str().is_some_and(|h| !h.is_empty()) => {
            if !u.username().is_empty() || u.password().is_some() {
                e.add(field, "must not contain credentials");
                None
            } else {
                Some(u.to_string())
            }
        }
        Ok(_) => {
            e.add(field, "must be an https URL");
            None
        }
        Err(_) => {
            e.add(field, "is not a URL");
            None
        }
    }
}

fn check_transcript(
    e: &mut Errors,
    field: &'static str,
    t: &TranscriptInput,
) -> Result<Option<(Vec<Turn>, usize)>, CallInputError> {
    let bytes = t.byte_len();
    if bytes > MAX_TRANSCRIPT_BYTES {
        return Err(CallInputError::TooLarge {
            field,
            limit: MAX_TRANSCRIPT_BYTES,
        });
    }
    if let TranscriptInput::Turns(turns) = t {
        if turns.len() > MAX_TURNS {
            e.add(field, format!("must have at most {MAX_TURNS} turns"));
            return Ok(None);
        }
        for (i, turn) in turns.iter().enumerate() {
            if super::analysis::transcript::speaker_for_role(&turn.role).is_none() {
                e.add(
                    format!("{field}[{i}].role"),
                    "must be agent, assistant, ai, user, customer or caller",
                );
            }
        }
    }
    Ok(Some((t.turns(), bytes)))
}

impl ProcessCallRequest {
    pub fn validate(
        self,
        now: DateTime<Utc>,
        region: country::Id,
    ) -> Result<ValidProcess, CallInputError> {
        let mut e = Errors::new();
        // A restaurant id or any of its phone numbers, in any format.
        e.text("restaurantId", &self.restaurant_id, 64);
        let call_id = self.call_id.trim().to_string();
        if call_id.is_empty() || call_id.len() > 128 {
            e.add("callId", "must be 1 to 128 characters");
        } else if !call_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        {
            e.add("callId", "may contain only letters, digits and - _ . :");
        }
        let started_at = match DateTime::parse_from_rfc3339(self.timestamp.trim()) {
            Ok(t) => {
                let t = t.with_timezone(&Utc);
                if t < now - Duration::days(MAX_CALL_AGE_DAYS) {
                    e.add(
                        "timestamp",
                        format!("must be within the last {MAX_CALL_AGE_DAYS} days"),
                    );
                } else if t > now + Duration::seconds(MAX_FUTURE_SKEW_SECONDS) {
                    e.add("timestamp", "must not be in the future");
                }
                Some(t)
            }
            Err(_) => {
                e.add(
                    "timestamp",
                    "must be an RFC 3339 date-time such as 2025-03-01T12:30:00.000Z",
                );
                None
            }
        };
        let caller_number = match self.caller_number.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(raw) if WITHHELD.contains(&raw.to_ascii_lowercase().as_str()) => None,
            Some(raw) => match phone::normalize(raw, region) {
                Ok(n) => Some(n),
                Err(err) => {
                    e.add(
                        "callerNumber",
                        format!("{err} (send \"anonymous\" for a withheld number)"),
                    );
                    None
                }
            },
        };
        let transcript = match &self.transcript {
            Some(t) => check_transcript(&mut e, "transcript", t)?,
            None => Some((Vec::new(), 0)),
        };
        let audio_url = self
            .audio_url
            .as_deref()
            .and_then(|u| check_https_url(&mut e, "audioUrl", u));
        e.finish()?;
        let (turns, transcript_bytes) = transcript.unwrap_or_default();
        Ok(ValidProcess {
            restaurant_ident: self.restaurant_id.trim().to_string(),
            external_call_id: call_id,
            started_at: started_at.unwrap_or(now),
            caller_number,
            turns,
            transcript_bytes,
            audio_url,
            platform: None,
        })
    }
}

impl CompleteCallRequest {
    pub fn validate(self) -> Result<ValidComplete, CallInputError> {
        let mut e = Errors::new();
        if self.duration > MAX_DURATION_SECONDS {
            e.add(
                "duration",
                format!("must be at most {MAX_DURATION_SECONDS} seconds"),
            );
        }
        let forwarded_to = self.forwarded_to.map(|f| e.text("forwardedTo", &f, 100));
        let turns = match &self.final_transcript {
            Some(t) => check_transcript(&mut e, "finalTranscript", t)?,
            None => None,
        };
        let audio_url = self
            .audio_url
            .as_deref()
            .and_then(|u| check_https_url(&mut e, "audioUrl", u));
        e.finish()?;
        Ok(ValidComplete {
            duration: self.duration,
            forwarded_to: forwarded_to.filter(|f| !f.is_empty()),
            turns,
            audio_url,
            summary: None,
            platform: None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub enum CallStatus {
    InProgress,
    Completed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub enum EmailStatus {
    /// The call was completed: the e-mail is to be sent (by whichever sender
    /// claims it first: the completing request, or the job the completion
    /// caused through the calls table's stream).
    Sending,
    Sent,
    /// SES refused or failed; the e-mail job retries it with backoff.
    Queued,
    /// Every retry failed; the job is in the dead-letter queue.
    Failed,
    /// The restaurant has no notification recipients.
    NotConfigured,
    /// Every recipient is on the restaurant's suppression list: nothing sent.
    Suppressed,
    /// Sent, then bounced for good (SES event publishing told us).
    Bounced,
    /// Sent, then a recipient marked it as spam.
    Complained,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmailState {
    pub status: EmailStatus,
    pub recipients: Vec<EmailAddress>,
    /// Recipients left out because the restaurant suppresses them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suppressed: Vec<EmailAddress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub updated_at: DateTime<Utc>,
    /// The sender holding the e-mail right now, and until when (epoch ms):
    /// nobody else sends while the claim is fresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_until: Option<i64>,
}

impl EmailState {
    /// Still to be sent: nobody has succeeded or given up yet.
    pub fn open(&self) -> bool {
        matches!(self.status, EmailStatus::Sending | EmailStatus::Queued)
    }

    /// SES accepted it (whatever happened to it afterwards).
    pub fn accepted(&self) -> bool {
        matches!(
            self.status,
            EmailStatus::Sent | EmailStatus::Bounced | EmailStatus::Complained
        )
    }
}

/// The claimed e-mail's recipients split by `suppressed`: who gets it, and
/// the state with the skipped ones noted. With nobody left it is finished as
/// `suppressed` (the claim released) and there is no one to send to.
pub fn without_suppressed(
    mut state: EmailState,
    suppressed: impl Fn(&EmailAddress) -> bool,
    now: DateTime<Utc>,
) -> (Vec<EmailAddress>, EmailState) {
    let (skip, to): (Vec<EmailAddress>, Vec<EmailAddress>) = state
        .recipients
        .iter()
        .cloned()
        .partition(|a| suppressed(a));
    state.suppressed = skip;
    if to.is_empty() {
        state.status = EmailStatus::Suppressed;
        state.claim_id = None;
        state.claimed_until = None;
        state.updated_at = now;
        state.last_error = None;
    }
    (to, state)
}

/// What a sender does with a call's e-mail, seen as stored.
#[derive(Debug, PartialEq, Eq)]
pub enum EmailStep {
    /// Sent, failed for good, or nothing to send.
    Finished,
    /// Another sender's claim is fresh: look again in `secs`.
    Busy { secs: u64 },
    /// Claim it, then send.
    Claim,
}

pub fn email_step(email: Option<&EmailState>, now: DateTime<Utc>) -> EmailStep {
    match email {
        Some(e) if e.open() => match super::claim::seconds_left(e.claimed_until, now) {
            Some(secs) => EmailStep::Busy { secs },
            None => EmailStep::Claim,
        },
        _ => EmailStep::Finished,
    }
}

/// Whether an e-mail still needs its job: it has not ended (a claim held right now may still
/// fail, so it needs one too).
pub fn needs_job(email: Option<&EmailState>, now: DateTime<Utc>) -> bool {
    !matches!(email_step(email, now), EmailStep::Finished)
}

/// What to do after SES answered attempt `state.attempts` (counted at the
/// claim, so attempts cut off by a crash count too).
#[derive(Debug, PartialEq, Eq)]
pub enum EmailNext {
    Done,
    /// Try again after the backoff for this attempt.
    Retry,
    /// Out of attempts: failed for good, the job goes to the dead-letter queue.
    GiveUp,
}

/// Why an attempt did not send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendFailure {
    pub message: String,
    /// Sending it again cannot succeed (the message or the account is refused).
    pub permanent: bool,
}

impl SendFailure {
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            permanent: false,
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            permanent: true,
        }
    }
}

/// The e-mail state after an attempt and what follows. `sent` is SES's
/// message id or why not; the claim is released either way. A permanent
/// failure is final at once: retrying it only delays the `failed` the owner's
/// dashboard should show.
pub fn after_send(
    mut state: EmailState,
    sent: Result<String, SendFailure>,
    max_attempts: u32,
    now: DateTime<Utc>,
) -> (EmailState, EmailNext) {
    state.claim_id = None;
    state.claimed_until = None;
    state.updated_at = now;
    let next = match sent {
        Ok(message_id) => {
            state.status = EmailStatus::Sent;
            state.message_id = Some(message_id);
            state.last_error = None;
            EmailNext::Done
        }
        Err(e) if e.permanent || state.attempts >= max_attempts => {
            state.status = EmailStatus::Failed;
            state.last_error = Some(e.message);
            EmailNext::GiveUp
        }
        Err(e) => {
            state.status = EmailStatus::Queued;
            state.last_error = Some(e.message);
            EmailNext::Retry
        }
    };
    (state, next)
}

/// A claim taken past the last attempt: every attempt was used, the last by
/// a sender that never reported back. Failed for good, without sending.
pub fn exhausted(
    mut state: EmailState,
    max_attempts: u32,
    now: DateTime<Utc>,
) -> Option<EmailState> {
    if state.attempts <= max_attempts {
        return None;
    }
    state.attempts = max_attempts;
    state.status = EmailStatus::Failed;
    state.claim_id = None;
    state.claimed_until = None;
    state.updated_at = now;
    state.last_error = Some("every attempt was cut off before SES answered".into());
    Some(state)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct Completion {
    pub duration: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forwarded_to: Option<String>,
    #[serde(default)]
    pub final_transcript: Vec<Turn>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_url: Option<String>,
    pub completed_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallRecord {
    pub call_id: CallId,
    pub restaurant_id: RestaurantId,
    /// The key family (a key and its rotated successors) that owns the call.
    pub owner_id: ApiKeyId,
    pub key_id: ApiKeyId,
    pub external_call_id: String,
    pub started_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_number: Option<E164>,
    /// Inline only in records written before transcripts had items of
    /// their own; otherwise filled from `<callId>#transcript` when needed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transcript: Vec<Turn>,
    #[serde(default)]
    pub transcript_bytes: usize,
    /// The tag of the final transcript's item (`<callId>#final.<tag>`) the
    /// completion analyzed, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_transcript_tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_url: Option<String>,
    pub analysis: Analysis,
    pub status: CallStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion: Option<Completion>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailState>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Unix seconds; the DynamoDB TTL attribute, and checked on every read.
    pub expires_at: i64,
    /// Sort key of the by-restaurant index: start time, then id.
    pub list_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<PlatformReport>,
}

/// A call as listed: exactly what the `byRestaurant` index projects (its
/// keys and `startedAt`, `callerNumber`, `status`, `analysis`, `duration`,
/// `emailStatus`, `expiresAt`; see template.yaml), none of which the e-mail
/// claim changes.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallRow {
    pub call_id: CallId,
    pub started_at: DateTime<Utc>,
    #[serde(default)]
    pub caller_number: Option<E164>,
    pub status: CallStatus,
    pub analysis: Analysis,
    #[serde(default)]
    pub duration: Option<u64>,
    #[serde(default)]
    pub email_status: Option<EmailStatus>,
    pub expires_at: i64,
}

/// The attributes the index projects besides its keys.
pub const LISTED_ATTRIBUTES: [&str; 7] = [
    "startedAt",
    "callerNumber",
    "status",
    "analysis",
    "duration",
    "emailStatus",
    "expiresAt",
];

impl CallRow {
    pub fn of(c: &CallRecord) -> CallRow {
        CallRow {
            call_id: c.call_id.clone(),
            started_at: c.started_at,
            caller_number: c.caller_number.clone(),
            status: c.status,
            analysis: c.analysis.clone(),
            duration: c.completion.as_ref().map(|x| x.duration),
            email_status: c.email.as_ref().map(|e| e.status),
            expires_at: c.expires_at,
        }
    }

    pub fn expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at <= now.timestamp()
    }
}

pub fn list_key(started_at: DateTime<Utc>, call_id: &CallId) -> String {
    format!(
        "{}#{call_id}",
        started_at.to_rfc3339_opts(SecondsFormat::Millis, true)
    )
}

/// How far back a dashboard list reaches when `from` is not given.
pub const DEFAULT_LIST_DAYS: i64 = 30;

/// The time range of a call list: `to` defaults to now, `from` to 30 days
/// before `to`; both RFC 3339 within the years 2000..=9998 (so every date we
/// answer with has RFC 3339's four-digit year), `from` not after `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListRange {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

impl ListRange {
    pub fn parse(
        from: Option<&str>,
        to: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<ListRange, ValidationErrors> {
        fn instant(name: &str, raw: &str) -> Result<DateTime<Utc>, ValidationErrors> {
            let t = DateTime::parse_from_rfc3339(raw)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| ValidationErrors::one(name, "must be an RFC 3339 date-time"))?;
            if !(2000..=9998).contains(&chrono::Datelike::year(&t)) {
                return Err(ValidationErrors::one(
                    name,
                    "must be between the years 2000 and 9998",
                ));
            }
            Ok(t)
        }
        let to = to.map(|raw| instant("to", raw)).transpose()?.unwrap_or(now);
        let from = from
            .map(|raw| instant("from", raw))
            .transpose()?
            .unwrap_or(to - Duration::days(DEFAULT_LIST_DAYS));
        if from > to {
            return Err(ValidationErrors::one("from", "must not be after `to`"));
        }
        Ok(ListRange { from, to })
    }
}

/// Who posted a call: the key, and the key family that owns the call.
#[derive(Debug, Clone, Copy)]
pub struct Poster<'a> {
    pub owner: &'a ApiKeyId,
    pub key: &'a ApiKeyId,
}

impl CallRecord {
    pub fn new(
        v: ValidProcess,
        restaurant_id: &RestaurantId,
        by: Poster<'_>,
        now: DateTime<Utc>,
        retention_days: i64,
    ) -> CallRecord {
        let call_id = CallId::for_vendor_call(by.owner, restaurant_id, &v.external_call_id);
        CallRecord {
            list_key: list_key(v.started_at, &call_id),
            analysis: analyze(&v.turns),
            call_id,
            restaurant_id: restaurant_id.clone(),
            owner_id: by.owner.clone(),
            key_id: by.key.clone(),
            external_call_id: v.external_call_id,
            started_at: v.started_at,
            caller_number: v.caller_number,
            transcript: v.turns,
            transcript_bytes: v.transcript_bytes,
            final_transcript_tag: None,
            audio_url: v.audio_url,
            status: CallStatus::InProgress,
            completion: None,
            email: None,
            created_at: now,
            updated_at: now,
            expires_at: (now + Duration::days(retention_days)).timestamp(),
            platform: v.platform,
        }
    }

    pub fn expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at <= now.timestamp()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: country::Id = country::Id::US;

    fn body(json: serde_json::Value) -> ProcessCallRequest {
        serde_json::from_value(json).unwrap()
    }

    fn fields(err: CallInputError) -> Vec<String> {
        match err {
            CallInputError::Invalid(v) => v.0.into_iter().map(|f| f.field).collect(),
            other => panic!("expected field errors, got {other:?}"),
        }
    }

    #[test]
    fn valid_process_request() {
        let now = Utc::now();
        let v = body(serde_json::json!({
            "restaurantId": "rst_1", "callId": "CA123", "timestamp": now.to_rfc3339(),
            "callerNumber": "(555) 123-4567", "transcript": "Customer: hi", "audioUrl": "https://x.example/a.mp3"
        }))
        .validate(now, US)
        .unwrap();
        assert_eq!(v.caller_number.as_deref(), Some("+15551234567"));
        assert_eq!(v.turns.len(), 1);
    }

    #[test]
    fn every_invalid_field_is_reported() {
        let now = Utc::now();
        let err = body(serde_json::json!({
            "restaurantId": "", "callId": "a b", "timestamp": "yesterday",
            "callerNumber": "12", "transcript": [{"role": "robot", "message": "x"}],
            "audioUrl": "http://insecure.example/a.mp3"
        }))
        .validate(now, US)
        .unwrap_err();
        let f = fields(err);
        for name in [
            "restaurantId",
            "callId",
            "timestamp",
            "callerNumber",
            "transcript[0].role",
            "audioUrl",
        ] {
            assert!(f.contains(&name.to_string()), "{name} in {f:?}");
        }
    }

    #[test]
    fn absurd_timestamps_and_withheld_numbers() {
        let now = Utc::now();
        let old = body(
            serde_json::json!({"restaurantId": "r", "callId": "c", "timestamp": "2001-01-01T00:00:00Z"}),
        );
        assert_eq!(
            fields(old.validate(now, US).unwrap_err()),
            vec!["timestamp"]
        );
        let v = body(serde_json::json!({"restaurantId": "r", "callId": "c", "timestamp": now.to_rfc3339(), "callerNumber": "Anonymous"}))
            .validate(now, US)
            .unwrap();
        assert_eq!(v.caller_number, None);
    }

    #[test]
    fn oversized_transcript_is_413() {
        let now = Utc::now();
        let big = "Customer: ".to_string() + &"x".repeat(MAX_TRANSCRIPT_BYTES);
        let err = body(serde_json::json!({"restaurantId": "r", "callId": "c", "timestamp": now.to_rfc3339(), "transcript": big}))
            .validate(now, US)
            .unwrap_err();
        assert_eq!(
            err,
            CallInputError::TooLarge {
                field: "transcript",
                limit: MAX_TRANSCRIPT_BYTES
            }
        );
    }

    fn email(status: EmailStatus, attempts: u32) -> EmailState {
        EmailState {
            status,
            recipients: vec![EmailAddress::parse("owner@x.example").unwrap()],
            suppressed: Vec::new(),
            message_id: None,
            attempts,
            last_error: None,
            updated_at: Utc::now(),
            claim_id: Some("mine".into()),
            claimed_until: Some(Utc::now().timestamp_millis() + 10_000),
        }
    }

    #[test]
    fn email_steps_respect_claims_and_final_states() {
        let now = Utc::now();
        let held = email(EmailStatus::Sending, 1);
        assert_eq!(email_step(Some(&held), now), EmailStep::Busy { secs: 10 });
        let lapsed = EmailState {
            claimed_until: Some(now.timestamp_millis() - 1),
            ..held.clone()
        };
        assert_eq!(
            email_step(Some(&lapsed), now),
            EmailStep::Claim,
            "taken over"
        );
        for done in [
            EmailStatus::Sent,
            EmailStatus::Failed,
            EmailStatus::NotConfigured,
            EmailStatus::Suppressed,
            EmailStatus::Bounced,
            EmailStatus::Complained,
        ] {
            assert_eq!(email_step(Some(&email(done, 1)), now), EmailStep::Finished);
            assert!(
                !needs_job(Some(&email(done, 1)), now),
                "{done:?} needs no job"
            );
        }
        assert_eq!(email_step(None, now), EmailStep::Finished);
        assert!(!needs_job(None, now));
        assert!(needs_job(Some(&held), now), "a live claim may still fail");
        assert!(needs_job(Some(&lapsed), now));
        assert!(needs_job(Some(&email(EmailStatus::Queued, 2)), now));
    }

    #[test]
    fn after_send_releases_the_claim_and_counts_attempts() {
        let now = Utc::now();
        let (sent, next) = after_send(email(EmailStatus::Sending, 1), Ok("m-1".into()), 3, now);
        assert_eq!((sent.status, next), (EmailStatus::Sent, EmailNext::Done));
        assert!(sent.claim_id.is_none() && sent.claimed_until.is_none());
        assert_eq!(sent.message_id.as_deref(), Some("m-1"));
        let x = || Err(SendFailure::transient("x"));
        let (queued, next) = after_send(email(EmailStatus::Sending, 2), x(), 3, now);
        assert_eq!(
            (queued.status, next),
            (EmailStatus::Queued, EmailNext::Retry)
        );
        let (failed, next) = after_send(email(EmailStatus::Queued, 3), x(), 3, now);
        assert_eq!(
            (failed.status, next),
            (EmailStatus::Failed, EmailNext::GiveUp)
        );
    }

    #[test]
    fn a_permanent_failure_is_final_on_the_first_attempt() {
        let now = Utc::now();
        let refused = Err(SendFailure::permanent(
            "MessageRejected: address is blacklisted",
        ));
        let (failed, next) = after_send(email(EmailStatus::Sending, 1), refused, 3, now);
        assert_eq!(
            (failed.status, next),
            (EmailStatus::Failed, EmailNext::GiveUp)
        );
        assert_eq!(failed.attempts, 1);
        assert!(failed.last_error.unwrap().starts_with("MessageRejected"));
    }

    #[test]
    fn a_claim_past_the_last_attempt_fails_without_sending() {
        let now = Utc::now();
        assert_eq!(exhausted(email(EmailStatus::Queued, 3), 3, now), None);
        let failed = exhausted(email(EmailStatus::Queued, 4), 3, now).unwrap();
        assert_eq!((failed.status, failed.attempts), (EmailStatus::Failed, 3));
        assert!(failed.claim_id.is_none());
    }

    #[test]
    fn suppressed_recipients_are_skipped_and_all_suppressed_is_final() {
        let now = Utc::now();
        let mut two = email(EmailStatus::Sending, 1);
        two.recipients
            .push(EmailAddress::parse("gone@x.example").unwrap());
        let gone = |a: &EmailAddress| a.as_str() == "gone@x.example";
        let (to, state) = without_suppressed(two.clone(), gone, now);
        assert_eq!(to, vec![EmailAddress::parse("owner@x.example").unwrap()]);
        assert_eq!(state.status, EmailStatus::Sending, "still to send");
        assert_eq!(state.suppressed[0].as_str(), "gone@x.example");
        let (to, state) = without_suppressed(two, |_| true, now);
        assert!(to.is_empty());
        assert_eq!(state.status, EmailStatus::Suppressed);
        assert_eq!(state.suppressed.len(), 2);
        assert!(state.claim_id.is_none() && !state.open());
    }
}
