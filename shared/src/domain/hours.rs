//! Call hours: a default daily window plus optional per-weekday windows, each
//! of which may pass midnight, evaluated in the restaurant's own timezone.

use chrono::{DateTime, Datelike, NaiveDateTime, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Minutes after midnight, 0..=1440 ("24:00" is allowed as an end).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimeOfDay(u16);

impl TimeOfDay {
    pub const MIDNIGHT: TimeOfDay = TimeOfDay(0);
    pub const END_OF_DAY: TimeOfDay = TimeOfDay(24 * 60);

    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || format!("'{s}' is not a time of day in 24-hour HH:MM form");
        let (h, m) = s.split_once(':').ok_or_else(bad)?;
        if h.len() != 2 || m.len() != 2 {
            return Err(bad());
        }
        let h: u16 = h.parse().map_err(|_| bad())?;
        let m: u16 = m.parse().map_err(|_| bad())?;
        if m > 59 || h > 24 || (h == 24 && m != 0) {
            return Err(bad());
        }
        Ok(TimeOfDay(h * 60 + m))
    }

    pub fn minutes(self) -> u16 {
        self.0
    }
}

impl std::fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

#[cfg(test)]
crate::string_schema!(TimeOfDay);

impl Serialize for TimeOfDay {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TimeOfDay {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        TimeOfDay::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// One window of AI call handling. `end <= start` means it passes midnight
/// into the next day (e.g. 18:00–02:00).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct Window {
    pub start: TimeOfDay,
    pub end: TimeOfDay,
}

impl Window {
    pub fn passes_midnight(&self) -> bool {
        self.end <= self.start
    }

    /// Whether minute `m` of the window's own day is inside it.
    fn covers_same_day(&self, m: u16) -> bool {
        if self.passes_midnight() {
            m >= self.start.0
        } else {
            m >= self.start.0 && m < self.end.0
        }
    }

    /// Whether minute `m` of the following day is inside its overflow.
    fn covers_next_day(&self, m: u16) -> bool {
        self.passes_midnight() && m < self.end.0
    }

    pub fn problem(&self) -> Option<&'static str> {
        if self.start == self.end && self.start != TimeOfDay::MIDNIGHT {
            return Some("start and end are equal; use 00:00-24:00 for all day");
        }
        if self.start == TimeOfDay::END_OF_DAY {
            return Some("start must be before 24:00");
        }
        None
    }
}

/// Per-weekday windows. A day that is absent uses the default daily window;
/// a day given as `[]` has no AI call hours.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
pub struct WeeklySchedule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monday: Option<Vec<Window>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tuesday: Option<Vec<Window>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wednesday: Option<Vec<Window>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thursday: Option<Vec<Window>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub friday: Option<Vec<Window>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saturday: Option<Vec<Window>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sunday: Option<Vec<Window>>,
}

pub const MAX_WINDOWS_PER_DAY: usize = 6;

impl WeeklySchedule {
    pub fn day(&self, day: Weekday) -> Option<&Vec<Window>> {
        match day {
            Weekday::Mon => self.monday.as_ref(),
            Weekday::Tue => self.tuesday.as_ref(),
            Weekday::Wed => self.wednesday.as_ref(),
            Weekday::Thu => self.thursday.as_ref(),
            Weekday::Fri => self.friday.as_ref(),
            Weekday::Sat => self.saturday.as_ref(),
            Weekday::Sun => self.sunday.as_ref(),
        }
    }

    /// Every day with its field name, for validation messages.
    pub fn days(&self) -> [(&'static str, Option<&Vec<Window>>); 7] {
        [
            ("monday", self.monday.as_ref()),
            ("tuesday", self.tuesday.as_ref()),
            ("wednesday", self.wednesday.as_ref()),
            ("thursday", self.thursday.as_ref()),
            ("friday", self.friday.as_ref()),
            ("saturday", self.saturday.as_ref()),
            ("sunday", self.sunday.as_ref()),
        ]
    }
}

/// A restaurant's call hours: the seed's daily start/end plus weekday overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallHours {
    pub default: Window,
    pub schedule: Option<WeeklySchedule>,
}

impl CallHours {
    /// The windows that start on `day`.
    pub fn windows_for(&self, day: Weekday) -> Vec<Window> {
        match self.schedule.as_ref().and_then(|s| s.day(day)) {
            Some(windows) => windows.clone(),
            None => vec![self.default],
        }
    }

