//! The admin's create and patch bodies, and the one validation both pass
//! through: a patch is merged into the stored record and the whole is
//! validated again, so a patch can never make what create would refuse.

use chrono::{DateTime, Days, NaiveDate, Utc};
use chrono_tz::Tz;
use phonenumber::country;
use serde::{Deserialize, Deserializer};

use super::{
    Agent, DisplayNumber, Restaurant, MAX_NOTIFICATION_EMAILS, MAX_PHONE_NUMBERS, MAX_TOOLS,
};
use crate::domain::email_address::EmailAddress;
use crate::domain::hours::{
    first_overlap, Closure, SpecialDay, TimeOfDay, WeeklySchedule, Window, MAX_WINDOWS_PER_DAY,
};
use crate::domain::ids::RestaurantId;
use crate::domain::phone::{self, E164};
use crate::domain::validate::{Errors, ValidationErrors};

/// Date exceptions reach at most this far past the restaurant's today.
pub const EXCEPTIONS_DAYS_AHEAD: u64 = 366;
pub const MAX_SPECIAL_DAYS: usize = 100;
pub const MAX_CLOSURES: usize = 20;
pub const MAX_EXCEPTION_NOTE_CHARS: usize = 200;

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
    pub special_hours: Vec<SpecialDay>,
    #[serde(default)]
    pub closures: Vec<Closure>,
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
/// `schedule`, `specialHours`, `closures`, `agent` and `forwarding_number`.
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
    pub special_hours: Option<Option<Vec<SpecialDay>>>,
    #[serde(default, deserialize_with = "nullable")]
    pub closures: Option<Option<Vec<Closure>>>,
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
            && self.special_hours.is_none()
            && self.closures.is_none()
            && self.agent.is_none()
            && self.forwarding_number.is_none()
            && self.notification_emails.is_none()
    }
}

impl RestaurantInput {
    /// Validates every field and builds the record; all problems are reported at once.
    pub fn into_restaurant(
        self,
        restaurant_id: RestaurantId,
        now: DateTime<Utc>,
        region: country::Id,
    ) -> Result<Restaurant, ValidationErrors> {
        let mut e = Errors::new();
        let name = e.text("name", &self.name, 200);
        let phone_numbers = phone_numbers(&mut e, &self.phone_numbers, region);
        let timezone = e.parsed(
            "timezone",
            self.timezone
                .parse::<Tz>()
                .map_err(|_| "must be an IANA timezone name such as America/New_York"),
        );
        check_hours(
            &mut e,
            self.call_hours_start,
            self.call_hours_end,
            &self.schedule,
        );
        let today = now.with_timezone(&timezone.unwrap_or(Tz::UTC)).date_naive();
        let (special_hours, closures) =
            exceptions(&mut e, self.special_hours, self.closures, today);
        if let Some(agent) = &self.agent {
            check_agent(&mut e, agent);
        }
        let forwarding_number = self
            .forwarding_number
            .as_deref()
            .and_then(|raw| forwarding_number(&mut e, raw, &phone_numbers, region));
        let notification_emails = notification_emails(&mut e, &self.notification_emails);
        e.finish()?;
        Ok(Restaurant {
            restaurant_id,
            name,
            phone_numbers,
            timezone: timezone.unwrap_or(Tz::UTC),
            ai_enabled: self.ai_enabled,
            call_hours_start: self.call_hours_start,
            call_hours_end: self.call_hours_end,
            schedule: self.schedule,
            special_hours,
            closures,
            agent: self.agent,
            forwarding_text: forwarding_number
                .as_ref()
                .map(|n| DisplayNumber::new(n, region)),
            forwarding_number,
            notification_emails,
            email_suppressions: Default::default(),
            created_at: now,
            updated_at: now,
            version: 1,
        })
    }
}

fn phone_numbers(e: &mut Errors, raw: &[String], region: country::Id) -> Vec<E164> {
    if raw.is_empty() {
        e.add("phoneNumbers", "must contain at least one phone number");
    } else if raw.len() > MAX_PHONE_NUMBERS {
        e.add(
            "phoneNumbers",
            format!("must contain at most {MAX_PHONE_NUMBERS} numbers"),
        );
    }
    let mut phones: Vec<E164> = Vec::with_capacity(raw.len());
    for (i, text) in raw.iter().enumerate() {
        match phone::normalize(text, region) {
            Ok(n) if phones.contains(&n) => e.add(format!("phoneNumbers[{i}]"), "is listed twice"),
            Ok(n) => phones.push(n),
            Err(err) => e.add(format!("phoneNumbers[{i}]"), err.to_string()),
        }
    }
    phones
}

