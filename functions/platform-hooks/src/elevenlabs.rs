//! ElevenLabs Agents: the conversation-initiation webhook (while the phone
//! rings) and the post-call webhook (after the call).

use chrono::{DateTime, Utc};
use pulsara_shared::domain::agent_context::{ring_context, RingContext, RingDecision};
use pulsara_shared::domain::analysis::transcript::RawTurn;
use pulsara_shared::domain::analysis::{Producer, WrittenSummary};
use pulsara_shared::domain::call::PlatformReport;
use pulsara_shared::domain::integration::Platform;
use pulsara_shared::domain::platform::elevenlabs::{
    parse_post_call, verify_signature, AgentOverride, ConfigOverride, ConversationInitRequest,
    ConversationInitResponse, InitiationFailure, PostCallEvent, PromptOverride, Transcription,
    TtsOverride,
};
use pulsara_shared::http::{parse_json, record_restaurant_id};
use pulsara_shared::services::find_restaurant;
use pulsara_shared::services::integrations::active;
use pulsara_shared::services::platform_calls::{record_ended, PlatformCall, PlatformEnd};
use pulsara_shared::{ApiError, ApiResponse, AppState, Request};

use crate::Received;

/// The initiation request is four short strings.
const INIT_BODY_LIMIT: usize = 16 * 1024;

/// `POST …/elevenlabs/conversation-init`: the same variables every time;
/// overrides that make a closed restaurant's agent transfer the call.
pub async fn conversation_init(
    state: &AppState,
    req: &Request,
    id: &str,
) -> Result<ApiResponse, ApiError> {
    let now = Utc::now();
    let (caller, (integration, restaurant)) = state
        .auth
        .ivr_with(req, async {
            let body = req.body().as_ref();
            if body.len() > INIT_BODY_LIMIT {
                return Err(ApiError::PayloadTooLarge {
                    limit: INIT_BODY_LIMIT,
                });
            }
            let init: ConversationInitRequest = parse_json(body)?;
            let integration = active(state, id, Platform::Elevenlabs).await?;
            let called = init
                .called_number
                .as_deref()
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .ok_or_else(|| ApiError::validation("called_number", "is required"))?;
            let restaurant = find_restaurant(state, called).await?;
            Ok((integration, restaurant))
        })
        .await?;
    // The key must be the integration's own family: another tenant's valid
    // key learns nothing about this integration.
    if &integration.record.owner_id != caller.key.owner() {
        return Err(ApiError::Unauthorized);
    }
    let restaurant = restaurant.ok_or(ApiError::NotFound("restaurant"))?;
    integration
        .caller()
        .ensure_access(&restaurant.restaurant_id)?;
    caller.ensure_access(&restaurant.restaurant_id)?;
    record_restaurant_id(&restaurant.restaurant_id);
    let ctx = ring_context(&restaurant, now, state.config.default_phone_region);
    Ok(ApiResponse::platform_json(&init_response(ctx)).rate_limit(&caller.rate))
}

/// The answer for a ringing call: the variables always; the restaurant's
/// voice; and when the agent must not take the call, a first message and
/// prompt that make it transfer (its `transfer_to_number` tool reads the
/// number from `{{forwarding_number}}`).
fn init_response(ctx: RingContext) -> ConversationInitResponse {
    let name = ctx.variables["restaurant_name"].clone();
    let next_open = ctx.variables["next_open"].clone();
    let agent = match &ctx.decision {
        RingDecision::Agent(_) => None,
        RingDecision::Forward(_) => Some(AgentOverride {
            first_message: Some(format!(
                "Thanks for calling {name}. Let me put you through to the team."
            )),
            prompt: Some(PromptOverride {
                prompt: format!(
                    "You answer the phone for {name}. The AI assistant is not taking calls \
                     right now{closed}. Do not take orders, bookings or questions: tell the \
                     caller in one short sentence that you are connecting them, then transfer \
                     the call at once to {{{{forwarding_number}}}} with the transfer_to_number \
                     tool.",
                    closed = if ctx.open_now {
                        String::new()
                    } else {
                        format!(" (outside call hours; next open {next_open})")
                    }
                ),
            }),
            language: None,
        }),
        RingDecision::NoForward => Some(AgentOverride {
            first_message: Some(if next_open.is_empty() {
                format!("Thanks for calling {name}. Sorry, nobody can take your call right now.")
            } else {
                format!(
                    "Thanks for calling {name}. Sorry, we can't take your call right now; \
                     we're next available {next_open}."
                )
            }),
            prompt: Some(PromptOverride {
                prompt: format!(
                    "You answer the phone for {name}, which cannot take calls right now and \
                     has no number to transfer to. Tell the caller politely when they can call \
                     back ({next_open}), answer nothing else, and end the call."
                ),
            }),
            language: None,
        }),
    };
    let tts = match &ctx.decision {
        RingDecision::Agent(a) if !a.voice_id.trim().is_empty() => Some(TtsOverride {
            voice_id: a.voice_id.clone(),
        }),
        _ => None,
    };
    let conversation_config_override =
        (agent.is_some() || tts.is_some()).then_some(ConfigOverride { agent, tts });
    ConversationInitResponse::new(ctx.variables, conversation_config_override)
}

