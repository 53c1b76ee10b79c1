//! `POST /ivr/auth/api-key` (admin): mint an IVR API key, shown once.

use chrono::Utc;
use pulsara_shared::domain::api_key::ApiKeyRequest;
use pulsara_shared::http::{json_body, only, record_key_id};
use pulsara_shared::responses::ApiKeyIssuedOut;
use pulsara_shared::services::mint_api_key;
use pulsara_shared::{AdminApp, ApiError, ApiResponse, Request};

pub async fn handle(app: &AdminApp, req: Request) -> Result<ApiResponse, ApiError> {
    let admin = app.admin(&req).await?;
    let state = &app.state;
    only(&req, "POST")?;
    let body: ApiKeyRequest = json_body(&req, state.config.max_body_bytes)?;
    let (plaintext, record) = mint_api_key(state, body, &admin.claims.sub, Utc::now()).await?;
    record_key_id(&record.key_id);
    tracing::info!(admin = %admin.claims.sub, "api key created");
    Ok(
        ApiResponse::created(ApiKeyIssuedOut::new(&record, plaintext))
            .message("API key generated successfully"),
    )
}
