//! `POST /ivr/auth/api-key` (admin): mint an IVR API key, shown once.

use chrono::Utc;
use pulsara_shared::domain::api_key::ApiKeyRequest;
use pulsara_shared::http::json_body;
use pulsara_shared::services::mint_api_key;
use pulsara_shared::{ApiError, ApiResponse, AppState, Request};

pub async fn handle(state: &AppState, req: Request) -> Result<ApiResponse, ApiError> {
    if req.method() != "POST" {
        return Err(ApiError::MethodNotAllowed);
    }
    let admin = state.auth.admin(&req).await?;
    let body: ApiKeyRequest = json_body(&req, state.config.max_body_bytes)?;
    let (plaintext, record) = mint_api_key(state, body, &admin.claims.sub, Utc::now()).await?;
    pulsara_shared::http::record_key_id(&record.key_id);
    tracing::info!(admin = %admin.claims.sub, "api key created");
    Ok(ApiResponse::created(record.issued(&plaintext)).message("API key generated successfully"))
}
