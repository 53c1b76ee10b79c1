//! Restaurants: the stored record, the admin's create/patch bodies, their
//! validation, and the config view an IVR gets while the phone rings.

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use phonenumber::country;
use serde::{Deserialize, Deserializer, Serialize};

use super::hours::{CallHours, TimeOfDay, WeeklySchedule, Window, MAX_WINDOWS_PER_DAY};
use super::phone;
use super::validate::{is_email, Errors};
use crate::error::ApiError;

pub const ID_PREFIX: &str = "rst_";
pub const MAX_PHONE_NUMBERS: usize = 10;
pub const MAX_NOTIFICATION_EMAILS: usize = 10;
pub const MAX_TOOLS: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agent {
    pub elevenlabs_agent_id: String,
    pub voice_id: String,
    #[serde(default)]
    pub tools: Vec<String>,
}

/// The stored restaurant. Field names follow the seed (camelCase, except the
/// seed's own snake_case `agent.*` and `forwarding_number`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Restaurant {
    pub restaurant_id: String,
    pub name: String,
    /// E.164, unique across restaurants.
    pub phone_numbers: Vec<String>,
    pub timezone: String,
    pub ai_enabled: bool,
    pub call_hours_start: TimeOfDay,
    pub call_hours_end: TimeOfDay,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<WeeklySchedule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<Agent>,
    /// E.164.
    #[serde(
        rename = "forwarding_number",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub forwarding_number: Option<String>,
    #[serde(default)]
    pub notification_emails: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency counter, bumped on every write.
    pub version: u64,
}

fn default_start() -> TimeOfDay {
    TimeOfDay::MIDNIGHT
}
fn default_end() -> TimeOfDay {
    TimeOfDay::END_OF_DAY
}

/// `POST /ivr/restaurants` body. Unknown fields (including `restaurantId`,
/// `createdAt`, `version`) are rejected, so nothing server-owned is assignable.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RestaurantInput {
    pub name: String,
    pub phone_numbers: Vec<String>,
    pub timezone: String,
    #[serde(default)]
    pub ai_enabled: bool,
    #[serde(default = "default_start")]
    pub call_hours_start: TimeOfDay,
    #[serde(default = "default_end")]
    pub call_hours_end: TimeOfDay,
    #[serde(default)]
    pub schedule: Option<WeeklySchedule>,
    #[serde(default)]
    pub agent: Option<Agent>,
    #[serde(rename = "forwarding_number", default)]
    pub forwarding_number: Option<String>,
    #[serde(default)]
    pub notification_emails: Vec<String>,
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// `PATCH /ivr/restaurants/{id}` body: every field optional; `null` clears
/// `schedule`, `agent` and `forwarding_number`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RestaurantPatch {
    pub name: Option<String>,
    pub phone_numbers: Option<Vec<String>>,
    pub timezone: Option<String>,
    pub ai_enabled: Option<bool>,
    pub call_hours_start: Option<TimeOfDay>,
    pub call_hours_end: Option<TimeOfDay>,
    #[serde(default, deserialize_with = "nullable")]
    pub schedule: Option<Option<WeeklySchedule>>,
    #[serde(default, deserialize_with = "nullable")]
    pub agent: Option<Option<Agent>>,
    #[serde(rename = "forwarding_number", default, deserialize_with = "nullable")]
    pub forwarding_number: Option<Option<String>>,
    pub notification_emails: Option<Vec<String>>,
}

impl RestaurantPatch {
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.phone_numbers.is_none()
            && self.timezone.is_none()
            && self.ai_enabled.is_none()
            && self.call_hours_start.is_none()
            && self.call_hours_end.is_none()
            && self.schedule.is_none()
            && self.agent.is_none()
            && self.forwarding_number.is_none()
            && self.notification_emails.is_none()
    }
}