fn check_hours(
    e: &mut Errors,
    start: TimeOfDay,
    end: TimeOfDay,
    schedule: &Option<WeeklySchedule>,
) {
    if let Some(problem) = (Window { start, end }).problem() {
        e.add("callHoursEnd", problem);
    }
    let Some(schedule) = schedule else { return };
    for (day, windows) in schedule.days() {
        let Some(windows) = windows else { continue };
        check_windows(e, &format!("schedule.{day}"), windows);
    }
}

/// One date's windows: a sane count, each valid, none overlapping another.
fn check_windows(e: &mut Errors, field: &str, windows: &[Window]) {
    if windows.len() > MAX_WINDOWS_PER_DAY {
        e.add(
            field,
            format!("at most {MAX_WINDOWS_PER_DAY} windows per day"),
        );
    }
    for (i, w) in windows.iter().enumerate() {
        if let Some(problem) = w.problem() {
            e.add(format!("{field}[{i}]"), problem);
        }
    }
    if let Some((i, j)) = first_overlap(windows) {
        e.add(format!("{field}[{j}]"), format!("overlaps {field}[{i}]"));
    }
}

fn check_note(e: &mut Errors, field: String, note: &Option<String>) -> Option<String> {
    note.as_deref()
        .map(|n| e.text(&field, n, MAX_EXCEPTION_NOTE_CHARS))
}

/// Date exceptions: within a year ahead of the restaurant's `today`, no date
/// named twice (by a closure and a special date either), a sane count;
/// stored in date order.
fn exceptions(
    e: &mut Errors,
    mut special: Vec<SpecialDay>,
    mut closures: Vec<Closure>,
    today: NaiveDate,
) -> (Vec<SpecialDay>, Vec<Closure>) {
    let latest = today + Days::new(EXCEPTIONS_DAYS_AHEAD);
    let too_far = || format!("must be at most a year ahead (on or before {latest})");
    if special.len() > MAX_SPECIAL_DAYS {
        e.add("specialHours", format!("at most {MAX_SPECIAL_DAYS} dates"));
    }
    for i in 0..special.len() {
        let field = format!("specialHours[{i}]");
        let date = special[i].date;
        if date > latest {
            e.add(format!("{field}.date"), too_far());
        }
        if let Some(j) = special[..i].iter().position(|s| s.date == date) {
            e.add(
                format!("{field}.date"),
                format!("is also specialHours[{j}]"),
            );
        }
        check_windows(e, &format!("{field}.windows"), &special[i].windows);
        special[i].note = check_note(e, format!("{field}.note"), &special[i].note);
    }
    if closures.len() > MAX_CLOSURES {
        e.add("closures", format!("at most {MAX_CLOSURES} closures"));
    }
    for i in 0..closures.len() {
        let field = format!("closures[{i}]");
        let c = &closures[i];
        if c.to < c.from {
            e.add(format!("{field}.to"), "must not be before from");
        } else if c.to > latest {
            e.add(format!("{field}.to"), too_far());
        }
        let overlap = |o: &Closure| o.from <= c.to && c.from <= o.to;
        if let Some(j) = closures[..i].iter().position(overlap) {
            e.add(field.clone(), format!("overlaps closures[{j}]"));
        }
        if let Some(j) = special.iter().position(|s| c.covers(s.date)) {
            e.add(field.clone(), format!("covers specialHours[{j}].date"));
        }
        closures[i].note = check_note(e, format!("{field}.note"), &closures[i].note);
    }
    special.sort_by_key(|s| s.date);
    closures.sort_by_key(|c| c.from);
    (special, closures)
}

