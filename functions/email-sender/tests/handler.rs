//! The worker fed the sample SQS event (events/email-sender.json) against the
//! local DynamoDB, SQS and SES: retries while SES refuses, records the final
//! failure on the last attempt, and sends once SES accepts.

use aws_lambda_events::event::sqs::SqsEvent;
use chrono::Utc;
use pulsara_shared::domain::call::{CallRecord, EmailState, EmailStatus, ProcessCallRequest};
use pulsara_shared::domain::restaurant::RestaurantInput;
use pulsara_shared::services::create_restaurant;
use pulsara_shared::testing::{local_state, unique_phone};
use serde_json::json;

fn sqs_event(call_id: &str, receive_count: u32) -> SqsEvent {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../events/email-sender.json"
    );
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["Records"][0]["body"] = json!({ "callId": call_id }).to_string().into();
    v["Records"][0]["attributes"]["ApproximateReceiveCount"] = receive_count.to_string().into();
    serde_json::from_value(v).unwrap()
}

#[tokio::test]
async fn retries_gives_up_on_the_last_attempt_and_sends_when_ses_works() {
    let Some(mut failing) = local_state().await else {
        return;
    };
    // A sender outside every verified identity: SES refuses it.
    failing.config.sender_email = "nobody@unverified-sender.example".into();
    let now = Utc::now();
    let input: RestaurantInput = serde_json::from_value(json!({
        "name": "Retry Bistro", "phoneNumbers": [unique_phone()], "timezone": "Europe/Paris",
        "notificationEmails": ["owner@retry-bistro.example"]
    }))
    .unwrap();
    let restaurant = create_restaurant(&failing, input, now).await.unwrap();
    let request: ProcessCallRequest = serde_json::from_value(json!({
        "restaurantId": restaurant.restaurant_id, "callId": format!("CA{}", now.timestamp_nanos_opt().unwrap()),
        "timestamp": now.to_rfc3339(), "transcript": "Customer: do you deliver?"
    }))
    .unwrap();
    let valid = request
        .validate(now, failing.config.default_phone_region)
        .unwrap();
    let mut call = CallRecord::new(
        valid,
        &restaurant.restaurant_id,
        "own_test",
        "key_test",
        now,
        365,
    );
    call.email = Some(EmailState {
        status: EmailStatus::Queued,
        recipients: restaurant.notification_emails.clone(),
        message_id: None,
        attempts: 1,
        last_error: Some("throttled".into()),
        updated_at: now,
    });
    failing.calls.insert(&call).await.unwrap();

    let out = email_sender::handle(&failing, sqs_event(&call.call_id, 1))
        .await
        .unwrap();
    assert_eq!(
        out.batch_item_failures.len(),
        1,
        "a refused e-mail is reported as failed"
    );
    let email = failing
        .calls
        .get(&call.call_id)
        .await
        .unwrap()
        .unwrap()
        .email
        .unwrap();
    assert_eq!((email.status, email.attempts), (EmailStatus::Queued, 2));
    assert!(email.last_error.is_some());

    let last = failing.config.email_max_attempts;
    let out = email_sender::handle(&failing, sqs_event(&call.call_id, last))
        .await
        .unwrap();
    assert_eq!(out.batch_item_failures.len(), 1);
    let email = failing
        .calls
        .get(&call.call_id)
        .await
        .unwrap()
        .unwrap()
        .email
        .unwrap();
    assert_eq!(
        email.status,
        EmailStatus::Failed,
        "the final status is recorded"
    );

    // A job for a call whose mail is finished is simply acknowledged.
    let out = email_sender::handle(&failing, sqs_event(&call.call_id, 1))
        .await
        .unwrap();
    assert!(out.batch_item_failures.is_empty());

    // Back to queued, with SES working: sent, and acknowledged.
    let working = local_state().await.unwrap();
    let mut queued = email.clone();
    queued.status = EmailStatus::Queued;
    assert!(working
        .calls
        .set_email(&call.call_id, &[EmailStatus::Failed], &queued)
        .await
        .unwrap());
    let out = email_sender::handle(&working, sqs_event(&call.call_id, 1))
        .await
        .unwrap();
    assert!(out.batch_item_failures.is_empty());
    let email = working
        .calls
        .get(&call.call_id)
        .await
        .unwrap()
        .unwrap()
        .email
        .unwrap();
    assert_eq!(email.status, EmailStatus::Sent);
    assert!(email.message_id.is_some());
}

#[tokio::test]
async fn unreadable_jobs_fail_towards_the_dead_letter_queue() {
    let Some(state) = local_state().await else {
        return;
    };
    let mut event = sqs_event("x", 1);
    event.records[0].body = Some("not json".into());
    let out = email_sender::handle(&state, event).await.unwrap();
    assert_eq!(out.batch_item_failures.len(), 1);
}
