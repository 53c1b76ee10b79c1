//! What voice platforms call directly, in their own formats, verified their
//! own way (`/ivr/integrations/{integrationId}/…`):
//! - `elevenlabs/conversation-init` (IVR key as a configured header): the
//!   agent's dynamic variables and overrides while the phone rings;
//! - `elevenlabs/post-call` (ElevenLabs-Signature): the call, completed;
//! - `twilio/voice` (X-Twilio-Signature): TwiML that forwards the call or
//!   hands it to the restaurant's ElevenLabs agent;
//! - `twilio/status` (X-Twilio-Signature): completes the call if no
//!   transcript source does.
//!
//! Each module only translates: the calls go through the same workflows as
//! `POST /ivr/call` and its completion.

mod elevenlabs;
mod twilio;

use pulsara_shared::http::path_param;
use pulsara_shared::{ApiError, ApiResponse, AppState, Request};

/// The route prefix every platform URL shares; what precedes it is the base.
pub(crate) const ROUTE: &str = "/ivr/integrations";

pub async fn handle(state: &AppState, req: Request) -> Result<ApiResponse, ApiError> {
    if req.method().as_str() != "POST" {
        return Err(ApiError::MethodNotAllowed);
    }
    let id = path_param(&req, "integrationId")?;
    let path = lambda_http::RequestExt::raw_http_path(&req);
    let tail = path.rsplit('/').take(2).collect::<Vec<_>>();
    match (tail.get(1).copied(), tail.first().copied()) {
        (Some("elevenlabs"), Some("conversation-init")) => {
            elevenlabs::conversation_init(state, &req, &id).await
        }
        (Some("elevenlabs"), Some("post-call")) => elevenlabs::post_call(state, &req, &id).await,
        (Some("twilio"), Some("voice")) => twilio::voice(state, &req, &id).await,
        (Some("twilio"), Some("status")) => twilio::status(state, &req, &id).await,
        _ => Err(ApiError::NotFound("route")),
    }
}
