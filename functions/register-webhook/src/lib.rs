//! `POST /ivr/webhooks/register` (IVR key): subscribe a callback URL to
//! restaurant events. The signing secret is shown only in this response.

use chrono::Utc;
use pulsara_shared::domain::webhook::RegisterRequest;
use pulsara_shared::http::{json_body, only};
use pulsara_shared::responses::{WebhookOut, WebhookRegisteredOut};
use pulsara_shared::services::webhooks::register;
use pulsara_shared::{ApiError, ApiResponse, AppState, Request};

pub async fn handle(state: &AppState, req: Request) -> Result<ApiResponse, ApiError> {
    let caller = state.auth.ivr(&req).await?;
    only(&req, "POST")?;
    let body: RegisterRequest = json_body(&req, 8 * 1024)?;
    let (w, secret) = register(state, &caller, body, Utc::now()).await?;
    tracing::info!(webhook_id = %w.webhook_id, "webhook registered");
    let out = WebhookRegisteredOut {
        webhook: WebhookOut::new(&w),
        secret: secret.expose().to_string(),
    };
    Ok(ApiResponse::created(out)
        .message("Webhook registered successfully")
        .rate_limit(&caller.rate))
}
