//! The handler fed real API Gateway v2 events (events/*.json) against the
//! local DynamoDB.

use pulsara_shared::http::into_response;
use pulsara_shared::testing::{admin_token, event, local_admin_app, unique_phone};
use serde_json::Value;

fn body(resp: &lambda_http::Response<lambda_http::Body>) -> Value {
    serde_json::from_slice(resp.body().as_ref()).unwrap()
}

#[tokio::test]
async fn create_get_and_patch_events() {
    let Some(state) = local_admin_app().await else {
        return;
    };
    let auth = format!("Bearer {}", admin_token(&state).await);
    let phone = unique_phone();
    let create = event("restaurants-create.json", |e| {
        let mut b: Value = serde_json::from_str(e["body"].as_str().unwrap()).unwrap();
        b["phoneNumbers"] = serde_json::json!([phone]);
        b["forwarding_number"] = unique_phone().into();
        e["body"] = b.to_string().into();
        e["headers"]["authorization"] = auth.clone().into();
    });
    let resp = into_response(restaurants::handle(&state, create).await, "req");
    assert_eq!(resp.status(), 201, "{:?}", body(&resp));
    let id = body(&resp)["data"]["restaurantId"]
        .as_str()
        .unwrap()
        .to_string();

    let get = event("restaurants-get.json", |e| {
        e["pathParameters"]["restaurantId"] = id.clone().into();
        e["headers"]["authorization"] = auth.clone().into();
    });
    let resp = into_response(restaurants::handle(&state, get).await, "req");
    assert_eq!(resp.status(), 200);
    assert_eq!(body(&resp)["data"]["callHoursEnd"], "21:00");

    let patch = event("restaurants-update.json", |e| {
        e["pathParameters"]["restaurantId"] = id.clone().into();
        e["headers"]["authorization"] = auth.clone().into();
    });
    let resp = into_response(restaurants::handle(&state, patch).await, "req");
    assert_eq!(resp.status(), 200, "{:?}", body(&resp));
    assert_eq!(body(&resp)["data"]["callHoursEnd"], "22:00");
    assert_eq!(body(&resp)["data"]["version"], 2);

    let forbidden = event("restaurants-get.json", |e| {
        e["pathParameters"]["restaurantId"] = id.clone().into();
        e["headers"]["authorization"] = "Bearer not-a-token".into();
    });
    let resp = into_response(restaurants::handle(&state, forbidden).await, "req");
    assert_eq!(resp.status(), 401);
}
