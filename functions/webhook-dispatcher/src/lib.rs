//! Webhook dispatcher: delivers a batch's jobs concurrently, records every
//! attempt, queues retries with backoff, and reports only the jobs it could
//! not even process (DynamoDB/SQS trouble) as batch item failures — so a crash
//! or error mid-batch loses nothing and re-sends nothing already delivered.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use pulsara_shared::services::webhooks::{dispatch, DeliveryJob};
use pulsara_shared::AppState;
use tokio::task::JoinSet;
use tracing::Instrument;

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
        tasks.spawn(
            async move {
                let job: DeliveryJob = match record.body.as_deref().map(serde_json::from_str) {
                    Some(Ok(job)) => job,
                    _ => {
                        tracing::error!("webhook job is not a delivery job");
                        return (message_id, false);
                    }
                };
                match dispatch(state, &job).await {
                    Ok(outcome) => {
                        tracing::debug!(?outcome, "job done");
                        (message_id, true)
                    }
                    Err(e) => {
                        tracing::error!(error = %e, delivery_id = %job.delivery_id, "webhook job failed; SQS will redeliver");
                        (message_id, false)
                    }
                }
            }
            .instrument(span),
        );
    }
    // Whatever did not report success (errors, even a panicked task) is a failure.
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
