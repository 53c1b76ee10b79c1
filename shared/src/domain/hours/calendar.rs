//! Which windows a calendar date has: special hours for one date (Christmas
//! closed, New Year's Eve late), closures over a date range, else the weekday's
//! windows, else the default daily window.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use super::{WeeklySchedule, Window};

/// A date whose windows replace its weekday's; `[]` is closed all day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct SpecialDay {
    pub date: NaiveDate,
    pub windows: Vec<Window>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Closed on every date from `from` to `to`, both included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct Closure {
    pub from: NaiveDate,
    pub to: NaiveDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Closure {
    pub fn covers(&self, date: NaiveDate) -> bool {
        self.from <= date && date <= self.to
    }
}

/// Where a date's windows come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DaySource<'a> {
    Regular,
    Special(&'a SpecialDay),
    Closed(&'a Closure),
}

/// One date's windows (those that start on it) and where they come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Day<'a> {
    pub windows: &'a [Window],
    pub source: DaySource<'a>,
}

impl<'a> Day<'a> {
    /// Whether a date exception, not the weekly schedule, decides this date.
    pub fn is_exception(&self) -> bool {
        self.source != DaySource::Regular
    }

    pub fn note(&self) -> Option<&'a str> {
        match self.source {
            DaySource::Regular => None,
            DaySource::Special(s) => s.note.as_deref(),
            DaySource::Closed(c) => c.note.as_deref(),
        }
    }
}

/// A restaurant's call hours, borrowed from its record. `special` is sorted by
/// date (validation stores it so).
#[derive(Debug, Clone, Copy)]
pub struct CallHours<'a> {
    pub default: Window,
    pub schedule: Option<&'a WeeklySchedule>,
    pub special: &'a [SpecialDay],
    pub closures: &'a [Closure],
}

impl<'a> CallHours<'a> {
    /// The windows that start on `date`.
    pub fn day(&self, date: NaiveDate) -> Day<'_> {
        if let Ok(i) = self.special.binary_search_by_key(&date, |s| s.date) {
            let special = &self.special[i];
            return Day {
                windows: &special.windows,
                source: DaySource::Special(special),
            };
        }
        if let Some(closure) = self.closures.iter().find(|c| c.covers(date)) {
            return Day {
                windows: &[],
                source: DaySource::Closed(closure),
            };
        }
        let windows = match self.schedule.and_then(|s| s.day(date.weekday())) {
            Some(windows) => windows.as_slice(),
            None => std::slice::from_ref(&self.default),
        };
        Day {
            windows,
            source: DaySource::Regular,
        }
    }

    /// The last date an exception names: after it, only the weekly pattern.
    pub fn last_exception(&self) -> Option<NaiveDate> {
        let special = self.special.last().map(|s| s.date);
        let closure = self.closures.iter().map(|c| c.to).max();
        special.max(closure)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::w;
    use super::*;

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn special_dates_then_closures_then_weekdays_then_the_default() {
        let schedule = WeeklySchedule {
            friday: Some(vec![w("11:00", "14:00")]),
            saturday: Some(vec![]),
            ..Default::default()
        };
        let special = [
            SpecialDay {
                date: date("2026-12-25"),
                windows: vec![],
                note: Some("Christmas Day".into()),
            },
            SpecialDay {
                date: date("2026-12-31"),
                windows: vec![w("18:00", "02:00")],
                note: None,
            },
        ];
        let closures = [Closure {
            from: date("2027-01-04"),
            to: date("2027-01-10"),
            note: Some("Renovation".into()),
        }];
        let hours = CallHours {
            default: w("09:00", "21:00"),
            schedule: Some(&schedule),
            special: &special,
            closures: &closures,
        };
        // 2026-12-25 is a Friday, closed by its special entry.
        let christmas = hours.day(date("2026-12-25"));
        assert!(christmas.windows.is_empty() && christmas.is_exception());
        assert_eq!(christmas.note(), Some("Christmas Day"));
        assert_eq!(hours.day(date("2026-12-31")).windows, [w("18:00", "02:00")]);
        assert_eq!(hours.day(date("2026-12-31")).note(), None);
        let renovation = hours.day(date("2027-01-08"));
        assert!(renovation.windows.is_empty());
        assert_eq!(renovation.note(), Some("Renovation"));
        assert!(!hours.day(date("2027-01-11")).is_exception());
        assert_eq!(hours.day(date("2026-12-18")).windows, [w("11:00", "14:00")]);
        assert!(
            hours.day(date("2026-12-19")).windows.is_empty(),
            "saturdays closed"
        );
        assert_eq!(hours.day(date("2026-12-20")).windows, [w("09:00", "21:00")]);
        assert_eq!(hours.last_exception(), Some(date("2027-01-10")));
    }
}
