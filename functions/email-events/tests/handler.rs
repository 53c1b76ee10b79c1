//! The handler fed the sample SNS event (events/email-events.json), edited to
//! name a stored call, against the local DynamoDB: a permanent bounce marks
//! the e-mail bounced and suppresses the address once, however often it is
//! delivered; a transient one and unusable messages change nothing and succeed.

use chrono::Utc;
use pulsara_shared::domain::call::{CallRecord, EmailStatus};
use pulsara_shared::domain::ses_event::SuppressionReason;
use pulsara_shared::testing::{self, local_state};
use pulsara_shared::AppState;
use serde_json::{json, Value};

const OWNER: &str = "owner@bounce-bistro.example";

/// The sample event, its SES record about `call`'s message (bounce type `kind`).
fn sns_event(call: &CallRecord, kind: &str) -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../events/email-events.json"
    );
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut record: Value =
        serde_json::from_str(v["Records"][0]["Sns"]["Message"].as_str().unwrap()).unwrap();
    let email = call.email.as_ref().unwrap();
    record["mail"]["messageId"] = email.message_id.clone().unwrap().into();
    record["mail"]["tags"]["callId"] = json!([call.call_id]);
    record["mail"]["tags"]["restaurantId"] = json!([call.restaurant_id]);
    record["bounce"]["bounceType"] = kind.into();
    record["bounce"]["bouncedRecipients"][0]["emailAddress"] = OWNER.into();
    v["Records"][0]["Sns"]["Message"] = record.to_string().into();
    v
}

/// A stored call of a new restaurant whose e-mail SES accepted.
async fn sent_call(state: &AppState) -> CallRecord {
    testing::call_with_email(state, "Bounce Bistro", OWNER, |e| {
        e.status = EmailStatus::Sent;
        e.message_id = Some(format!("ses-{}", Utc::now().timestamp_nanos_opt().unwrap()));
        e.last_error = None;
    })
    .await
}

async fn status(state: &AppState, call: &CallRecord) -> EmailStatus {
    let stored = state.calls.get(&call.call_id).await.unwrap().unwrap();
    stored.email.unwrap().status
}

#[tokio::test]
async fn a_permanent_bounce_is_applied_once() {
    let Some(state) = local_state().await else {
        return;
    };
    let call = sent_call(&state).await;
    let event = sns_event(&call, "Permanent");
    email_events::handle(&state, event.clone()).await.unwrap();
    assert_eq!(status(&state, &call).await, EmailStatus::Bounced);
    let r = state
        .restaurants
        .get_latest(&call.restaurant_id)
        .await
        .unwrap()
        .unwrap();
    let [(address, s)] = r.email_suppressions.iter().collect::<Vec<_>>()[..] else {
        panic!("one suppression: {:?}", r.email_suppressions);
    };
    assert_eq!(address.as_str(), OWNER);
    assert_eq!(
        (s.reason, &s.call_id),
        (SuppressionReason::Bounced, &call.call_id)
    );
    // Redelivered: nothing more is written.
    email_events::handle(&state, event).await.unwrap();
    let again = state
        .restaurants
        .get_latest(&call.restaurant_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.version, r.version);
    assert_eq!(status(&state, &call).await, EmailStatus::Bounced);
}

#[tokio::test]
async fn a_transient_bounce_and_unusable_messages_change_nothing() {
    let Some(state) = local_state().await else {
        return;
    };
    let call = sent_call(&state).await;
    let before = state
        .restaurants
        .get_latest(&call.restaurant_id)
        .await
        .unwrap()
        .unwrap();
    email_events::handle(&state, sns_event(&call, "Transient"))
        .await
        .unwrap();
    let mut garbage = sns_event(&call, "Permanent");
    garbage["Records"][0]["Sns"]["Message"] = "{not json".into();
    email_events::handle(&state, garbage).await.unwrap();
    email_events::handle(&state, json!({"unexpected": true}))
        .await
        .unwrap();
    assert_eq!(status(&state, &call).await, EmailStatus::Sent);
    let after = state
        .restaurants
        .get_latest(&call.restaurant_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.version, before.version);
    assert!(after.email_suppressions.is_empty());
}
