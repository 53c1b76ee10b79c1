//! Restaurants as the admin API answers them (the IVR's config view is
//! `domain::restaurant::ConfigView`).

use chrono::{DateTime, Utc};
use phonenumber::country;
use serde::Serialize;

use crate::domain::email_address::EmailAddress;
use crate::domain::hours::{Closure, SpecialDay, TimeOfDay, WeeklySchedule};
use crate::domain::ids::CallId;
use crate::domain::ids::RestaurantId;
use crate::domain::phone::E164;
use crate::domain::restaurant::{Agent, Restaurant};
use crate::domain::ses_event::SuppressionReason;

/// An address the restaurant's e-mails skip, and why (listing it again in
/// `notificationEmails` lifts it).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct SuppressionOut {
    pub address: EmailAddress,
    pub reason: SuppressionReason,
    pub at: DateTime<Utc>,
    pub call_id: CallId,
}

/// The stored fields, with `forwarding_number` shown as the config endpoint
/// shows it (display form) next to `forwardingNumberE164`, so both agree.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct RestaurantOut {
    pub restaurant_id: RestaurantId,
    pub name: String,
    pub phone_numbers: Vec<E164>,
    pub timezone: String,
    pub ai_enabled: bool,
    pub call_hours_start: TimeOfDay,
    pub call_hours_end: TimeOfDay,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<WeeklySchedule>,
    pub special_hours: Vec<SpecialDay>,
    pub closures: Vec<Closure>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<Agent>,
    #[serde(rename = "forwarding_number", skip_serializing_if = "Option::is_none")]
    pub forwarding_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forwarding_number_e164: Option<E164>,
    pub notification_emails: Vec<EmailAddress>,
    /// In address order.
    pub email_suppressions: Vec<SuppressionOut>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: u64,
}

impl RestaurantOut {
    pub fn new(r: &Restaurant, region: country::Id) -> Self {
        Self {
            restaurant_id: r.restaurant_id.clone(),
            name: r.name.clone(),
            phone_numbers: r.phone_numbers.clone(),
            timezone: r.timezone.name().to_string(),
            ai_enabled: r.ai_enabled,
            call_hours_start: r.call_hours_start,
            call_hours_end: r.call_hours_end,
            schedule: r.schedule.clone(),
            special_hours: r.special_hours.clone(),
            closures: r.closures.clone(),
            agent: r.agent.clone(),
            forwarding_number: r.forwarding_display(region),
            forwarding_number_e164: r.forwarding_number.clone(),
            notification_emails: r.notification_emails.clone(),
            email_suppressions: r
                .email_suppressions
                .iter()
                .map(|(address, s)| SuppressionOut {
                    address: address.clone(),
                    reason: s.reason,
                    at: s.at,
                    call_id: s.call_id.clone(),
                })
                .collect(),
            created_at: r.created_at,
            updated_at: r.updated_at,
            version: r.version,
        }
    }
}
