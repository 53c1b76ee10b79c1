//! Restaurant management (admin): `POST /ivr/restaurants`,
//! `GET /ivr/restaurants/{restaurantId}`, `PATCH /ivr/restaurants/{restaurantId}`.

use chrono::Utc;
use pulsara_shared::domain::ids::IdKind;
use pulsara_shared::domain::restaurant::{RestaurantInput, RestaurantPatch};
use pulsara_shared::http::{json_body, path_id, path_param, record_restaurant_id};
use pulsara_shared::services::{create_restaurant, write_error};
use pulsara_shared::{ApiError, ApiResponse, AppState, Request};

pub async fn handle(state: &AppState, req: Request) -> Result<ApiResponse, ApiError> {
    state.auth.admin(&req).await?;
    let region = state.config.default_phone_region;
    let id = match path_param(&req, "restaurantId") {
        Ok(_) => Some(path_id(&req, "restaurantId", IdKind::Restaurant)?),
        Err(_) => None,
    };
    match (req.method().as_str(), id) {
        ("POST", None) => {
            let input: RestaurantInput = json_body(&req, state.config.max_body_bytes)?;
            let restaurant = create_restaurant(state, input, Utc::now()).await?;
            record_restaurant_id(&restaurant.restaurant_id);
            tracing::info!("restaurant created");
            Ok(ApiResponse::created(restaurant.view(region))
                .message("Restaurant created successfully"))
        }
        ("GET", Some(id)) => {
            record_restaurant_id(&id);
            let restaurant = state
                .restaurants
                .get(&id)
                .await?
                .ok_or(ApiError::NotFound("restaurant"))?;
            Ok(ApiResponse::ok(restaurant.view(region)))
        }
        ("PATCH", Some(id)) => {
            record_restaurant_id(&id);
            let patch: RestaurantPatch = json_body(&req, state.config.max_body_bytes)?;
            if patch.is_empty() {
                return Err(ApiError::validation("body", "names no field to update"));
            }
            let current = state
                .restaurants
                .get_latest(&id)
                .await?
                .ok_or(ApiError::NotFound("restaurant"))?;
            let next = current.patched(patch, Utc::now(), region)?;
            state
                .restaurants
                .update(&current, &next)
                .await
                .map_err(write_error)?;
            pulsara_shared::faults::point("restaurant.update.after", &[&id])?;
            tracing::info!(version = next.version, "restaurant updated");
            Ok(ApiResponse::ok(next.view(region)).message("Restaurant updated successfully"))
        }
        _ => Err(ApiError::MethodNotAllowed),
    }
}
