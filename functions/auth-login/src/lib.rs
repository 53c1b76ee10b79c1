//! `POST /ivr/auth/login`: e-mail + password → short-lived admin access token.

use chrono::Utc;
use pulsara_shared::http::{json_body, only, source_ip};
use pulsara_shared::services::auth::{sign_in, LoginRequest};
use pulsara_shared::{AdminApp, ApiError, ApiResponse, Request};

pub async fn handle(app: &AdminApp, req: Request) -> Result<ApiResponse, ApiError> {
    only(&req, "POST")?;
    let creds = json_body::<LoginRequest>(&req, 4 * 1024)?.parse()?;
    let out = sign_in(app, creds, &source_ip(&req), Utc::now()).await?;
    Ok(ApiResponse::ok(out).message("Signed in successfully"))
}
