//! Restaurant management (admin): `POST /ivr/restaurants`,
//! `GET /ivr/restaurants/{restaurantId}`, `PATCH /ivr/restaurants/{restaurantId}`.

use chrono::Utc;
use pulsara_shared::domain::ids::RestaurantId;
use pulsara_shared::domain::restaurant::{RestaurantInput, RestaurantPatch};
use pulsara_shared::http::{json_body, optional_path_id, record_restaurant_id};
use pulsara_shared::responses::RestaurantOut;
use pulsara_shared::services::restaurants::{create_restaurant, get_restaurant, update_restaurant};
use pulsara_shared::{AdminApp, ApiError, ApiResponse, Request};

enum Route {
    Create,
    Get(RestaurantId),
    Patch(RestaurantId),
}

impl Route {
    fn of(req: &Request) -> Result<Self, ApiError> {
        match (
            req.method().as_str(),
            optional_path_id(req, "restaurantId")?,
        ) {
            ("POST", None) => Ok(Route::Create),
            ("GET", Some(id)) => Ok(Route::Get(id)),
            ("PATCH", Some(id)) => Ok(Route::Patch(id)),
            _ => Err(ApiError::MethodNotAllowed),
        }
    }
}

pub async fn handle(app: &AdminApp, req: Request) -> Result<ApiResponse, ApiError> {
    app.admin(&req).await?;
    let state = &app.state;
    let region = state.config.default_phone_region;
    let limit = state.config.max_body_bytes;
    match Route::of(&req)? {
        Route::Create => {
            let input: RestaurantInput = json_body(&req, limit)?;
            let restaurant = create_restaurant(state, input, Utc::now()).await?;
            record_restaurant_id(&restaurant.restaurant_id);
            tracing::info!("restaurant created");
            Ok(
                ApiResponse::created(RestaurantOut::new(&restaurant, region))
                    .message("Restaurant created successfully"),
            )
        }
        Route::Get(id) => {
            record_restaurant_id(&id);
            let restaurant = get_restaurant(state, &id).await?;
            Ok(ApiResponse::ok(RestaurantOut::new(&restaurant, region)))
        }
        Route::Patch(id) => {
            record_restaurant_id(&id);
            let patch: RestaurantPatch = json_body(&req, limit)?;
            let next = update_restaurant(state, &id, patch, Utc::now()).await?;
            Ok(ApiResponse::ok(RestaurantOut::new(&next, region))
                .message("Restaurant updated successfully"))
        }
    }
}
