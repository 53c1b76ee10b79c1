//! `POST /ivr/call` (IVR key): hand over a call's data; get its analysis.
//! Idempotent on the vendor's `callId`: retries return the same call.

use chrono::Utc;
use pulsara_shared::domain::call::{ProcessCallRequest, BODY_LIMIT};
use pulsara_shared::http::{json_body, only};
use pulsara_shared::responses::{CallResultOut, ProcessCallOut};
use pulsara_shared::services::calls::{call_restaurant, process_call};
use pulsara_shared::{ApiError, ApiResponse, AppState, Request};

pub async fn handle(state: &AppState, req: Request) -> Result<ApiResponse, ApiError> {
    let now = Utc::now();
    // The restaurant is read concurrently with the key's rate-limit count.
    let (caller, found) = state
        .auth
        .ivr_with(&req, async {
            only(&req, "POST")?;
            let body: ProcessCallRequest = json_body(&req, BODY_LIMIT)?;
            call_restaurant(state, body, now).await
        })
        .await?;
    let (call, created) = process_call(state, &caller, found, now).await?;
    tracing::info!(call_id = %call.call_id, created, "call processed");
    let out = ProcessCallOut {
        result: CallResultOut::new(&call),
        duplicate: !created,
    };
    Ok(ApiResponse::ok(out)
        .message("Call processed successfully")
        .rate_limit(&caller.rate))
}
