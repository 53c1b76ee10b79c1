//! Who is calling: IVR systems with API keys, admins with access tokens.
//!
//! Verified API keys are cached per instance by the SHA-256 of the presented
//! key (an LRU that only keys whose hash matched enter, so junk keys cannot
//! push a real one out), so a warm function checks a key's hash once, not per
//! request. A cached entry is trusted for `api_key_cache_seconds` (≤ 60 s),
//! after which the record is re-read: that is the bound on how long a revoked
//! or rotated-out key keeps working on an instance that saw it. Admin tokens
//! name an admin user that must still exist, checked with the same bound.
//!
//! Only a function built with the token secret ([`AdminTokens`], read from
//! Secrets Manager at cold start) can verify admin tokens: the rest hold an
//! [`Authenticator`] alone, which recognises a token by its shape (to answer
//! 403, the wrong kind of credential) and never accepts one.
//!
//! Failed checks of a known key id are counted per key id and source address
//! (shared by all instances); past the limit that source is refused with a
//! 429 for the rest of the window, on this instance before any read or hash.

use crate::error::Chain;
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::crypto::secret_store::TokenSecret;
use crate::domain::api_key::{self, ApiKeyRecord};
use crate::domain::email_address::EmailAddress;
use crate::domain::ids::{ApiKeyId, RestaurantId};
use crate::domain::{hashing, token};
use crate::error::ApiError;
use crate::http::{bearer, record_key_id, source_ip, Request};
use crate::store::admins::AdminStore;
use crate::store::api_keys::ApiKeyStore;
use crate::store::rate_limits::{RateLimiter, RateStatus};

const MAX_CACHED_KEYS: usize = 1024;
/// Presented keys that failed, remembered apart from the verified ones.
const MAX_REJECTED_KEYS: usize = 256;
const MAX_BLOCKED_SOURCES: usize = 1024;
/// `lastUsed` is refreshed at most this often per key and instance.
const LAST_USED_RESOLUTION_SECS: i64 = 300;

/// An authenticated IVR system.
#[derive(Debug, Clone)]
pub struct IvrCaller {
    pub key: ApiKeyRecord,
    pub rate: RateStatus,
}

impl IvrCaller {
    /// A caller acting as `key` without a request of its own to count (an
    /// integration's platform request, the admin CLI): never rate limited.
    pub fn acting_as(key: ApiKeyRecord) -> Self {
        Self {
            key,
            rate: RateStatus {
                limit: 0,
                remaining: 0,
                reset_secs: 0,
                allowed: true,
            },
        }
    }

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

/// The capability to sign and verify admin access tokens: the secret, the
/// lifetime sign-in issues them for, and where admin users live.
pub struct AdminTokens {
    secret: TokenSecret,
    lifetime_seconds: i64,
    admins: AdminStore,
    cache_ttl: Duration,
    /// (admin e-mail, user id) -> whether that admin exists, and when we looked.
    admin_cache: Mutex<HashMap<(String, String), (bool, Instant)>>,
}

/// API keys (and, by shape only, admin tokens presented on IVR routes).
pub struct Authenticator {
    keys: ApiKeyStore,
    limiter: RateLimiter,
    /// Admin token lifetime, for telling a token of ours by its shape.
    token_lifetime: i64,
    cache_ttl: Duration,
    default_limit: u32,
    /// Failed checks of one known key id allowed per source address and minute.
    failure_limit: u32,
    cache: Mutex<KeyCache>,
    /// (key id, source address) -> refused until then (its failures passed the limit).
    blocked: Mutex<HashMap<(ApiKeyId, String), Instant>>,
}

impl AdminTokens {
    pub fn new(
        secret: TokenSecret,
        lifetime_seconds: i64,
        admins: AdminStore,
        cache_ttl: Duration,
    ) -> Self {
        Self {
            secret,
            lifetime_seconds,
            admins,
            cache_ttl,
            admin_cache: Mutex::new(HashMap::new()),
        }
    }

    /// Signs sign-in's token.
    pub fn sign(&self, claims: &token::Claims) -> String {
        token::sign(claims, self.secret.bytes())
    }

