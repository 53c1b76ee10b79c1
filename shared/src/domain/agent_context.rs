//! What a voice platform is told while the phone rings, in its terms: the
//! dynamic variables an agent's prompt and tools can use, and what to do
//! with the call. One set of variables for every platform, so a prompt
//! written once works on each; values are strings, as the platforms require.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, Utc};
use chrono_tz::Tz;
use phonenumber::country;

use super::hours::{TimeOfDay, Window};
use super::phone::E164;
use super::restaurant::{Agent, Restaurant, RouteAction};

/// Every variable we send, always all of them: ElevenLabs refuses a call
/// whose agent defines a variable the webhook left out.
pub const VARIABLES: [&str; 9] = [
    "restaurant_name",
    "restaurant_id",
    "is_open_now",
    "hours_today",
    "next_open",
    "forwarding_number",
    "timezone",
    "local_time",
    "ai_enabled",
];

/// What to do with a ringing call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RingDecision {
    /// The restaurant's agent answers.
    Agent(Agent),
    /// Closed, AI off or no agent: straight to the restaurant's staff.
    Forward(E164),
    /// Nobody to hand it to: say so and hang up.
    NoForward,
}

#[derive(Debug, Clone)]
pub struct RingContext {
    pub variables: BTreeMap<String, String>,
    pub decision: RingDecision,
    pub open_now: bool,
}

/// What Vapi and Retell agents get beside [`VARIABLES`]: `transfer_number`,
/// what their transfer tools dial (`{{transfer_number}}`: the forwarding
/// number, or empty without one), and `ai_should_answer`, `false` when the
/// agent must not take the call but hand it over at once (closed, AI off),
/// or, with no number to hand it to, say when to call back.
pub const TRANSFER_VARIABLES: [&str; 2] = ["transfer_number", "ai_should_answer"];

impl RingContext {
    /// The forwarding number, if the restaurant has one.
    pub fn forwarding_number(&self) -> Option<&str> {
        Some(self.variables["forwarding_number"].as_str()).filter(|n| !n.is_empty())
    }

    /// [`VARIABLES`] and [`TRANSFER_VARIABLES`], all strings.
    pub fn variables_with_transfer(&self) -> BTreeMap<String, String> {
        let mut v = self.variables.clone();
        v.insert(
            "transfer_number".into(),
            self.forwarding_number().unwrap_or_default().to_string(),
        );
        let answer = matches!(self.decision, RingDecision::Agent(_));
        v.insert("ai_should_answer".into(), answer.to_string());
        v
    }
}

