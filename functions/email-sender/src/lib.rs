//! Call e-mails, from two event sources:
//! - the calls table's stream (filtered to completions with an e-mail to
//!   send): each completion queues its e-mail job unless the e-mail has
//!   ended (the completing request usually sent it within the stream's
//!   batching window), so the completion write itself is the e-mail's outbox
//!   and a completing request that dies or loses SQS loses nothing;
//! - the e-mail queue: each job claims the e-mail, sends it unless it is
//!   sent or held by another sender, and retries with backoff (by the
//!   message's visibility) until it is sent or out of attempts.
//!
//! Both report partial batch failures in the same shape, so one bad record
//! never holds back (or re-sends) the others.

use aws_lambda_events::event::dynamodb::{Event as StreamEvent, EventRecord};
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use pulsara_shared::domain::call::EmailStatus;
use pulsara_shared::domain::ids::CallId;
use pulsara_shared::error::Chain;
use pulsara_shared::services::calls::{
    email_job_step, follow_up_completion, EmailJob, EmailOutcome,
};
use pulsara_shared::AppState;
use serde::de::IgnoredAny;
use serde::Deserialize;
use tracing::Instrument;

/// The parts of a call image the stream consumer looks at.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CallImage {
    call_id: CallId,
    completion: Option<IgnoredAny>,
    email: Option<EmailImage>,
}

#[derive(Deserialize)]
struct EmailImage {
    status: EmailStatus,
}

/// The call whose completion this stream record is, if it has an e-mail to
/// send (the event source's filter passes only these; checked again here).
fn completion_with_email(record: &EventRecord) -> Option<CallId> {
    let new: CallImage = serde_dynamo::from_item(record.change.new_image.clone()).ok()?;
    let old: Option<CallImage> = serde_dynamo::from_item(record.change.old_image.clone()).ok();
    let just_completed = new.completion.is_some() && old.is_none_or(|o| o.completion.is_none());
    let to_send = new.email.is_some_and(|e| e.status == EmailStatus::Sending);
    (just_completed && to_send).then_some(new.call_id)
}

fn failure(id: String) -> BatchItemFailure {
    let mut f = BatchItemFailure::default();
    f.item_identifier = id;
    f
}

/// Stream records → e-mail jobs, for e-mails that have not ended yet. A record whose job can't
/// be queued is reported
/// (with everything after it, as Lambda retries a shard from there).
async fn on_completions(state: &AppState, event: StreamEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for record in &event.records {
        let Some(call_id) = completion_with_email(record) else {
            continue;
        };
        if let Err(e) = follow_up_completion(state, &call_id).await {
            tracing::error!(error = %Chain(&e), "could not queue a completion's e-mail job; the stream retries");
            let seq = record.change.sequence_number.clone().unwrap_or_default();
            response.batch_item_failures.push(failure(seq));
            break;
        }
    }
    response
}

/// Whether the job is finished with (deleted) or must come back.
async fn on_job(state: &AppState, record: &SqsMessage) -> bool {
    let Some(job) = record
        .body
        .as_deref()
        .and_then(|b| serde_json::from_str::<EmailJob>(b).ok())
    else {
        // Unreadable: let it fail its way to the dead-letter queue for a human.
        tracing::error!("e-mail job is not {{\"callId\": ...}}");
        return false;
    };
    let come_back_in = match email_job_step(state, &job).await {
        Ok(EmailOutcome::Finished(_) | EmailOutcome::GaveUp(_)) => return true,
        Ok(EmailOutcome::Busy { secs }) => secs,
        Ok(EmailOutcome::Retry { delay, .. }) => delay,
        Err(e) => {
            tracing::error!(error = %Chain(&e), "e-mail job failed; SQS will redeliver");
            return false;
        }
    };
    if let Some(receipt) = record.receipt_handle.as_deref() {
        if let Err(e) = state.email_queue().retry_in(receipt, come_back_in).await {
            // It comes back after the queue's visibility timeout instead.
            tracing::warn!(error = %e, "could not set the retry delay");
        }
    }
    false
}

async fn on_jobs(state: &AppState, event: SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for record in &event.records {
        let message_id = record.message_id.clone().unwrap_or_default();
        let span = tracing::info_span!("email_job", message_id = %message_id, restaurant_id = tracing::field::Empty);
        if !on_job(state, record).instrument(span).await {
            response.batch_item_failures.push(failure(message_id));
        }
    }
    response
}

/// Either event source's batch; the answer has the same shape for both.
pub async fn handle(
    state: &AppState,
    event: serde_json::Value,
) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    let source = event["Records"][0]["eventSource"].as_str().unwrap_or("");
    if source == "aws:dynamodb" {
        Ok(on_completions(state, serde_json::from_value(event)?).await)
    } else {
        Ok(on_jobs(state, serde_json::from_value(event)?).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALL: &str = "call_0123456789abcdef01234567";

    fn record(old_completed: bool, status: &str) -> EventRecord {
        let completion = json_completion();
        let mut old = serde_json::json!({"callId": {"S": CALL}});
        if old_completed {
            old["completion"] = completion.clone();
        }
        serde_json::from_value(serde_json::json!({
            "eventID": "1", "eventName": "MODIFY", "eventSource": "aws:dynamodb",
            "eventVersion": "1.1", "awsRegion": "us-east-1",
            "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/calls/stream/1",
            "dynamodb": {
                "Keys": {"callId": {"S": CALL}},
                "SequenceNumber": "100",
                "SizeBytes": 100,
                "StreamViewType": "NEW_AND_OLD_IMAGES",
                "ApproximateCreationDateTime": 1796128200,
                "OldImage": old,
                "NewImage": {
                    "callId": {"S": CALL}, "completion": completion,
                    "email": {"M": {"status": {"S": status}}}
                }
            }
        }))
        .unwrap()
    }

    fn json_completion() -> serde_json::Value {
        serde_json::json!({"M": {"duration": {"N": "30"}}})
    }

    #[test]
    fn only_a_completion_with_an_email_to_send_queues_a_job() {
        assert_eq!(
            completion_with_email(&record(false, "sending")).as_deref(),
            Some(CALL)
        );
        assert_eq!(
            completion_with_email(&record(false, "not_configured")),
            None
        );
        assert_eq!(
            completion_with_email(&record(true, "sending")),
            None,
            "a later change"
        );
    }
}
