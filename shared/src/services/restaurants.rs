//! Restaurants: creating, patching, and finding one by id or phone number.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use crate::app::AppState;
use crate::domain::ids::{Id, RestaurantId};
use crate::domain::phone::{self, E164};
use crate::domain::restaurant::{self, Restaurant, RestaurantInput, RestaurantPatch};
use crate::error::ApiError;
use crate::store::restaurants::PhoneEntry;

pub async fn create_restaurant(
    state: &AppState,
    input: RestaurantInput,
    now: DateTime<Utc>,
) -> Result<Restaurant, ApiError> {
    let restaurant = input.into_restaurant(
        RestaurantId::generate(),
        now,
        state.config.default_phone_region,
    )?;
    state.restaurants.create(&restaurant).await?;
    Ok(restaurant)
}

pub async fn get_restaurant(state: &AppState, id: &RestaurantId) -> Result<Restaurant, ApiError> {
    state
        .restaurants
        .get(id)
        .await?
        .ok_or(ApiError::NotFound("restaurant"))
}

/// Applies a patch to the latest stored version; a concurrent write in
/// between is a 409, never a lost update.
pub async fn update_restaurant(
    state: &AppState,
    id: &RestaurantId,
    patch: RestaurantPatch,
    now: DateTime<Utc>,
) -> Result<Restaurant, ApiError> {
    if patch.is_empty() {
        return Err(ApiError::validation("body", "names no field to update"));
    }
    let current = state
        .restaurants
        .get_latest(id)
        .await?
        .ok_or(ApiError::NotFound("restaurant"))?;
    let next = current.patched(patch, now, state.config.default_phone_region)?;
    state.restaurants.update(&current, &next).await?;
    crate::faults::point("restaurant.update.after", &[id.as_str()])?;
    tracing::info!(version = next.version, "restaurant updated");
    Ok(next)
}

/// Phone → restaurant id, cached per instance, for phone items written
/// before they carried a copy of the restaurant. A cached mapping is checked
/// against the restaurant it leads to, so a number that moved is re-read.
static PHONE_CACHE: Mutex<Option<HashMap<E164, RestaurantId>>> = Mutex::new(None);
const MAX_CACHED_PHONES: usize = 4096;

/// Finds a restaurant by its id (`rst_…`) or any of its phone numbers in any
/// common format, in one read (two for a phone item older than the copies,
/// the first time an instance sees it). Anything else is simply not found.
pub async fn find_restaurant(
    state: &AppState,
    id_or_phone: &str,
) -> Result<Option<Restaurant>, ApiError> {
    let ident = id_or_phone.trim();
    if ident.starts_with(restaurant::ID_PREFIX) {
        let Some(id) = RestaurantId::parse(ident) else {
            return Ok(None);
        };
        return Ok(state.restaurants.get(&id).await?);
    }
    // Machines send E.164: looked up as it is, the ring path never loads the
    // phone metadata. Any other form, or a miss, goes through the full parse.
    if let Some(e164) = E164::shaped(ident.to_string()) {
        if let Some(found) = by_number(state, &e164).await? {
            return Ok(Some(found));
        }
    }
    match phone::normalize(ident, state.config.default_phone_region) {
        Ok(e164) if e164.as_str() != ident => by_number(state, &e164).await,
        _ => Ok(None),
    }
}

async fn by_number(state: &AppState, e164: &E164) -> Result<Option<Restaurant>, ApiError> {
    let cached = PHONE_CACHE
        .lock()
        .expect("phone cache lock")
        .as_ref()
        .and_then(|m| m.get(e164).cloned());
    if let Some(id) = cached {
        if let Some(r) = state.restaurants.get(&id).await? {
            if r.phone_numbers.contains(e164) {
                return Ok(Some(r));
            }
        }
    }
    let id = match state.restaurants.by_phone(e164).await? {
        PhoneEntry::None => return Ok(None),
        PhoneEntry::Restaurant(r) => return Ok(Some(*r)),
        PhoneEntry::Id(id) => id,
    };
    let found = state.restaurants.get(&id).await?;
    if found.is_some() {
        let mut cache = PHONE_CACHE.lock().expect("phone cache lock");
        let map = cache.get_or_insert_with(HashMap::new);
        if map.len() >= MAX_CACHED_PHONES {
            map.clear();
        }
        map.insert(e164.clone(), id);
    }
    Ok(found)
}
