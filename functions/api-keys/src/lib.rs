//! API key lifecycle (admin): `GET /ivr/auth/api-keys` (list, paginated),
//! `POST /ivr/auth/api-key/{keyId}/rotate`, `DELETE /ivr/auth/api-key/{keyId}`.

use chrono::{Duration, Utc};
use pulsara_shared::auth::AdminCaller;
use pulsara_shared::domain::api_key;
use pulsara_shared::domain::ids::IdKind;
use pulsara_shared::http::{
    limit_param, optional_json_body, path_id, path_param, query_param, record_key_id,
};
use pulsara_shared::store::api_keys::RotateError;
use pulsara_shared::store::StoreError;
use pulsara_shared::{ApiError, ApiResponse, AppState, Request};
use serde::Deserialize;

pub const MAX_PAGE: i32 = 100;
pub const MAX_GRACE_SECONDS: i64 = 30 * 86_400;

pub async fn handle(state: &AppState, req: Request) -> Result<ApiResponse, ApiError> {
    let admin = state.auth.admin(&req).await?;
    let key_id = match path_param(&req, "keyId") {
        Ok(_) => Some(path_id(&req, "keyId", IdKind::ApiKey)?),
        Err(_) => None,
    };
    match (req.method().as_str(), key_id) {
        ("GET", None) => list(state, &req).await,
        ("POST", Some(id)) => rotate(state, &req, &admin, &id).await,
        ("DELETE", Some(id)) => revoke(state, &admin, &id).await,
        _ => Err(ApiError::MethodNotAllowed),
    }
}

async fn list(state: &AppState, req: &Request) -> Result<ApiResponse, ApiError> {
    let limit = limit_param(req, 50, MAX_PAGE)?;
    let cursor = query_param(req, "cursor");
    let (records, next) = state.api_keys.list(limit, cursor.as_deref()).await?;
    let now = Utc::now();
    let keys: Vec<_> = records.iter().map(|r| r.view(now)).collect();
    Ok(ApiResponse::ok(
        serde_json::json!({ "keys": keys, "nextCursor": next }),
    ))
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RotateBody {
    grace_period_seconds: Option<i64>,
}

async fn rotate(
    state: &AppState,
    req: &Request,
    admin: &AdminCaller,
    key_id: &str,
) -> Result<ApiResponse, ApiError> {
    let body: RotateBody = optional_json_body(req, 4 * 1024)?;
    let grace = body
        .grace_period_seconds
        .unwrap_or(state.config.default_rotation_grace_seconds);
    if !(0..=MAX_GRACE_SECONDS).contains(&grace) {
        return Err(ApiError::validation(
            "gracePeriodSeconds",
            format!("must be from 0 to {MAX_GRACE_SECONDS}"),
        ));
    }
    record_key_id(key_id);
    let old = state
        .api_keys
        .get(key_id)
        .await?
        .ok_or(ApiError::NotFound("API key"))?;
    let now = Utc::now();
    if !old.usable(now) || old.rotated_to.is_some() {
        return Err(ApiError::conflict(
            "only an active key can be rotated; this one is revoked, expired or already rotated",
        ));
    }
    let grace_until = now + Duration::seconds(grace);
    let request = old.successor_request();
    for _ in 0..3 {
        let key = api_key::generate();
        let record = request.record(&key, Some(old.owner()), &admin.claims.sub, now);
        match state
            .api_keys
            .rotate(key_id, grace_until, now, &record)
            .await
        {
            Ok(()) => {
                pulsara_shared::faults::point("key.rotate.after", &[key_id, &record.key_id])?;
                tracing::info!(new_key_id = %record.key_id, grace, "api key rotated");
                let mut data = record.issued(&key.plaintext);
                data["previousKeyId"] = key_id.into();
                data["previousKeyValidUntil"] = serde_json::json!(grace_until);
                return Ok(ApiResponse::created(data).message("API key rotated successfully"));
            }
            Err(RotateError::Store(StoreError::AlreadyExists)) => continue,
            Err(RotateError::NotRotatable) => {
                return Err(ApiError::conflict(
                    "the key was revoked or rotated meanwhile",
                ))
            }
            Err(RotateError::Store(e)) => return Err(e.into()),
        }
    }
    Err(ApiError::internal("could not allocate a unique key id"))
}

async fn revoke(
    state: &AppState,
    admin: &AdminCaller,
    key_id: &str,
) -> Result<ApiResponse, ApiError> {
    record_key_id(key_id);
    let record = state
        .api_keys
        .revoke(key_id, Utc::now())
        .await?
        .ok_or(ApiError::NotFound("API key"))?;
    tracing::info!(admin = %admin.claims.sub, "api key revoked");
    Ok(ApiResponse::ok(serde_json::json!({
        "keyId": record.key_id,
        "status": "revoked",
        "revokedAt": record.revoked_at,
        // Warm instances trust a verified key this long before re-reading it.
        "effectiveWithinSeconds": state.config.api_key_cache_seconds,
    }))
    .message("API key revoked"))
}
