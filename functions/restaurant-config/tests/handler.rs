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

/// Failed checks of a known key id are limited per source address: past the
/// limit that source gets 429 (Retry-After) even with the right key, before
/// any hash; the same key from another address keeps working.
#[tokio::test]
async fn failed_key_checks_are_limited_per_source() {
    let Some(state) = local_state().await else {
        return;
    };
    let r = create_restaurant(
        &state,
        serde_json::from_value(json!({
            "name": "Limit Test Diner", "phoneNumbers": [unique_phone()], "timezone": "UTC"
        }))
        .unwrap(),
        Utc::now(),
    )
    .await
    .unwrap();
    let request = ApiKeyRequest {
        name: "limit test".into(),
        ..Default::default()
    };
    let (key, _) = mint_api_key(&state, request, "usr_test", Utc::now())
        .await
        .unwrap();
    // The same key id, other secrets (each new: a repeated one is answered from the cache).
    let wrong = |i: u32| {
        let guess = format!("{}{i:03}", &key[..key.len() - 3]);
        if guess == key {
            format!("{}zzz", &key[..key.len() - 3])
        } else {
            guess
        }
    };
    let attacker = format!("198.51.100.{}", uuid_byte());
    let get = |credential: &str, ip: &str| {
        event("restaurant-config.json", |e| {
            e["pathParameters"]["restaurantId"] = r.restaurant_id.to_string().into();
            e["headers"]["authorization"] = format!("Bearer {credential}").into();
            e["requestContext"]["http"]["sourceIp"] = ip.to_string().into();
        })
    };
    let limit = state.config.api_key_failure_limit_per_ip;
    let mut statuses = Vec::new();
    for i in 0..=limit {
        let resp = into_response(
            restaurant_config::handle(&state, get(&wrong(i), &attacker)).await,
            "req",
        );
        statuses.push(resp.status().as_u16());
        if resp.status() == 429 {
            assert!(resp.headers().contains_key("retry-after"));
            break;
        }
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    assert!(
        statuses[..statuses.len() - 1].iter().all(|&s| s == 401),
        "{statuses:?}"
    );
    // The attacker's address is refused even with the right key (not yet cached) ...
    let resp = into_response(
        restaurant_config::handle(&state, get(&key, &attacker)).await,
        "req",
    );
    assert_eq!(resp.status(), 429);
    // ... while the key works from its own address.
    let resp = into_response(
        restaurant_config::handle(&state, get(&key, "203.0.113.77")).await,
        "req",
    );
    assert_eq!(resp.status(), 200, "{:?}", body(&resp));
}

fn uuid_byte() -> u8 {
    let mut b = [0u8; 1];
    pulsara_shared::domain::hashing::random_bytes(&mut b);
    b[0]
}

/// The restaurant is read concurrently with the rate-limit count, and being
/// rate limited wins over what the read found (a 404 here).
#[tokio::test]
async fn rate_limit_wins_over_the_concurrent_read() {
    let Some(state) = local_state().await else {
        return;
    };
    let request = ApiKeyRequest {
        name: "precedence test".into(),
        rate_limit_per_minute: Some(1),
        ..Default::default()
    };
    let (key, _) = mint_api_key(&state, request, "usr_test", Utc::now())
        .await
        .unwrap();
    let get = || {
        event("restaurant-config.json", |e| {
            e["pathParameters"]["restaurantId"] = "rst_00000000000000000000000000000000".into();
            e["headers"]["authorization"] = format!("Bearer {key}").into();
        })
    };
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let resp = into_response(restaurant_config::handle(&state, get()).await, "req");
        statuses.push(resp.status().as_u16());
    }
    // One hit a minute: a window boundary may give one more 404, never less than one 429.
    assert_eq!(statuses[0], 404, "{statuses:?}");
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(
        statuses.iter().all(|s| [404, 429].contains(s)),
        "{statuses:?}"
    );
}
