//! `GET /ivr/restaurant/{restaurantId}/config` (IVR key): what the IVR should
//! do with a ringing call, by restaurant id or any of its phone numbers;
//! `If-None-Match` with the answer's ETag gets a 304 while nothing changed.

use chrono::Utc;
use pulsara_shared::http::{if_none_match, only, path_param, record_restaurant_id};
use pulsara_shared::services::find_restaurant;
use pulsara_shared::{ApiError, ApiResponse, AppState, Request};

pub async fn handle(state: &AppState, req: Request) -> Result<ApiResponse, ApiError> {
    // The restaurant is read concurrently with the key's rate-limit count.
    let (caller, found) = state
        .auth
        .ivr_with(&req, async {
            only(&req, "GET")?;
            find_restaurant(state, &path_param(&req, "restaurantId")?).await
        })
        .await?;
    let restaurant = found.ok_or(ApiError::NotFound("restaurant"))?;
    caller.ensure_access(&restaurant.restaurant_id)?;
    record_restaurant_id(&restaurant.restaurant_id);
    let config = restaurant.config(Utc::now(), state.config.default_phone_region);
    let fresh = config.freshness.clone();
    let response = if if_none_match(&req, &fresh.etag) {
        ApiResponse::not_modified()
    } else {
        ApiResponse::ok(config)
    };
    Ok(response
        .cacheable(&fresh.etag, fresh.max_age_secs)
        .rate_limit(&caller.rate))
}
