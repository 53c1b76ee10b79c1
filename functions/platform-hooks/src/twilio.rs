//! Twilio Programmable Voice: the number's voice webhook (TwiML) and its
//! status callback.

use std::sync::OnceLock;
use std::time::Duration;

use chrono::Utc;
use pulsara_shared::domain::agent_context::{ring_context, RingDecision};
use pulsara_shared::domain::analysis::{Producer, WrittenSummary};
use pulsara_shared::domain::call::PlatformReport;
use pulsara_shared::domain::integration::Platform;
use pulsara_shared::domain::platform::twilio::{
    parse_form, twiml_forward, twiml_say_hangup, verify, StatusCallback, VoiceRequest,
};
use pulsara_shared::elevenlabs_client::{ElevenLabsClient, RegisterCall};
use pulsara_shared::error::Chain;
use pulsara_shared::http::{public_url, record_restaurant_id};
use pulsara_shared::services::calls::{complete_later, DeferredEnd};
use pulsara_shared::services::find_restaurant;
use pulsara_shared::services::integrations::{active, Active};
use pulsara_shared::services::platform_calls::{finish, start, PlatformCall, PlatformEnd};
use pulsara_shared::{ApiError, ApiResponse, AppState, Request};

use crate::{restaurant_called, ROUTE};

use crate::outcome::{AGENT, FORWARDED, MISSED, NOBODY};

const TWIML: &str = "text/xml; charset=utf-8";

/// The parameters of a request Twilio signed; 401 unless the signature is
/// the integration's auth token's over the URL Twilio called.
async fn verified(
    state: &AppState,
    req: &Request,
    integration: &Active,
) -> Result<Vec<(String, String)>, ApiError> {
    let signature = req
        .headers()
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
        .ok_or(ApiError::Unauthorized)?;
    let params =
        parse_form(req.body().as_ref()).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let token = integration.secret(state).await?;
    let url = public_url(&state.config, req, ROUTE);
    if !verify(token.expose(), &url, &params, signature) {
        tracing::info!("Twilio request refused: bad signature (check PUBLIC_BASE_URL if behind a custom domain)");
        return Err(ApiError::Unauthorized);
    }
    Ok(params)
}

fn elevenlabs(state: &AppState) -> &'static ElevenLabsClient {
    static CLIENT: OnceLock<ElevenLabsClient> = OnceLock::new();
    CLIENT.get_or_init(|| {
        ElevenLabsClient::new(
            &state.config.elevenlabs_api_base,
            Duration::from_millis(state.config.elevenlabs_timeout_ms),
        )
        .expect("the ElevenLabs client builds")
    })
}

const SORRY: &str = "Sorry, we can't take your call right now. Please try again later.";
const NOT_CONNECTED: &str = "Sorry, we could not connect your call. Please try again later.";

/// `POST …/twilio/voice`: forward, or hand the call to the restaurant's
/// ElevenLabs agent (forwarding instead if ElevenLabs is slow or down).
pub async fn voice(state: &AppState, req: &Request, id: &str) -> Result<ApiResponse, ApiError> {
    let now = Utc::now();
    let integration = active(state, id, Platform::Twilio).await?;
    let params = verified(state, req, &integration).await?;
    let call = VoiceRequest::from_params(&params)
        .map_err(|e| ApiError::validation("body", e.to_string()))?;
    let caller = integration.caller();
    let Some(restaurant) = restaurant_called(state, &integration, &call.to).await? else {
        tracing::warn!("Twilio call to a number no restaurant of this integration has");
        return Ok(ApiResponse::platform(TWIML, twiml_say_hangup(SORRY)));
    };
    let ctx = ring_context(&restaurant, now, state.config.default_phone_region);
    let forward = |outcome| match restaurant.forwarding_number.as_ref() {
        Some(n) => (twiml_forward(n.as_str(), None, NOT_CONNECTED), outcome),
        None => (twiml_say_hangup(SORRY), NOBODY),
    };
    let (twiml, outcome) = match &ctx.decision {
        RingDecision::Agent(agent) => {
            match integration.elevenlabs_api_key(state).await? {
                Some(key) => {
                    let register = RegisterCall {
                        agent_id: &agent.elevenlabs_agent_id,
                        from_number: call.from.as_deref().unwrap_or(""),
                        to_number: &call.to,
                        dynamic_variables: &ctx.variables,
                    };
                    match elevenlabs(state)
                        .register_call(key.expose(), &register)
                        .await
                    {
                        Ok(twiml) => (twiml, AGENT),
                        Err(e) => {
                            tracing::warn!(error = %Chain(&e), "ElevenLabs register-call failed: forwarding the call instead");
                            forward(FORWARDED)
                        }
                    }
                }
                None => {
                    tracing::warn!("AI should answer but the integration has no ElevenLabs API key: forwarding");
                    forward(FORWARDED)
                }
            }
        }
        RingDecision::Forward(_) => forward(FORWARDED),
        RingDecision::NoForward => (twiml_say_hangup(SORRY), NOBODY),
    };
    // The call is recorded after the decision; if that write fails the
    // caller is still connected, and the status callback records it.
    let mut report = PlatformReport::new("twilio");
    report.call_sid = Some(call.call_sid.clone());
    report.outcome = Some(outcome.into());
    let announced = PlatformCall {
        external_call_id: call.call_sid.clone(),
        restaurant_number: restaurant.restaurant_id.to_string(),
        caller_number: call.from.clone(),
        started_at: now,
        report,
        turns: Vec::new(),
    };
    if let Err(e) = start(state, &caller, announced, now).await {
        tracing::error!(error = %Chain(&e), "could not record a Twilio call at its start; its status callback will");
    }
    Ok(ApiResponse::platform(TWIML, twiml))
}

