//! The handler fed real API Gateway v2 events (events/*.json) against the
//! local DynamoDB.

use chrono::Utc;
use pulsara_shared::domain::api_key::ApiKeyRequest;
use pulsara_shared::domain::restaurant::RestaurantInput;
use pulsara_shared::http::into_response;
use pulsara_shared::services::{create_restaurant, mint_api_key};
use pulsara_shared::testing::{event, local_state, unique_phone};
use serde_json::{json, Value};

fn body(resp: &lambda_http::Response<lambda_http::Body>) -> Value {
    serde_json::from_slice(resp.body().as_ref()).unwrap()
}

#[tokio::test]
async fn config_event_by_id_and_by_phone() {
    let Some(state) = local_state().await else {
        return;
    };
    let phone = unique_phone();
    let input: RestaurantInput = serde_json::from_value(json!({
        "name": "Handler Test Diner", "phoneNumbers": [phone], "timezone": "Europe/Rome",
        "aiEnabled": true, "agent": {"elevenlabs_agent_id": "a1", "voice_id": "v1"}
    }))
    .unwrap();
    let r = create_restaurant(&state, input, Utc::now()).await.unwrap();
    let request = ApiKeyRequest {
        name: "handler test".into(),
        ..Default::default()
    };
    let (key, _) = mint_api_key(&state, request, "usr_test", Utc::now())
        .await
        .unwrap();

    let auth = format!("Bearer {key}");
    for (file, ident) in [
        ("restaurant-config.json", r.restaurant_id.to_string()),
        ("restaurant-config-by-phone.json", phone.clone()),
    ] {
        let req = event(file, |e| {
            e["pathParameters"]["restaurantId"] = ident.clone().into();
            e["headers"]["authorization"] = auth.clone().into();
        });
        let resp = into_response(restaurant_config::handle(&state, req).await, "req");
        assert_eq!(resp.status(), 200, "{file}: {:?}", body(&resp));
        let b = body(&resp);
        assert_eq!(b["data"]["restaurantId"], r.restaurant_id.as_str());
        assert_eq!(b["data"]["routing"]["action"], "ai_agent");
        assert!(resp.headers().contains_key("ratelimit-remaining"));

        // The same request again with the answer's ETag: 304, no body.
        let etag = resp.headers()["etag"].to_str().unwrap().to_string();
        let cache = resp.headers()["cache-control"].to_str().unwrap();
        assert!(cache.starts_with("private, max-age="), "{cache}");
        let again = event(file, |e| {
            e["pathParameters"]["restaurantId"] = ident.clone().into();
            e["headers"]["authorization"] = auth.clone().into();
            e["headers"]["if-none-match"] = format!("\"other\", {etag}").into();
        });
        let resp = into_response(restaurant_config::handle(&state, again).await, "req");
        assert_eq!(resp.status(), 304, "{file}");
        assert!(resp.body().is_empty());
        assert_eq!(resp.headers()["etag"].to_str().unwrap(), etag);
        assert!(!resp.headers().contains_key("content-type"));
    }

    let anonymous = event("restaurant-config.json", |e| {
        e["headers"]
            .as_object_mut()
            .unwrap()
            .remove("authorization");
    });
    let resp = into_response(restaurant_config::handle(&state, anonymous).await, "req");
    assert_eq!(resp.status(), 401);
}
