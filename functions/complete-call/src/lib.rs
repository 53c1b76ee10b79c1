//! `POST /ivr/call/{callId}/complete` (IVR key): log how a call ended,
//! re-analyze it, and e-mail the restaurant — once, however often it's called.

use chrono::Utc;
use pulsara_shared::domain::call::{CompleteCallRequest, BODY_LIMIT};
use pulsara_shared::domain::ids::IdKind;
use pulsara_shared::http::{json_body, path_id};
use pulsara_shared::services::calls::complete_call;
use pulsara_shared::{ApiError, ApiResponse, AppState, Request};

pub async fn handle(state: &AppState, req: Request) -> Result<ApiResponse, ApiError> {
    if req.method() != "POST" {
        return Err(ApiError::MethodNotAllowed);
    }
    let caller = state.auth.ivr(&req).await?;
    let call_id = path_id(&req, "callId", IdKind::Call)?;
    let body: CompleteCallRequest = json_body(&req, BODY_LIMIT)?;
    let call = complete_call(state, &caller, &call_id, body, Utc::now()).await?;
    Ok(ApiResponse::ok(call.result())
        .message("Call completion logged successfully")
        .headers(caller.rate.headers()))
}
