//! Restaurants: the stored record (here), the admin's create/patch bodies and
//! their validation (`input`), and what an IVR is told while the phone rings
//! (`config`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use phonenumber::country;
use serde::{Deserialize, Serialize};

use super::email_address::EmailAddress;
use super::hours::{CallHours, Closure, SpecialDay, TimeOfDay, WeeklySchedule, Window};
use super::ids::RestaurantId;
use super::phone::E164;
use super::ses_event::Suppression;

mod config;
mod input;

pub use config::{ConfigView, RouteAction, RouteReason, Routing};
pub use input::{RestaurantInput, RestaurantPatch};

/// What an id-or-phone path segment of ours starts with when it is an id.
pub const ID_PREFIX: &str = "rst_";
pub const MAX_PHONE_NUMBERS: usize = 10;
pub const MAX_NOTIFICATION_EMAILS: usize = 10;
pub const MAX_TOOLS: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct Agent {
    pub elevenlabs_agent_id: String,
    pub voice_id: String,
    #[serde(default)]
    pub tools: Vec<String>,
    /// The Vapi assistant that answers for the restaurant (a `vapi` integration's
    /// `assistant-request` names it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vapi_assistant_id: Option<String>,
    /// The Retell agent that answers (a `retell` integration's inbound webhook
    /// overrides the number's agent with it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retell_agent_id: Option<String>,
}

/// A number formatted for people in `region`. Kept with the record because
/// formatting loads the phone-number metadata, whose first use costs ~90 ms of
/// CPU: seconds at a 128 MB Lambda's share, on the ring path's cold start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisplayNumber {
    pub region: country::Id,
    pub text: String,
}

impl DisplayNumber {
    pub fn new(number: &E164, region: country::Id) -> Self {
        Self {
            region,
            text: number.display(region),
        }
    }
}

/// The stored restaurant. Field names follow the seed (camelCase, except the
/// seed's own snake_case `agent.*` and `forwarding_number`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Restaurant {
    pub restaurant_id: RestaurantId,
    pub name: String,
    /// Unique across restaurants.
    pub phone_numbers: Vec<E164>,
    pub timezone: Tz,
    pub ai_enabled: bool,
    pub call_hours_start: TimeOfDay,
    pub call_hours_end: TimeOfDay,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<WeeklySchedule>,
    /// Sorted by date.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub special_hours: Vec<SpecialDay>,
    /// Sorted by start date.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub closures: Vec<Closure>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<Agent>,
    #[serde(
        rename = "forwarding_number",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub forwarding_number: Option<E164>,
    /// `forwarding_number` as people read it, formatted when it was saved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forwarding_text: Option<DisplayNumber>,
    #[serde(default)]
    pub notification_emails: Vec<EmailAddress>,
    /// Addresses SES told us bounced or complained: never mailed again until
    /// an admin lists them again in `notificationEmails`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub email_suppressions: BTreeMap<EmailAddress, Suppression>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency counter, bumped on every write.
    pub version: u64,
}

impl Restaurant {
    pub fn call_hours(&self) -> CallHours<'_> {
        CallHours {
            default: Window {
                start: self.call_hours_start,
                end: self.call_hours_end,
            },
            schedule: self.schedule.as_ref(),
            special: &self.special_hours,
            closures: &self.closures,
        }
    }

    pub fn is_suppressed(&self, address: &EmailAddress) -> bool {
        self.email_suppressions.contains_key(address)
    }

    /// The forwarding number for people (the same form in every response);
    /// formatted again only if saved for another region.
    pub fn forwarding_display(&self, region: country::Id) -> Option<String> {
        let number = self.forwarding_number.as_ref()?;
        Some(match &self.forwarding_text {
            Some(saved) if saved.region == region => saved.text.clone(),
            _ => number.display(region),
        })
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    pub const US: country::Id = country::Id::US;

    pub fn demo_json() -> serde_json::Value {
        serde_json::json!({
            "name": "Luigi's",
            "phoneNumbers": ["(555) 123-4567"],
            "timezone": "America/New_York",
            "aiEnabled": true,
            "callHoursStart": "09:00",
            "callHoursEnd": "21:00",
            "agent": {"elevenlabs_agent_id": "agent_1", "voice_id": "tnSpp4vdxKPjI9w0GnoV",
                      "tools": ["end_call", "forward_call"]},
            "forwarding_number": "555-987-6543",
            "notificationEmails": ["Owner@Restaurant.com"]
        })
    }

    pub fn input(json: serde_json::Value) -> RestaurantInput {
        serde_json::from_value(json).unwrap()
    }

    pub fn demo() -> Restaurant {
        input(demo_json())
            .into_restaurant(RestaurantId::generate(), Utc::now(), US)
            .unwrap()
    }
}
