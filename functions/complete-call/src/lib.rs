//! `POST /ivr/call/{callId}/complete` (IVR key): log how a call ended,
//! re-analyze it, and e-mail the restaurant — once, however often it's called.

use chrono::Utc;
use pulsara_shared::domain::call::{CompleteCallRequest, BODY_LIMIT};
use pulsara_shared::domain::ids::CallId;
use pulsara_shared::http::{json_body, only, path_id};
use pulsara_shared::responses::CallResultOut;
use pulsara_shared::services::calls::complete_call;
use pulsara_shared::{ApiError, ApiResponse, AppState, Request};

pub async fn handle(state: &AppState, req: Request) -> Result<ApiResponse, ApiError> {
    let caller = state.auth.ivr(&req).await?;
    only(&req, "POST")?;
    let call_id: CallId = path_id(&req, "callId")?;
    let body: CompleteCallRequest = json_body(&req, BODY_LIMIT)?;
    let call = complete_call(state, &caller, &call_id, body, Utc::now()).await?;
    Ok(ApiResponse::ok(CallResultOut::new(&call))
        .message("Call completion logged successfully")
        .rate_limit(&caller.rate))
}
