//! API key format and lifecycle rules.
//!
//! A key is `psk_live_` + 32 base62 characters: the first 8 are its public
//! key id (the DynamoDB lookup key), the other 24 (~143 bits) the secret.
//! Only the key's SHA-256 is stored (why that is enough: `hashing`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::hashing;
use super::ids::{ApiKeyId, Id, RestaurantId};
use super::validate::{Errors, ValidationErrors};

pub const PREFIX: &str = "psk_live_";
pub const ID_LEN: usize = 8;
pub const BODY_LEN: usize = 32;
const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A freshly minted key: the plaintext is shown once, only the hash is kept.
pub struct NewKey {
    pub key_id: ApiKeyId,
    pub plaintext: String,
    pub hash: String,
}

pub fn generate() -> NewKey {
    let mut body = String::with_capacity(BODY_LEN);
    let mut buf = [0u8; 64];
    while body.len() < BODY_LEN {
        hashing::random_bytes(&mut buf);
        // Rejection sampling keeps every character equally likely.
        for &b in buf.iter().filter(|&&b| b < 248) {
            if body.len() == BODY_LEN {
                break;
            }
            body.push(BASE62[(b % 62) as usize] as char);
        }
    }
    let plaintext = format!("{PREFIX}{body}");
    NewKey {
        key_id: ApiKeyId::from_generated(&body),
        hash: hashing::hash_api_key(&plaintext),
        plaintext,
    }
}

/// The key id inside a well-formed key, or `None` for anything else.
pub fn key_id(candidate: &str) -> Option<ApiKeyId> {
    let body = candidate.strip_prefix(PREFIX)?;
    (body.len() == BODY_LEN && body.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then(|| ApiKeyId::from_generated(body))
}

/// The stored record of a key (never its plaintext).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyRecord {
    pub key_id: ApiKeyId,
    pub key_hash: String,
    /// The key family: the first key's id, inherited by every rotated
    /// successor, so calls and webhooks stay with the vendor across rotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<ApiKeyId>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
    /// Set on rotation: the key that replaced this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotated_to: Option<ApiKeyId>,
    /// Set on rotation: this key keeps working until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_until: Option<DateTime<Utc>>,
    /// When set, the key may only see these restaurants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restaurant_ids: Option<Vec<RestaurantId>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_minute: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub enum KeyStatus {
    Active,
    /// Rotated, still inside its grace period.
    Rotating,
    RotatedOut,
    Expired,
    Revoked,
}

impl ApiKeyRecord {
    pub fn status(&self, now: DateTime<Utc>) -> KeyStatus {
        if self.revoked_at.is_some_and(|t| t <= now) {
            KeyStatus::Revoked
        } else if self.expires_at.is_some_and(|t| t <= now) {
            KeyStatus::Expired
        } else if let Some(until) = self.grace_until {
            if until <= now {
                KeyStatus::RotatedOut
            } else {
                KeyStatus::Rotating
            }
        } else {
            KeyStatus::Active
        }
    }

    pub fn usable(&self, now: DateTime<Utc>) -> bool {
        matches!(self.status(now), KeyStatus::Active | KeyStatus::Rotating)
    }

    /// The key family: calls and webhooks belong to it, across rotations.
    pub fn owner(&self) -> &ApiKeyId {
        self.owner_id.as_ref().unwrap_or(&self.key_id)
    }

    pub fn may_access(&self, restaurant_id: &RestaurantId) -> bool {
        self.restaurant_ids
            .as_ref()
            .is_none_or(|ids| ids.contains(restaurant_id))
    }

