//! What an IVR is told while the phone rings: the restaurant's settings at
//! this instant, and what to do with the call (`routing`), so vendors don't
//! re-implement the rules.

use chrono::{DateTime, SecondsFormat, Utc};
use phonenumber::country;
use serde::Serialize;

use super::{Agent, Restaurant};
use crate::domain::hours::{TimeOfDay, WeeklySchedule, Window};
use crate::domain::ids::RestaurantId;
use crate::domain::phone::E164;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub enum RouteAction {
    /// Let the AI agent answer.
    AiAgent,
    /// Transfer the call to `forwardTo`.
    Forward,
    /// Don't intercept: let the call ring through to the restaurant.
    Passthrough,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub enum RouteReason {
    InCallHours,
    OutsideCallHours,
    AiDisabled,
    NoAgentConfigured,
}

/// What the IVR should do with the call right now, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct Routing {
    pub action: RouteAction,
    pub reason: RouteReason,
    pub forward_to: Option<E164>,
}

impl Routing {
    /// The routing policy: the AI answers only when it is on, has an agent
    /// and the call is in hours; otherwise forward if we can, else ring through.
    pub fn decide(r: &Restaurant, in_hours: bool) -> Routing {
        let reason = if !r.ai_enabled {
            RouteReason::AiDisabled
        } else if r.agent.is_none() {
            RouteReason::NoAgentConfigured
        } else if !in_hours {
            RouteReason::OutsideCallHours
        } else {
            return Routing {
                action: RouteAction::AiAgent,
                reason: RouteReason::InCallHours,
                forward_to: None,
            };
        };
        let action = match r.forwarding_number {
            Some(_) => RouteAction::Forward,
            None => RouteAction::Passthrough,
        };
        Routing {
            action,
            reason,
            forward_to: r.forwarding_number.clone(),
        }
    }
}

/// The seed's config response, plus `routing` and the context behind it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct ConfigView {
    pub restaurant_id: RestaurantId,
    pub name: String,
    pub ai_enabled: bool,
    pub call_hours_start: TimeOfDay,
    pub call_hours_end: TimeOfDay,
    pub currently_in_call_hours: bool,
    pub agent: Option<Agent>,
    #[serde(rename = "forwarding_number")]
    pub forwarding_number: Option<String>,
    pub forwarding_number_e164: Option<E164>,
    pub timezone: String,
    pub local_time: String,
    pub today_call_hours: Vec<Window>,
    pub schedule: Option<WeeklySchedule>,
    pub phone_numbers: Vec<E164>,
    pub routing: Routing,
}

impl Restaurant {
    /// The config an IVR reads while the phone rings, evaluated at `now`.
    pub fn config(&self, now: DateTime<Utc>, region: country::Id) -> ConfigView {
        let hours = self.call_hours();
        let (in_hours, local) = hours.at(self.timezone, now);
        ConfigView {
            restaurant_id: self.restaurant_id.clone(),
            name: self.name.clone(),
            ai_enabled: self.ai_enabled,
            call_hours_start: self.call_hours_start,
            call_hours_end: self.call_hours_end,
            currently_in_call_hours: in_hours,
            agent: self.agent.clone(),
            forwarding_number: self.forwarding_display(region),
            forwarding_number_e164: self.forwarding_number.clone(),
            timezone: self.timezone.name().to_string(),
            local_time: local.to_rfc3339_opts(SecondsFormat::Secs, false),
            today_call_hours: hours.windows_for(chrono::Datelike::weekday(&local)),
            schedule: self.schedule.clone(),
            phone_numbers: self.phone_numbers.clone(),
            routing: Routing::decide(self, in_hours),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{demo, US};
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn config_routes_by_hours_and_settings() {
        let r = demo();
        // 15:00 UTC = 10:00 in New York: AI answers.
        let open = Utc.with_ymd_and_hms(2026, 12, 4, 15, 0, 0).unwrap();
        let c = r.config(open, US);
        assert!(c.currently_in_call_hours);
        assert_eq!(c.routing.action, RouteAction::AiAgent);
        assert_eq!(c.forwarding_number.as_deref(), Some("(555) 987-6543"));
        assert_eq!(c.local_time, "2026-12-04T10:00:00-05:00");
        // 03:00 UTC = 22:00 in New York: forward.
        let closed = Utc.with_ymd_and_hms(2026, 12, 4, 3, 0, 0).unwrap();
        let c = r.config(closed, US);
        assert!(!c.currently_in_call_hours);
        assert_eq!(c.routing.action, RouteAction::Forward);
        assert_eq!(c.routing.reason, RouteReason::OutsideCallHours);
        assert_eq!(c.routing.forward_to.as_deref(), Some("+15559876543"));

        let mut off = r.clone();
        off.ai_enabled = false;
        off.forwarding_number = None;
        let c = off.config(open, US);
        assert_eq!(c.routing.action, RouteAction::Passthrough);
        assert_eq!(c.routing.reason, RouteReason::AiDisabled);
    }
}
