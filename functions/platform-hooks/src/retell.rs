//! Retell AI: the phone number's inbound webhook (while the phone rings)
//! and the agent's call events (started, ended, analysed).

use chrono::{DateTime, Utc};
use pulsara_shared::domain::agent_context::ring_context;
use pulsara_shared::domain::analysis::{Producer, WrittenSummary};
use pulsara_shared::domain::call::PlatformReport;
use pulsara_shared::domain::integration::Platform;
use pulsara_shared::domain::platform::retell::{
    inbound_answer, verify_signature, CallEvent, InboundOverride, InboundRequest, InboundResponse,
    RetellCall,
};
use pulsara_shared::http::{parse_json, record_restaurant_id};
use pulsara_shared::services::calls::{complete_later, DeferredEnd};
use pulsara_shared::services::integrations::{active, Active};
use pulsara_shared::services::platform_calls::{finish, start, PlatformCall, PlatformEnd};
use pulsara_shared::{ApiError, ApiResponse, AppState, Request};

use crate::outcome::{AGENT, FORWARDED, MISSED};
use crate::{restaurant_called, Received};

/// The body, if `x-retell-signature` is the integration's API key's over it
/// (within ±5 minutes); 401 otherwise.
async fn verified<'r>(
    state: &AppState,
    req: &'r Request,
    integration: &Active,
) -> Result<&'r [u8], ApiError> {
    let header = req
        .headers()
        .get("x-retell-signature")
        .and_then(|v| v.to_str().ok())
        .ok_or(ApiError::Unauthorized)?;
    let body = req.body().as_ref();
    let key = integration.secret(state).await?;
    if let Err(why) = verify_signature(key.expose(), header, body, Utc::now().timestamp_millis()) {
        tracing::info!(reason = %why, "Retell webhook refused");
        return Err(ApiError::Unauthorized);
    }
    Ok(body)
}

/// `POST …/retell/inbound`: the agent and its variables for a ringing call
/// (Retell waits 10 s, retrying up to 3 times while the phone rings).
pub async fn inbound(state: &AppState, req: &Request, id: &str) -> Result<ApiResponse, ApiError> {
    let now = Utc::now();
    let integration = active(state, id, Platform::Retell).await?;
    let body = verified(state, req, &integration).await?;
    let request: InboundRequest = parse_json(body)?;
    let Some(call) = request
        .call_inbound
        .filter(|_| request.event == "call_inbound")
    else {
        // Inbound SMS (or a future event): nothing of ours to add.
        return Ok(ApiResponse::platform_json(&serde_json::json!({})));
    };
    let called = call
        .to_number
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::validation("call_inbound.to_number", "is required"))?;
    let Some(restaurant) = restaurant_called(state, &integration, called).await? else {
        // The number's own agent takes the call, without our variables.
        tracing::warn!("Retell call to a number no restaurant of this integration has");
        return Ok(ApiResponse::platform_json(&InboundResponse {
            call_inbound: InboundOverride::default(),
        }));
    };
    let ring = ring_context(&restaurant, now, state.config.default_phone_region);
    Ok(ApiResponse::platform_json(&inbound_answer(
        &ring,
        restaurant.agent.as_ref(),
    )))
}

/// `POST …/retell/events`: `call_started` records the call, `call_ended`
/// keeps its transcript and schedules its completion after the bounded wait
/// for the analysis,
/// `call_analyzed` completes it (idempotent on `call_id`: a redelivery or a
/// late analysis changes nothing and sends no second e-mail).
pub async fn events(state: &AppState, req: &Request, id: &str) -> Result<ApiResponse, ApiError> {
    let now = Utc::now();
    let integration = active(state, id, Platform::Retell).await?;
    let body = verified(state, req, &integration).await?;
    let event: CallEvent = parse_json(body)?;
    let kind = event.event.as_str();
    if !matches!(kind, "call_started" | "call_ended" | "call_analyzed") {
        return Ok(Received::ignored("event not used"));
    }
    let call = event
        .call
        .ok_or_else(|| ApiError::validation("call", "is required"))?;
    if call.call_id.trim().is_empty() {
        return Err(ApiError::validation("call.call_id", "is required"));
    }
    let caller = integration.caller();
    let (mut announced, end) = translate(&call, now)?;
    if kind == "call_ended" {
        // Kept now: if call_analyzed never comes, the deferred completion
        // still has what was said.
        announced.turns = end.turns.clone();
    }
    let record = start(state, &caller, announced, now).await?;
    record_restaurant_id(&record.restaurant_id);
    let call_id = record.call_id.to_string();
    match kind {
        "call_started" => {}
        "call_ended" if record.completion.is_none() => {
            let wait = state.config.transcript_wait_seconds;
            if wait > 0 {
                let duration = end.duration_secs;
                complete_later(state, &record.call_id, DeferredEnd { duration }, wait).await?;
            } else {
                // No wait configured: the call ends with what call_ended has.
                finish(state, record, end, now).await?;
            }
        }
        "call_analyzed" => {
            let (_, completed) = finish(state, record, end, now).await?;
            if !completed {
                tracing::info!(
                    "Retell call_analyzed for a call already completed: nothing changed"
                );
            }
        }
        _ => {}
    }
    Ok(Received::call(call_id))
}

/// A Retell call as our call and its end.
fn translate(
    call: &RetellCall,
    now: DateTime<Utc>,
) -> Result<(PlatformCall, PlatformEnd), ApiError> {
    let restaurant = call
        .restaurant_number()
        .or(call.variable("restaurant_id"))
        .map(str::to_string)
        .ok_or_else(|| {
            ApiError::validation(
                "call.to_number",
                "is required to know the restaurant (or the restaurant_id dynamic variable)",
            )
        })?;
    let analysis = call.call_analysis.clone().unwrap_or_default();
    let outcome = if call.was_transferred() {
        FORWARDED
    } else if call.was_missed() {
        MISSED
    } else {
        AGENT
    };
    let mut report = PlatformReport::new("retell");
    report.platform_call_id = Some(call.call_id.clone());
    report.outcome = Some(outcome.into());
    report.termination_reason = call.disconnection_reason.clone();
    report.user_sentiment = analysis.user_sentiment.clone();
    report.call_successful = analysis
        .call_successful
        .map(|ok| if ok { "success" } else { "failure" }.to_string());
    let started_at = call
        .start_timestamp
        .and_then(DateTime::from_timestamp_millis)
        .unwrap_or(now);
    let summary = analysis
        .call_summary
        .filter(|s| !s.trim().is_empty())
        .map(|text| WrittenSummary {
            by: Producer::Retell,
            text,
        });
    Ok((
        PlatformCall {
            external_call_id: call.call_id.clone(),
            restaurant_number: restaurant,
            caller_number: call.caller_number().map(str::to_string),
            started_at,
            report: report.clone(),
            turns: Vec::new(),
        },
        PlatformEnd {
            duration_secs: call.duration_secs(),
            turns: call.turns(),
            summary,
            forwarded_to: call.transfer_number(),
            report: Some(report),
            recording_url: call.recording_url.clone(),
        },
    ))
}
