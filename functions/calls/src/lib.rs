//! Dashboard reads (admin): `GET /ivr/restaurants/{restaurantId}/calls`
//! (time range, newest first, cursor-paginated) and `GET /ivr/calls/{callId}`.

use chrono::Utc;
use pulsara_shared::domain::call::ListRange;
use pulsara_shared::domain::ids::{CallId, RestaurantId};
use pulsara_shared::http::{
    limit_param, optional_path_id, path_id, query_param, record_restaurant_id,
};
use pulsara_shared::responses::{CallDetailOut, CallListOut, CallRowOut};
use pulsara_shared::{ApiError, ApiResponse, AppState, Request};

pub const MAX_PAGE: i32 = 100;

enum Route {
    List(RestaurantId),
    Get(CallId),
}

impl Route {
    fn of(req: &Request) -> Result<Self, ApiError> {
        if req.method() != "GET" {
            return Err(ApiError::MethodNotAllowed);
        }
        match optional_path_id(req, "callId")? {
            Some(id) => Ok(Route::Get(id)),
            None => Ok(Route::List(path_id(req, "restaurantId")?)),
        }
    }
}

pub async fn handle(state: &AppState, req: Request) -> Result<ApiResponse, ApiError> {
    state.auth.admin(&req).await?;
    let now = Utc::now();
    match Route::of(&req)? {
        Route::Get(call_id) => {
            let call = state
                .calls
                .get(&call_id)
                .await?
                .filter(|c| !c.expired(now))
                .ok_or(ApiError::NotFound("call"))?;
            record_restaurant_id(&call.restaurant_id);
            Ok(ApiResponse::ok(CallDetailOut::new(&call)))
        }
        Route::List(restaurant_id) => {
            record_restaurant_id(&restaurant_id);
            let range = ListRange::parse(
                query_param(&req, "from").as_deref(),
                query_param(&req, "to").as_deref(),
                now,
            )?;
            let limit = limit_param(&req, 25, MAX_PAGE)?;
            if state.restaurants.get(&restaurant_id).await?.is_none() {
                return Err(ApiError::NotFound("restaurant"));
            }
            let cursor = query_param(&req, "cursor");
            let (calls, next_cursor) = state
                .calls
                .list(
                    &restaurant_id,
                    range.from,
                    range.to,
                    limit,
                    cursor.as_deref(),
                )
                .await?;
            let calls = calls
                .iter()
                .filter(|c| !c.expired(now))
                .map(CallRowOut::new)
                .collect();
            Ok(ApiResponse::ok(CallListOut {
                restaurant_id,
                from: range.from,
                to: range.to,
                calls,
                next_cursor,
            }))
        }
    }
}
