//! The worker fed the sample SQS event (events/email-sender.json) against the
//! local DynamoDB, SQS and SES: fails at once when SES refuses for good, gives
//! up after the last attempt, leaves an e-mail another sender holds alone, and
//! sends once SES accepts.

use aws_lambda_events::event::sqs::SqsBatchResponse;
use chrono::Utc;
use pulsara_shared::domain::call::{CallRecord, EmailState, EmailStatus};
use pulsara_shared::testing::{self, local_state};
use pulsara_shared::AppState;
use serde_json::json;

fn sqs_event(call_id: &str) -> serde_json::Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../events/email-sender.json"
    );
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["Records"][0]["body"] = json!({ "callId": call_id }).to_string().into();
    v
}

/// A stored call of a new restaurant, its e-mail in `email`'s state.
async fn call_with_email(state: &AppState, email: impl FnOnce(&mut EmailState)) -> CallRecord {
    testing::call_with_email(state, "Retry Bistro", "owner@retry-bistro.example", email).await
}

async fn run(state: &AppState, call: &CallRecord) -> (SqsBatchResponse, EmailState) {
    let out = email_sender::handle(state, sqs_event(&call.call_id))
        .await
        .unwrap();
    let stored = state.calls.get(&call.call_id).await.unwrap().unwrap();
    (out, stored.email.unwrap())
}

#[tokio::test]
async fn a_refusal_fails_at_once_the_last_attempt_gives_up_and_a_working_ses_sends() {
    let Some(mut failing) = local_state().await else {
        return;
    };
    // A sender outside every verified identity: SES refuses it (MessageRejected), and
    // sending again cannot help, so the e-mail fails at this attempt. (Throttling and
    // outages, which are retried, are e2e tests through the fault proxy.)
    failing.config.sender_email = "nobody@unverified-sender.example".into();

    let call = call_with_email(&failing, |_| {}).await;
    let (out, email) = run(&failing, &call).await;
    assert!(
        out.batch_item_failures.is_empty(),
        "refused for good: dead-lettered by the worker itself, not redelivered"
    );
    assert_eq!((email.status, email.attempts), (EmailStatus::Failed, 2));
    assert!(
        email
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("MessageRejected"))
            && email.claim_id.is_none(),
        "why, and the claim released: {email:?}"
    );

    let max = failing.config.email_max_attempts;
    let last = call_with_email(&failing, |e| e.attempts = max - 1).await;
    let (out, email) = run(&failing, &last).await;
    assert!(
        out.batch_item_failures.is_empty(),
        "dead-lettered by the worker itself"
    );
    assert_eq!((email.status, email.attempts), (EmailStatus::Failed, max));

    // A job for a call whose mail is finished is simply acknowledged.
    let (out, email) = run(&failing, &last).await;
    assert!(out.batch_item_failures.is_empty());
    assert_eq!(email.status, EmailStatus::Failed);

    let working = local_state().await.unwrap();
    let call = call_with_email(&working, |_| {}).await;
    let (out, email) = run(&working, &call).await;
    assert!(out.batch_item_failures.is_empty());
    assert_eq!((email.status, email.attempts), (EmailStatus::Sent, 2));
    assert!(email.message_id.is_some());
}

#[tokio::test]
async fn an_email_held_by_another_sender_is_left_alone() {
    let Some(state) = local_state().await else {
        return;
    };
    let held_until = Utc::now().timestamp_millis() + 60_000;
    let call = call_with_email(&state, |e| {
        e.status = EmailStatus::Sending;
        e.claim_id = Some("someone-else".into());
        e.claimed_until = Some(held_until);
    })
    .await;
    let (out, email) = run(&state, &call).await;
    assert_eq!(
        out.batch_item_failures.len(),
        1,
        "comes back when the claim lapses"
    );
    assert_eq!(email.claim_id.as_deref(), Some("someone-else"));
    assert_eq!(
        (email.status, email.attempts),
        (EmailStatus::Sending, 1),
        "not sent"
    );
}

#[tokio::test]
async fn unreadable_jobs_fail_towards_the_dead_letter_queue() {
    let Some(state) = local_state().await else {
        return;
    };
    let mut event = sqs_event("x");
    event["Records"][0]["body"] = "not json".into();
    let out = email_sender::handle(&state, event).await.unwrap();
    assert_eq!(out.batch_item_failures.len(), 1);
}
