//! Sign-in and API keys.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::api_key::{ApiKeyRecord, KeyStatus};
use crate::domain::ids::{ApiKeyId, RestaurantId};

/// `POST /ivr/auth/login`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct LoginOut {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_at: DateTime<Utc>,
    pub expires_in: i64,
}

/// A new key, its plaintext shown this once.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct ApiKeyIssuedOut {
    pub api_key: String,
    pub key_id: ApiKeyId,
    pub name: String,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub restaurant_ids: Option<Vec<RestaurantId>>,
    pub rate_limit_per_minute: Option<u32>,
}

impl ApiKeyIssuedOut {
    pub fn new(record: &ApiKeyRecord, plaintext: String) -> Self {
        Self {
            api_key: plaintext,
            key_id: record.key_id.clone(),
            name: record.name.clone(),
            description: record.description.clone(),
            created_at: record.created_at,
            expires_at: record.expires_at,
            restaurant_ids: record.restaurant_ids.clone(),
            rate_limit_per_minute: record.rate_limit_per_minute,
        }
    }
}

/// A rotated key's successor, and how long the old key still works.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct ApiKeyRotatedOut {
    #[serde(flatten)]
    pub issued: ApiKeyIssuedOut,
    pub previous_key_id: ApiKeyId,
    pub previous_key_valid_until: DateTime<Utc>,
}

/// What admins see of a key: everything but its hash.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct ApiKeyOut {
    pub key_id: ApiKeyId,
    pub name: String,
    pub description: Option<String>,
    pub status: KeyStatus,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub last_used: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub rotated_to: Option<ApiKeyId>,
    pub grace_until: Option<DateTime<Utc>>,
    pub restaurant_ids: Option<Vec<RestaurantId>>,
    pub rate_limit_per_minute: Option<u32>,
}

impl ApiKeyOut {
    pub fn new(r: &ApiKeyRecord, now: DateTime<Utc>) -> Self {
        Self {
            key_id: r.key_id.clone(),
            name: r.name.clone(),
            description: r.description.clone(),
            status: r.status(now),
            created_by: r.created_by.clone(),
            created_at: r.created_at,
            last_used: r.last_used,
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
            rotated_to: r.rotated_to.clone(),
            grace_until: r.grace_until,
            restaurant_ids: r.restaurant_ids.clone(),
            rate_limit_per_minute: r.rate_limit_per_minute,
        }
    }
}

/// `GET /ivr/auth/api-keys`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct ApiKeyListOut {
    pub keys: Vec<ApiKeyOut>,
    pub next_cursor: Option<String>,
}

/// `DELETE /ivr/auth/api-key/{keyId}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct ApiKeyRevokedOut {
    pub key_id: ApiKeyId,
    pub status: KeyStatus,
    pub revoked_at: Option<DateTime<Utc>>,
    /// Warm instances trust a verified key this long before re-reading it.
    pub effective_within_seconds: u64,
}
