//! E-mail retry worker: consumes the queue of call e-mails SES refused,
//! retries with exponential backoff, and reports partial batch failures so
//! one bad message never holds back (or re-sends) the others.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use pulsara_shared::services::calls::{retry_email, RetryOutcome};
use pulsara_shared::AppState;
use serde::Deserialize;
use tracing::Instrument;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Job {
    call_id: String,
}

/// Whether the message is finished with (deleted) or must come back.
async fn process(state: &AppState, record: &SqsMessage) -> bool {
    let receive_count: u32 = record
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let Some(job) = record
        .body
        .as_deref()
        .and_then(|b| serde_json::from_str::<Job>(b).ok())
    else {
        // Unreadable: let it fail its way to the dead-letter queue for a human.
        tracing::error!("e-mail job is not {{\"callId\": ...}}");
        return false;
    };
    match retry_email(state, &job.call_id, receive_count).await {
        Ok(RetryOutcome::Done) => true,
        Ok(RetryOutcome::Later { delay }) => {
            if let Some(receipt) = record.receipt_handle.as_deref() {
                if let Err(e) = state.email_queue().retry_in(receipt, delay).await {
                    tracing::warn!(error = %e, "could not set the retry delay");
                }
            }
            false
        }
        Ok(RetryOutcome::GaveUp) => {
            // Visible again at once, so SQS moves it to the DLQ on the next receive.
            if let Some(receipt) = record.receipt_handle.as_deref() {
                let _ = state.email_queue().retry_in(receipt, 0).await;
            }
            false
        }
        Err(e) => {
            tracing::error!(error = %e, "e-mail job failed");
            false
        }
    }
}

pub async fn handle(
    state: &AppState,
    event: SqsEvent,
) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    let mut response = SqsBatchResponse::default();
    for record in &event.records {
        let message_id = record.message_id.clone().unwrap_or_default();
        let span = tracing::info_span!("email_job", message_id = %message_id, restaurant_id = tracing::field::Empty);
        if !process(state, record).instrument(span).await {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = message_id;
            response.batch_item_failures.push(failure);
        }
    }
    Ok(response)
}
