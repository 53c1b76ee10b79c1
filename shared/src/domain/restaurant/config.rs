//! What an IVR is told while the phone rings: the restaurant's settings at
//! this instant, and what to do with the call (`routing`), so vendors don't
//! re-implement the rules.

use chrono::{DateTime, Datelike, Days, SecondsFormat, Utc};
use phonenumber::country;
use serde::Serialize;

use super::{Agent, Restaurant};
use crate::domain::hours::{first_instant, Closure, SpecialDay, TimeOfDay, WeeklySchedule, Window};
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
    /// Out of hours because today is a special date or in a closure.
    SpecialHoursClosed,
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
    /// `exception_today`: a date exception decides today's hours.
    pub fn decide(r: &Restaurant, in_hours: bool, exception_today: bool) -> Routing {
        let reason = if !r.ai_enabled {
            RouteReason::AiDisabled
        } else if r.agent.is_none() {
            RouteReason::NoAgentConfigured
        } else if !in_hours && exception_today {
            RouteReason::SpecialHoursClosed
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

/// An IVR may keep a config answer at most this long (and never past its
/// `nextChangeAt`): an admin's edit reaches a caching IVR within it, and a
/// revalidation with `If-None-Match` costs one read and no body.
pub const MAX_AGE_SECS: i64 = 60;

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
    /// When `currently_in_call_hours` next flips; `None` if it never does.
    pub next_change_at: Option<String>,
    pub agent: Option<Agent>,
    #[serde(rename = "forwarding_number")]
    pub forwarding_number: Option<String>,
    pub forwarding_number_e164: Option<E164>,
    pub timezone: String,
    pub local_time: String,
    /// The windows that start on today's local date, exceptions applied.
    pub today_call_hours: Vec<Window>,
    /// The note of today's special date or closure.
    pub today_note: Option<String>,
    pub schedule: Option<WeeklySchedule>,
    /// Special dates from today on.
    pub special_hours: Vec<SpecialDay>,
    /// Closures that have not ended before today.
    pub closures: Vec<Closure>,
    pub phone_numbers: Vec<E164>,
    pub routing: Routing,
    #[serde(skip)]
    pub freshness: Freshness,
}

/// How long a config answer holds, for HTTP caching: it changes with the
/// restaurant's version, its local date and the hours' next change.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Freshness {
    /// Weak: `localTime` moves on while the answer means the same.
    pub etag: String,
    pub max_age_secs: i64,
}