/// Final call statuses: the call is over.
const ENDED: [&str; 5] = ["completed", "busy", "no-answer", "failed", "canceled"];

/// `POST …/twilio/status`: a final status completes the call, unless an
/// agent took it: then its transcript is awaited (bounded), so the e-mail
/// carries it.
pub async fn status(state: &AppState, req: &Request, id: &str) -> Result<ApiResponse, ApiError> {
    let now = Utc::now();
    let integration = active(state, id, Platform::Twilio).await?;
    let params = verified(state, req, &integration).await?;
    let cb = StatusCallback::from_params(&params)
        .map_err(|e| ApiError::validation("body", e.to_string()))?;
    let empty = || ApiResponse::platform(TWIML, "<Response/>".into());
    if !ENDED.contains(&cb.call_status.as_str()) {
        return Ok(empty());
    }
    let Some(to) = cb.to.clone() else {
        return Err(ApiError::validation("To", "is required"));
    };
    let caller = integration.caller();
    let mut report = PlatformReport::new("twilio");
    report.call_sid = Some(cb.call_sid.clone());
    report.outcome = Some(
        if cb.call_status == "completed" {
            FORWARDED
        } else {
            MISSED
        }
        .into(),
    );
    let record = start(
        state,
        &caller,
        PlatformCall {
            external_call_id: cb.call_sid.clone(),
            restaurant_number: to,
            caller_number: cb.from.clone(),
            started_at: now - chrono::Duration::seconds(cb.call_duration.unwrap_or(0) as i64),
            report,
            turns: Vec::new(),
        },
        now,
    )
    .await?;
    record_restaurant_id(&record.restaurant_id);
    if record.completion.is_some() {
        return Ok(empty());
    }
    let duration = cb.call_duration.unwrap_or(0);
    let outcome = record.platform.as_ref().and_then(|p| p.outcome.as_deref());
    let wait = state.config.transcript_wait_seconds;
    if outcome == Some(AGENT) && wait > 0 {
        complete_later(state, &record.call_id, DeferredEnd { duration }, wait).await?;
        return Ok(empty());
    }
    let forwarded_to = match outcome {
        Some(FORWARDED) => find_restaurant(state, record.restaurant_id.as_str())
            .await?
            .and_then(|r| r.forwarding_number.map(|n| n.as_str().to_string())),
        _ => None,
    };
    let summary = (cb.call_status != "completed").then(|| WrittenSummary {
        by: Producer::Pulsara,
        text: format!(
            "Missed call: Twilio reported it {}.",
            cb.call_status.replace('-', " ")
        ),
    });
    finish(
        state,
        record,
        PlatformEnd {
            duration_secs: duration,
            forwarded_to,
            summary,
            ..PlatformEnd::default()
        },
        now,
    )
    .await?;
    Ok(empty())
}
