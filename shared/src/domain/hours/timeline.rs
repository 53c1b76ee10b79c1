//! Call hours as instants. A window on a date runs from the first instant the
//! restaurant's clocks show its start to the first instant they show its end:
//! in spring a time inside the skipped hour is reached when the gap ends; in
//! autumn a repeated time counts at its first occurrence, so a window is one
//! interval and never reopens when the clocks go back.

use chrono::offset::LocalResult;
use chrono::{DateTime, Days, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

use super::{CallHours, Window};

/// Past the last date exception, two weeks of the weekly pattern show every
/// change it has, even with a clock change among them.
const SETTLED_DAYS: u64 = 15;
/// The longest clock jump forward in the tz database (Samoa skipped a day).
const MAX_GAP_MINUTES: u32 = 48 * 60;

/// The first instant the clocks in `tz` show `local` (or a later time, when
/// `local` falls in a gap).
pub fn first_instant(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    let mut t = local;
    for _ in 0..=MAX_GAP_MINUTES {
        match tz.from_local_datetime(&t) {
            LocalResult::Single(x) | LocalResult::Ambiguous(x, _) => return x.with_timezone(&Utc),
            // Gaps start and end on whole minutes.
            LocalResult::None => t += Duration::minutes(1),
        }
    }
    Utc.from_utc_datetime(&local)
}

fn local(date: NaiveDate, minutes: u32) -> NaiveDateTime {
    date.and_time(NaiveTime::MIN) + Duration::minutes(i64::from(minutes))
}

/// The window of `date` as instants; `None` when the clocks skip all of it.
type Interval = (DateTime<Utc>, DateTime<Utc>);

fn interval(tz: Tz, date: NaiveDate, w: &Window) -> Option<Interval> {
    let (start, end) = w.span();
    let (start, end) = (
        first_instant(tz, local(date, start)),
        first_instant(tz, local(date, end)),
    );
    (start < end).then_some((start, end))
}

/// Whether call hours are on at an instant, and when that next flips.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoursStatus {
    pub open: bool,
    /// `None` when it never flips again (always open, or never again).
    pub next_change: Option<DateTime<Utc>>,
}

