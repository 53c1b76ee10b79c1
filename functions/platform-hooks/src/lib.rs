//! What voice platforms call directly, in their own formats, verified their
//! own way (`/ivr/integrations/{integrationId}/…`):
//! - `elevenlabs/conversation-init` (IVR key as a configured header): the
//!   agent's dynamic variables and overrides while the phone rings;
//! - `elevenlabs/post-call` (ElevenLabs-Signature): the call, completed;
//! - `twilio/voice` (X-Twilio-Signature): TwiML that forwards the call or
//!   hands it to the restaurant's ElevenLabs agent;
//! - `twilio/status` (X-Twilio-Signature): completes the call if no
//!   transcript source does;
//! - `vapi` (X-Vapi-Secret, a bearer credential or an HMAC plan): every
//!   Vapi server message; the assistant or a forward while the phone
//!   rings, the call completed from its end-of-call report;
//! - `retell/inbound` and `retell/events` (x-retell-signature): the agent
//!   and its variables while the phone rings; the call's events, completed
//!   once analysed.
//!
//! Each module only translates: the calls go through the same workflows as
//! `POST /ivr/call` and its completion.

mod elevenlabs;
mod retell;
mod twilio;
mod vapi;

/// Outcome names on the call record (`platform.outcome`).
pub(crate) mod outcome {
    pub const AGENT: &str = "answered_by_agent";
    pub const FORWARDED: &str = "forwarded";
    pub const MISSED: &str = "missed";
    pub const NOBODY: &str = "no_forwarding_number";
}

use pulsara_shared::domain::restaurant::Restaurant;
use pulsara_shared::http::{path_param, record_restaurant_id};
use pulsara_shared::services::find_restaurant;
use pulsara_shared::services::integrations::Active;
use pulsara_shared::{ApiError, ApiResponse, AppState, Request};
use serde::Serialize;

/// What we answer a platform's report or event (platforms read only the status).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Received {
    received: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    call_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ignored: Option<&'static str>,
}

impl Received {
    /// Recorded as our call `call_id`.
    pub(crate) fn call(call_id: impl ToString) -> ApiResponse {
        ApiResponse::platform_json(&Received {
            received: true,
            call_id: Some(call_id.to_string()),
            ignored: None,
        })
    }

    /// Acknowledged without effect, and why.
    pub(crate) fn ignored(why: &'static str) -> ApiResponse {
        ApiResponse::platform_json(&Received {
            received: true,
            call_id: None,
            ignored: Some(why),
        })
    }
}

/// The restaurant a called number names, if it is one the integration may
/// see (a number it may not see is as unknown).
pub(crate) async fn restaurant_called(
    state: &AppState,
    integration: &Active,
    number: &str,
) -> Result<Option<Restaurant>, ApiError> {
    let caller = integration.caller();
    let found = find_restaurant(state, number)
        .await?
        .filter(|r| caller.key.may_access(&r.restaurant_id));
    if let Some(r) = &found {
        record_restaurant_id(&r.restaurant_id);
    }
    Ok(found)
}

/// The route prefix every platform URL shares; what precedes it is the base.
pub(crate) const ROUTE: &str = "/ivr/integrations";

pub async fn handle(state: &AppState, req: Request) -> Result<ApiResponse, ApiError> {
    if req.method().as_str() != "POST" {
        return Err(ApiError::MethodNotAllowed);
    }
    let id = path_param(&req, "integrationId")?;
    let path = lambda_http::RequestExt::raw_http_path(&req);
    // What follows `/ivr/integrations/{integrationId}/`.
    let hook = path
        .rsplit_once(&format!("/{id}/"))
        .map_or("", |(_, hook)| hook.trim_end_matches('/'));
    match hook {
        "elevenlabs/conversation-init" => elevenlabs::conversation_init(state, &req, &id).await,
        "elevenlabs/post-call" => elevenlabs::post_call(state, &req, &id).await,
        "twilio/voice" => twilio::voice(state, &req, &id).await,
        "twilio/status" => twilio::status(state, &req, &id).await,
        "vapi" => vapi::server_message(state, &req, &id).await,
        "retell/inbound" => retell::inbound(state, &req, &id).await,
        "retell/events" => retell::events(state, &req, &id).await,
        _ => Err(ApiError::NotFound("route")),
    }
}
