//! The stream consumer fed the sample stream event (events/restaurant-events.json)
//! with real images, against the local DynamoDB and SQS.

use aws_lambda_events::event::dynamodb::Event;
use chrono::Utc;
use pulsara_shared::domain::ids::{ApiKeyId, Id, RestaurantId, WebhookId};
use pulsara_shared::domain::restaurant::{Restaurant, RestaurantInput};
use pulsara_shared::domain::webhook::{
    generate_secret, EventType, StoredSecret, WebhookRecord, WebhookStatus,
};
use pulsara_shared::services::create_restaurant;
use pulsara_shared::testing::{local_state, unique_phone};
use serde_json::json;

fn stream_event(event_id: &str, old: &Restaurant, new: &Restaurant) -> Event {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../events/restaurant-events.json"
    );
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let image = |r: &Restaurant| {
        let item: serde_dynamo::Item = serde_dynamo::to_item(r).unwrap();
        serde_json::to_value(item).unwrap()
    };
    v["Records"][0]["eventID"] = event_id.into();
    v["Records"][0]["dynamodb"]["OldImage"] = image(old);
    v["Records"][0]["dynamodb"]["NewImage"] = image(new);
    serde_json::from_value(v).unwrap()
}

fn webhook(owner: &str, restaurant_ids: Option<Vec<RestaurantId>>) -> WebhookRecord {
    let now = Utc::now();
    let owner = ApiKeyId::parse(owner).unwrap();
    WebhookRecord {
        webhook_id: WebhookId::generate(),
        owner_id: owner.clone(),
        key_id: owner,
        callback_url: "https://hooks.example.com/pulsara".into(),
        events: vec![EventType::SettingsUpdated],
        description: None,
        // The fan-out never reads the secret (and holds no KMS permission).
        secret: StoredSecret::Legacy(generate_secret().expose().to_string()),
        previous_secret: None,
        previous_secret_expires_at: None,
        restaurant_ids,
        status: WebhookStatus::Active,
        disabled_reason: None,
        failing_since: None,
        created_at: now,
        updated_at: now,
    }
}

#[tokio::test]
async fn a_change_fans_out_once_even_when_the_record_is_replayed() {
    let Some(state) = local_state().await else {
        return;
    };
    let input: RestaurantInput = serde_json::from_value(json!({
        "name": "Stream Diner", "phoneNumbers": [unique_phone()], "timezone": "America/Chicago"
    }))
    .unwrap();
    let old = create_restaurant(&state, input, Utc::now()).await.unwrap();
    let mut new = old.clone();
    new.call_hours_end = pulsara_shared::domain::hours::TimeOfDay::parse("22:00").unwrap();
    new.name = "Stream Diner & Bar".into();

    let subscribed = webhook("ownStrmA", None);
    let elsewhere = webhook("ownStrmB", Some(vec![RestaurantId::generate()]));
    state.webhooks.insert(&subscribed, 100).await.unwrap();
    state.webhooks.insert(&elsewhere, 100).await.unwrap();

    let event_id = format!("evt-{}", uuid_like());
    for _ in 0..2 {
        let out = restaurant_events::handle(&state, stream_event(&event_id, &old, &new))
            .await
            .unwrap();
        assert!(out.batch_item_failures.is_empty());
    }
    let deliveries = state
        .webhooks
        .deliveries_of(&subscribed.webhook_id, 10)
        .await
        .unwrap();
    assert_eq!(
        deliveries.len(),
        1,
        "settings.updated once; restaurant.updated isn't subscribed; replay adds none"
    );
    assert_eq!(deliveries[0].event_type, EventType::SettingsUpdated);
    let payload: serde_json::Value = serde_json::from_str(&deliveries[0].payload).unwrap();
    assert_eq!(payload["data"]["restaurantId"], old.restaurant_id.as_str());
    assert_eq!(payload["data"]["changedFields"], json!(["callHoursEnd"]));
    assert!(
        state
            .webhooks
            .deliveries_of(&elsewhere.webhook_id, 10)
            .await
            .unwrap()
            .is_empty(),
        "restricted to another restaurant"
    );
    for w in [&subscribed, &elsewhere] {
        state.webhooks.delete(w).await.unwrap();
    }
}

fn uuid_like() -> String {
    format!("{}", Utc::now().timestamp_nanos_opt().unwrap())
}
