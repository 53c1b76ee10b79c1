//! Dashboard reads (admin): `GET /ivr/restaurants/{restaurantId}/calls`
//! (time range, newest first, cursor-paginated) and `GET /ivr/calls/{callId}`.

use chrono::{DateTime, Duration, Utc};
use pulsara_shared::domain::ids::IdKind;
use pulsara_shared::http::{limit_param, path_id, path_param, query_param, record_restaurant_id};
use pulsara_shared::{ApiError, ApiResponse, AppState, Request};

pub const MAX_PAGE: i32 = 100;
pub const DEFAULT_RANGE_DAYS: i64 = 30;

fn time_param(req: &Request, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    let Some(v) = query_param(req, name) else {
        return Ok(None);
    };
    let t = DateTime::parse_from_rfc3339(&v)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| ApiError::validation(name, "must be an RFC 3339 date-time"))?;
    // Keep every date we answer with inside RFC 3339's four-digit years.
    if !(2000..=9998).contains(&chrono::Datelike::year(&t)) {
        return Err(ApiError::validation(
            name,
            "must be between the years 2000 and 9998",
        ));
    }
    Ok(Some(t))
}

pub async fn handle(state: &AppState, req: Request) -> Result<ApiResponse, ApiError> {
    state.auth.admin(&req).await?;
    if req.method() != "GET" {
        return Err(ApiError::MethodNotAllowed);
    }
    let now = Utc::now();
    if path_param(&req, "callId").is_ok() {
        let call_id = path_id(&req, "callId", IdKind::Call)?;
        let call = state
            .calls
            .get(&call_id)
            .await?
            .filter(|c| !c.expired(now))
            .ok_or(ApiError::NotFound("call"))?;
        record_restaurant_id(&call.restaurant_id);
        return Ok(ApiResponse::ok(call.view()));
    }
    let restaurant_id = path_id(&req, "restaurantId", IdKind::Restaurant)?;
    record_restaurant_id(&restaurant_id);
    let to = time_param(&req, "to")?.unwrap_or(now);
    let from = time_param(&req, "from")?.unwrap_or(to - Duration::days(DEFAULT_RANGE_DAYS));
    if from > to {
        return Err(ApiError::validation("from", "must not be after `to`"));
    }
    let limit = limit_param(&req, 25, MAX_PAGE)?;
    if state.restaurants.get(&restaurant_id).await?.is_none() {
        return Err(ApiError::NotFound("restaurant"));
    }
    let cursor = query_param(&req, "cursor");
    let (calls, next) = state
        .calls
        .list(&restaurant_id, from, to, limit, cursor.as_deref())
        .await?;
    let rows: Vec<_> = calls
        .iter()
        .filter(|c| !c.expired(now))
        .map(|c| c.row())
        .collect();
    Ok(ApiResponse::ok(serde_json::json!({
        "restaurantId": restaurant_id,
        "from": from,
        "to": to,
        "calls": rows,
        "nextCursor": next,
    })))
}