impl RestaurantInput {
    /// Validates every field and builds the record; all problems are reported at once.
    pub fn into_restaurant(
        self,
        restaurant_id: String,
        now: DateTime<Utc>,
        region: country::Id,
    ) -> Result<Restaurant, ApiError> {
        let mut e = Errors::new();
        let name = e.text("name", &self.name, 200);

        if self.phone_numbers.is_empty() {
            e.add("phoneNumbers", "must contain at least one phone number");
        } else if self.phone_numbers.len() > MAX_PHONE_NUMBERS {
            e.add(
                "phoneNumbers",
                format!("must contain at most {MAX_PHONE_NUMBERS} numbers"),
            );
        }
        let mut phones: Vec<String> = Vec::with_capacity(self.phone_numbers.len());
        for (i, raw) in self.phone_numbers.iter().enumerate() {
            match phone::normalize(raw, region) {
                Ok(n) if phones.contains(&n) => {
                    e.add(format!("phoneNumbers[{i}]"), "is listed twice")
                }
                Ok(n) => phones.push(n),
                Err(err) => e.add(format!("phoneNumbers[{i}]"), err.to_string()),
            }
        }

        if self.timezone.parse::<Tz>().is_err() {
            e.add(
                "timezone",
                "must be an IANA timezone name such as America/New_York",
            );
        }

        let default = Window {
            start: self.call_hours_start,
            end: self.call_hours_end,
        };
        if let Some(problem) = default.problem() {
            e.add("callHoursEnd", problem);
        }
        if let Some(schedule) = &self.schedule {
            for (day, windows) in schedule.days() {
                let Some(windows) = windows else { continue };
                if windows.len() > MAX_WINDOWS_PER_DAY {
                    e.add(
                        format!("schedule.{day}"),
                        format!("at most {MAX_WINDOWS_PER_DAY} windows per day"),
                    );
                }
                for (i, w) in windows.iter().enumerate() {
                    if let Some(problem) = w.problem() {
                        e.add(format!("schedule.{day}[{i}]"), problem);
                    }
                }
            }
        }

        if let Some(agent) = &self.agent {
            e.token("agent.elevenlabs_agent_id", &agent.elevenlabs_agent_id, 128);
            e.token("agent.voice_id", &agent.voice_id, 128);
            if agent.tools.len() > MAX_TOOLS {
                e.add("agent.tools", format!("at most {MAX_TOOLS} tools"));
            }
            for (i, tool) in agent.tools.iter().enumerate() {
                let ok = !tool.is_empty()
                    && tool.len() <= 64
                    && tool
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
                if !ok {
                    e.add(
                        format!("agent.tools[{i}]"),
                        "must be 1 to 64 characters of a-z, 0-9 and '_'",
                    );
                } else if agent.tools[..i].contains(tool) {
                    e.add(format!("agent.tools[{i}]"), "is listed twice");
                }
            }
        }

        let forwarding_number = match &self.forwarding_number {
            None => None,
            Some(raw) => match phone::normalize(raw, region) {
                Ok(n) if phones.contains(&n) => {
                    e.add(
                        "forwarding_number",
                        "must not be one of the restaurant's own numbers (the call would loop)",
                    );
                    None
                }
                Ok(n) => Some(n),
                Err(err) => {
                    e.add("forwarding_number", err.to_string());
                    None
                }
            },
        };

        if self.notification_emails.len() > MAX_NOTIFICATION_EMAILS {
            e.add(
                "notificationEmails",
                format!("must contain at most {MAX_NOTIFICATION_EMAILS} addresses"),
            );
        }
        let mut emails: Vec<String> = Vec::new();
        for (i, raw) in self.notification_emails.iter().enumerate() {
            let addr = raw.trim().to_ascii_lowercase();
            if !is_email(&addr) {
                e.add(
                    format!("notificationEmails[{i}]"),
                    "is not an e-mail address",
                );
            } else if emails.contains(&addr) {
                e.add(format!("notificationEmails[{i}]"), "is listed twice");
            } else {
                emails.push(addr);
            }
        }

        e.finish()?;
        Ok(Restaurant {
            restaurant_id,
            name,
            phone_numbers: phones,
            timezone: self.timezone,
            ai_enabled: self.ai_enabled,
            call_hours_start: self.call_hours_start,
            call_hours_end: self.call_hours_end,
            schedule: self.schedule,
            agent: self.agent,
            forwarding_number,
            notification_emails: emails,
            created_at: now,
            updated_at: now,
            version: 1,
        })
    }
}

