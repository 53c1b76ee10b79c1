//! Restaurant changes → webhook deliveries. Consumes the restaurants table's
//! stream (old and new images), emits `restaurant.updated`, `settings.updated`
//! and `agent.updated` to subscribed webhooks. Delivery ids derive from the
//! stream record, so a record Lambda replays creates nothing new.

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::KinesisEventResponse;
use chrono::Utc;
use pulsara_shared::domain::restaurant::Restaurant;
use pulsara_shared::services::webhooks::fan_out;
use pulsara_shared::{ApiError, AppState};

async fn process(
    state: &AppState,
    audience: &[pulsara_shared::domain::webhook::WebhookRecord],
    record: &EventRecord,
) -> Result<usize, ApiError> {
    if record.event_name != "MODIFY" {
        return Ok(0); // a new restaurant has no subscribers' config to refresh yet
    }
    let old: Restaurant =
        serde_dynamo::from_item(record.change.old_image.clone()).map_err(ApiError::internal)?;
    let new: Restaurant =
        serde_dynamo::from_item(record.change.new_image.clone()).map_err(ApiError::internal)?;
    fan_out(state, audience, &record.event_id, &old, &new, Utc::now()).await
}

pub async fn handle(
    state: &AppState,
    event: Event,
) -> Result<KinesisEventResponse, lambda_runtime::Error> {
    let mut response = KinesisEventResponse::default();
    if event.records.is_empty() {
        return Ok(response);
    }
    let audience = state.webhooks.active().await.map_err(ApiError::from)?;
    for record in &event.records {
        let seq = record.change.sequence_number.clone().unwrap_or_default();
        match process(state, &audience, record).await {
            Ok(n) => {
                tracing::info!(event_id = %record.event_id, deliveries = n, "restaurant change fanned out")
            }
            Err(e) => {
                tracing::error!(event_id = %record.event_id, error = ?e, "fan-out failed; Lambda retries from here");
                // Stream order matters: everything from the first failure is retried.
                response.add_failure(seq);
                break;
            }
        }
    }
    Ok(response)
}
