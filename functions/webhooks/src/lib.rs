//! Managing one's own webhooks (IVR key; another key family's are 404):
//! `GET /ivr/webhooks`, `DELETE /ivr/webhooks/{webhookId}`,
//! `POST /ivr/webhooks/{webhookId}/test`, `POST /ivr/webhooks/{webhookId}/rotate-secret`,
//! `GET /ivr/webhooks/{webhookId}/deliveries`,
//! `POST /ivr/webhooks/{webhookId}/deliveries/{deliveryId}/replay`.

use chrono::Utc;
use lambda_http::RequestExt;
use pulsara_shared::domain::ids::IdKind;
use pulsara_shared::http::{limit_param, optional_json_body, path_id, path_param};
use pulsara_shared::services::webhooks::{
    own, replay, rotate_secret, send_test, DEFAULT_SECRET_GRACE_SECONDS, MAX_SECRET_GRACE_SECONDS,
};
use pulsara_shared::{ApiError, ApiResponse, AppState, Request};
use serde::Deserialize;

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RotateBody {
    grace_period_seconds: Option<i64>,
}

pub async fn handle(state: &AppState, req: Request) -> Result<ApiResponse, ApiError> {
    let caller = state.auth.ivr(&req).await?;
    let now = Utc::now();
    let path = req.raw_http_path().trim_end_matches('/').to_string();
    let webhook_id = optional_id(&req, "webhookId", IdKind::Webhook)?;
    let delivery_id = optional_id(&req, "deliveryId", IdKind::Delivery)?;
    let method = req.method().as_str().to_string();
    let response = match (method.as_str(), webhook_id, delivery_id) {
        ("GET", None, None) => {
            let hooks = state.webhooks.by_owner(caller.key.owner()).await?;
            let views: Vec<_> = hooks.iter().map(|w| w.view()).collect();
            ApiResponse::ok(serde_json::json!({ "webhooks": views }))
        }
        ("DELETE", Some(id), None) => {
            let w = own(state, &caller, &id).await?;
            state.webhooks.delete(&w).await?;
            tracing::info!(webhook_id = %id, "webhook deleted");
            ApiResponse::ok(serde_json::json!({ "webhookId": id, "deleted": true }))
                .message("Webhook deleted")
        }
        ("POST", Some(id), None) if path.ends_with("/test") => {
            let w = own(state, &caller, &id).await?;
            let d = send_test(state, &w, now).await?;
            accepted(&d.delivery_id, "Test event queued")
        }
        ("POST", Some(id), None) if path.ends_with("/rotate-secret") => {
            let body: RotateBody = optional_json_body(&req, 1024)?;
            let grace = body
                .grace_period_seconds
                .unwrap_or(DEFAULT_SECRET_GRACE_SECONDS);
            if !(0..=MAX_SECRET_GRACE_SECONDS).contains(&grace) {
                return Err(ApiError::validation(
                    "gracePeriodSeconds",
                    format!("must be from 0 to {MAX_SECRET_GRACE_SECONDS}"),
                ));
            }
            let w = own(state, &caller, &id).await?;
            let w = rotate_secret(state, w, grace, now).await?;
            ApiResponse::ok(serde_json::json!({
                "webhookId": w.webhook_id,
                "secret": w.secret,
                "previousSecretValidUntil": w.previous_secret_expires_at,
            }))
            .message("Signing secret rotated")
        }
        ("GET", Some(id), None) if path.ends_with("/deliveries") => {
            let limit = limit_param(&req, 20, 100)?;
            let w = own(state, &caller, &id).await?;
            let list = state.webhooks.deliveries_of(&w.webhook_id, limit).await?;
            let views: Vec<_> = list.iter().map(|d| d.view()).collect();
            ApiResponse::ok(serde_json::json!({ "webhookId": id, "deliveries": views }))
        }
        ("POST", Some(id), Some(delivery)) if path.ends_with("/replay") => {
            let w = own(state, &caller, &id).await?;
            let d = replay(state, &w, &delivery, now).await?;
            accepted(&d.delivery_id, "Delivery replay queued")
        }
        _ => return Err(ApiError::MethodNotAllowed),
    };
    Ok(response.headers(caller.rate.headers()))
}

/// A path id where the route has one; checked against its format.
fn optional_id(req: &Request, name: &str, kind: IdKind) -> Result<Option<String>, ApiError> {
    match path_param(req, name) {
        Ok(_) => path_id(req, name, kind).map(Some),
        Err(_) => Ok(None),
    }
}

fn accepted(delivery_id: &str, message: &str) -> ApiResponse {
    let mut r = ApiResponse::ok(serde_json::json!({ "deliveryId": delivery_id })).message(message);
    r.status = 202;
    r
}
