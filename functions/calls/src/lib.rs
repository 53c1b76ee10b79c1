//! Dashboard reads (admin): `GET /ivr/restaurants/{restaurantId}/calls`
//! (time range, newest first, cursor-paginated) and `GET /ivr/calls/{callId}`.

use chrono::Utc;
use pulsara_shared::domain::call::ListRange;
use pulsara_shared::domain::ids::{CallId, RestaurantId};
use pulsara_shared::http::{
    limit_param, optional_path_id, path_id, query_param, record_restaurant_id,
};
use pulsara_shared::responses::{CallDetailOut, CallListOut, CallRowOut};
use pulsara_shared::services::calls::{dashboard_call, list_calls};
use pulsara_shared::{AdminApp, ApiError, ApiResponse, Request};

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

pub async fn handle(app: &AdminApp, req: Request) -> Result<ApiResponse, ApiError> {
    app.admin(&req).await?;
    let state = &app.state;
    let now = Utc::now();
    match Route::of(&req)? {
        Route::Get(call_id) => {
            let call = dashboard_call(state, &call_id, now).await?;
            Ok(ApiResponse::ok(CallDetailOut::new(&call)))
        }
        Route::List(restaurant_id) => {
            record_restaurant_id(&restaurant_id);
            let from = query_param(&req, "from");
            let to = query_param(&req, "to");
            let range = ListRange::parse(from.as_deref(), to.as_deref(), now)?;
            let limit = limit_param(&req, 25, MAX_PAGE)?;
            let cursor = query_param(&req, "cursor");
            let (calls, next_cursor) =
                list_calls(state, &restaurant_id, range, limit, cursor.as_deref(), now).await?;
            Ok(ApiResponse::ok(CallListOut {
                restaurant_id,
                from: range.from,
                to: range.to,
                calls: calls.iter().map(CallRowOut::new).collect(),
                next_cursor,
            }))
        }
    }
}