    /// Rotation's rule: only a key in use and not yet replaced can be rotated.
    pub fn rotatable(&self, now: DateTime<Utc>) -> bool {
        self.usable(now) && self.rotated_to.is_none()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::Duration;

    pub(crate) fn record(now: DateTime<Utc>) -> ApiKeyRecord {
        ApiKeyRecord {
            key_id: ApiKeyId::parse("abcd1234").unwrap(),
            key_hash: String::new(),
            owner_id: None,
            name: "n".into(),
            description: None,
            created_by: "u".into(),
            created_at: now,
            updated_at: now,
            last_used: None,
            expires_at: None,
            revoked_at: None,
            rotated_to: None,
            grace_until: None,
            restaurant_ids: None,
            rate_limit_per_minute: None,
        }
    }

    #[test]
    fn generated_keys_have_the_documented_shape() {
        let k = generate();
        assert!(k.plaintext.starts_with(PREFIX));
        assert_eq!(k.plaintext.len(), PREFIX.len() + BODY_LEN);
        assert_eq!(key_id(&k.plaintext), Some(k.key_id.clone()));
        assert!(hashing::verify_api_key(&k.plaintext, &k.hash));
        assert!(!hashing::verify_api_key(&generate().plaintext, &k.hash));
        assert!(!k.hash.contains(&k.plaintext[PREFIX.len()..]));
        assert_ne!(generate().plaintext, k.plaintext);
    }

    #[test]
    fn malformed_keys_have_no_id() {
        for bad in [
            "",
            "psk_live_",
            "psk_test_abcdefghijklmnopqrstuvwxyz012345",
            "psk_live_abcdefghijklmnopqrstuvwxyz01234",
            "psk_live_abcdefghijklmnopqrstuvwxyz0123-5",
        ] {
            assert_eq!(key_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn lifecycle_statuses() {
        let now = Utc::now();
        let mut r = record(now);
        assert_eq!(r.status(now), KeyStatus::Active);
        r.grace_until = Some(now + Duration::seconds(10));
        assert_eq!(r.status(now), KeyStatus::Rotating);
        assert!(r.usable(now));
        assert_eq!(r.status(now + Duration::seconds(10)), KeyStatus::RotatedOut);
        assert!(!r.usable(now + Duration::seconds(11)));
        r.expires_at = Some(now);
        assert_eq!(r.status(now), KeyStatus::Expired);
        r.revoked_at = Some(now);
        assert_eq!(r.status(now), KeyStatus::Revoked);
    }

    #[test]
    fn restriction_to_restaurants() {
        let mut r = record(Utc::now());
        let (a, b) = (RestaurantId::generate(), RestaurantId::generate());
        assert!(r.may_access(&a));
        r.restaurant_ids = Some(vec![a.clone()]);
        assert!(r.may_access(&a));
        assert!(!r.may_access(&b));
    }
}

pub const MAX_RESTRICTED_RESTAURANTS: usize = 100;
pub const MAX_RATE_LIMIT_PER_MINUTE: u32 = 100_000;
/// Ten years: anything later is a typo (and beyond RFC 3339's four-digit years).
pub const MAX_KEY_LIFETIME_DAYS: i64 = 3_653;

/// Body of `POST /ivr/auth/api-key`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ApiKeyRequest {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub restaurant_ids: Option<Vec<String>>,
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub rate_limit_per_minute: Option<u32>,
}

/// A key's settings, validated (trimmed, de-duplicated): what a new key is
/// made with, and what a rotated key hands on to its successor.
#[derive(Debug, Clone)]
pub struct KeySettings {
    pub name: String,
    pub description: Option<String>,
    /// Restaurant ids of our format; whether each exists is the caller's check.
    pub restaurant_ids: Option<Vec<RestaurantId>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub rate_limit_per_minute: Option<u32>,
}

impl ApiKeyRequest {
    /// Validates the request into a key's settings.
    pub fn validated(self, now: DateTime<Utc>) -> Result<KeySettings, ValidationErrors> {
        let mut e = Errors::new();
        let name = e.text("name", &self.name, 100);
        let description = self.description.map(|d| d.trim().to_string());
        if let Some(d) = &description {
            if d.chars().count() > 500 {
                e.add("description", "must be at most 500 characters");
            }
        }
        let restaurant_ids = self.restaurant_ids.map(|ids| {
            if ids.is_empty() || ids.len() > MAX_RESTRICTED_RESTAURANTS {
                e.add(
                    "restaurantIds",
                    format!("must list 1 to {MAX_RESTRICTED_RESTAURANTS} restaurant ids (omit it for all restaurants)"),
                );
            }
            let mut unique: Vec<RestaurantId> = Vec::new();
            for (i, raw) in ids.into_iter().enumerate() {
                let field = format!("restaurantIds[{i}]");
                match RestaurantId::parse(&raw) {
                    Some(id) if !unique.contains(&id) => unique.push(id),
                    Some(_) => {}
                    // A token, but never one of our ids: it names no restaurant.
                    None if e.token(&field, &raw, 64) => e.add(field, "no such restaurant"),
                    None => {}
                }
            }
            unique
        });
        if self.expires_at.is_some_and(|t| t <= now) {
            e.add("expiresAt", "must be in the future");
        } else if self
            .expires_at
            .is_some_and(|t| t > now + chrono::Duration::days(MAX_KEY_LIFETIME_DAYS))
        {
            e.add(
                "expiresAt",
                format!("must be within {MAX_KEY_LIFETIME_DAYS} days"),
            );
        }
        if let Some(n) = self.rate_limit_per_minute {
            if n == 0 || n > MAX_RATE_LIMIT_PER_MINUTE {
                e.add(
                    "rateLimitPerMinute",
                    format!("must be between 1 and {MAX_RATE_LIMIT_PER_MINUTE}"),
                );
            }
        }
        e.finish()?;
        Ok(KeySettings {
            name,
            description: description.filter(|d| !d.is_empty()),
            restaurant_ids,
            expires_at: self.expires_at,
            rate_limit_per_minute: self.rate_limit_per_minute,
        })
    }
}

impl KeySettings {
    /// The record for a freshly generated key; `owner` is the key family of
    /// a rotated key, `None` to start a new family.
    pub fn record(
        &self,
        key: &NewKey,
        owner: Option<&ApiKeyId>,
        created_by: &str,
        now: DateTime<Utc>,
    ) -> ApiKeyRecord {
        ApiKeyRecord {
            key_id: key.key_id.clone(),
            key_hash: key.hash.clone(),
            owner_id: Some(owner.unwrap_or(&key.key_id).clone()),
            name: self.name.clone(),
            description: self.description.clone(),
            created_by: created_by.to_string(),
            created_at: now,
            updated_at: now,
            last_used: None,
            expires_at: self.expires_at,
            revoked_at: None,
            rotated_to: None,
            grace_until: None,
            restaurant_ids: self.restaurant_ids.clone(),
            rate_limit_per_minute: self.rate_limit_per_minute,
        }
    }
}

impl ApiKeyRecord {
    /// The settings a rotated key hands on to its successor.
    pub fn successor_settings(&self) -> KeySettings {
        KeySettings {
            name: self.name.clone(),
            description: self.description.clone(),
            restaurant_ids: self.restaurant_ids.clone(),
            expires_at: self.expires_at,
            rate_limit_per_minute: self.rate_limit_per_minute,
        }
    }
}
