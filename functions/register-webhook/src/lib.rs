//! `POST /ivr/webhooks/register` (IVR key): subscribe a callback URL to
//! restaurant events. The signing secret is shown only in this response.

use chrono::Utc;
use pulsara_shared::domain::webhook::RegisterRequest;
use pulsara_shared::http::json_body;
use pulsara_shared::services::webhooks::register;
use pulsara_shared::{ApiError, ApiResponse, AppState, Request};

pub async fn handle(state: &AppState, req: Request) -> Result<ApiResponse, ApiError> {
    if req.method() != "POST" {
        return Err(ApiError::MethodNotAllowed);
    }
    let caller = state.auth.ivr(&req).await?;
    let body: RegisterRequest = json_body(&req, 8 * 1024)?;
    let w = register(state, &caller, body, Utc::now()).await?;
    tracing::info!(webhook_id = %w.webhook_id, "webhook registered");
    let mut data = w.view();
    data["secret"] = w.secret.clone().into();
    Ok(ApiResponse::created(data)
        .message("Webhook registered successfully")
        .headers(caller.rate.headers()))
}
