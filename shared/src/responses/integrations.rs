//! Integrations as their owner sees them: the URLs to paste into the
//! platform, never a secret (not even in the response that registers one:
//! the secret came from the platform, the owner has it).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::ids::{IntegrationId, RestaurantId};
use crate::domain::integration::{urls, IntegrationRecord, Platform};

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct IntegrationOut {
    pub integration_id: IntegrationId,
    pub platform: Platform,
    pub description: Option<String>,
    /// The URLs the platform calls, by name (`conversationInit`, `postCall`
    /// for ElevenLabs; `voice`, `status` for Twilio).
    pub urls: BTreeMap<String, String>,
    /// Whether a Twilio integration can hand calls to ElevenLabs agents.
    pub has_elevenlabs_api_key: bool,
    pub restaurant_ids: Option<Vec<RestaurantId>>,
    pub created_at: DateTime<Utc>,
}

impl IntegrationOut {
    /// `base`: the API's public base URL.
    pub fn new(i: &IntegrationRecord, base: &str) -> Self {
        Self {
            integration_id: i.integration_id.clone(),
            platform: i.platform,
            description: i.description.clone(),
            urls: urls(base, &i.integration_id, i.platform)
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            has_elevenlabs_api_key: i.elevenlabs_api_key.is_some(),
            restaurant_ids: i.restaurant_ids.clone(),
            created_at: i.created_at,
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct IntegrationListOut {
    pub integrations: Vec<IntegrationOut>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct IntegrationDeletedOut {
    pub integration_id: IntegrationId,
    pub deleted: bool,
}
