//! SES bounces and complaints, from the configuration set's event
//! destination through SNS: each record moves its call's e-mail to
//! `bounced` or `complained` and suppresses the address for the restaurant
//! (`services::email_events`).
//!
//! A message we cannot use (not JSON, another event type, not our mail) is
//! logged and dropped: failing would only make SNS and Lambda deliver the
//! same unusable message again. A DynamoDB failure fails the invocation, so
//! Lambda's asynchronous retries bring the record back.

use chrono::Utc;
use pulsara_shared::domain::ses_event::{self, SnsEvent};
use pulsara_shared::error::Chain;
use pulsara_shared::services::email_events::on_ses_event;
use pulsara_shared::AppState;
use tracing::Instrument;

pub async fn handle(
    state: &AppState,
    event: serde_json::Value,
) -> Result<(), lambda_runtime::Error> {
    let event: SnsEvent = match serde_json::from_value(event) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(error = ?e.classify(), "not an SNS event; dropped");
            return Ok(());
        }
    };
    for record in &event.records {
        let sns_id = record.sns.message_id.as_str();
        let parsed = match ses_event::parse(&record.sns.message, Utc::now()) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(sns_message_id = sns_id, error = %e, "SES event dropped");
                continue;
            }
        };
        let span = tracing::info_span!(
            "ses_event",
            sns_message_id = sns_id,
            call_id = %parsed.call_id,
            restaurant_id = tracing::field::Empty,
        );
        if let Err(e) = on_ses_event(state, &parsed, Utc::now())
            .instrument(span)
            .await
        {
            tracing::error!(sns_message_id = sns_id, error = %Chain(&e), "SES event not applied; the invocation fails and is retried");
            return Err(e.into());
        }
    }
    Ok(())
}
