//! Who is calling: IVR systems with API keys, admins with access tokens.
//!
//! Verified API keys are cached per instance by the SHA-256 of the presented
//! key, so a warm function pays argon2 once per key, not per request. A
//! cached entry is trusted for `api_key_cache_seconds` (≤ 60 s), after which
//! the record is re-read (no argon2): that is the bound on how long a revoked
//! or rotated-out key keeps working on an instance that saw it. Admin tokens
//! name an admin user that must still exist, checked with the same bound.

use crate::error::Chain;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::Utc;
use sha2::{Digest, Sha256};

use crate::domain::api_key::{self, ApiKeyRecord};
use crate::domain::email_address::EmailAddress;
use crate::domain::ids::RestaurantId;
use crate::domain::{hashing, token};
use crate::error::ApiError;
use crate::http::{bearer, record_key_id, Request};
use crate::store::admins::AdminStore;
use crate::store::api_keys::ApiKeyStore;
use crate::store::rate_limits::{RateLimiter, RateStatus};

const MAX_CACHED_KEYS: usize = 1024;
/// `lastUsed` is refreshed at most this often per key and instance.
const LAST_USED_RESOLUTION_SECS: i64 = 300;

/// An authenticated IVR system.
#[derive(Debug, Clone)]
pub struct IvrCaller {
    pub key: ApiKeyRecord,
    pub rate: RateStatus,
}

impl IvrCaller {
    /// A key restricted to other restaurants gets the same 404 as an unknown
    /// restaurant, so it learns nothing about other tenants.
    pub fn ensure_access(&self, restaurant_id: &RestaurantId) -> Result<(), ApiError> {
        if self.key.may_access(restaurant_id) {
            Ok(())
        } else {
            Err(ApiError::NotFound("restaurant"))
        }
    }
}

/// An authenticated admin.
#[derive(Debug, Clone)]
pub struct AdminCaller {
    pub claims: token::Claims,
}

struct CachedKey {
    record: Option<ApiKeyRecord>,
    valid: bool,
    fetched: Instant,
}

/// What verifies admin access tokens: the signing secret, the lifetime
/// sign-in issues them for, and where admin users live.
pub struct AdminTokens {
    pub secret: Vec<u8>,
    pub lifetime_seconds: i64,
    pub admins: AdminStore,
}

pub struct Authenticator {
    keys: ApiKeyStore,
    limiter: RateLimiter,
    tokens: AdminTokens,
    cache_ttl: Duration,
    default_limit: u32,
    cache: Mutex<HashMap<[u8; 32], CachedKey>>,
    /// (admin e-mail, user id) -> whether that admin exists, and when we looked.
    admin_cache: Mutex<HashMap<(String, String), (bool, Instant)>>,
}

impl Authenticator {
    pub fn new(
        keys: ApiKeyStore,
        limiter: RateLimiter,
        tokens: AdminTokens,
        cache_ttl: Duration,
        default_limit: u32,
    ) -> Self {
        Self {
            keys,
            limiter,
            tokens,
            cache_ttl,
            default_limit,
            cache: Mutex::new(HashMap::new()),
            admin_cache: Mutex::new(HashMap::new()),
        }
    }

    /// Authenticates an IVR route: a valid API key, within its rate limit.
    pub async fn ivr(&self, req: &Request) -> Result<IvrCaller, ApiError> {
        let credential = bearer(req).ok_or(ApiError::Unauthorized)?;
        if token::looks_like_jwt(credential) {
            return match self.verify_token(credential) {
                Ok(_) => Err(ApiError::Forbidden("this route requires an IVR API key")),
                Err(e) => Err(e),
            };
        }
        let key = self.verify_key(credential).await?;
        record_key_id(&key.key_id);
        let limit = key.rate_limit_per_minute.unwrap_or(self.default_limit);
        let rate = self
            .limiter
            .hit(
                &format!("key#{}", key.key_id),
                limit,
                60,
                Utc::now().timestamp(),
            )
            .await;
        if !rate.allowed {
            tracing::warn!(limit, "api key rate limited");
            crate::metrics::count(crate::metrics::RATE_LIMITED, 1);
        }
        rate.check()?;
        Ok(IvrCaller { key, rate })
    }