    /// Whether local wall-clock time `local` is inside call hours, counting
    /// windows of the previous day that run past midnight.
    pub fn contains(&self, local: NaiveDateTime) -> bool {
        let day = local.weekday();
        let m = (local.hour() * 60 + local.minute()) as u16;
        self.windows_for(day).iter().any(|w| w.covers_same_day(m))
            || self
                .windows_for(day.pred())
                .iter()
                .any(|w| w.covers_next_day(m))
    }

    /// Evaluates `now` in timezone `tz`; returns (in hours, local time).
    pub fn at(&self, tz: Tz, now: DateTime<Utc>) -> (bool, DateTime<Tz>) {
        let local = now.with_timezone(&tz);
        (self.contains(local.naive_local()), local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, TimeZone};

    fn t(s: &str) -> TimeOfDay {
        TimeOfDay::parse(s).unwrap()
    }
    fn w(a: &str, b: &str) -> Window {
        Window {
            start: t(a),
            end: t(b),
        }
    }
    fn at(date: (i32, u32, u32), h: u32, m: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(date.0, date.1, date.2)
            .unwrap()
            .and_hms_opt(h, m, 0)
            .unwrap()
    }
    // 2026-12-04 is a Friday.
    const FRI: (i32, u32, u32) = (2026, 12, 4);
    const SAT: (i32, u32, u32) = (2026, 12, 5);
    const SUN: (i32, u32, u32) = (2026, 12, 6);

    #[test]
    fn parses_and_prints_times() {
        assert_eq!(t("09:05").to_string(), "09:05");
        assert_eq!(t("24:00"), TimeOfDay::END_OF_DAY);
        for bad in ["9:00", "24:01", "12:60", "ab:cd", "1200", "", "-1:00"] {
            assert!(TimeOfDay::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn simple_window_is_half_open() {
        let h = CallHours {
            default: w("09:00", "21:00"),
            schedule: None,
        };
        assert!(!h.contains(at(FRI, 8, 59)));
        assert!(h.contains(at(FRI, 9, 0)));
        assert!(h.contains(at(FRI, 20, 59)));
        assert!(!h.contains(at(FRI, 21, 0)));
    }

    #[test]
    fn window_past_midnight_spills_into_next_day() {
        let h = CallHours {
            default: w("18:00", "02:00"),
            schedule: None,
        };
        assert!(h.contains(at(FRI, 23, 30)));
        assert!(h.contains(at(SAT, 1, 59)));
        assert!(!h.contains(at(SAT, 2, 0)));
        assert!(!h.contains(at(SAT, 12, 0)));
    }

    #[test]
    fn weekday_overrides_and_closed_days() {
        let schedule = WeeklySchedule {
            friday: Some(vec![w("11:00", "14:00"), w("17:00", "01:00")]),
            saturday: Some(vec![]),
            ..Default::default()
        };
        let h = CallHours {
            default: w("09:00", "21:00"),
            schedule: Some(schedule),
        };
        assert!(h.contains(at(FRI, 12, 0)));
        assert!(!h.contains(at(FRI, 15, 0)));
        assert!(
            h.contains(at(SAT, 0, 30)),
            "friday's late window spills over"
        );
        assert!(!h.contains(at(SAT, 12, 0)), "saturday is closed");
        assert!(
            h.contains(at(SUN, 10, 0)),
            "sunday falls back to the default"
        );
    }

    #[test]
    fn all_day_and_invalid_windows() {
        let h = CallHours {
            default: w("00:00", "24:00"),
            schedule: None,
        };
        assert!(h.contains(at(FRI, 0, 0)) && h.contains(at(FRI, 23, 59)));
        assert!(w("10:00", "10:00").problem().is_some());
        assert!(w("24:00", "02:00").problem().is_some());
        assert!(w("00:00", "00:00").problem().is_none());
    }

    #[test]
    fn evaluated_in_restaurant_timezone() {
        let h = CallHours {
            default: w("09:00", "21:00"),
            schedule: None,
        };
        // 15:00 UTC is 10:00 in New York (EST) but 00:00 next day in Tokyo.
        let now = Utc.with_ymd_and_hms(2026, 12, 4, 15, 0, 0).unwrap();
        assert!(h.at(chrono_tz::America::New_York, now).0);
        assert!(!h.at(chrono_tz::Asia::Tokyo, now).0);
    }
}