impl Restaurant {
    /// Applies a patch by re-validating the merged whole, so a patch can never
    /// produce a record that create would have refused.
    pub fn patched(
        &self,
        patch: RestaurantPatch,
        now: DateTime<Utc>,
        region: country::Id,
    ) -> Result<Restaurant, ApiError> {
        let merged = RestaurantInput {
            name: patch.name.unwrap_or_else(|| self.name.clone()),
            phone_numbers: patch
                .phone_numbers
                .unwrap_or_else(|| self.phone_numbers.clone()),
            timezone: patch.timezone.unwrap_or_else(|| self.timezone.clone()),
            ai_enabled: patch.ai_enabled.unwrap_or(self.ai_enabled),
            call_hours_start: patch.call_hours_start.unwrap_or(self.call_hours_start),
            call_hours_end: patch.call_hours_end.unwrap_or(self.call_hours_end),
            schedule: patch.schedule.unwrap_or_else(|| self.schedule.clone()),
            agent: patch.agent.unwrap_or_else(|| self.agent.clone()),
            forwarding_number: patch
                .forwarding_number
                .unwrap_or_else(|| self.forwarding_number.clone()),
            notification_emails: patch
                .notification_emails
                .unwrap_or_else(|| self.notification_emails.clone()),
        };
        let mut next = merged.into_restaurant(self.restaurant_id.clone(), now, region)?;
        next.created_at = self.created_at;
        next.version = self.version + 1;
        Ok(next)
    }

    pub fn call_hours(&self) -> CallHours {
        CallHours {
            default: Window {
                start: self.call_hours_start,
                end: self.call_hours_end,
            },
            schedule: self.schedule.clone(),
        }
    }

    pub fn tz(&self) -> Tz {
        // Validated on write; UTC only guards against a hand-edited record.
        self.timezone.parse().unwrap_or(Tz::UTC)
    }

    /// The forwarding number for people (the same form in every response).
    fn forwarding_display(&self, region: country::Id) -> Option<String> {
        self.forwarding_number
            .as_deref()
            .map(|n| phone::display(n, region))
    }

    /// The admin API's answer for this restaurant.
    pub fn view(&self, region: country::Id) -> RestaurantView<'_> {
        RestaurantView {
            restaurant_id: &self.restaurant_id,
            name: &self.name,
            phone_numbers: &self.phone_numbers,
            timezone: &self.timezone,
            ai_enabled: self.ai_enabled,
            call_hours_start: self.call_hours_start,
            call_hours_end: self.call_hours_end,
            schedule: self.schedule.as_ref(),
            agent: self.agent.as_ref(),
            forwarding_number: self.forwarding_display(region),
            forwarding_number_e164: self.forwarding_number.as_deref(),
            notification_emails: &self.notification_emails,
            created_at: self.created_at,
            updated_at: self.updated_at,
            version: self.version,
        }
    }

    /// The config an IVR reads while the phone rings, evaluated at `now`.
    pub fn config(&self, now: DateTime<Utc>, region: country::Id) -> ConfigView {
        let (in_hours, local) = self.call_hours().at(self.tz(), now);
        let routing = Routing::decide(self.ai_enabled, self.agent.is_some(), in_hours, self);
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
            timezone: self.timezone.clone(),
            local_time: local.to_rfc3339_opts(SecondsFormat::Secs, false),
            today_call_hours: self
                .call_hours()
                .windows_for(chrono::Datelike::weekday(&local)),
            schedule: self.schedule.clone(),
            phone_numbers: self.phone_numbers.clone(),
            routing,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
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
pub enum RouteReason {
    InCallHours,
    OutsideCallHours,
    AiDisabled,
    NoAgentConfigured,
}

/// What the IVR should do with the call right now, and why, so vendors don't
/// re-implement the rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Routing {
    pub action: RouteAction,
    pub reason: RouteReason,
    pub forward_to: Option<String>,
}

impl Routing {
    fn decide(ai_enabled: bool, has_agent: bool, in_hours: bool, r: &Restaurant) -> Routing {
        let reason = if !ai_enabled {
            RouteReason::AiDisabled
        } else if !has_agent {
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
        match &r.forwarding_number {
            Some(n) => Routing {
                action: RouteAction::Forward,
                reason,
                forward_to: Some(n.clone()),
            },
            None => Routing {
                action: RouteAction::Passthrough,
                reason,
                forward_to: None,
            },
        }
    }
}

/// A restaurant as the admin API answers it: the stored fields, with
/// `forwarding_number` shown as the config endpoint shows it (display form)
/// next to `forwardingNumberE164`, so both endpoints agree.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestaurantView<'a> {
    pub restaurant_id: &'a str,
    pub name: &'a str,
    pub phone_numbers: &'a [String],
    pub timezone: &'a str,
    pub ai_enabled: bool,
    pub call_hours_start: TimeOfDay,
    pub call_hours_end: TimeOfDay,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<&'a WeeklySchedule>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<&'a Agent>,
    #[serde(rename = "forwarding_number", skip_serializing_if = "Option::is_none")]
    pub forwarding_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forwarding_number_e164: Option<&'a str>,
    pub notification_emails: &'a [String],
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: u64,
}