/// `POST …/elevenlabs/post-call`: verified, then a completed call (or a
/// missed one); audio and unknown events are acknowledged and dropped.
pub async fn post_call(state: &AppState, req: &Request, id: &str) -> Result<ApiResponse, ApiError> {
    let now = Utc::now();
    let integration = active(state, id, Platform::Elevenlabs).await?;
    let header = req
        .headers()
        .get("elevenlabs-signature")
        .and_then(|v| v.to_str().ok())
        .ok_or(ApiError::Unauthorized)?;
    let body = req.body().as_ref();
    let secret = integration.secret(state).await?;
    if let Err(why) = verify_signature(secret.expose(), header, body, now.timestamp()) {
        tracing::info!(reason = %why, "ElevenLabs post-call webhook refused");
        return Err(ApiError::Unauthorized);
    }
    let event = parse_post_call(body).map_err(|e| ApiError::validation("body", e.to_string()))?;
    let caller = integration.caller();
    let (call, end) = match event {
        PostCallEvent::Transcription(t) => transcription(*t, now)?,
        PostCallEvent::InitiationFailure(f) => initiation_failure(f, now)?,
        PostCallEvent::Audio { .. } => {
            return Ok(Received::ignored("post_call_audio is not stored"))
        }
        PostCallEvent::Other(_) => return Ok(Received::ignored("unknown event type")),
    };
    let (record, completed) = record_ended(state, &caller, call, end, now).await?;
    record_restaurant_id(&record.restaurant_id);
    if !completed {
        tracing::info!("post-call webhook for a call already completed: nothing changed");
    }
    Ok(Received::call(&record.call_id))
}

fn unix(secs: Option<i64>) -> Option<DateTime<Utc>> {
    secs.and_then(|s| DateTime::from_timestamp(s, 0))
}

/// The restaurant a conversation was for: the number the caller dialled,
/// else the restaurant id our initiation answer gave the agent.
fn restaurant_ident(number: Option<&str>, init_data: Option<&serde_json::Value>) -> Option<String> {
    number
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .or_else(|| {
            init_data?
                .get("dynamic_variables")?
                .get("restaurant_id")?
                .as_str()
                .map(str::to_string)
        })
}

/// A transcription event as our call: keyed on Twilio's CallSid when there
/// is one (so a Twilio integration's status callback finds the same call),
/// else on the conversation id.
fn transcription(
    t: Transcription,
    now: DateTime<Utc>,
) -> Result<(PlatformCall, PlatformEnd), ApiError> {
    let phone = t.metadata.phone_call.clone();
    let number = phone.as_ref().and_then(|p| p.agent_number.clone());
    let restaurant = restaurant_ident(
        number.as_deref(),
        t.conversation_initiation_client_data.as_ref(),
    )
    .ok_or_else(|| {
        ApiError::validation(
            "data.metadata.phone_call.agent_number",
            "is required to know the restaurant (or the restaurant_id dynamic variable)",
        )
    })?;
    let call_sid = phone
        .as_ref()
        .and_then(|p| p.call_sid.clone())
        .filter(|s| !s.is_empty());
    let analysis = t.analysis.unwrap_or_default();
    let mut report = PlatformReport::new("elevenlabs")
        .with_data_collection(analysis.data_collection_results.clone());
    report.conversation_id = Some(t.conversation_id.clone());
    report.call_sid = call_sid.clone();
    report.outcome = Some("answered_by_agent".into());
    report.call_successful = analysis.call_successful.clone();
    report.termination_reason = t.metadata.termination_reason.clone();
    let duration = t
        .metadata
        .call_duration_secs
        .unwrap_or(0.0)
        .max(0.0)
        .round() as u64;
    let started_at = unix(t.metadata.start_time_unix_secs).unwrap_or(now);
    let turns = t
        .transcript
        .into_iter()
        .filter_map(|e| {
            Some(RawTurn {
                role: e.role,
                message: e.message.filter(|m| !m.trim().is_empty())?,
            })
        })
        .collect();
    Ok((
        PlatformCall {
            external_call_id: call_sid.unwrap_or(t.conversation_id),
            restaurant_number: restaurant,
            caller_number: phone.and_then(|p| p.external_number),
            started_at,
            report,
            turns: Vec::new(),
        },
        PlatformEnd {
            duration_secs: duration,
            turns,
            summary: analysis.transcript_summary.map(|text| WrittenSummary {
                by: Producer::Elevenlabs,
                text,
            }),
            forwarded_to: None,
            report: None,
            recording_url: None,
        },
    ))
}

/// A call the agent never picked up: recorded as missed, so the owner sees it.
fn initiation_failure(
    f: InitiationFailure,
    now: DateTime<Utc>,
) -> Result<(PlatformCall, PlatformEnd), ApiError> {
    let restaurant = restaurant_ident(f.agent_number.as_deref(), None).ok_or_else(|| {
        ApiError::validation(
            "data.metadata",
            "names no called number to know the restaurant",
        )
    })?;
    let external = f
        .call_sid
        .clone()
        .or_else(|| f.conversation_id.clone())
        .ok_or_else(|| ApiError::validation("data.conversation_id", "is required"))?;
    let reason = f.failure_reason.clone().unwrap_or_else(|| "unknown".into());
    let mut report = PlatformReport::new("elevenlabs");
    report.conversation_id = f.conversation_id.clone();
    report.call_sid = f.call_sid.clone();
    report.outcome = Some("missed".into());
    report.failure_reason = Some(reason.clone());
    Ok((
        PlatformCall {
            external_call_id: external,
            restaurant_number: restaurant,
            caller_number: f.caller_number.clone(),
            started_at: now,
            report,
            turns: Vec::new(),
        },
        PlatformEnd {
            summary: Some(WrittenSummary {
                by: Producer::Pulsara,
                text: format!(
                    "Missed call: the AI agent could not take it ({}).",
                    reason.replace('_', " ")
                ),
            }),
            ..PlatformEnd::default()
        },
    ))
}
