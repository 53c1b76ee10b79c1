//! Integrations: registering one (its secrets sealed with KMS), listing and
//! deleting a key family's own, and, on the platforms' routes, finding the
//! integration a request names and the key it acts as.
//!
//! A platform route that names an unknown integration, another platform's,
//! or one whose key family has no usable key left, answers exactly as a bad
//! signature does: 401, so the id alone tells a caller nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::app::AppState;
use crate::auth::IvrCaller;
use crate::crypto::envelope::Plaintext;
use crate::domain::api_key::ApiKeyRecord;
use crate::domain::ids::{Id, IntegrationId};
use crate::domain::integration::{
    secret_context, CreateIntegrationRequest, IntegrationRecord, Platform, SecretKind,
    MAX_INTEGRATIONS_PER_OWNER,
};
use crate::error::ApiError;

/// Registers an integration for the caller's key family.
pub async fn create(
    state: &AppState,
    caller: &IvrCaller,
    body: CreateIntegrationRequest,
    now: DateTime<Utc>,
) -> Result<IntegrationRecord, ApiError> {
    let valid = body.validate()?;
    let owner = caller.key.owner();
    // A soft cap (two racing registrations may both pass it): it bounds a
    // family's list, nothing is at stake beyond that.
    if state.integrations.by_owner(owner).await?.len() >= MAX_INTEGRATIONS_PER_OWNER {
        return Err(ApiError::conflict(format!(
            "a key may register at most {MAX_INTEGRATIONS_PER_OWNER} integrations; delete one first"
        )));
    }
    let id = IntegrationId::generate();
    let sealer = state.sealer()?;
    let secret = sealer
        .seal(
            &secret_context(&id, SecretKind::Platform),
            valid.secret.as_bytes(),
        )
        .await?;
    let elevenlabs_api_key = match &valid.elevenlabs_api_key {
        Some(k) => Some(
            sealer
                .seal(
                    &secret_context(&id, SecretKind::ElevenlabsApiKey),
                    k.as_bytes(),
                )
                .await?,
        ),
        None => None,
    };
    let record = IntegrationRecord {
        integration_id: id,
        owner_id: owner.clone(),
        key_id: caller.key.key_id.clone(),
        platform: valid.platform,
        secret,
        elevenlabs_api_key,
        description: valid.description,
        restaurant_ids: caller.key.restaurant_ids.clone(),
        created_at: now,
    };
    state.integrations.insert(&record).await?;
    tracing::info!(
        integration_id = %record.integration_id,
        platform = record.platform.as_str(),
        "integration registered"
    );
    Ok(record)
}

/// The caller's key family's integrations.
pub async fn list(
    state: &AppState,
    caller: &IvrCaller,
) -> Result<Vec<IntegrationRecord>, ApiError> {
    Ok(state.integrations.by_owner(caller.key.owner()).await?)
}

/// Deletes one of the caller's integrations (another family's is 404).
pub async fn delete(
    state: &AppState,
    caller: &IvrCaller,
    id: &IntegrationId,
) -> Result<(), ApiError> {
    match state.integrations.get(id).await? {
        Some(i) if &i.owner_id == caller.key.owner() => {
            state.integrations.delete(id).await?;
            state.integration_cache.forget(id);
            Ok(())
        }
        _ => Err(ApiError::NotFound("integration")),
    }
}

/// An integration as a platform route uses it: the record and the key it
/// acts as (its family's current key).
#[derive(Debug, Clone)]
pub struct Active {
    pub record: IntegrationRecord,
    pub key: ApiKeyRecord,
}

impl Active {
    /// The integration as the caller of the call workflows: its key family.
    pub fn caller(&self) -> IvrCaller {
        let mut key = self.key.clone();
        // The integration never sees more than the key that registered it.
        if key.restaurant_ids.is_none() {
            key.restaurant_ids = self.record.restaurant_ids.clone();
        }
        IvrCaller::acting_as(key)
    }

