//! API key lifecycle (admin): `GET /ivr/auth/api-keys` (list, paginated),
//! `POST /ivr/auth/api-key/{keyId}/rotate`, `DELETE /ivr/auth/api-key/{keyId}`.

use chrono::Utc;
use pulsara_shared::domain::ids::ApiKeyId;
use pulsara_shared::http::{
    limit_param, optional_json_body, optional_path_id, query_param, record_key_id,
};
use pulsara_shared::responses::{
    ApiKeyIssuedOut, ApiKeyListOut, ApiKeyOut, ApiKeyRevokedOut, ApiKeyRotatedOut,
};
use pulsara_shared::services::api_keys::{revoke_api_key, rotate_api_key};
use pulsara_shared::{AdminApp, ApiError, ApiResponse, Request};
use serde::Deserialize;

pub const MAX_PAGE: i32 = 100;

enum Route {
    List,
    Rotate(ApiKeyId),
    Revoke(ApiKeyId),
}

impl Route {
    fn of(req: &Request) -> Result<Self, ApiError> {
        match (req.method().as_str(), optional_path_id(req, "keyId")?) {
            ("GET", None) => Ok(Route::List),
            ("POST", Some(id)) => Ok(Route::Rotate(id)),
            ("DELETE", Some(id)) => Ok(Route::Revoke(id)),
            _ => Err(ApiError::MethodNotAllowed),
        }
    }
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RotateBody {
    grace_period_seconds: Option<i64>,
}

pub async fn handle(app: &AdminApp, req: Request) -> Result<ApiResponse, ApiError> {
    let admin = app.admin(&req).await?;
    let state = &app.state;
    let now = Utc::now();
    match Route::of(&req)? {
        Route::List => {
            let limit = limit_param(&req, 50, MAX_PAGE)?;
            let cursor = query_param(&req, "cursor");
            let (records, next_cursor) = state.api_keys.list(limit, cursor.as_deref()).await?;
            let keys = records.iter().map(|r| ApiKeyOut::new(r, now)).collect();
            Ok(ApiResponse::ok(ApiKeyListOut { keys, next_cursor }))
        }
        Route::Rotate(key_id) => {
            record_key_id(&key_id);
            let body: RotateBody = optional_json_body(&req, 4 * 1024)?;
            let rotated = rotate_api_key(
                state,
                &key_id,
                body.grace_period_seconds,
                &admin.claims.sub,
                now,
            )
            .await?;
            Ok(ApiResponse::created(ApiKeyRotatedOut {
                issued: ApiKeyIssuedOut::new(&rotated.record, rotated.plaintext),
                previous_key_id: key_id,
                previous_key_valid_until: rotated.previous_valid_until,
            })
            .message("API key rotated successfully"))
        }
        Route::Revoke(key_id) => {
            record_key_id(&key_id);
            let record = revoke_api_key(state, &key_id, now).await?;
            tracing::info!(admin = %admin.claims.sub, "api key revoked");
            Ok(ApiResponse::ok(ApiKeyRevokedOut {
                status: record.status(now),
                key_id: record.key_id,
                revoked_at: record.revoked_at,
                effective_within_seconds: state.config.api_key_cache_seconds,
            })
            .message("API key revoked"))
        }
    }
}
