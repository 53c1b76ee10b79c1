//! Managing one's own webhooks (IVR key; another key family's are 404):
//! `GET /ivr/webhooks`, `DELETE /ivr/webhooks/{webhookId}`,
//! `POST /ivr/webhooks/{webhookId}/test`, `POST /ivr/webhooks/{webhookId}/rotate-secret`,
//! `GET /ivr/webhooks/{webhookId}/deliveries`,
//! `POST /ivr/webhooks/{webhookId}/deliveries/{deliveryId}/replay`.

use chrono::Utc;
use lambda_http::RequestExt;
use pulsara_shared::domain::ids::{DeliveryId, WebhookId};
use pulsara_shared::http::{limit_param, optional_json_body, optional_path_id};
use pulsara_shared::responses::{
    DeliveryListOut, DeliveryOut, DeliveryQueuedOut, SecretRotatedOut, WebhookDeletedOut,
    WebhookListOut, WebhookOut,
};
use pulsara_shared::services::webhooks::{
    delete_webhook, deliveries, own, replay, rotate_secret, send_test,
};
use pulsara_shared::{ApiError, ApiResponse, AppState, Request};
use serde::Deserialize;

enum Route {
    List,
    Delete(WebhookId),
    Test(WebhookId),
    RotateSecret(WebhookId),
    Deliveries(WebhookId),
    Replay(WebhookId, DeliveryId),
}

impl Route {
    /// By method, the path's ids, and the action segment after the webhook id.
    fn of(req: &Request) -> Result<Self, ApiError> {
        let webhook: Option<WebhookId> = optional_path_id(req, "webhookId")?;
        let delivery: Option<DeliveryId> = optional_path_id(req, "deliveryId")?;
        let path = req.raw_http_path();
        let action = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
        Ok(match (req.method().as_str(), webhook, delivery, action) {
            ("GET", None, None, _) => Route::List,
            ("DELETE", Some(w), None, _) => Route::Delete(w),
            ("POST", Some(w), None, "test") => Route::Test(w),
            ("POST", Some(w), None, "rotate-secret") => Route::RotateSecret(w),
            ("GET", Some(w), None, "deliveries") => Route::Deliveries(w),
            ("POST", Some(w), Some(d), "replay") => Route::Replay(w, d),
            _ => return Err(ApiError::MethodNotAllowed),
        })
    }
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RotateBody {
    grace_period_seconds: Option<i64>,
}

pub async fn handle(state: &AppState, req: Request) -> Result<ApiResponse, ApiError> {
    let caller = state.auth.ivr(&req).await?;
    let now = Utc::now();
    let response = match Route::of(&req)? {
        Route::List => {
            let hooks = state.webhooks.by_owner(caller.key.owner()).await?;
            let webhooks = hooks.iter().map(WebhookOut::new).collect();
            ApiResponse::ok(WebhookListOut { webhooks })
        }
        Route::Delete(id) => {
            delete_webhook(state, &caller, &id).await?;
            ApiResponse::ok(WebhookDeletedOut {
                webhook_id: id,
                deleted: true,
            })
            .message("Webhook deleted")
        }
        Route::Test(id) => {
            let w = own(state, &caller, &id).await?;
            let d = send_test(state, &w, now).await?;
            queued(d.delivery_id, "Test event queued")
        }
        Route::RotateSecret(id) => {
            let body: RotateBody = optional_json_body(&req, 1024)?;
            let w = own(state, &caller, &id).await?;
            let (w, secret) = rotate_secret(state, w, body.grace_period_seconds, now).await?;
            ApiResponse::ok(SecretRotatedOut {
                webhook_id: w.webhook_id,
                secret: secret.expose().to_string(),
                previous_secret_valid_until: w.previous_secret_expires_at,
            })
            .message("Signing secret rotated")
        }
        Route::Deliveries(id) => {
            let limit = limit_param(&req, 20, 100)?;
            let list = deliveries(state, &caller, &id, limit).await?;
            ApiResponse::ok(DeliveryListOut {
                webhook_id: id,
                deliveries: list.iter().map(DeliveryOut::new).collect(),
            })
        }
        Route::Replay(id, delivery) => {
            let w = own(state, &caller, &id).await?;
            let d = replay(state, &w, &delivery, now).await?;
            queued(d.delivery_id, "Delivery replay queued")
        }
    };
    Ok(response.rate_limit(&caller.rate))
}

fn queued(delivery_id: DeliveryId, message: &str) -> ApiResponse {
    ApiResponse::accepted(DeliveryQueuedOut { delivery_id }).message(message)
}