/// The seed's config response, plus `routing` and the context behind it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigView {
    pub restaurant_id: String,
    pub name: String,
    pub ai_enabled: bool,
    pub call_hours_start: TimeOfDay,
    pub call_hours_end: TimeOfDay,
    pub currently_in_call_hours: bool,
    pub agent: Option<Agent>,
    #[serde(rename = "forwarding_number")]
    pub forwarding_number: Option<String>,
    pub forwarding_number_e164: Option<String>,
    pub timezone: String,
    pub local_time: String,
    pub today_call_hours: Vec<Window>,
    pub schedule: Option<WeeklySchedule>,
    pub phone_numbers: Vec<String>,
    pub routing: Routing,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const US: country::Id = country::Id::US;

    fn input(json: serde_json::Value) -> RestaurantInput {
        serde_json::from_value(json).unwrap()
    }

    fn demo() -> serde_json::Value {
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

    fn field_errors(err: ApiError) -> Vec<String> {
        match err {
            ApiError::Validation(v) => v.into_iter().map(|f| f.field).collect(),
            other => panic!("expected validation error, got {other:?}"),
        }
    }

    #[test]
    fn valid_input_is_normalized() {
        let now = Utc::now();
        let r = input(demo())
            .into_restaurant("rst_1".into(), now, US)
            .unwrap();
        assert_eq!(r.phone_numbers, vec!["+15551234567"]);
        assert_eq!(r.forwarding_number.as_deref(), Some("+15559876543"));
        assert_eq!(r.notification_emails, vec!["owner@restaurant.com"]);
        assert_eq!(r.version, 1);
    }

    #[test]
    fn every_bad_field_is_reported() {
        let mut j = demo();
        j["phoneNumbers"] = serde_json::json!(["12", "+15551234567", "(555) 123-4567"]);
        j["timezone"] = "Mars/Olympus".into();
        j["callHoursStart"] = "10:00".into();
        j["callHoursEnd"] = "10:00".into();
        j["forwarding_number"] = "+1 555 123 4567".into();
        j["notificationEmails"] = serde_json::json!(["nope"]);
        j["agent"]["tools"] = serde_json::json!(["End Call"]);
        let errs = field_errors(
            input(j)
                .into_restaurant("rst_1".into(), Utc::now(), US)
                .unwrap_err(),
        );
        for f in [
            "phoneNumbers[0]",
            "phoneNumbers[2]",
            "timezone",
            "callHoursEnd",
            "forwarding_number",
            "notificationEmails[0]",
            "agent.tools[0]",
        ] {
            assert!(errs.contains(&f.to_string()), "{f} missing from {errs:?}");
        }
    }

    #[test]
    fn unknown_and_server_owned_fields_are_rejected() {
        let mut j = demo();
        j["restaurantId"] = "rst_mine".into();
        assert!(serde_json::from_value::<RestaurantInput>(j).is_err());
        let p = serde_json::json!({"version": 99});
        assert!(serde_json::from_value::<RestaurantPatch>(p).is_err());
    }

    #[test]
    fn patch_merges_revalidates_and_clears() {
        let now = Utc::now();
        let r = input(demo())
            .into_restaurant("rst_1".into(), now, US)
            .unwrap();
        let p: RestaurantPatch =
            serde_json::from_value(serde_json::json!({"name": "Luigi's Two", "agent": null}))
                .unwrap();
        let next = r.patched(p, now, US).unwrap();
        assert_eq!(next.name, "Luigi's Two");
        assert_eq!(next.agent, None);
        assert_eq!(next.forwarding_number, r.forwarding_number);
        assert_eq!(next.version, 2);

        let loop_patch: RestaurantPatch =
            serde_json::from_value(serde_json::json!({"forwarding_number": "(555) 123-4567"}))
                .unwrap();
        assert_eq!(
            field_errors(r.patched(loop_patch, now, US).unwrap_err()),
            vec!["forwarding_number"]
        );
    }

    #[test]
    fn config_routes_by_hours_and_settings() {
        let r = input(demo())
            .into_restaurant("rst_1".into(), Utc::now(), US)
            .unwrap();
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
