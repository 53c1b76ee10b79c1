//! Vapi: the server URL every server message of a phone number or
//! assistant goes to. `assistant-request` and `transfer-destination-request`
//! are answered while the phone rings; `end-of-call-report` completes the
//! call; everything else is acknowledged.

use chrono::{DateTime, Utc};
use pulsara_shared::domain::agent_context::{ring_context, RingContext};
use pulsara_shared::domain::analysis::{Producer, WrittenSummary};
use pulsara_shared::domain::call::PlatformReport;
use pulsara_shared::domain::integration::Platform;
use pulsara_shared::domain::platform::vapi::{
    assistant_answer, secret_matches, transfer_answer, verify_hmac, AssistantAnswer, CallContext,
    EndOfCallReport, Envelope, Message, Party, TransferAnswer,
};
use pulsara_shared::domain::restaurant::Restaurant;
use pulsara_shared::error::Chain;
use pulsara_shared::http::{from_json_value, parse_json, record_restaurant_id};
use pulsara_shared::services::find_restaurant;
use pulsara_shared::services::integrations::{active, Active};
use pulsara_shared::services::platform_calls::{record_ended, start, PlatformCall, PlatformEnd};
use pulsara_shared::{ApiError, ApiResponse, AppState, Request};

use crate::outcome::{AGENT, FORWARDED, MISSED, NOBODY};
use crate::{restaurant_called, Received};

/// Checks the request is from the integration's Vapi account: the
/// credential's secret as `X-Vapi-Secret` or a bearer `Authorization`, or an
/// HMAC plan's Standard Webhooks signature. 401 otherwise.
async fn verified(state: &AppState, req: &Request, integration: &Active) -> Result<(), ApiError> {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let secret = integration.secret(state).await?;
    let ok = if let Some(presented) = header("x-vapi-secret").or(header("authorization")) {
        secret_matches(secret.expose(), Some(presented))
    } else if let (Some(id), Some(ts), Some(sig)) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    ) {
        match verify_hmac(
            secret.expose(),
            id,
            ts,
            sig,
            req.body().as_ref(),
            Utc::now().timestamp(),
        ) {
            Ok(()) => true,
            Err(why) => {
                tracing::info!(reason = %why, "Vapi request refused");
                false
            }
        }
    } else {
        false
    };
    if ok {
        Ok(())
    } else {
        tracing::info!("Vapi request refused: no matching credential");
        Err(ApiError::Unauthorized)
    }
}

/// `POST …/vapi`: one route for every server message.
pub async fn server_message(
    state: &AppState,
    req: &Request,
    id: &str,
) -> Result<ApiResponse, ApiError> {
    let now = Utc::now();
    let integration = active(state, id, Platform::Vapi).await?;
    verified(state, req, &integration).await?;
    let envelope: Envelope = parse_json(req.body().as_ref())?;
    let message = Message::of(envelope.message, |v| from_json_value(v, "message"))?;
    match message {
        Message::AssistantRequest(ctx) => assistant_request(state, &integration, ctx, now).await,
        Message::TransferDestinationRequest(ctx) => {
            let answer = match ring_for(state, &integration, &ctx, now).await? {
                Some((_, ring)) => transfer_answer(&ring),
                None => TransferAnswer::Refuse {
                    error: NO_RESTAURANT.into(),
                },
            };
            Ok(ApiResponse::platform_json(&answer))
        }
        Message::EndOfCallReport(report) => end_of_call(state, &integration, *report, now).await,
        Message::Other => Ok(Received::ignored("message type not used")),
    }
}

const NO_RESTAURANT: &str =
    "Sorry, this number is not set up to take calls yet. Please try again later.";

/// The restaurant the called number names (one this integration may see)
/// and its ring-time context.
async fn ring_for(
    state: &AppState,
    integration: &Active,
    ctx: &CallContext,
    now: DateTime<Utc>,
) -> Result<Option<(Restaurant, RingContext)>, ApiError> {
    let called = Party::given(&ctx.phone_number)
        .ok_or_else(|| ApiError::validation("message.phoneNumber.number", "is required"))?;
    let Some(restaurant) = restaurant_called(state, integration, called).await? else {
        tracing::warn!("Vapi call to a number no restaurant of this integration has");
        return Ok(None);
    };
    let ring = ring_context(&restaurant, now, state.config.default_phone_region);
    Ok(Some((restaurant, ring)))
}

