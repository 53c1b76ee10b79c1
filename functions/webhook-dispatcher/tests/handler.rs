//! The dispatcher fed the sample SQS event (events/webhook-dispatcher.json).

use aws_lambda_events::event::sqs::SqsEvent;
use pulsara_shared::testing::local_state;

fn event(body: &str) -> SqsEvent {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../events/webhook-dispatcher.json"
    );
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["Records"][0]["body"] = body.into();
    serde_json::from_value(v).unwrap()
}

#[tokio::test]
async fn unknown_deliveries_are_done_and_garbage_fails_towards_the_dlq() {
    let Some(state) = local_state().await else {
        return;
    };
    let state: &'static _ = Box::leak(Box::new(state));
    let out = webhook_dispatcher::handle(
        state,
        event(r#"{"deliveryId":"msg_00000000000000000000000000000000"}"#),
    )
    .await
    .unwrap();
    assert!(out.batch_item_failures.is_empty());
    let out = webhook_dispatcher::handle(state, event("garbage"))
        .await
        .unwrap();
    assert_eq!(out.batch_item_failures.len(), 1);
}