impl CallHours<'_> {
    /// The windows starting on `date`, as instants in start order.
    fn intervals(&self, tz: Tz, date: NaiveDate) -> Vec<Interval> {
        let mut v: Vec<_> = self
            .day(date)
            .windows
            .iter()
            .filter_map(|w| interval(tz, date, w))
            .collect();
        v.sort_unstable();
        v
    }

    /// Sweeps windows in start order from the day before `now`'s date,
    /// merging those that touch or overlap, until the state at `now` is known
    /// to end or begin; past the last exception the weekly pattern repeats.
    pub fn status(&self, tz: Tz, now: DateTime<Utc>) -> HoursStatus {
        let today = now.with_timezone(&tz).date_naive();
        let settled = self.last_exception().map_or(today, |d| d.max(today));
        let last = settled + Days::new(SETTLED_DAYS);
        let mut merged: Option<Interval> = None;
        let mut date = today - Days::new(1);
        while date <= last {
            for (start, end) in self.intervals(tz, date) {
                merged = match merged {
                    Some((s, e)) if start <= e => Some((s, e.max(end))),
                    Some((s, e)) if s <= now && now < e => {
                        return HoursStatus {
                            open: true,
                            next_change: Some(e),
                        }
                    }
                    _ => Some((start, end)),
                };
                if let Some((s, _)) = merged {
                    if now < s {
                        return HoursStatus {
                            open: false,
                            next_change: Some(s),
                        };
                    }
                }
            }
            date = date + Days::new(1);
        }
        match merged {
            // Open on every day swept: the pattern never closes again,
            // unless the run ended well before the sweep did.
            Some((s, e)) if s <= now && now < e => HoursStatus {
                open: true,
                next_change: (e < first_instant(tz, local(last, 0))).then_some(e),
            },
            _ => HoursStatus {
                open: false,
                next_change: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::w;
    use super::super::{Closure, SpecialDay, WeeklySchedule};
    use super::*;
    use chrono_tz::America::New_York;
    use chrono_tz::Australia::Lord_Howe;
    use chrono_tz::Europe::London;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }
    fn hours(default: Window) -> CallHours<'static> {
        CallHours {
            default,
            schedule: None,
            special: &[],
            closures: &[],
        }
    }
    /// Each case reads "<instant> open|closed until <instant>" or
    /// "<instant> open|closed for good".
    #[track_caller]
    fn expect(h: &CallHours, tz: Tz, cases: &[&str]) {
        for case in cases {
            let words: Vec<&str> = case.split(' ').collect();
            let want = match words[..] {
                [_, state, "until", next] => (state, Some(utc(next))),
                [_, state, "for", "good"] => (state, None),
                _ => panic!("bad case {case:?}"),
            };
            let want = HoursStatus {
                open: want.0 == "open",
                next_change: want.1,
            };
            assert_eq!(h.status(tz, utc(words[0])), want, "{case} in {tz}");
        }
    }

    #[test]
    fn half_open_windows_in_the_restaurants_timezone() {
        let h = hours(w("09:00", "21:00"));
        // 2026-12-04: New York is UTC-5.
        expect(
            &h,
            New_York,
            &[
                "2026-12-04T13:59:00Z closed until 2026-12-04T14:00:00Z",
                "2026-12-04T14:00:00Z open until 2026-12-05T02:00:00Z",
                "2026-12-05T02:00:00Z closed until 2026-12-05T14:00:00Z",
            ],
        );
    }

    #[test]
    fn always_open_and_never_open_have_no_next_change() {
        let always = hours(w("00:00", "24:00"));
        expect(&always, London, &["2026-03-29T01:30:00Z open for good"]);
        let all_day = hours(w("00:00", "00:00"));
        expect(&all_day, New_York, &["2026-11-01T06:00:00Z open for good"]);
        let closed = WeeklySchedule {
            monday: Some(vec![]),
            tuesday: Some(vec![]),
            wednesday: Some(vec![]),
            thursday: Some(vec![]),
            friday: Some(vec![]),
            saturday: Some(vec![]),
            sunday: Some(vec![]),
        };
        let h = CallHours {
            schedule: Some(&closed),
            ..hours(w("09:00", "17:00"))
        };
        expect(&h, London, &["2026-06-01T12:00:00Z closed for good"]);
    }

    #[test]
    fn a_window_over_the_skipped_hour_in_spring() {
        // New York, 2026-03-08: 02:00 EST becomes 03:00 EDT (07:00 UTC).
        let h = hours(w("01:00", "04:00"));
        expect(
            &h,
            New_York,
            &[
                // 01:00 EST to 04:00 EDT: two real hours
                "2026-03-08T06:59:00Z open until 2026-03-08T08:00:00Z",
            ],
        );
        // A window that starts in the gap opens when the gap ends.
        let h = hours(w("02:30", "05:00"));
        expect(
            &h,
            New_York,
            &["2026-03-08T06:30:00Z closed until 2026-03-08T07:00:00Z"],
        );
        // A window wholly inside the gap never opens that day.
        let h = hours(w("02:00", "03:00"));
        expect(
            &h,
            New_York,
            &[
                // opens at 02:00 EDT the next day
                "2026-03-08T06:00:00Z closed until 2026-03-09T06:00:00Z",
            ],
        );
    }

    #[test]
    fn a_window_over_the_repeated_hour_in_autumn() {
        // New York, 2026-11-01: 02:00 EDT becomes 01:00 EST (06:00 UTC).
        let h = hours(w("00:00", "01:30"));
        expect(
            &h,
            New_York,
            &[
                // ends at the first 01:30
                "2026-11-01T05:00:00Z open until 2026-11-01T05:30:00Z",
                // does not reopen at the second 01:00
                "2026-11-01T06:10:00Z closed until 2026-11-02T05:00:00Z",
            ],
        );
        let h = hours(w("01:30", "03:00"));
        expect(
            &h,
            New_York,
            &[
                // opens at the first 01:30
                "2026-11-01T05:29:00Z closed until 2026-11-01T05:30:00Z",
                // stays open through the repeated hour to 03:00 EST
                "2026-11-01T06:45:00Z open until 2026-11-01T08:00:00Z",
            ],
        );
    }

    #[test]
    fn half_hour_clock_changes() {
        // Lord Howe Island, 2026-10-04: 02:00 +10:30 becomes 02:30 +11.
        let h = hours(w("02:00", "02:45"));
        expect(
            &h,
            Lord_Howe,
            &[
                "2026-10-03T15:20:00Z closed until 2026-10-03T15:30:00Z",
                // open for the 15 minutes that exist
                "2026-10-03T15:30:00Z open until 2026-10-03T15:45:00Z",
            ],
        );
    }

    #[test]
    fn across_midnight_into_a_special_date() {
        let special = [
            SpecialDay {
                date: "2026-12-25".parse().unwrap(),
                windows: vec![],
                note: Some("Christmas Day".into()),
            },
            SpecialDay {
                date: "2026-12-31".parse().unwrap(),
                windows: vec![w("18:00", "02:00")],
                note: None,
            },
        ];
        let h = CallHours {
            special: &special,
            ..hours(w("17:00", "01:00"))
        };
        // Christmas Eve's window runs past midnight into the closed day.
        expect(
            &h,
            New_York,
            &[
                "2026-12-25T05:30:00Z open until 2026-12-25T06:00:00Z",
                // closed all Christmas Day
                "2026-12-25T06:00:00Z closed until 2026-12-26T22:00:00Z",
            ],
        );
        // New Year's Eve runs to 02:00 on New Year's Day, a regular day that
        // then opens at 17:00.
        expect(
            &h,
            New_York,
            &[
                "2027-01-01T06:59:00Z open until 2027-01-01T07:00:00Z",
                "2027-01-01T07:00:00Z closed until 2027-01-01T22:00:00Z",
            ],
        );
    }

    #[test]
    fn a_far_closure_ends_an_always_open_week() {
        let closures = [Closure {
            from: "2027-06-01".parse().unwrap(),
            to: "2027-06-07".parse().unwrap(),
            note: None,
        }];
        let h = CallHours {
            closures: &closures,
            ..hours(w("00:00", "24:00"))
        };
        // London is on BST (UTC+1) in June.
        expect(
            &h,
            London,
            &[
                "2026-12-02T12:00:00Z open until 2027-05-31T23:00:00Z",
                "2027-06-03T12:00:00Z closed until 2027-06-07T23:00:00Z",
            ],
        );
    }

    #[test]
    fn a_last_window_before_days_with_none() {
        let never = WeeklySchedule {
            monday: Some(vec![]),
            tuesday: Some(vec![]),
            wednesday: Some(vec![]),
            thursday: Some(vec![]),
            friday: Some(vec![]),
            saturday: Some(vec![]),
            sunday: Some(vec![]),
        };
        let special = [SpecialDay {
            date: "2026-12-31".parse().unwrap(),
            windows: vec![w("18:00", "02:00")],
            note: None,
        }];
        let h = CallHours {
            schedule: Some(&never),
            special: &special,
            ..hours(w("00:00", "24:00"))
        };
        expect(
            &h,
            New_York,
            &[
                "2027-01-01T00:00:00Z open until 2027-01-01T07:00:00Z",
                "2027-01-01T07:00:00Z closed for good",
            ],
        );
    }
}
