//! Property tests: call hours against a brute-force reference, over random
//! schedules, date exceptions, timezones and instants near clock changes.
//!
//! The reference shares nothing with `timeline`: a local time's instant is
//! found by walking UTC forward until the wall clock reaches it, openness by
//! testing every window of the nearby dates, the next change by walking
//! forward until openness differs. Every boundary is on a quarter hour
//! (windows are generated on quarter hours; the zones' offsets and clock
//! changes are quarter hours too), so walking in quarter hours is exact.

use std::cell::RefCell;
use std::collections::HashMap;

use chrono::{DateTime, Datelike, Days, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;

use super::{CallHours, Closure, SpecialDay, TimeOfDay, WeeklySchedule, Window};

const STEP: i64 = 15;
/// How far ahead the reference looks for a change.
const SEARCH_DAYS: i64 = 30;

const ZONES: &[Tz] = &[
    chrono_tz::America::New_York,
    chrono_tz::America::Havana, // clocks change at midnight
    chrono_tz::America::Santiago,
    chrono_tz::America::St_Johns,
    chrono_tz::Europe::London,
    chrono_tz::Europe::Dublin, // "negative" DST in the tz database
    chrono_tz::Australia::Sydney,
    chrono_tz::Australia::Lord_Howe, // 30-minute change
    chrono_tz::Pacific::Chatham,
    chrono_tz::Asia::Kathmandu,
    chrono_tz::UTC,
];

/// Clock-change days of the zones above (2026), and New Year's Eve.
const NEAR: &[&str] = &[
    "2026-03-08",
    "2026-11-01",
    "2026-03-29",
    "2026-10-25",
    "2026-04-05",
    "2026-10-04",
    "2026-09-27",
    "2026-04-04",
    "2026-09-05",
    "2026-12-31",
];

type Interval = (DateTime<Utc>, DateTime<Utc>);

struct Reference<'a> {
    hours: &'a CallHours<'a>,
    tz: Tz,
    intervals: RefCell<HashMap<NaiveDate, Vec<Interval>>>,
}

impl Reference<'_> {
    fn wall(&self, u: DateTime<Utc>) -> NaiveDateTime {
        u.with_timezone(&self.tz).naive_local()
    }

    /// The first quarter hour at which the wall clock shows `local` or later.
    fn instant(&self, local: NaiveDateTime) -> DateTime<Utc> {
        let mut u = Utc.from_utc_datetime(&(local - Duration::hours(15)));
        while self.wall(u) < local {
            u += Duration::minutes(STEP);
        }
        u
    }

    fn windows(&self, date: NaiveDate) -> Vec<Window> {
        let h = self.hours;
        if let Some(s) = h.special.iter().find(|s| s.date == date) {
            return s.windows.clone();
        }
        if h.closures.iter().any(|c| c.from <= date && date <= c.to) {
            return vec![];
        }
        let weekly = h.schedule.and_then(|s| match date.weekday() {
            chrono::Weekday::Mon => s.monday.clone(),
            chrono::Weekday::Tue => s.tuesday.clone(),
            chrono::Weekday::Wed => s.wednesday.clone(),
            chrono::Weekday::Thu => s.thursday.clone(),
            chrono::Weekday::Fri => s.friday.clone(),
            chrono::Weekday::Sat => s.saturday.clone(),
            chrono::Weekday::Sun => s.sunday.clone(),
        });
        weekly.unwrap_or_else(|| vec![h.default])
    }

    fn intervals(&self, date: NaiveDate) -> Vec<Interval> {
        if let Some(v) = self.intervals.borrow().get(&date) {
            return v.clone();
        }
        let midnight = date.and_hms_opt(0, 0, 0).unwrap();
        let v: Vec<_> = self
            .windows(date)
            .iter()
            .map(|w| {
                let start = midnight + Duration::minutes(i64::from(w.start.minutes()));
                let mut end = date.and_hms_opt(0, 0, 0).unwrap()
                    + Duration::minutes(i64::from(w.end.minutes()));
                if w.end <= w.start {
                    end += Duration::days(1);
                }
                (self.instant(start), self.instant(end))
            })
            .collect();
        self.intervals.borrow_mut().insert(date, v.clone());
        v
    }

    fn open(&self, t: DateTime<Utc>) -> bool {
        let today = self.wall(t).date();
        (-2..=1).any(|d| {
            self.intervals(today + Duration::days(d))
                .iter()
                .any(|&(s, e)| s <= t && t < e)
        })
    }

    fn next_change(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let open = self.open(now);
        let step = STEP * 60;
        let first = (now.timestamp().div_euclid(step) + 1) * step;
        (0..SEARCH_DAYS * 24 * 60 / STEP)
            .map(|i| DateTime::from_timestamp(first + i * step, 0).unwrap())
            .find(|&t| self.open(t) != open)
    }
}