    /// The platform secret (ElevenLabs webhook secret, Twilio auth token).
    pub async fn secret(&self, state: &AppState) -> Result<Plaintext, ApiError> {
        let id = &self.record.integration_id;
        Ok(state
            .sealer()?
            .open(
                &secret_context(id, SecretKind::Platform),
                &self.record.secret,
            )
            .await?)
    }

    /// The ElevenLabs API key for the Twilio hand-over, if one was given.
    pub async fn elevenlabs_api_key(
        &self,
        state: &AppState,
    ) -> Result<Option<Plaintext>, ApiError> {
        let Some(sealed) = &self.record.elevenlabs_api_key else {
            return Ok(None);
        };
        let id = &self.record.integration_id;
        Ok(Some(
            state
                .sealer()?
                .open(&secret_context(id, SecretKind::ElevenlabsApiKey), sealed)
                .await?,
        ))
    }
}

/// Rotations a key family may have gone through since registering.
const MAX_ROTATION_HOPS: usize = 16;

/// The integration `raw_id` names, for `platform`, with its family's usable
/// key; 401 for anything else.
pub async fn active(
    state: &AppState,
    raw_id: &str,
    platform: Platform,
) -> Result<Arc<Active>, ApiError> {
    let id = IntegrationId::parse(raw_id).ok_or(ApiError::Unauthorized)?;
    if let Some(hit) = state.integration_cache.get(&id) {
        return check_platform(hit, platform);
    }
    let Some(record) = state.integrations.get(&id).await? else {
        tracing::info!("platform request for an unknown integration");
        return Err(ApiError::Unauthorized);
    };
    let Some(key) = current_key(state, &record).await? else {
        tracing::warn!(
            integration_id = %id,
            "integration refused: its key family has no usable key (revoked or expired)"
        );
        return Err(ApiError::Unauthorized);
    };
    let active = Arc::new(Active { record, key });
    state.integration_cache.put(id, active.clone());
    check_platform(active, platform)
}

fn check_platform(a: Arc<Active>, platform: Platform) -> Result<Arc<Active>, ApiError> {
    if a.record.platform == platform {
        Ok(a)
    } else {
        Err(ApiError::Unauthorized)
    }
}

/// The registering key, or the successor it was rotated to, that still works.
async fn current_key(
    state: &AppState,
    record: &IntegrationRecord,
) -> Result<Option<ApiKeyRecord>, ApiError> {
    let now = Utc::now();
    let mut next = Some(record.key_id.clone());
    for _ in 0..MAX_ROTATION_HOPS {
        let Some(id) = next else { break };
        let Some(key) = state.api_keys.get(&id).await? else {
            return Ok(None);
        };
        if key.owner() != &record.owner_id {
            return Ok(None);
        }
        if key.usable(now) && key.rotated_to.is_none() {
            return Ok(Some(key));
        }
        if key.revoked_at.is_some_and(|t| t <= now) {
            return Ok(None);
        }
        // Rotated: its successor is the family's key (the old one may still
        // be in its grace period; the successor is what stays).
        match &key.rotated_to {
            Some(succ) => next = Some(succ.clone()),
            None => return Ok(None),
        }
    }
    Ok(None)
}

/// Integrations (with their acting keys) an instance has looked up, trusted
/// for the API key cache's time: the bound on how long a deleted integration
/// or a revoked key family keeps working on a warm instance.
pub struct IntegrationCache {
    ttl: Duration,
    entries: Mutex<HashMap<IntegrationId, (Arc<Active>, Instant)>>,
}

const MAX_CACHED_INTEGRATIONS: usize = 512;

impl IntegrationCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, id: &IntegrationId) -> Option<Arc<Active>> {
        let entries = self.entries.lock().expect("integration cache");
        entries
            .get(id)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(a, _)| a.clone())
    }

    fn put(&self, id: IntegrationId, active: Arc<Active>) {
        let mut entries = self.entries.lock().expect("integration cache");
        if entries.len() >= MAX_CACHED_INTEGRATIONS {
            entries.clear();
        }
        entries.insert(id, (active, Instant::now()));
    }

    fn forget(&self, id: &IntegrationId) {
        self.entries.lock().expect("integration cache").remove(id);
    }
}