fn check_agent(e: &mut Errors, agent: &Agent) {
    e.token("agent.elevenlabs_agent_id", &agent.elevenlabs_agent_id, 128);
    e.token("agent.voice_id", &agent.voice_id, 128);
    if let Some(id) = &agent.vapi_assistant_id {
        e.token("agent.vapi_assistant_id", id, 128);
    }
    if let Some(id) = &agent.retell_agent_id {
        e.token("agent.retell_agent_id", id, 128);
    }
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

fn forwarding_number(e: &mut Errors, raw: &str, own: &[E164], region: country::Id) -> Option<E164> {
    let number = e.parsed("forwarding_number", phone::normalize(raw, region))?;
    if own.contains(&number) {
        e.add(
            "forwarding_number",
            "must not be one of the restaurant's own numbers (the call would loop)",
        );
        return None;
    }
    Some(number)
}

fn notification_emails(e: &mut Errors, raw: &[String]) -> Vec<EmailAddress> {
    if raw.len() > MAX_NOTIFICATION_EMAILS {
        e.add(
            "notificationEmails",
            format!("must contain at most {MAX_NOTIFICATION_EMAILS} addresses"),
        );
    }
    let mut emails: Vec<EmailAddress> = Vec::new();
    for (i, text) in raw.iter().enumerate() {
        let field = format!("notificationEmails[{i}]");
        match e.parsed(field.clone(), EmailAddress::parse(text)) {
            Some(addr) if emails.contains(&addr) => e.add(field, "is listed twice"),
            Some(addr) => emails.push(addr),
            None => {}
        }
    }
    emails
}

impl Restaurant {
    /// Applies a patch by re-validating the merged whole, so a patch can never
    /// produce a record that create would have refused.
    pub fn patched(
        &self,
        patch: RestaurantPatch,
        now: DateTime<Utc>,
        region: country::Id,
    ) -> Result<Restaurant, ValidationErrors> {
        let strings = |v: &[E164]| v.iter().map(|n| n.to_string()).collect();
        let patch_lists_emails = patch.notification_emails.is_some();
        let merged = RestaurantInput {
            name: patch.name.unwrap_or_else(|| self.name.clone()),
            phone_numbers: patch
                .phone_numbers
                .unwrap_or_else(|| strings(&self.phone_numbers)),
            timezone: patch
                .timezone
                .unwrap_or_else(|| self.timezone.name().to_string()),
            ai_enabled: patch.ai_enabled.unwrap_or(self.ai_enabled),
            call_hours_start: patch.call_hours_start.unwrap_or(self.call_hours_start),
            call_hours_end: patch.call_hours_end.unwrap_or(self.call_hours_end),
            schedule: patch.schedule.unwrap_or_else(|| self.schedule.clone()),
            special_hours: patch
                .special_hours
                .map(Option::unwrap_or_default)
                .unwrap_or_else(|| self.special_hours.clone()),
            closures: patch
                .closures
                .map(Option::unwrap_or_default)
                .unwrap_or_else(|| self.closures.clone()),
            agent: patch.agent.unwrap_or_else(|| self.agent.clone()),
            forwarding_number: patch
                .forwarding_number
                .unwrap_or_else(|| self.forwarding_number.as_ref().map(|n| n.to_string())),
            notification_emails: patch.notification_emails.unwrap_or_else(|| {
                self.notification_emails
                    .iter()
                    .map(|a| a.to_string())
                    .collect()
            }),
        };
        let relisted = patch_lists_emails;
        let mut next = merged.into_restaurant(self.restaurant_id.clone(), now, region)?;
        // Listing an address again is how an admin lifts its suppression.
        next.email_suppressions = self.email_suppressions.clone();
        if relisted {
            for a in &next.notification_emails {
                next.email_suppressions.remove(a);
            }
        }
        next.created_at = self.created_at;
        next.version = self.version + 1;
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{demo, demo_json, input, US};
    use super::*;

    fn fields(err: ValidationErrors) -> Vec<String> {
        err.0.into_iter().map(|f| f.field).collect()
    }

    #[test]
    fn valid_input_is_normalized() {
        let r = demo();
        assert_eq!(r.phone_numbers, vec!["+15551234567"]);
        assert_eq!(r.forwarding_number.as_deref(), Some("+15559876543"));
        assert_eq!(r.notification_emails[0].as_str(), "owner@restaurant.com");
        assert_eq!(r.timezone, chrono_tz::America::New_York);
        assert_eq!(r.version, 1);
    }

    #[test]
    fn every_bad_field_is_reported() {
        let mut j = demo_json();
        j["phoneNumbers"] = serde_json::json!(["12", "+15551234567", "(555) 123-4567"]);
        j["timezone"] = "Mars/Olympus".into();
        j["callHoursStart"] = "10:00".into();
        j["callHoursEnd"] = "10:00".into();
        j["forwarding_number"] = "+1 555 123 4567".into();
        j["notificationEmails"] = serde_json::json!(["nope"]);
        j["agent"]["tools"] = serde_json::json!(["End Call"]);
        j["agent"]["vapi_assistant_id"] = "not an id".into();
        j["agent"]["retell_agent_id"] = "".into();
        let errs = fields(
            input(j)
                .into_restaurant(RestaurantId::generate(), Utc::now(), US)
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
            "agent.vapi_assistant_id",
            "agent.retell_agent_id",
        ] {
            assert!(errs.contains(&f.to_string()), "{f} missing from {errs:?}");
        }
    }

    #[test]
    fn unknown_and_server_owned_fields_are_rejected() {
        let mut j = demo_json();
        j["restaurantId"] = "rst_mine".into();
        assert!(serde_json::from_value::<RestaurantInput>(j).is_err());
        let p = serde_json::json!({"version": 99});
        assert!(serde_json::from_value::<RestaurantPatch>(p).is_err());
    }

    #[test]
    fn patch_merges_revalidates_and_clears() {
        let now = Utc::now();
        let r = demo();
        let p: RestaurantPatch =
            serde_json::from_value(serde_json::json!({"name": "Luigi's Two", "agent": null}))
                .unwrap();
        let next = r.patched(p, now, US).unwrap();
        assert_eq!(next.name, "Luigi's Two");
        assert_eq!(next.agent, None);
        assert_eq!(next.forwarding_number, r.forwarding_number);
        assert_eq!(next.timezone, r.timezone);
        assert_eq!(next.version, 2);

        let loop_patch: RestaurantPatch =
            serde_json::from_value(serde_json::json!({"forwarding_number": "(555) 123-4567"}))
                .unwrap();
        assert_eq!(
            fields(r.patched(loop_patch, now, US).unwrap_err()),
            vec!["forwarding_number"]
        );
    }

    #[test]
    fn relisting_an_address_lifts_its_suppression_and_nothing_else_does() {
        use crate::domain::ids::{CallId, Id};
        use crate::domain::ses_event::{Suppression, SuppressionReason};
        let now = Utc::now();
        let mut r = demo();
        let owner = r.notification_emails[0].clone();
        let other = EmailAddress::parse("old@restaurant.com").unwrap();
        let s = Suppression {
            reason: SuppressionReason::Bounced,
            at: now,
            call_id: CallId::parse("call_0123456789abcdef01234567").unwrap(),
        };
        r.email_suppressions.insert(owner.clone(), s.clone());
        r.email_suppressions.insert(other.clone(), s);
        let rename: RestaurantPatch =
            serde_json::from_value(serde_json::json!({"name": "Luigi's Two"})).unwrap();
        let kept = r.patched(rename, now, US).unwrap();
        assert_eq!(kept.email_suppressions, r.email_suppressions);
        let relist: RestaurantPatch = serde_json::from_value(
            serde_json::json!({"notificationEmails": ["OWNER@restaurant.com"]}),
        )
        .unwrap();
        let next = r.patched(relist, now, US).unwrap();
        assert!(!next.is_suppressed(&owner), "relisted: lifted");
        assert!(next.is_suppressed(&other), "not listed: still suppressed");
    }

    fn with_exceptions(special: serde_json::Value, closures: serde_json::Value) -> RestaurantInput {
        let mut j = demo_json();
        j["specialHours"] = special;
        j["closures"] = closures;
        input(j)
    }

    fn noon(date: &str) -> DateTime<Utc> {
        format!("{date}T12:00:00Z").parse().unwrap()
    }

    #[test]
    fn date_exceptions_are_validated_and_stored_in_date_order() {
        let r = with_exceptions(
            serde_json::json!([
                {"date": "2026-12-31", "windows": [{"start": "18:00", "end": "02:00"}]},
                {"date": "2026-12-25", "windows": [], "note": "  Christmas Day "}
            ]),
            serde_json::json!([
                {"from": "2027-02-01", "to": "2027-02-07", "note": "Renovation"},
                {"from": "2027-01-04", "to": "2027-01-04"}
            ]),
        )
        .into_restaurant(RestaurantId::generate(), noon("2026-12-02"), US)
        .unwrap();
        let dates: Vec<String> = r.special_hours.iter().map(|s| s.date.to_string()).collect();
        assert_eq!(dates, ["2026-12-25", "2026-12-31"]);
        assert_eq!(r.special_hours[0].note.as_deref(), Some("Christmas Day"));
        assert_eq!(r.closures[0].from.to_string(), "2027-01-04");
    }

    #[test]
    fn every_bad_date_exception_is_reported() {
        let errs = fields(
            with_exceptions(
                serde_json::json!([
                    {"date": "2026-12-24", "windows": [{"start": "09:00", "end": "12:00"},
                                                        {"start": "11:00", "end": "13:00"}]},
                    {"date": "2026-12-24", "windows": []},
                    {"date": "2028-01-01", "windows": [{"start": "10:00", "end": "10:00"}]},
                    {"date": "2026-12-26", "windows": [], "note": "line\nbreak"}
                ]),
                serde_json::json!([
                    {"from": "2027-01-10", "to": "2027-01-05"},
                    {"from": "2027-02-01", "to": "2027-02-10"},
                    {"from": "2027-02-05", "to": "2027-02-06"},
                    {"from": "2026-12-20", "to": "2026-12-30"},
                    {"from": "2027-03-01", "to": "2028-03-01"}
                ]),
            )
            .into_restaurant(RestaurantId::generate(), noon("2026-12-02"), US)
            .unwrap_err(),
        );
        assert_eq!(
            errs,
            [
                "specialHours[0].windows[1]",
                "specialHours[1].date",
                "specialHours[2].date",
                "specialHours[2].windows[0]",
                "specialHours[3].note",
                "closures[0].to",
                "closures[2]",
                "closures[3]",
                "closures[4].to",
                "closures[4]",
            ]
        );
    }

    #[test]
    fn a_year_ahead_counts_from_the_restaurants_own_date() {
        // 2026-12-02T03:00Z is still 1 December in New York.
        let now: DateTime<Utc> = "2026-12-02T03:00:00Z".parse().unwrap();
        let day = |d: &str| serde_json::json!([{"date": d, "windows": []}]);
        let ok = |d: &str| {
            with_exceptions(day(d), serde_json::json!([]))
                .into_restaurant(RestaurantId::generate(), now, US)
                .is_ok()
        };
        assert!(ok("2027-12-02"));
        assert!(!ok("2027-12-03"));
        let many: Vec<_> = (0..=MAX_SPECIAL_DAYS as u64)
            .map(|i| {
                let d = NaiveDate::from_ymd_opt(2027, 1, 1).unwrap() + Days::new(i);
                serde_json::json!({"date": d, "windows": []})
            })
            .collect();
        let errs = fields(
            with_exceptions(serde_json::json!(many), serde_json::json!([]))
                .into_restaurant(RestaurantId::generate(), now, US)
                .unwrap_err(),
        );
        assert_eq!(errs, ["specialHours"]);
    }

    #[test]
    fn weekly_windows_may_not_overlap_either() {
        let mut j = demo_json();
        j["schedule"] = serde_json::json!({"friday": [{"start": "17:00", "end": "01:00"},
                                                      {"start": "23:00", "end": "23:30"}]});
        let errs = fields(
            input(j)
                .into_restaurant(RestaurantId::generate(), Utc::now(), US)
                .unwrap_err(),
        );
        assert_eq!(errs, ["schedule.friday[1]"]);
    }

    #[test]
    fn patch_replaces_or_clears_date_exceptions() {
        let now = noon("2026-12-02");
        let r = with_exceptions(
            serde_json::json!([{"date": "2026-12-25", "windows": []}]),
            serde_json::json!([{"from": "2027-01-04", "to": "2027-01-05"}]),
        )
        .into_restaurant(RestaurantId::generate(), now, US)
        .unwrap();
        let p: RestaurantPatch = serde_json::from_value(serde_json::json!({
            "specialHours": [{"date": "2026-12-24", "windows": [{"start": "09:00", "end": "14:00"}]}],
            "closures": null
        }))
        .unwrap();
        let next = r.patched(p, now, US).unwrap();
        assert_eq!(next.special_hours[0].date.to_string(), "2026-12-24");
        assert!(next.closures.is_empty());
        let untouched = r
            .patched(
                serde_json::from_value(serde_json::json!({"name": "x"})).unwrap(),
                now,
                US,
            )
            .unwrap();
        assert_eq!(untouched.special_hours, r.special_hours);
        assert_eq!(untouched.closures, r.closures);
    }
}
