//! Webhooks and their deliveries, as their owner sees them: never a secret
//! except in the one response that issues it.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::ids::{DeliveryId, WebhookId};
use crate::domain::webhook::{
    Attempt, DeliveryRecord, DeliveryStatus, EventType, WebhookRecord, WebhookStatus,
};

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct WebhookOut {
    pub webhook_id: WebhookId,
    pub callback_url: String,
    pub events: Vec<EventType>,
    pub description: Option<String>,
    pub status: WebhookStatus,
    pub disabled_reason: Option<String>,
    pub failing_since: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl WebhookOut {
    pub fn new(w: &WebhookRecord) -> Self {
        Self {
            webhook_id: w.webhook_id.clone(),
            callback_url: w.callback_url.clone(),
            events: w.events.clone(),
            description: w.description.clone(),
            status: w.status,
            disabled_reason: w.disabled_reason.clone(),
            failing_since: w.failing_since,
            created_at: w.created_at,
            updated_at: w.updated_at,
        }
    }
}

/// `POST /ivr/webhooks/register`: the signing secret, shown this once.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct WebhookRegisteredOut {
    #[serde(flatten)]
    pub webhook: WebhookOut,
    pub secret: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct WebhookListOut {
    pub webhooks: Vec<WebhookOut>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct WebhookDeletedOut {
    pub webhook_id: WebhookId,
    pub deleted: bool,
}

/// A test event or replay, queued (202).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct DeliveryQueuedOut {
    pub delivery_id: DeliveryId,
}

/// `POST /ivr/webhooks/{webhookId}/rotate-secret`: the new secret, shown once.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct SecretRotatedOut {
    pub webhook_id: WebhookId,
    pub secret: String,
    pub previous_secret_valid_until: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct DeliveryOut {
    pub delivery_id: DeliveryId,
    pub webhook_id: WebhookId,
    pub event_type: EventType,
    pub status: DeliveryStatus,
    pub attempts: Vec<Attempt>,
    pub replay_of: Option<DeliveryId>,
    pub failure: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl DeliveryOut {
    pub fn new(d: &DeliveryRecord) -> Self {
        Self {
            delivery_id: d.delivery_id.clone(),
            webhook_id: d.webhook_id.clone(),
            event_type: d.event_type,
            status: d.status,
            attempts: d.attempts.clone(),
            replay_of: d.replay_of.clone(),
            failure: d.failure.clone(),
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct DeliveryListOut {
    pub webhook_id: WebhookId,
    pub deliveries: Vec<DeliveryOut>,
}