/// `assistant-request`: who answers (within Vapi's 7.5 s). The call is
/// recorded after the decision; its end-of-call report completes it.
async fn assistant_request(
    state: &AppState,
    integration: &Active,
    ctx: CallContext,
    now: DateTime<Utc>,
) -> Result<ApiResponse, ApiError> {
    let Some((restaurant, ring)) = ring_for(state, integration, &ctx, now).await? else {
        return Ok(ApiResponse::platform_json(&AssistantAnswer::Refuse {
            error: NO_RESTAURANT.into(),
        }));
    };
    let answer = assistant_answer(&ring);
    let outcome = match &answer {
        AssistantAnswer::Assistant { .. } => AGENT,
        AssistantAnswer::Forward { .. } => FORWARDED,
        AssistantAnswer::Refuse { .. } => NOBODY,
    };
    if let Some(call_id) = ctx.call.as_ref().map(|c| c.id.clone()) {
        let mut report = PlatformReport::new("vapi");
        report.platform_call_id = Some(call_id.clone());
        report.outcome = Some(outcome.into());
        let announced = PlatformCall {
            external_call_id: call_id,
            restaurant_number: restaurant.restaurant_id.to_string(),
            caller_number: ctx.customer.and_then(|c| c.number),
            started_at: now,
            report,
            turns: Vec::new(),
        };
        // The caller is answered whatever happens here: the end-of-call
        // report records the call if this write fails.
        if let Err(e) = start(state, &integration.caller(), announced, now).await {
            tracing::error!(error = %Chain(&e), "could not record a Vapi call at its start; its end-of-call report will");
        }
    }
    Ok(ApiResponse::platform_json(&answer))
}

/// `end-of-call-report`: the call, completed (idempotent on the Vapi call id).
async fn end_of_call(
    state: &AppState,
    integration: &Active,
    r: EndOfCallReport,
    now: DateTime<Utc>,
) -> Result<ApiResponse, ApiError> {
    let call_id = r
        .call
        .as_ref()
        .map(|c| c.id.trim().to_string())
        .filter(|id| !id.is_empty())
        .ok_or_else(|| ApiError::validation("message.call.id", "is required"))?;
    let restaurant = Party::given(&r.phone_number)
        .or(r.variable("restaurant_id"))
        .map(str::to_string)
        .ok_or_else(|| {
            ApiError::validation(
                "message.phoneNumber.number",
                "is required to know the restaurant (or the restaurant_id variable)",
            )
        })?;
    let turns = r.turns();
    let forwarded = r.was_forwarded();
    let outcome = if forwarded {
        FORWARDED
    } else if r.was_refused() {
        NOBODY
    } else if turns.is_empty() {
        MISSED
    } else {
        AGENT
    };
    let forwarded_to = match (forwarded, Party::given(&r.destination)) {
        (false, _) => None,
        (true, Some(n)) => Some(n.to_string()),
        (true, None) => find_restaurant(state, &restaurant)
            .await?
            .and_then(|x| x.forwarding_number.map(|n| n.as_str().to_string())),
    };
    let mut report = PlatformReport::new("vapi");
    report.platform_call_id = Some(call_id.clone());
    report.outcome = Some(outcome.into());
    report.call_successful = r.call_successful().map(str::to_string);
    report.termination_reason = r.ended_reason.clone();
    let summary = r
        .analysis
        .summary
        .clone()
        .filter(|s| !s.trim().is_empty())
        .map(|text| WrittenSummary {
            by: Producer::Vapi,
            text,
        });
    let call = PlatformCall {
        external_call_id: call_id,
        restaurant_number: restaurant,
        caller_number: r.customer.as_ref().and_then(|c| c.number.clone()),
        started_at: r.started_at.unwrap_or(now),
        report: report.clone(),
        turns: Vec::new(),
    };
    let end = PlatformEnd {
        duration_secs: r.duration_secs(),
        turns,
        summary,
        forwarded_to,
        report: Some(report),
        recording_url: r.artifact.recording_url.clone(),
    };
    let (record, completed) = record_ended(state, &integration.caller(), call, end, now).await?;
    record_restaurant_id(&record.restaurant_id);
    if !completed {
        tracing::info!("Vapi end-of-call report for a call already completed: nothing changed");
    }
    Ok(Received::call(&record.call_id))
}
