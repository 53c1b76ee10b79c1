//! Calls: the vendor's answers (process, complete) and the dashboard's reads.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::analysis::transcript::Turn;
use crate::domain::analysis::{Analysis, Reason, SentimentLabel};
use crate::domain::call::{
    CallRecord, CallRow, CallStatus, Completion, EmailState, EmailStatus, PlatformReport,
};
use crate::domain::email_address::EmailAddress;
use crate::domain::ids::{ApiKeyId, CallId, RestaurantId};
use crate::domain::phone::E164;

/// The seed's `data` for process and complete: the analysis, and once
/// completed the completion and the e-mail's outcome.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct CallResultOut {
    pub call_id: CallId,
    pub sentiment_score: u8,
    pub sentiment_label: SentimentLabel,
    pub summary: String,
    pub reason: Reason,
    pub status: CallStatus,
    pub restaurant_id: RestaurantId,
    pub external_call_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<u64>,
    /// Present (possibly `null`) once the call is completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forwarded_to: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_sent: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_recipients: Option<Vec<EmailAddress>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_status: Option<EmailStatus>,
}

impl CallResultOut {
    pub fn new(c: &CallRecord) -> Self {
        Self {
            call_id: c.call_id.clone(),
            sentiment_score: c.analysis.sentiment_score,
            sentiment_label: c.analysis.sentiment_label,
            summary: c.analysis.summary.clone(),
            reason: c.analysis.reason,
            status: c.status,
            restaurant_id: c.restaurant_id.clone(),
            external_call_id: c.external_call_id.clone(),
            duration: c.completion.as_ref().map(|x| x.duration),
            forwarded_to: c.completion.as_ref().map(|x| x.forwarded_to.clone()),
            // SES accepted it; a later bounce or complaint shows in `emailStatus`.
            email_sent: c.email.as_ref().map(EmailState::accepted),
            email_recipients: c.email.as_ref().map(|e| e.recipients.clone()),
            email_status: c.email.as_ref().map(|e| e.status),
        }
    }
}

/// `POST /ivr/call`: the result, and whether this call was already known.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct ProcessCallOut {
    #[serde(flatten)]
    pub result: CallResultOut,
    pub duplicate: bool,
}

/// A compact row for call lists (no transcripts).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct CallRowOut {
    pub call_id: CallId,
    pub started_at: DateTime<Utc>,
    pub caller_number: Option<E164>,
    pub status: CallStatus,
    pub reason: Reason,
    pub sentiment_score: u8,
    pub sentiment_label: SentimentLabel,
    pub summary: String,
    pub duration: Option<u64>,
    pub email_status: Option<EmailStatus>,
}

impl CallRowOut {
    pub fn new(c: &CallRow) -> Self {
        Self {
            call_id: c.call_id.clone(),
            started_at: c.started_at,
            caller_number: c.caller_number.clone(),
            status: c.status,
            reason: c.analysis.reason,
            sentiment_score: c.analysis.sentiment_score,
            sentiment_label: c.analysis.sentiment_label,
            summary: c.analysis.summary.clone(),
            duration: c.duration,
            email_status: c.email_status,
        }
    }
}

/// `GET /ivr/restaurants/{restaurantId}/calls`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct CallListOut {
    pub restaurant_id: RestaurantId,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub calls: Vec<CallRowOut>,
    pub next_cursor: Option<String>,
}

/// The e-mail's outcome, without which sender holds it (ours to know).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct EmailOut {
    pub status: EmailStatus,
    pub recipients: Vec<EmailAddress>,
    /// Recipients skipped because the restaurant suppresses them.
    pub suppressed: Vec<EmailAddress>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub updated_at: DateTime<Utc>,
}

impl EmailOut {
    fn new(e: &EmailState) -> Self {
        Self {
            status: e.status,
            recipients: e.recipients.clone(),
            suppressed: e.suppressed.clone(),
            message_id: e.message_id.clone(),
            attempts: e.attempts,
            last_error: e.last_error.clone(),
            updated_at: e.updated_at,
        }
    }
}

/// `GET /ivr/calls/{callId}`: the whole call, without the owner's internals
/// (key family, index key, sizes, e-mail claims).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct CallDetailOut {
    pub call_id: CallId,
    pub restaurant_id: RestaurantId,
    pub key_id: ApiKeyId,
    pub external_call_id: String,
    pub started_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caller_number: Option<E164>,
    pub transcript: Vec<Turn>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audio_url: Option<String>,
    pub analysis: Analysis,
    pub status: CallStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion: Option<Completion>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailOut>,
    /// What the voice platform reported, for a call a platform sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<PlatformReport>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub expires_at: i64,
}

impl CallDetailOut {
    pub fn new(c: &CallRecord) -> Self {
        Self {
            call_id: c.call_id.clone(),
            restaurant_id: c.restaurant_id.clone(),
            key_id: c.key_id.clone(),
            external_call_id: c.external_call_id.clone(),
            started_at: c.started_at,
            caller_number: c.caller_number.clone(),
            transcript: c.transcript.clone(),
            audio_url: c.audio_url.clone(),
            analysis: c.analysis.clone(),
            status: c.status,
            // A completion stores its audio URL only when it differs from the call's.
            completion: c.completion.clone().map(|mut x| {
                x.audio_url = x.audio_url.or_else(|| c.audio_url.clone());
                x
            }),
            email: c.email.as_ref().map(EmailOut::new),
            platform: c.platform.clone(),
            created_at: c.created_at,
            updated_at: c.updated_at,
            expires_at: c.expires_at,
        }
    }
}
