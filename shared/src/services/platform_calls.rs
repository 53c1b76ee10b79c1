//! Calls that voice platforms report in their own formats, recorded through
//! the same workflows as `POST /ivr/call` and its completion: the platform
//! modules only translate, so idempotency, the transcript items, the
//! analysis and the one e-mail are the same for every source.

use chrono::{DateTime, Utc};

use crate::auth::IvrCaller;
use crate::domain::analysis::transcript::{RawTurn, TranscriptInput, Turn};
use crate::domain::analysis::WrittenSummary;
use crate::domain::call::{
    check_https_url, CallRecord, PlatformReport, ValidComplete, ValidProcess, MAX_TRANSCRIPT_BYTES,
    MAX_TURNS,
};
use crate::domain::phone::{self, E164};
use crate::domain::validate::Errors;
use crate::error::ApiError;
use crate::AppState;

use super::calls::{complete_record, process_call};
use super::find_restaurant;

/// A call as a platform announces it.
#[derive(Debug, Clone)]
pub struct PlatformCall {
    /// The platform's id of the call (a Twilio CallSid, an ElevenLabs
    /// conversation id): the same id always records the same call.
    pub external_call_id: String,
    /// The number that was called: it names the restaurant.
    pub restaurant_number: String,
    pub caller_number: Option<String>,
    pub started_at: DateTime<Utc>,
    pub report: PlatformReport,
    /// What was said so far, kept with the call at once (a call that ended
    /// before its analysis came keeps its transcript if the analysis never
    /// does). Usually empty: the end brings the transcript.
    pub turns: Vec<RawTurn>,
}

/// How it ended.
#[derive(Debug, Clone, Default)]
pub struct PlatformEnd {
    pub duration_secs: u64,
    pub turns: Vec<RawTurn>,
    pub summary: Option<WrittenSummary>,
    pub forwarded_to: Option<String>,
    /// What the platform reported at the end; merged over what the call was
    /// recorded with (see [`PlatformReport::over`]).
    pub report: Option<PlatformReport>,
    /// The platform's recording of the call; kept only if it is an https URL
    /// without credentials, as `audioUrl` is.
    pub recording_url: Option<String>,
}

/// The longest platform summary kept (characters).
const MAX_SUMMARY_CHARS: usize = 2_000;

/// The first turns that fit our transcript limits: a platform's webhook can't
/// be refused for a long call (it would be retried and then disabled), so a
/// transcript beyond them is cut, never rejected.
fn bounded(turns: Vec<RawTurn>) -> (Vec<RawTurn>, bool) {
    let mut kept = Vec::new();
    let mut bytes = 0;
    let total = turns.len();
    for t in turns {
        let size = t.role.len() + t.message.len();
        if kept.len() == MAX_TURNS || bytes + size > MAX_TRANSCRIPT_BYTES {
            break;
        }
        bytes += size;
        kept.push(t);
    }
    let cut = kept.len() < total;
    (kept, cut)
}

/// A platform's turns as our transcript and its size (0 when nothing was
/// said), cut to our limits.
fn transcript(turns: Vec<RawTurn>) -> (Vec<Turn>, usize) {
    let (turns, cut) = bounded(turns);
    if cut {
        tracing::warn!("platform transcript beyond our limits: kept its beginning");
    }
    let input = TranscriptInput::Turns(turns);
    let said = input.turns();
    let bytes = if said.is_empty() { 0 } else { input.byte_len() };
    (said, bytes)
}

/// Records the call (idempotent on the platform's id) and returns it.
pub async fn start(
    state: &AppState,
    caller: &IvrCaller,
    call: PlatformCall,
    now: DateTime<Utc>,
) -> Result<CallRecord, ApiError> {
    let region = state.config.default_phone_region;
    let (said, transcript_bytes) = transcript(call.turns);
    let restaurant = find_restaurant(state, &call.restaurant_number)
        .await?
        .ok_or(ApiError::NotFound("restaurant"))?;
    let valid = ValidProcess {
        restaurant_ident: restaurant.restaurant_id.to_string(),
        external_call_id: call.external_call_id,
        started_at: call.started_at.min(now),
        // Platforms send E.164: taken as it is, the phone metadata (~0.6 s of a
        // 128 MB Lambda's CPU on first use) is never loaded. Anything else is
        // parsed; a withheld or malformed caller id is no number, never stored raw.
        caller_number: call.caller_number.and_then(|n| {
            let n = n.trim().to_string();
            E164::shaped(n.clone()).or_else(|| phone::normalize(&n, region).ok())
        }),
        turns: said,
        transcript_bytes,
        audio_url: None,
        platform: Some(call.report),
    };
    let (record, _created) = process_call(state, caller, (valid, restaurant), now).await?;
    Ok(record)
}

/// Records the call and its end; a call already completed (a redelivered
/// webhook, a second source) comes back unchanged, and sends no e-mail.
/// Returns the call and whether this completed it.
pub async fn record_ended(
    state: &AppState,
    caller: &IvrCaller,
    call: PlatformCall,
    end: PlatformEnd,
    now: DateTime<Utc>,
) -> Result<(CallRecord, bool), ApiError> {
    let record = start(state, caller, call, now).await?;
    finish(state, record, end, now).await
}

/// Completes a recorded call with how it ended (unless it is completed).
pub async fn finish(
    state: &AppState,
    record: CallRecord,
    end: PlatformEnd,
    now: DateTime<Utc>,
) -> Result<(CallRecord, bool), ApiError> {
    if record.completion.is_some() {
        return Ok((record, false));
    }
    let (said, bytes) = transcript(end.turns);
    let valid = ValidComplete {
        duration: end
            .duration_secs
            .min(crate::domain::call::MAX_DURATION_SECONDS),
        forwarded_to: end.forwarded_to,
        turns: (!said.is_empty()).then_some((said, bytes)),
        audio_url: end
            .recording_url
            .as_deref()
            .and_then(|u| check_https_url(&mut Errors::new(), "recording", u)),
        summary: end
            .summary
            .map(|s| WrittenSummary {
                by: s.by,
                text: s.text.trim().chars().take(MAX_SUMMARY_CHARS).collect(),
            })
            .filter(|s| !s.text.is_empty()),
        platform: end.report.map(|r| r.over(record.platform.as_ref())),
    };
    let done = complete_record(state, record, valid, now).await?;
    let ours = done
        .completion
        .as_ref()
        .is_some_and(|c| c.completed_at == now);
    Ok((done, ours))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(n: usize) -> RawTurn {
        RawTurn {
            role: "user".into(),
            message: "x".repeat(n),
        }
    }

    #[test]
    fn long_transcripts_are_cut_not_refused() {
        let (kept, cut) = bounded(vec![turn(10), turn(20)]);
        assert_eq!((kept.len(), cut), (2, false));
        let (kept, cut) = bounded(vec![turn(60 * 1024), turn(60 * 1024)]);
        assert_eq!((kept.len(), cut), (1, true));
        let many = (0..MAX_TURNS + 5).map(|_| turn(1)).collect();
        let (kept, cut) = bounded(many);
        assert_eq!((kept.len(), cut), (MAX_TURNS, true));
    }
}