/// The ring-time context of `r` at `now`, by the same routing rules as the
/// config endpoint.
pub fn ring_context(r: &Restaurant, now: DateTime<Utc>, region: country::Id) -> RingContext {
    let config = r.config(now, region);
    let status = r.call_hours().status(r.timezone, now);
    let local = now.with_timezone(&r.timezone);
    let hours_today = if config.today_call_hours.is_empty() {
        "closed today".to_string()
    } else {
        spoken_windows(&config.today_call_hours)
    };
    let next_open = if status.open {
        "now".to_string()
    } else {
        status
            .next_change
            .map(|t| spoken_instant(t, now, r.timezone))
            .unwrap_or_default()
    };
    let forwarding = r
        .forwarding_number
        .as_ref()
        .map(|n| n.as_str().to_string())
        .unwrap_or_default();
    let bool_text = |b: bool| if b { "true" } else { "false" }.to_string();
    let variables: BTreeMap<String, String> = [
        ("restaurant_name", r.name.clone()),
        ("restaurant_id", r.restaurant_id.to_string()),
        ("is_open_now", bool_text(status.open)),
        ("hours_today", hours_today),
        ("next_open", next_open),
        ("forwarding_number", forwarding),
        ("timezone", r.timezone.name().to_string()),
        ("local_time", local.format("%A %-I:%M %p").to_string()),
        ("ai_enabled", bool_text(r.ai_enabled)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let decision = match (config.routing.action, &r.agent, &r.forwarding_number) {
        (RouteAction::AiAgent, Some(agent), _) => RingDecision::Agent(agent.clone()),
        (_, _, Some(n)) => RingDecision::Forward(n.clone()),
        _ => RingDecision::NoForward,
    };
    RingContext {
        variables,
        decision,
        open_now: status.open,
    }
}

/// A time of day as people say it: "9 AM", "2:30 PM", "noon", "midnight".
pub fn spoken_time(t: TimeOfDay) -> String {
    let m = t.minutes() % (24 * 60);
    let (h, min) = (m / 60, m % 60);
    match (h, min) {
        (0, 0) => "midnight".into(),
        (12, 0) => "noon".into(),
        _ => {
            let suffix = if h < 12 { "AM" } else { "PM" };
            let h12 = if h % 12 == 0 { 12 } else { h % 12 };
            if min == 0 {
                format!("{h12} {suffix}")
            } else {
                format!("{h12}:{min:02} {suffix}")
            }
        }
    }
}

/// "9 AM to 2 PM and 5 PM to 10 PM"; "open 24 hours" for the whole day
/// (not "midnight to midnight").
fn spoken_windows(windows: &[Window]) -> String {
    if windows.iter().any(|w| w.span().1 - w.span().0 >= 24 * 60) {
        return "open 24 hours".into();
    }
    let parts: Vec<String> = windows
        .iter()
        .map(|w| format!("{} to {}", spoken_time(w.start), spoken_time(w.end)))
        .collect();
    match parts.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// "today at 5 PM", "tomorrow at 9 AM", "Monday at 9 AM", "March 3 at 9 AM".
fn spoken_instant(t: DateTime<Utc>, now: DateTime<Utc>, tz: Tz) -> String {
    let (at, today) = (t.with_timezone(&tz), now.with_timezone(&tz).date_naive());
    let time = at.format("%-I:%M %p").to_string().replace(":00 ", " ");
    let time = match time.as_str() {
        "12 PM" => "noon".to_string(),
        "12 AM" => "midnight".to_string(),
        _ => time,
    };
    let date = at.date_naive();
    let day = if date == today {
        "today".to_string()
    } else if date == today + Duration::days(1) {
        "tomorrow".to_string()
    } else if date < today + Duration::days(7) {
        at.format("%A").to_string()
    } else {
        format!("{} {}", at.format("%B"), at.day())
    };
    format!("{day} at {time}")
}

#[cfg(test)]
mod tests {
    use super::super::restaurant::fixtures::{demo, US};
    use super::*;
    use chrono::TimeZone;

    /// 2025-03-04 (a Tuesday) at `h`:`m` in New York (EST, UTC-5).
    fn ny(h: u32, m: u32) -> DateTime<Utc> {
        chrono_tz::America::New_York
            .with_ymd_and_hms(2025, 3, 4, h, m, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn every_variable_is_always_there_as_text() {
        for now in [ny(12, 0), ny(22, 0), ny(3, 0)] {
            let c = ring_context(&demo(), now, US);
            let names: Vec<&str> = c.variables.keys().map(String::as_str).collect();
            let mut expected = VARIABLES.to_vec();
            expected.sort_unstable();
            assert_eq!(names, expected);
        }
    }

    #[test]
    fn a_whole_day_is_said_as_such() {
        let mut r = demo();
        r.call_hours_start = TimeOfDay::parse("00:00").unwrap();
        r.call_hours_end = TimeOfDay::parse("24:00").unwrap();
        let c = ring_context(&r, ny(12, 0), US);
        assert_eq!(c.variables["hours_today"], "open 24 hours");
    }

    #[test]
    fn vapi_and_retell_also_get_the_transfer_variables() {
        let open = ring_context(&demo(), ny(12, 30), US).variables_with_transfer();
        assert_eq!(open.len(), VARIABLES.len() + TRANSFER_VARIABLES.len());
        assert_eq!(open["transfer_number"], "+15559876543");
        assert_eq!(open["ai_should_answer"], "true");
        let closed = ring_context(&demo(), ny(22, 0), US).variables_with_transfer();
        assert_eq!(closed["ai_should_answer"], "false");
        assert_eq!(closed["transfer_number"], "+15559876543");
        let mut r = demo();
        r.forwarding_number = None;
        r.ai_enabled = false;
        let nobody = ring_context(&r, ny(12, 30), US).variables_with_transfer();
        assert_eq!(
            (
                nobody["transfer_number"].as_str(),
                nobody["ai_should_answer"].as_str()
            ),
            ("", "false")
        );
    }

    #[test]
    fn open_restaurant_hands_the_call_to_its_agent() {
        let r = demo();
        let c = ring_context(&r, ny(12, 30), US);
        assert!(
            matches!(&c.decision, RingDecision::Agent(a) if a.elevenlabs_agent_id == "agent_1")
        );
        assert_eq!(c.variables["is_open_now"], "true");
        assert_eq!(c.variables["next_open"], "now");
        assert_eq!(c.variables["hours_today"], "9 AM to 9 PM");
        assert_eq!(c.variables["local_time"], "Tuesday 12:30 PM");
        assert_eq!(c.variables["forwarding_number"], "+15559876543");
        assert_eq!(c.variables["restaurant_name"], "Luigi's");
    }

    #[test]
    fn closed_or_ai_off_forwards_and_says_when_it_opens() {
        let mut r = demo();
        let late = ring_context(&r, ny(22, 0), US);
        assert_eq!(
            late.decision,
            RingDecision::Forward(r.forwarding_number.clone().unwrap())
        );
        assert_eq!(late.variables["is_open_now"], "false");
        assert_eq!(late.variables["next_open"], "tomorrow at 9 AM");
        let early = ring_context(&r, ny(7, 15), US);
        assert_eq!(early.variables["next_open"], "today at 9 AM");
        r.ai_enabled = false;
        let off = ring_context(&r, ny(12, 0), US);
        assert!(matches!(off.decision, RingDecision::Forward(_)));
        assert_eq!(off.variables["ai_enabled"], "false");
        r.forwarding_number = None;
        let nobody = ring_context(&r, ny(12, 0), US);
        assert_eq!(nobody.decision, RingDecision::NoForward);
        assert_eq!(nobody.variables["forwarding_number"], "");
        assert!(nobody.forwarding_number().is_none());
    }

    #[test]
    fn times_are_spoken() {
        let t = |s| spoken_time(TimeOfDay::parse(s).unwrap());
        assert_eq!(t("00:00"), "midnight");
        assert_eq!(t("24:00"), "midnight");
        assert_eq!(t("12:00"), "noon");
        assert_eq!(t("09:05"), "9:05 AM");
        assert_eq!(t("17:30"), "5:30 PM");
        let w = |a, b| Window {
            start: TimeOfDay::parse(a).unwrap(),
            end: TimeOfDay::parse(b).unwrap(),
        };
        assert_eq!(
            spoken_windows(&[
                w("11:00", "14:30"),
                w("17:00", "22:00"),
                w("23:00", "24:00")
            ]),
            "11 AM to 2:30 PM, 5 PM to 10 PM and 11 PM to midnight"
        );
    }
}