impl Restaurant {
    /// The config an IVR reads while the phone rings, evaluated at `now`.
    pub fn config(&self, now: DateTime<Utc>, region: country::Id) -> ConfigView {
        let hours = self.call_hours();
        let tz = self.timezone;
        let status = hours.status(tz, now);
        let local = now.with_timezone(&tz);
        let date = local.date_naive();
        let today = hours.day(date);
        let tomorrow = first_instant(tz, (date + Days::new(1)).and_time(Default::default()));
        let until = status.next_change.map_or(tomorrow, |t| t.min(tomorrow));
        let freshness = Freshness {
            etag: format!(
                "W/\"{}-{}-{}\"",
                self.version,
                date.num_days_from_ce(),
                status.next_change.map_or(0, |t| t.timestamp())
            ),
            max_age_secs: (until - now).num_seconds().clamp(0, MAX_AGE_SECS),
        };
        ConfigView {
            restaurant_id: self.restaurant_id.clone(),
            name: self.name.clone(),
            ai_enabled: self.ai_enabled,
            call_hours_start: self.call_hours_start,
            call_hours_end: self.call_hours_end,
            currently_in_call_hours: status.open,
            next_change_at: status.next_change.map(|t| {
                t.with_timezone(&tz)
                    .to_rfc3339_opts(SecondsFormat::Secs, false)
            }),
            agent: self.agent.clone(),
            forwarding_number: self.forwarding_display(region),
            forwarding_number_e164: self.forwarding_number.clone(),
            timezone: tz.name().to_string(),
            local_time: local.to_rfc3339_opts(SecondsFormat::Secs, false),
            today_call_hours: today.windows.to_vec(),
            today_note: today.note().map(str::to_string),
            schedule: self.schedule.clone(),
            special_hours: self
                .special_hours
                .iter()
                .filter(|s| s.date >= date)
                .cloned()
                .collect(),
            closures: self
                .closures
                .iter()
                .filter(|c| c.to >= date)
                .cloned()
                .collect(),
            phone_numbers: self.phone_numbers.clone(),
            routing: Routing::decide(self, status.open, today.is_exception()),
            freshness,
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

    fn with_exceptions() -> Restaurant {
        let mut j = super::super::fixtures::demo_json();
        j["callHoursStart"] = "17:00".into();
        j["callHoursEnd"] = "01:00".into();
        j["specialHours"] = serde_json::json!([
            {"date": "2026-12-25", "windows": [], "note": "Christmas Day"},
            {"date": "2026-12-31", "windows": [{"start": "18:00", "end": "02:00"}]}
        ]);
        j["closures"] =
            serde_json::json!([{"from": "2027-01-04", "to": "2027-01-10", "note": "Renovation"}]);
        let now = Utc.with_ymd_and_hms(2026, 12, 2, 12, 0, 0).unwrap();
        super::super::fixtures::input(j)
            .into_restaurant(RestaurantId::generate(), now, US)
            .unwrap()
    }

    #[test]
    fn a_special_date_closes_with_its_own_reason_and_note() {
        let r = with_exceptions();
        // Christmas Eve's window runs to 01:00 on Christmas Day (06:00 UTC).
        let eve = r.config(Utc.with_ymd_and_hms(2026, 12, 25, 5, 0, 0).unwrap(), US);
        assert!(eve.currently_in_call_hours);
        assert_eq!(
            eve.next_change_at.as_deref(),
            Some("2026-12-25T01:00:00-05:00")
        );
        assert_eq!(eve.today_note.as_deref(), Some("Christmas Day"));
        assert_eq!(eve.routing.reason, RouteReason::InCallHours);

        let day = r.config(Utc.with_ymd_and_hms(2026, 12, 25, 18, 0, 0).unwrap(), US);
        assert!(!day.currently_in_call_hours);
        assert!(day.today_call_hours.is_empty());
        assert_eq!(day.routing.reason, RouteReason::SpecialHoursClosed);
        assert_eq!(day.routing.action, RouteAction::Forward);
        assert_eq!(
            day.next_change_at.as_deref(),
            Some("2026-12-26T17:00:00-05:00")
        );
        // Listed from today on: the past Christmas is gone on the 26th.
        let after = r.config(Utc.with_ymd_and_hms(2026, 12, 26, 18, 0, 0).unwrap(), US);
        assert_eq!(after.special_hours.len(), 1);
        assert_eq!(after.routing.reason, RouteReason::OutsideCallHours);
        assert_eq!(after.today_note, None);

        let renovation = r.config(Utc.with_ymd_and_hms(2027, 1, 6, 18, 0, 0).unwrap(), US);
        assert_eq!(renovation.routing.reason, RouteReason::SpecialHoursClosed);
        assert_eq!(renovation.today_note.as_deref(), Some("Renovation"));
        assert_eq!(
            renovation.next_change_at.as_deref(),
            Some("2027-01-11T17:00:00-05:00")
        );
    }

    #[test]
    fn freshness_follows_version_date_and_next_change() {
        let r = with_exceptions();
        let at = |h, m, s| r.config(Utc.with_ymd_and_hms(2026, 12, 4, h, m, s).unwrap(), US);
        // 21:59:30 UTC = 16:59:30 in New York; hours open at 17:00.
        let before = at(21, 59, 30);
        assert_eq!(before.freshness.max_age_secs, 30, "never past nextChangeAt");
        assert_eq!(at(21, 59, 0).freshness.etag, before.freshness.etag);
        let open = at(22, 0, 0);
        assert_ne!(open.freshness.etag, before.freshness.etag);
        assert_eq!(open.freshness.max_age_secs, MAX_AGE_SECS);
        let mut edited = r.clone();
        edited.version += 1;
        let later = edited.config(Utc.with_ymd_and_hms(2026, 12, 4, 22, 0, 0).unwrap(), US);
        assert_ne!(later.freshness.etag, open.freshness.etag);
        assert!(open.freshness.etag.starts_with("W/\""));
        // Local midnight bounds it too: the answer lists today's windows.
        let always = {
            let mut a = r.clone();
            a.call_hours_start = TimeOfDay::MIDNIGHT;
            a.call_hours_end = TimeOfDay::END_OF_DAY;
            a.special_hours.clear();
            a.closures.clear();
            a
        };
        let late = always.config(Utc.with_ymd_and_hms(2026, 12, 5, 4, 59, 50).unwrap(), US);
        assert_eq!(late.next_change_at, None);
        assert_eq!(late.freshness.max_age_secs, 10);
    }

    #[test]
    fn the_forwarding_number_is_shown_as_saved_for_the_region() {
        let mut r = demo();
        assert_eq!(r.forwarding_text.as_ref().unwrap().text, "(555) 987-6543");
        // The saved form is used as it is (no formatting on the ring path) ...
        r.forwarding_text.as_mut().unwrap().text = "saved".into();
        assert_eq!(
            r.config(Utc::now(), US).forwarding_number.as_deref(),
            Some("saved")
        );
        // ... unless the deployment's default region changed since.
        let gb = r.config(Utc::now(), phonenumber::country::Id::GB);
        assert_eq!(gb.forwarding_number.as_deref(), Some("+1 555-987-6543"));
        r.forwarding_text = None;
        assert_eq!(
            r.config(Utc::now(), US).forwarding_number.as_deref(),
            Some("(555) 987-6543")
        );
    }
}
