//! Workflows used by more than one entrypoint (Lambda handlers and the admin
//! CLI): minting keys, creating restaurants, resolving a restaurant by id or
//! phone number.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use crate::app::AppState;
use crate::domain::api_key::{self, ApiKeyRecord, ApiKeyRequest};
use crate::domain::ids::IdKind;
use crate::domain::phone;
use crate::domain::restaurant::{self, Restaurant, RestaurantInput};
use crate::error::{ApiError, FieldError};
use crate::store::restaurants::RestaurantWriteError;
use crate::store::StoreError;

pub mod calls;
pub mod webhooks;

/// Validates a key request, checks its restaurants exist, and stores a new
/// key. Returns the plaintext (shown once) and the stored record.
pub async fn mint_api_key(
    state: &AppState,
    request: ApiKeyRequest,
    created_by: &str,
    now: DateTime<Utc>,
) -> Result<(String, ApiKeyRecord), ApiError> {
    let request = request.validated(now)?;
    if let Some(ids) = &request.restaurant_ids {
        let missing = state.restaurants.missing(ids).await?;
        if !missing.is_empty() {
            let details = ids
                .iter()
                .enumerate()
                .filter(|(_, id)| missing.contains(id))
                .map(|(i, _)| FieldError::new(format!("restaurantIds[{i}]"), "no such restaurant"))
                .collect();
            return Err(ApiError::Validation(details));
        }
    }
    // Key ids are 8 random base62 characters; a collision is astronomically
    // rare, but the conditional put makes it harmless.
    for _ in 0..3 {
        let key = api_key::generate();
        let record = request.record(&key, None, created_by, now);
        match state.api_keys.insert(&record).await {
            Ok(()) => return Ok((key.plaintext, record)),
            Err(StoreError::AlreadyExists) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::internal("could not allocate a unique key id"))
}

pub fn new_restaurant_id() -> String {
    format!("{}{}", restaurant::ID_PREFIX, uuid::Uuid::now_v7().simple())
}

pub fn write_error(err: RestaurantWriteError) -> ApiError {
    match err {
        RestaurantWriteError::PhoneTaken(number) => ApiError::Conflict {
            message: "a phone number is already assigned to another restaurant".into(),
            details: vec![FieldError::new(
                "phoneNumbers",
                format!("{number} is already assigned to another restaurant"),
            )],
        },
        RestaurantWriteError::Stale => {
            ApiError::conflict("the restaurant was changed concurrently; fetch it and retry")
        }
        RestaurantWriteError::Store(e) => e.into(),
    }
}

pub async fn create_restaurant(
    state: &AppState,
    input: RestaurantInput,
    now: DateTime<Utc>,
) -> Result<Restaurant, ApiError> {
    let restaurant =
        input.into_restaurant(new_restaurant_id(), now, state.config.default_phone_region)?;
    state
        .restaurants
        .create(&restaurant)
        .await
        .map_err(write_error)?;
    Ok(restaurant)
}

/// Phone → restaurant id, cached per instance. A cached mapping is checked
/// against the restaurant it leads to, so a number that moved is re-read:
/// the warm path costs one DynamoDB read.
static PHONE_CACHE: Mutex<Option<HashMap<String, String>>> = Mutex::new(None);
const MAX_CACHED_PHONES: usize = 4096;

/// Finds a restaurant by its id (`rst_…`) or any of its phone numbers in any
/// common format. Anything else is simply not found.
pub async fn find_restaurant(
    state: &AppState,
    id_or_phone: &str,
) -> Result<Option<Restaurant>, ApiError> {
    let ident = id_or_phone.trim();
    if ident.starts_with(restaurant::ID_PREFIX) {
        if !IdKind::Restaurant.matches(ident) {
            return Ok(None);
        }
        return Ok(state.restaurants.get(ident).await?);
    }
    let Ok(e164) = phone::normalize(ident, state.config.default_phone_region) else {
        return Ok(None);
    };
    let cached = PHONE_CACHE
        .lock()
        .expect("phone cache lock")
        .as_ref()
        .and_then(|m| m.get(&e164).cloned());
    if let Some(id) = cached {
        if let Some(r) = state.restaurants.get(&id).await? {
            if r.phone_numbers.contains(&e164) {
                return Ok(Some(r));
            }
        }
    }
    let Some(id) = state.restaurants.id_for_phone(&e164).await? else {
        return Ok(None);
    };
    let found = state.restaurants.get(&id).await?;
    if found.is_some() {
        let mut cache = PHONE_CACHE.lock().expect("phone cache lock");
        let map = cache.get_or_insert_with(HashMap::new);
        if map.len() >= MAX_CACHED_PHONES {
            map.clear();
        }
        map.insert(e164, id);
    }
    Ok(found)
}