    /// Authenticates an admin route: a valid admin access token.
    pub async fn admin(&self, req: &Request) -> Result<AdminCaller, ApiError> {
        let credential = bearer(req).ok_or(ApiError::Unauthorized)?;
        if api_key::key_id(credential).is_some() {
            self.verify_key(credential).await?;
            return Err(ApiError::Forbidden(
                "this route requires an admin access token",
            ));
        }
        let claims = self.verify_token(credential)?;
        if claims.role != token::ADMIN_ROLE {
            return Err(ApiError::Forbidden("this route requires the admin role"));
        }
        if !self.admin_exists(&claims).await? {
            tracing::info!("admin token rejected: its admin user does not exist");
            return Err(ApiError::Unauthorized);
        }
        Ok(AdminCaller { claims })
    }

    fn verify_token(&self, credential: &str) -> Result<token::Claims, ApiError> {
        let now = Utc::now().timestamp();
        token::verify(
            credential,
            &self.tokens.secret,
            now,
            self.tokens.lifetime_seconds,
        )
        .map_err(|e| {
            tracing::info!(reason = %e, "admin token rejected");
            ApiError::Unauthorized
        })
    }

    /// Whether the token's subject is still an admin user (the same user: an
    /// e-mail re-created under a new id does not revive old tokens).
    async fn admin_exists(&self, claims: &token::Claims) -> Result<bool, ApiError> {
        let key = (claims.email.to_lowercase(), claims.sub.clone());
        if let Some(&(exists, at)) = self.admin_cache.lock().expect("admin cache").get(&key) {
            if at.elapsed() < self.cache_ttl {
                return Ok(exists);
            }
        }
        // A signed token naming an address that isn't one can't be an admin's.
        let exists = match EmailAddress::parse(&key.0) {
            Ok(email) => self
                .tokens
                .admins
                .get(&email)
                .await?
                .is_some_and(|u| u.user_id == claims.sub && u.role == token::ADMIN_ROLE),
            Err(_) => false,
        };
        let mut cache = self.admin_cache.lock().expect("admin cache");
        if cache.len() >= MAX_CACHED_KEYS {
            cache.clear();
        }
        cache.insert(key, (exists, Instant::now()));
        Ok(exists)
    }

    /// Verifies a presented API key; argon2 runs only the first time an
    /// instance sees a given key (or after its stored hash changed).
    pub async fn verify_key(&self, plaintext: &str) -> Result<ApiKeyRecord, ApiError> {
        let key_id = api_key::key_id(plaintext).ok_or(ApiError::Unauthorized)?;
        let digest: [u8; 32] = Sha256::digest(plaintext.as_bytes()).into();
        let now = Utc::now();

        let previous_hash = {
            let cache = self.cache.lock().expect("key cache lock");
            match cache.get(&digest) {
                Some(c) if c.fetched.elapsed() < self.cache_ttl => {
                    return match &c.record {
                        Some(r) if c.valid && r.usable(now) => Ok(r.clone()),
                        _ => Err(ApiError::Unauthorized),
                    };
                }
                Some(CachedKey {
                    record: Some(r),
                    valid: true,
                    ..
                }) => Some(r.key_hash.clone()),
                _ => None,
            }
        };

        let record = self.keys.get(&key_id).await?;
        let valid = match &record {
            Some(r) if previous_hash.as_deref() == Some(r.key_hash.as_str()) => true,
            Some(r) => hashing::verify(plaintext, &r.key_hash),
            None => false,
        };
        if let (true, Some(r)) = (valid, &record) {
            let stale = r
                .last_used
                .is_none_or(|t| (now - t).num_seconds() >= LAST_USED_RESOLUTION_SECS);
            if stale && r.usable(now) {
                if let Err(e) = self.keys.touch(&r.key_id, now).await {
                    tracing::warn!(error = %Chain(&e), "could not stamp lastUsed");
                }
            }
        }
        {
            let mut cache = self.cache.lock().expect("key cache lock");
            if cache.len() >= MAX_CACHED_KEYS {
                cache.clear();
            }
            cache.insert(
                digest,
                CachedKey {
                    record: record.clone(),
                    valid,
                    fetched: Instant::now(),
                },
            );
        }
        match record {
            Some(r) if valid && r.usable(now) => Ok(r),
            _ => Err(ApiError::Unauthorized),
        }
    }

    pub fn token_secret(&self) -> &[u8] {
        &self.tokens.secret
    }
}
