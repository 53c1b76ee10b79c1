//! Webhook dispatcher: delivers a batch's jobs concurrently. A job is done
//! (deleted) only when its delivery has ended; otherwise it is reported as a
//! batch item failure, with its visibility set to when it should come back
//! (the next retry, or another worker's claim lapsing). Errors and crashes
//! leave it to come back after the queue's visibility timeout: nothing is
//! lost, and the per-delivery claim keeps copies from sending twice.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use pulsara_shared::error::Chain;
use pulsara_shared::services::webhooks::{dispatch, DeliveryJob, Dispatched};
use pulsara_shared::AppState;
use tokio::task::JoinSet;
use tracing::Instrument;

/// Whether the job is finished with (deleted) or must come back.
async fn process(state: &AppState, record: &SqsMessage) -> bool {
    let job: DeliveryJob = match record.body.as_deref().map(serde_json::from_str) {
        Some(Ok(job)) => job,
        _ => {
            // Unreadable: let it fail its way to the dead-letter queue for a human.
            tracing::error!("webhook job is not a delivery job");
            return false;
        }
    };
    match dispatch(state, &job).await {
        Ok(Dispatched::Finished(status)) => {
            tracing::debug!(?status, "job done");
            true
        }
        Ok(Dispatched::Later { secs }) => {
            if let Some(receipt) = record.receipt_handle.as_deref() {
                if let Err(e) = state.webhook_queue().retry_in(receipt, secs).await {
                    // It comes back after the visibility timeout instead.
                    tracing::warn!(error = %e, "could not set the job's next visibility");
                }
            }
            false
        }
        Err(e) => {
            tracing::error!(error = %Chain(&e), delivery_id = %job.delivery_id, "webhook job failed; SQS will redeliver");
            false
        }
    }
}

pub async fn handle(
    state: &'static AppState,
    event: SqsEvent,
) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    let mut tasks = JoinSet::new();
    let mut pending: Vec<String> = Vec::with_capacity(event.records.len());
    for record in event.records {
        let message_id = record.message_id.clone().unwrap_or_default();
        pending.push(message_id.clone());
        let span = tracing::info_span!("webhook_job", message_id = %message_id);
        tasks.spawn(async move { (message_id, process(state, &record).await) }.instrument(span));
    }
    // Whatever did not report success is a failure. (Release builds abort on
    // a panic, so a task that panics ends the invocation and Lambda retries
    // the whole batch; only debug builds reach the `Err` arm.)
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((message_id, true)) => pending.retain(|id| *id != message_id),
            Ok((_, false)) => {}
            Err(e) => tracing::error!(error = %e, "delivery task panicked"),
        }
    }
    let mut response = SqsBatchResponse::default();
    for message_id in pending {
        let mut failure = BatchItemFailure::default();
        failure.item_identifier = message_id;
        response.batch_item_failures.push(failure);
    }
    Ok(response)
}
