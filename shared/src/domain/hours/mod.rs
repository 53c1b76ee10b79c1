//! Call hours: a default daily window, optional per-weekday windows and date
//! exceptions (`calendar`), each window possibly passing midnight, turned into
//! instants in the restaurant's own timezone (`timeline`).

use chrono::Weekday;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

mod calendar;
#[cfg(test)]
mod properties;
mod timeline;

pub use calendar::{CallHours, Closure, Day, DaySource, SpecialDay};
pub use timeline::{first_instant, HoursStatus};

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

    /// Minutes from the start of its own day: `[start, end)`, the end past
    /// 1440 when the window runs into the next day.
    pub fn span(&self) -> (u32, u32) {
        let (start, end) = (u32::from(self.start.0), u32::from(self.end.0));
        (
            start,
            if self.passes_midnight() {
                end + 1440
            } else {
                end
            },
        )
    }

    pub fn overlaps(&self, other: &Window) -> bool {
        let (a, b) = (self.span(), other.span());
        a.0 < b.1 && b.0 < a.1
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

/// The first pair of windows in `windows` that overlap, as indices.
pub fn first_overlap(windows: &[Window]) -> Option<(usize, usize)> {
    (0..windows.len()).find_map(|j| {
        (0..j)
            .find(|&i| windows[i].overlaps(&windows[j]))
            .map(|i| (i, j))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn w(a: &str, b: &str) -> Window {
        Window {
            start: TimeOfDay::parse(a).unwrap(),
            end: TimeOfDay::parse(b).unwrap(),
        }
    }

    #[test]
    fn parses_and_prints_times() {
        assert_eq!(TimeOfDay::parse("09:05").unwrap().to_string(), "09:05");
        assert_eq!(TimeOfDay::parse("24:00").unwrap(), TimeOfDay::END_OF_DAY);
        for bad in ["9:00", "24:01", "12:60", "ab:cd", "1200", "", "-1:00"] {
            assert!(TimeOfDay::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn invalid_windows_and_spans() {
        assert!(w("10:00", "10:00").problem().is_some());
        assert!(w("24:00", "02:00").problem().is_some());
        assert!(w("00:00", "00:00").problem().is_none());
        assert_eq!(w("00:00", "00:00").span(), (0, 1440), "all day");
        assert_eq!(w("18:00", "02:00").span(), (1080, 1560));
        assert_eq!(w("09:00", "24:00").span(), (540, 1440));
    }

    #[test]
    fn overlaps_count_the_part_past_midnight() {
        assert!(w("18:00", "02:00").overlaps(&w("23:00", "23:30")));
        assert!(
            !w("18:00", "02:00").overlaps(&w("01:00", "03:00")),
            "01:00 of its own day"
        );
        assert!(
            !w("09:00", "12:00").overlaps(&w("12:00", "14:00")),
            "half-open"
        );
        assert_eq!(
            first_overlap(&[
                w("09:00", "12:00"),
                w("13:00", "14:00"),
                w("11:00", "13:30")
            ]),
            Some((0, 2))
        );
        assert_eq!(
            first_overlap(&[w("09:00", "12:00"), w("12:00", "14:00")]),
            None
        );
    }
}
