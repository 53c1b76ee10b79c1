//! API keys: minting, rotation and revocation.

use chrono::{DateTime, Duration, Utc};

use crate::app::AppState;
use crate::domain::api_key::{self, ApiKeyRecord, ApiKeyRequest, KeySettings};
use crate::domain::ids::ApiKeyId;
use crate::domain::validate::{FieldError, ValidationErrors};
use crate::error::ApiError;
use crate::store::api_keys::RotateError;
use crate::store::StoreError;

/// Key ids are 8 random base62 characters: a collision is astronomically
/// rare, and the conditional put makes it harmless; a few tries settle it.
const ID_TRIES: usize = 3;

/// Stores `make(key)` for a freshly generated key, generating another on
/// the (astronomically rare) id collision.
async fn with_fresh_key<T, Fut>(
    mut store: impl FnMut(api_key::NewKey) -> Fut,
) -> Result<T, ApiError>
where
    Fut: std::future::Future<Output = Result<Option<T>, ApiError>>,
{
    for _ in 0..ID_TRIES {
        if let Some(done) = store(api_key::generate()).await? {
            return Ok(done);
        }
    }
    Err(ApiError::internal("could not allocate a unique key id"))
}

/// Validates a key request, checks its restaurants exist, and stores a new
/// key. Returns the plaintext (shown once) and the stored record.
pub async fn mint_api_key(
    state: &AppState,
    request: ApiKeyRequest,
    created_by: &str,
    now: DateTime<Utc>,
) -> Result<(String, ApiKeyRecord), ApiError> {
    let settings = request.validated(now)?;
    check_restaurants_exist(state, &settings).await?;
    with_fresh_key(|key| {
        let record = settings.record(&key, None, created_by, now);
        async move {
            match state.api_keys.insert(&record).await {
                Ok(()) => Ok(Some((key.plaintext, record))),
                Err(StoreError::AlreadyExists) => Ok(None),
                Err(e) => Err(e.into()),
            }
        }
    })
    .await
}

async fn check_restaurants_exist(state: &AppState, settings: &KeySettings) -> Result<(), ApiError> {
    let Some(ids) = &settings.restaurant_ids else {
        return Ok(());
    };
    let missing = state.restaurants.missing(ids).await?;
    if missing.is_empty() {
        return Ok(());
    }
    let details = ids
        .iter()
        .enumerate()
        .filter(|(_, id)| missing.contains(id))
        .map(|(i, _)| FieldError::new(format!("restaurantIds[{i}]"), "no such restaurant"))
        .collect();
    Err(ValidationErrors(details).into())
}

pub const MAX_GRACE_SECONDS: i64 = 30 * 86_400;

/// A rotated key: the successor's plaintext and record, and until when the
/// old key still works.
pub struct Rotated {
    pub plaintext: String,
    pub record: ApiKeyRecord,
    pub previous_valid_until: DateTime<Utc>,
}

/// Replaces an active key with a successor of the same family and settings;
/// the old key keeps working for `grace_seconds` (the default when `None`).
pub async fn rotate_api_key(
    state: &AppState,
    key_id: &ApiKeyId,
    grace_seconds: Option<i64>,
    rotated_by: &str,
    now: DateTime<Utc>,
) -> Result<Rotated, ApiError> {
    let grace = grace_seconds.unwrap_or(state.config.default_rotation_grace_seconds);
    if !(0..=MAX_GRACE_SECONDS).contains(&grace) {
        return Err(ApiError::validation(
            "gracePeriodSeconds",
            format!("must be from 0 to {MAX_GRACE_SECONDS}"),
        ));
    }
    let old = state
        .api_keys
        .get(key_id)
        .await?
        .ok_or(ApiError::NotFound("API key"))?;
    if !old.rotatable(now) {
        return Err(ApiError::conflict(
            "only an active key can be rotated; this one is revoked, expired or already rotated",
        ));
    }
    let grace_until = now + Duration::seconds(grace);
    let settings = old.successor_settings();
    let (plaintext, record) = with_fresh_key(|key| {
        let record = settings.record(&key, Some(old.owner()), rotated_by, now);
        async move {
            match state
                .api_keys
                .rotate(key_id, grace_until, now, &record)
                .await
            {
                Ok(()) => Ok(Some((key.plaintext, record))),
                Err(RotateError::Store(StoreError::AlreadyExists)) => Ok(None),
                Err(RotateError::NotRotatable) => Err(ApiError::conflict(
                    "the key was revoked or rotated meanwhile",
                )),
                Err(RotateError::Store(e)) => Err(e.into()),
            }
        }
    })
    .await?;
    crate::faults::point(
        "key.rotate.after",
        &[key_id.as_str(), record.key_id.as_str()],
    )?;
    tracing::info!(new_key_id = %record.key_id, grace, "api key rotated");
    Ok(Rotated {
        plaintext,
        record,
        previous_valid_until: grace_until,
    })
}

/// Revokes a key at once (warm instances notice within the key cache's TTL).
pub async fn revoke_api_key(
    state: &AppState,
    key_id: &ApiKeyId,
    now: DateTime<Utc>,
) -> Result<ApiKeyRecord, ApiError> {
    state
        .api_keys
        .revoke(key_id, now)
        .await?
        .ok_or(ApiError::NotFound("API key"))
}