fn time_of_day(quarters: u16) -> TimeOfDay {
    TimeOfDay::parse(&format!("{:02}:{:02}", quarters / 4, quarters % 4 * 15)).unwrap()
}

/// A quarter hour, half of the time among the small hours when clocks change.
fn quarter(max: u16) -> impl Strategy<Value = u16> {
    prop_oneof![0u16..16, 0u16..=max]
}

fn window() -> impl Strategy<Value = Window> {
    (quarter(95), quarter(96)).prop_filter_map("start = end is only 00:00-00:00", |(s, e)| {
        let w = Window {
            start: time_of_day(s),
            end: time_of_day(e),
        };
        w.problem().is_none().then_some(w)
    })
}

fn day_windows() -> impl Strategy<Value = Option<Vec<Window>>> {
    prop::option::of(prop::collection::vec(window(), 0..3))
}

fn schedule() -> impl Strategy<Value = Option<WeeklySchedule>> {
    prop::option::of(
        (
            day_windows(),
            day_windows(),
            day_windows(),
            day_windows(),
            day_windows(),
            day_windows(),
            day_windows(),
        )
            .prop_map(|(mo, tu, we, th, fr, sa, su)| WeeklySchedule {
                monday: mo,
                tuesday: tu,
                wednesday: we,
                thursday: th,
                friday: fr,
                saturday: sa,
                sunday: su,
            }),
    )
}

#[derive(Debug, Clone)]
struct Case {
    tz: Tz,
    now: DateTime<Utc>,
    default: Window,
    schedule: Option<WeeklySchedule>,
    special: Vec<SpecialDay>,
    closures: Vec<Closure>,
}

fn case() -> impl Strategy<Value = Case> {
    let day = prop_oneof![
        2 => prop::sample::select(NEAR).prop_map(|d| d.parse::<NaiveDate>().unwrap()),
        1 => (0u64..730).prop_map(|d| NaiveDate::from_ymd_opt(2026, 1, 1).unwrap() + Days::new(d)),
    ];
    (
        prop::sample::select(ZONES),
        day,
        -(36 * 60i64)..(60 * 60),
        window(),
        schedule(),
        prop::collection::vec((-3i64..10, prop::collection::vec(window(), 0..3)), 0..4),
        prop::collection::vec((-3i64..10, 0i64..5), 0..3),
    )
        .prop_map(|(tz, day, minute, default, schedule, special, closures)| {
            let base = day.and_hms_opt(0, 0, 0).unwrap();
            let now = Utc.from_utc_datetime(&(base + Duration::minutes(minute)));
            let mut special: Vec<SpecialDay> = special
                .into_iter()
                .map(|(d, windows)| SpecialDay {
                    date: day + Duration::days(d),
                    windows,
                    note: None,
                })
                .collect();
            special.sort_by_key(|s| s.date);
            special.dedup_by_key(|s| s.date);
            let closures = closures
                .into_iter()
                .map(|(d, len)| Closure {
                    from: day + Duration::days(d),
                    to: day + Duration::days(d + len),
                    note: None,
                })
                .collect();
            Case {
                tz,
                now,
                default,
                schedule,
                special,
                closures,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn open_and_next_change_match_the_reference(c in case()) {
        let hours = CallHours {
            default: c.default,
            schedule: c.schedule.as_ref(),
            special: &c.special,
            closures: &c.closures,
        };
        let reference = Reference { hours: &hours, tz: c.tz, intervals: RefCell::default() };
        let got = hours.status(c.tz, c.now);
        prop_assert_eq!(got.open, reference.open(c.now), "open at {}", c.now);
        match reference.next_change(c.now) {
            Some(at) => prop_assert_eq!(got.next_change, Some(at)),
            None => prop_assert!(
                got.next_change.is_none_or(|t| t > c.now + Duration::days(SEARCH_DAYS)),
                "reference sees no change within {} days, got {:?}", SEARCH_DAYS, got.next_change
            ),
        }
    }

    #[test]
    fn first_instant_matches_the_wall_clock_walk(
        tz in prop::sample::select(ZONES),
        day in prop::sample::select(NEAR),
        quarter in 0i64..(3 * 96),
    ) {
        let hours = CallHours { default: Window { start: TimeOfDay::MIDNIGHT, end: TimeOfDay::END_OF_DAY },
            schedule: None, special: &[], closures: &[] };
        let reference = Reference { hours: &hours, tz, intervals: RefCell::default() };
        let local = day.parse::<NaiveDate>().unwrap().and_hms_opt(0, 0, 0).unwrap()
            + Duration::minutes(quarter * STEP - 24 * 60);
        prop_assert_eq!(super::first_instant(tz, local), reference.instant(local));
    }
}