    /// Authenticates an admin route: a valid admin access token.
    /// An API key is checked through `keys` first (its failures count
    /// against guessing as on any route), then refused as the wrong kind.
    pub async fn admin(
        &self,
        keys: &Authenticator,
        req: &Request,
    ) -> Result<AdminCaller, ApiError> {
        let credential = bearer(req).ok_or(ApiError::Unauthorized)?;
        if api_key::key_id(credential).is_some() {
            keys.verify_key(credential, &source_ip(req)).await?;
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
        token::verify(credential, self.secret.bytes(), now, self.lifetime_seconds).map_err(|e| {
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
}

/// A key whose hash matched, and the write its record is due (`lastUsed`,
/// or an argon2-era hash replaced by its SHA-256).
pub struct VerifiedKey {
    pub record: ApiKeyRecord,
    due: Option<KeyWrite>,
}

struct KeyWrite {
    stamp_last_used: bool,
    new_hash: Option<String>,
}

impl Authenticator {
    pub fn new(
        keys: ApiKeyStore,
        limiter: RateLimiter,
        token_lifetime: i64,
        cache_ttl: Duration,
        default_limit: u32,
        failure_limit: u32,
    ) -> Self {
        Self {
            keys,
            limiter,
            token_lifetime,
            cache_ttl,
            default_limit,
            failure_limit,
            cache: Mutex::new(KeyCache::new(MAX_CACHED_KEYS, MAX_REJECTED_KEYS)),
            blocked: Mutex::new(HashMap::new()),
        }
    }

    /// Authenticates an IVR route: a valid API key, within its rate limit.
    pub async fn ivr(&self, req: &Request) -> Result<IvrCaller, ApiError> {
        let (caller, ()) = self.ivr_with(req, async { Ok(()) }).await?;
        Ok(caller)
    }

    /// Authenticates an IVR route and runs `work` (the route's first read)
    /// concurrently with the rate-limit count and any due key write, so they
    /// cost one round trip together. `work` starts only once the key is
    /// verified; being rate limited (429) wins over whatever `work` returned.
    pub async fn ivr_with<T>(
        &self,
        req: &Request,
        work: impl Future<Output = Result<T, ApiError>>,
    ) -> Result<(IvrCaller, T), ApiError> {
        let credential = bearer(req).ok_or(ApiError::Unauthorized)?;
        if token::looks_like_jwt(credential) {
            // This function cannot verify the token (it has no secret) and
            // need not: shaped like one of ours, it is the wrong kind (403);
            // otherwise it is no credential (401). Neither reveals anything
            // its sender does not know.
            let now = Utc::now().timestamp();
            return match token::inspect_unverified(credential, now, self.token_lifetime) {
                Ok(_) => Err(ApiError::Forbidden("this route requires an IVR API key")),
                Err(_) => Err(ApiError::Unauthorized),
            };
        }
        let VerifiedKey { record: key, due } = self.verify_key(credential, &source_ip(req)).await?;
        record_key_id(&key.key_id);
        let limit = key.rate_limit_per_minute.unwrap_or(self.default_limit);
        let now = Utc::now();
        let bucket = format!("key#{}", key.key_id);
        let (rate, (), done) = tokio::join!(
            self.limiter.hit_quota(&bucket, limit, 60, now.timestamp()),
            self.write_due(&key, due, now),
            work,
        );
        if !rate.allowed {
            tracing::warn!(limit, "api key rate limited");
            crate::metrics::count(crate::metrics::RATE_LIMITED, 1);
        }
        rate.check()?;
        Ok((IvrCaller { key, rate }, done?))
    }

    /// Verifies a presented API key from `source`. The hash is checked only
    /// the first time an instance sees a key (or after its stored hash
    /// changed); a source whose failures on this key id passed the limit is
    /// refused (429) before any read or hash.
    pub async fn verify_key(&self, plaintext: &str, source: &str) -> Result<VerifiedKey, ApiError> {
        let key_id = api_key::key_id(plaintext).ok_or(ApiError::Unauthorized)?;
        let digest: [u8; 32] = Sha256::digest(plaintext.as_bytes()).into();
        let now = Utc::now();

        let cached = self
            .cache
            .lock()
            .expect("key cache")
            .lookup(&digest, self.cache_ttl);
        let previous_hash = match cached {
            Cached::Fresh(r) if r.usable(now) => {
                return Ok(VerifiedKey {
                    record: r,
                    due: None,
                })
            }
            Cached::Fresh(_) | Cached::Rejected => return Err(ApiError::Unauthorized),
            Cached::Stale(r) => Some(r.key_hash),
            Cached::Unknown => None,
        };
        let source_key = (key_id.clone(), source.to_string());
        self.check_blocked(&source_key)?;

        let Some(record) = self.keys.get(&key_id).await? else {
            self.cache.lock().expect("key cache").reject(digest);
            return Err(ApiError::Unauthorized);
        };
        let valid = previous_hash.as_deref() == Some(record.key_hash.as_str())
            || hashing::verify_api_key(plaintext, &record.key_hash);
        if !valid {
            self.cache.lock().expect("key cache").reject(digest);
            return Err(self.count_failure(source_key, now).await);
        }
        self.cache
            .lock()
            .expect("key cache")
            .remember(digest, record.clone());
        let stamp_last_used = record.usable(now)
            && record
                .last_used
                .is_none_or(|t| (now - t).num_seconds() >= LAST_USED_RESOLUTION_SECS);
        let new_hash = hashing::is_legacy_api_key_hash(&record.key_hash)
            .then(|| hashing::hash_api_key(plaintext));
        let due = (stamp_last_used || new_hash.is_some()).then_some(KeyWrite {
            stamp_last_used,
            new_hash,
        });
        if !record.usable(now) {
            return Err(ApiError::Unauthorized);
        }
        Ok(VerifiedKey { record, due })
    }

    /// A 429 while `source` is blocked on this key id (on this instance).
    fn check_blocked(&self, source: &(ApiKeyId, String)) -> Result<(), ApiError> {
        let mut blocked = self.blocked.lock().expect("blocked sources");
        match blocked.get(source) {
            Some(until) if *until > Instant::now() => Err(ApiError::RateLimited {
                limit: self.failure_limit,
                retry_after: until
                    .saturating_duration_since(Instant::now())
                    .as_secs()
                    .max(1),
            }),
            Some(_) => {
                blocked.remove(source);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Counts a failed check of a known key id from a source: 401 within the
    /// limit, else 429 and the source blocked here until the window ends.
    async fn count_failure(&self, source: (ApiKeyId, String), now: DateTime<Utc>) -> ApiError {
        let bucket = format!("badkey#{}#{}", source.0, source.1);
        let status = self
            .limiter
            .hit(&bucket, self.failure_limit, 60, now.timestamp())
            .await;
        tracing::info!(
            remaining = status.remaining,
            "api key check failed for a known key id"
        );
        let Err(limited) = status.check() else {
            return ApiError::Unauthorized;
        };
        tracing::warn!("failed api key checks limited for a source");
        crate::metrics::count(crate::metrics::RATE_LIMITED, 1);
        let mut blocked = self.blocked.lock().expect("blocked sources");
        if blocked.len() >= MAX_BLOCKED_SOURCES {
            let at = Instant::now();
            blocked.retain(|_, until| *until > at);
            if blocked.len() >= MAX_BLOCKED_SOURCES {
                blocked.clear();
            }
        }
        blocked.insert(
            source,
            Instant::now() + Duration::from_secs(limited.retry_after),
        );
        limited.into()
    }

    /// The key record's due write, if any; a failure is only logged.
    async fn write_due(&self, key: &ApiKeyRecord, due: Option<KeyWrite>, now: DateTime<Utc>) {
        let Some(due) = due else { return };
        let upgrade = due
            .new_hash
            .as_deref()
            .map(|new| (key.key_hash.as_str(), new));
        let last_used = due.stamp_last_used.then_some(now);
        if let Err(e) = self.keys.touch(&key.key_id, last_used, upgrade).await {
            tracing::warn!(error = %Chain(&e), "could not write lastUsed or the key's new hash");
        }
    }
}

/// What an instance remembers of a presented key.
enum Cached {
    /// Verified within the TTL.
    Fresh(ApiKeyRecord),
    /// Verified once, due a re-read (the hash need not be checked again if
    /// it is unchanged).
    Stale(ApiKeyRecord),
    /// Failed within the TTL.
    Rejected,
    Unknown,
}

/// Verified keys in an LRU; failed ones in a small map of their own, so no
/// number of junk keys can evict a verified key.
struct KeyCache {
    verified: Lru<[u8; 32], (ApiKeyRecord, Instant)>,
    rejected: HashMap<[u8; 32], Instant>,
    max_rejected: usize,
}

impl KeyCache {
    fn new(max_verified: usize, max_rejected: usize) -> Self {
        Self {
            verified: Lru::new(max_verified),
            rejected: HashMap::new(),
            max_rejected,
        }
    }

    fn lookup(&mut self, digest: &[u8; 32], ttl: Duration) -> Cached {
        if let Some((record, at)) = self.verified.get(digest) {
            return if at.elapsed() < ttl {
                Cached::Fresh(record.clone())
            } else {
                Cached::Stale(record.clone())
            };
        }
        match self.rejected.get(digest) {
            Some(at) if at.elapsed() < ttl => Cached::Rejected,
            _ => Cached::Unknown,
        }
    }

    fn remember(&mut self, digest: [u8; 32], record: ApiKeyRecord) {
        self.rejected.remove(&digest);
        self.verified.insert(digest, (record, Instant::now()));
    }

    fn reject(&mut self, digest: [u8; 32]) {
        self.verified.remove(&digest);
        if self.rejected.len() >= self.max_rejected {
            self.rejected.clear();
        }
        self.rejected.insert(digest, Instant::now());
    }
}

/// A small least-recently-used map: a use tick per entry, the oldest evicted
/// when a new key arrives at capacity (a scan, fine at a thousand entries).
struct Lru<K, V> {
    entries: HashMap<K, (V, u64)>,
    tick: u64,
    capacity: usize,
}

impl<K: Hash + Eq + Clone, V> Lru<K, V> {
    fn new(capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            tick: 0,
            capacity: capacity.max(1),
        }
    }

    fn get(&mut self, key: &K) -> Option<&V> {
        self.tick += 1;
        let tick = self.tick;
        self.entries.get_mut(key).map(|(v, used)| {
            *used = tick;
            &*v
        })
    }

    fn insert(&mut self, key: K, value: V) {
        self.tick += 1;
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&key) {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                self.entries.remove(&k);
            }
        }
        self.entries.insert(key, (value, self.tick));
    }

    fn remove(&mut self, key: &K) {
        self.entries.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> ApiKeyRecord {
        crate::domain::api_key::tests::record(Utc::now())
    }

    fn digest(s: &str) -> [u8; 32] {
        Sha256::digest(s.as_bytes()).into()
    }

    #[test]
    fn lru_evicts_the_least_recently_used() {
        let mut lru = Lru::new(2);
        lru.insert(1, "a");
        lru.insert(2, "b");
        assert_eq!(lru.get(&1), Some(&"a"));
        lru.insert(3, "c");
        assert_eq!(lru.get(&2), None, "2 was used least recently");
        assert_eq!(lru.get(&1), Some(&"a"));
        assert_eq!(lru.get(&3), Some(&"c"));
        lru.insert(3, "c2");
        assert_eq!(lru.get(&1), Some(&"a"), "replacing a key evicts nothing");
    }

    #[test]
    fn junk_keys_cannot_evict_a_verified_key() {
        let ttl = Duration::from_secs(30);
        let mut cache = KeyCache::new(MAX_CACHED_KEYS, MAX_REJECTED_KEYS);
        let legit = digest("psk_live_legit");
        cache.remember(legit, record());
        for i in 0..10_000 {
            let junk = digest(&format!("psk_live_junk{i}"));
            assert!(matches!(cache.lookup(&junk, ttl), Cached::Unknown));
            cache.reject(junk);
        }
        assert!(cache.rejected.len() <= MAX_REJECTED_KEYS);
        assert!(
            matches!(cache.lookup(&legit, ttl), Cached::Fresh(r) if r.key_id.as_str() == "abcd1234"),
            "the verified key is still served from the cache (no store read)"
        );
        assert!(matches!(
            cache.lookup(&digest("psk_live_junk9999"), ttl),
            Cached::Rejected
        ));
        assert!(matches!(
            cache.lookup(&legit, Duration::ZERO),
            Cached::Stale(_)
        ));
    }

    #[test]
    fn many_verified_keys_keep_the_busy_one() {
        let ttl = Duration::from_secs(30);
        let mut cache = KeyCache::new(4, 4);
        let busy = digest("busy");
        cache.remember(busy, record());
        for i in 0..100 {
            cache.remember(digest(&format!("other{i}")), record());
            assert!(matches!(cache.lookup(&busy, ttl), Cached::Fresh(_)));
        }
    }
}
