//! When a period's figure is due, and whether a feed is stale (ARCHITECTURE §4, issue 3 item 4).
//!
//! The rules, all in the city's zone:
//! - A period's figure is **due** by the end of a release day after the period ends: "due by the
//!   6th" means by the end of the 6th, so [`ReleaseCalendar::due_at`] is the 7th at 00:00 local.
//!   A daily figure is due a number of hours after its day ends. An event feed's instant counts
//!   as the local day it falls on.
//! - Its **deadline** is `due_at + grace`; from that instant on (inclusive) the figure is expected.
//! - For a target year, the **expected** period is the latest period whose deadline has passed,
//!   clamped to the year: nothing is expected while the latest such period lies before the year
//!   (e.g. on 20 January for a monthly feed: December belongs to the previous year), and once the
//!   year is over its last period is the one expected.
//! - The feed is **stale** when a period is expected and the latest reported period ends before
//!   the expected one ends (or nothing was reported). Comparing end instants lets a coarser or
//!   later report cover a finer or earlier expectation.
//! - A year is **closed** when the deadline of its last period has passed.
//! - Lateness has a start ([`ReleaseCalendar::judged_from`]: `staleness_from` in config, else
//!   the service's first start as the store recorded it). From then on, a period whose
//!   deadline passed before it is not expected: a new installation owes nothing of the past it
//!   never had. Instants before the start (a replay of back-filled history) are judged as
//!   they were, by when each figure was reported.
//!
//! - An indicator published on a calendar of its own (`release` in its catalogue entry, such as
//!   an index of the year published in May of the next) is judged by its own calendar
//!   ([`ReleaseCalendar::for_indicator`]) in all of the above, live and in a replay.
//!
//! Public holidays are not modelled. Decree 62/2024/NĐ-CP moves a release that falls on a day off
//! to the next working day; the default two-day grace absorbs a weekend, and an indicator whose
//! releases cross Tết needs a longer grace in its calendar.

use std::borrow::Cow;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::domain::{Indicator, Period, Periodicity};

// The calendar is configuration as much as a rule: its type is `domain`'s, so the settings can
// hold it; what it says about periods and feeds is here.
pub use crate::domain::calendar::{Due, IndicatorRelease, ReleaseCalendar};

impl ReleaseCalendar {
    /// The calendar `indicator`'s figures follow: this one, or this one with the indicator's
    /// own due rule and grace.
    pub fn for_indicator(&self, indicator: &Indicator) -> Cow<'_, Self> {
        match &indicator.release {
            None => Cow::Borrowed(self),
            Some(release) => Cow::Owned(self.with_release(Some(release))),
        }
    }

    /// When the figure for `period` is due: the first instant after the release day, in `zone`.
    /// `2026-03` under the default calendar is due at 2026-04-07 00:00 local.
    pub fn due_at(&self, period: &Period, zone: Tz) -> DateTime<Utc> {
        let period = calendar_period(period, zone);
        let release_day = match (self.own_due, period) {
            // An indicator's own calendar (`release` in the catalogue) comes first.
            (Some(Due::After(lag)), _) => return shifted(period.end(zone), non_negative(lag)),
            (Some(Due::MonthsAfter { months, day }), _) => {
                let (year, month) = last_month(&period);
                let (due_year, due_month) = months_later(year, month, months);
                clamped_date(due_year, due_month, day)
            }
            (None, Period::Month(year, month)) => {
                let (due_year, due_month) = month_after(year, month);
                clamped_date(due_year, due_month, self.monthly_due_day)
            }
            (None, Period::Quarter(year, quarter)) => {
                let (due_year, due_month) = month_after(year, quarter.saturating_mul(3));
                clamped_date(due_year, due_month, self.quarterly_due_day)
            }
            (None, Period::Year(year)) => clamped_date(
                year.saturating_add(1),
                self.yearly_due_month,
                self.yearly_due_day,
            ),
            (None, Period::Day(_) | Period::Instant(_)) => {
                let due_after = non_negative(self.daily_due_after);
                return shifted(period.end(zone), due_after);
            }
        };
        // Only an out-of-range period (years are parsed within 1900..=2200) has no release
        // day; its own end is the least surprising answer.
        match release_day {
            Some(day) => Period::Day(day).end(zone),
            None => period.end(zone),
        }
    }

    /// The instant from which `period`'s figure counts as missing: [`Self::due_at`] plus grace.
    pub fn deadline(&self, period: &Period, zone: Tz) -> DateTime<Utc> {
        shifted(self.due_at(period, zone), non_negative(self.grace))
    }

    /// The most recent period whose deadline (due plus grace) is at or before `now`.
    /// On 2026-04-07 12:00 local with the default calendar and no grace, the monthly one is
    /// `2026-03`; on 2026-04-05, `2026-02`.
    pub fn latest_due_period(
        &self,
        periodicity: Periodicity,
        now: DateTime<Utc>,
        zone: Tz,
    ) -> Option<Period> {
        // Release days fall in the month after the period (the next year for a year; the next
        // days for a day), so starting from the period that holds `now − lag`, at most two steps
        // back reach a period whose deadline has passed. An indicator's own calendar moves the
        // release further on: `lag` then also holds the least time between a period's end and
        // its due date (28 days for each month after the first), and from there at most six
        // monthly steps are left for the longest it allows (24 months). Eight bounds the loop
        // with room to spare.
        const MAX_CANDIDATES: usize = 8;
        let grace = non_negative(self.grace);
        let least_due_after = match (self.own_due, periodicity) {
            (Some(Due::After(lag)), _) => non_negative(lag),
            (Some(Due::MonthsAfter { months, .. }), _) => {
                Duration::days(28 * i64::from(months.saturating_sub(1)))
            }
            (None, Periodicity::Daily) => non_negative(self.daily_due_after),
            (None, _) => Duration::zero(),
        };
        let lag = grace.checked_add(&least_due_after)?;
        let anchor = now.checked_sub_signed(lag)?;
        let mut candidate = Period::containing(periodicity, local_date(anchor, zone));
        for _ in 0..MAX_CANDIDATES {
            if self.deadline(&candidate, zone) <= now {
                return Some(candidate);
            }
            candidate = candidate.previous()?;
        }
        None
    }

    /// The period of `year` whose figure should be in by `now`, or `None` when none is yet
    /// (the latest due period belongs to an earlier year). After the year, its last period.
    pub fn expected_period(
        &self,
        periodicity: Periodicity,
        year: i32,
        now: DateTime<Utc>,
        zone: Tz,
    ) -> Option<Period> {
        let latest_due = self.latest_due_period(periodicity, now, zone)?;
        let latest_due_year = latest_due.year(zone);
        if latest_due_year < year {
            return None;
        }
        let expected = if latest_due_year > year {
            last_period_of_year(periodicity, year)?
        } else {
            latest_due
        };
        self.owed(&expected, now, zone).then_some(expected)
    }

    /// Whether `period`'s figure is owed at `now` under the start of judgement
    /// ([`ReleaseCalendar::judged_from`]): from that instant on, a period whose deadline passed
    /// before it is not. Before it, as in a replay of back-filled history, every period is
    /// judged by when its figure was reported, as it was then.
    pub(crate) fn owed(&self, period: &Period, now: DateTime<Utc>, zone: Tz) -> bool {
        match self.judged_from {
            Some(from) if now >= from => self.deadline(period, zone) >= from,
            _ => true,
        }
    }

    /// Whether the feed of a `periodicity` indicator is stale for target `year` at `now`, given
    /// the latest period it reported (see the module docs for the rules).
    pub fn staleness(
        &self,
        periodicity: Periodicity,
        latest_reported: Option<&Period>,
        year: i32,
        now: DateTime<Utc>,
        zone: Tz,
    ) -> Staleness {
        self.expectation(periodicity, year, now, zone)
            .judge(latest_reported, zone)
    }

    /// What a `periodicity` feed owes for target `year` at `now`, whatever it reported: the part
    /// of [`Self::staleness`] that every feed of that periodicity shares.
    pub fn expectation(
        &self,
        periodicity: Periodicity,
        year: i32,
        now: DateTime<Utc>,
        zone: Tz,
    ) -> Expectation {
        let expected = self
            .expected_period(periodicity, year, now, zone)
            .map(|period| Expected {
                period,
                due_at: self.due_at(&period, zone),
                end: period.end(zone),
            });
        Expectation { now, expected }
    }

    /// Whether `year` is closed for a `periodicity` indicator: the deadline (due plus grace) of
    /// its last period has passed. The rules engine then judges the year achieved or missed;
    /// a year whose last period has already been reported is closed too, which the caller sees.
    pub fn year_closed(
        &self,
        periodicity: Periodicity,
        year: i32,
        now: DateTime<Utc>,
        zone: Tz,
    ) -> bool {
        last_period_of_year(periodicity, year).is_some_and(|last| self.deadline(&last, zone) <= now)
    }
}

/// The period a feed should have delivered by some instant, computed once for every feed of a
/// periodicity and target year (see [`ReleaseCalendar::expectation`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expectation {
    now: DateTime<Utc>,
    expected: Option<Expected>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Expected {
    period: Period,
    due_at: DateTime<Utc>,
    end: DateTime<Utc>,
}

impl Expectation {
    /// Whether a feed whose latest reported period is `latest_reported` is stale.
    pub fn judge(&self, latest_reported: Option<&Period>, zone: Tz) -> Staleness {
        let Some(expected) = self.expected else {
            return Staleness::default();
        };
        // A feed that reported the expected period itself, the usual case, needs no time zone
        // conversion to tell.
        let delivered = latest_reported.is_some_and(|reported| {
            *reported == expected.period
                || calendar_period(reported, zone).end(zone) >= expected.end
        });
        let overdue_by = if delivered {
            None
        } else {
            Some(self.now.signed_duration_since(expected.due_at))
        };
        Staleness {
            stale: !delivered,
            expected: Some(expected.period),
            overdue_by,
            due_at: Some(expected.due_at),
        }
    }
}

/// The staleness judgement of one feed for one target year.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Staleness {
    /// A period is expected and has not been reported.
    pub stale: bool,
    /// The period that should be in by now, if any.
    pub expected: Option<Period>,
    /// How long past [`Self::due_at`] (the release date, grace not deducted) the missing figure
    /// is; `None` when not stale.
    pub overdue_by: Option<Duration>,
    /// When the expected period's figure was due.
    pub due_at: Option<DateTime<Utc>>,
}

/// Instants count as the local day they fall on.
fn calendar_period(period: &Period, zone: Tz) -> Period {
    match period {
        Period::Instant(instant) => Period::Day(local_date(*instant, zone)),
        other => *other,
    }
}

fn local_date(instant: DateTime<Utc>, zone: Tz) -> NaiveDate {
    instant.with_timezone(&zone).date_naive()
}

fn last_period_of_year(periodicity: Periodicity, year: i32) -> Option<Period> {
    match periodicity {
        Periodicity::Yearly => Some(Period::Year(year)),
        Periodicity::Quarterly => Some(Period::Quarter(year, 4)),
        Periodicity::Monthly => Some(Period::Month(year, 12)),
        Periodicity::Daily => NaiveDate::from_ymd_opt(year, 12, 31).map(Period::Day),
    }
}

/// The year and month in which `period` ends (its last day's).
fn last_month(period: &Period) -> (i32, u32) {
    match *period {
        Period::Year(year) => (year, 12),
        Period::Quarter(year, quarter) => (year, quarter.clamp(1, 4) * 3),
        Period::Month(year, month) => (year, month),
        Period::Day(day) => (day.year(), day.month()),
        // Instants are read as their local day before this is asked.
        Period::Instant(instant) => (instant.year(), instant.month()),
    }
}

/// The month `months` after `month` (1-based) of `year`.
fn months_later(year: i32, month: u32, months: u32) -> (i32, u32) {
    let index = i64::from(year) * 12 + i64::from(month.clamp(1, 12)) - 1 + i64::from(months);
    let year = i32::try_from(index.div_euclid(12)).unwrap_or(i32::MAX);
    (year, (index.rem_euclid(12) + 1) as u32)
}

/// The month after `month` (1-based) of `year`.
fn month_after(year: i32, month: u32) -> (i32, u32) {
    if month >= 12 {
        (year.saturating_add(1), 1)
    } else {
        (year, month + 1)
    }
}

/// `day` of the month, or the month's last day when the month is shorter.
fn clamped_date(year: i32, month: u32, day: u32) -> Option<NaiveDate> {
    (1..=day.clamp(1, 31))
        .rev()
        .find_map(|candidate| NaiveDate::from_ymd_opt(year, month, candidate))
}

fn non_negative(duration: Duration) -> Duration {
    duration.max(Duration::zero())
}

fn shifted(instant: DateTime<Utc>, by: Duration) -> DateTime<Utc> {
    instant
        .checked_add_signed(by)
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HCM: Tz = chrono_tz::Asia::Ho_Chi_Minh;

    /// A local time in the city: "2026-04-07T00:00:00" is read as +07:00.
    fn local(raw: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&format!("{raw}+07:00"))
            .unwrap()
            .with_timezone(&Utc)
    }

    /// A period, or `None` for `-`.
    fn period(raw: &str) -> Option<Period> {
        (raw != "-").then(|| raw.parse().unwrap())
    }

    /// `62` is the default (Decree 62/2024, 48 h grace), `62/0` the same without grace, `13` is
    /// Decree 13/2026, `31st` is monthly figures due by the end of the next month.
    fn calendar(name: &str) -> ReleaseCalendar {
        match name {
            "62" => ReleaseCalendar::default(),
            "62/0" => ReleaseCalendar {
                grace: Duration::zero(),
                ..ReleaseCalendar::default()
            },
            "13" => ReleaseCalendar::decree_13_2026(),
            "13/0" => ReleaseCalendar {
                grace: Duration::zero(),
                ..ReleaseCalendar::decree_13_2026()
            },
            "31st" => ReleaseCalendar {
                monthly_due_day: 31,
                ..ReleaseCalendar::default()
            },
            other => panic!("no calendar {other}"),
        }
    }

    fn periodicity(raw: &str) -> Periodicity {
        match raw {
            "daily" => Periodicity::Daily,
            "monthly" => Periodicity::Monthly,
            "quarterly" => Periodicity::Quarterly,
            "yearly" => Periodicity::Yearly,
            other => panic!("no periodicity {other}"),
        }
    }

    /// The rows of a `|`-separated table, cells trimmed; blank lines skipped.
    fn rows(table: &str) -> Vec<Vec<&str>> {
        table
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| line.split('|').map(str::trim).collect())
            .collect()
    }

    #[test]
    fn a_period_is_due_at_the_end_of_its_release_day() {
        // calendar | period | due (local). 20:00Z on the 15th is 03:00 on the 16th locally.
        let table = "
        62   | 2026-03              | 2026-04-07T00:00:00
        62   | 2026-12              | 2027-01-07T00:00:00
        62   | 2026-Q1              | 2026-04-07T00:00:00
        62   | 2026-Q4              | 2027-01-07T00:00:00
        62   | 2026                 | 2027-01-07T00:00:00
        62   | 2026-03-15           | 2026-03-17T00:00:00
        62   | 2026-03-15T20:00:00Z | 2026-03-18T00:00:00
        13   | 2026-03              | 2026-04-04T00:00:00
        13   | 2026-Q2              | 2026-07-04T00:00:00
        13   | 2026                 | 2027-01-04T00:00:00
        31st | 2026-01              | 2026-03-01T00:00:00
        31st | 2026-03              | 2026-05-01T00:00:00
        ";
        for row in rows(table) {
            let due = calendar(row[0]).due_at(&period(row[1]).unwrap(), HCM);
            assert_eq!(due, local(row[2]), "{row:?}");
        }
    }

    #[test]
    fn the_deadline_adds_the_grace_and_never_subtracts_it() {
        let march = Period::Month(2026, 3);
        let default = ReleaseCalendar::default();
        assert_eq!(default.deadline(&march, HCM), local("2026-04-09T00:00:00"));
        let negative = ReleaseCalendar {
            grace: Duration::hours(-5),
            ..ReleaseCalendar::default()
        };
        assert_eq!(negative.deadline(&march, HCM), local("2026-04-07T00:00:00"));
    }

    #[test]
    fn the_latest_due_period_moves_at_the_deadline_to_the_second() {
        // calendar | periodicity | now (local) | latest due period.
        // Day 16 ends 17 00:00, is due 18 00:00 and is late from 20 00:00.
        let table = "
        62/0 | monthly   | 2026-04-07T12:00:00 | 2026-03
        62/0 | monthly   | 2026-04-05T12:00:00 | 2026-02
        62/0 | monthly   | 2026-04-06T23:59:59 | 2026-02
        62/0 | monthly   | 2026-04-07T00:00:00 | 2026-03
        62   | monthly   | 2026-04-08T23:59:59 | 2026-02
        62   | monthly   | 2026-04-09T00:00:00 | 2026-03
        62   | monthly   | 2026-01-08T23:59:59 | 2025-11
        62   | monthly   | 2026-01-09T00:00:00 | 2025-12
        13/0 | monthly   | 2026-04-03T23:59:59 | 2026-02
        13/0 | monthly   | 2026-04-04T00:00:00 | 2026-03
        62   | quarterly | 2026-04-08T23:59:59 | 2025-Q4
        62   | quarterly | 2026-04-09T00:00:00 | 2026-Q1
        62   | yearly    | 2027-01-08T23:59:59 | 2025
        62   | yearly    | 2027-01-09T00:00:00 | 2026
        62   | daily     | 2026-03-19T23:59:59 | 2026-03-15
        62   | daily     | 2026-03-20T10:00:00 | 2026-03-16
        ";
        for row in rows(table) {
            let latest =
                calendar(row[0]).latest_due_period(periodicity(row[1]), local(row[2]), HCM);
            assert_eq!(latest, period(row[3]), "{row:?}");
        }
    }

    #[test]
    fn a_feed_is_stale_when_an_expected_period_is_missing() {
        // calendar | periodicity | latest reported | year | now (local) | expected | verdict.
        // 16:30Z on the 16th is 23:30 on the 16th locally; 16:59:59Z on the 15th is 23:59:59
        // on the 15th. Decree 13 with grace: March is late from 6 April 00:00.
        let table = "
        62   | monthly   | 2026-03              | 2026 | 2026-04-09T00:00:01 | 2026-03    | fresh
        62   | monthly   | 2026-02              | 2026 | 2026-04-09T00:00:01 | 2026-03    | stale
        62   | monthly   | -                    | 2026 | 2026-04-09T00:00:01 | 2026-03    | stale
        62   | monthly   | 2026-02              | 2026 | 2026-04-08T23:59:59 | 2026-02    | fresh
        62   | monthly   | 2026-02              | 2026 | 2026-04-07T00:00:00 | 2026-02    | fresh
        62/0 | monthly   | 2026-02              | 2026 | 2026-04-07T00:00:00 | 2026-03    | stale
        13   | monthly   | 2026-02              | 2026 | 2026-04-05T23:59:59 | 2026-02    | fresh
        13   | monthly   | 2026-02              | 2026 | 2026-04-06T00:00:00 | 2026-03    | stale
        62   | monthly   | -                    | 2026 | 2026-01-20T00:00:00 | -          | fresh
        62   | monthly   | -                    | 2027 | 2026-04-09T00:00:01 | -          | fresh
        62   | monthly   | 2025-12              | 2025 | 2026-04-09T00:00:01 | 2025-12    | fresh
        62   | monthly   | 2025-11              | 2025 | 2026-04-09T00:00:01 | 2025-12    | stale
        62   | quarterly | 2025-Q4              | 2026 | 2026-04-09T00:00:01 | 2026-Q1    | stale
        62   | quarterly | 2026-Q1              | 2026 | 2026-04-09T00:00:01 | 2026-Q1    | fresh
        62   | quarterly | -                    | 2026 | 2026-04-08T12:00:00 | -          | fresh
        62   | yearly    | -                    | 2026 | 2026-06-01T00:00:00 | -          | fresh
        62   | yearly    | -                    | 2025 | 2026-01-09T00:00:01 | 2025       | stale
        62   | yearly    | 2025                 | 2025 | 2026-01-09T00:00:01 | 2025       | fresh
        62   | daily     | 2026-03-16           | 2026 | 2026-03-20T10:00:00 | 2026-03-16 | fresh
        62   | daily     | 2026-03-15           | 2026 | 2026-03-20T10:00:00 | 2026-03-16 | stale
        62   | daily     | 2026-03-16T16:30:00Z | 2026 | 2026-03-20T10:00:00 | 2026-03-16 | fresh
        62   | daily     | 2026-03-15T16:59:59Z | 2026 | 2026-03-20T10:00:00 | 2026-03-16 | stale
        62   | daily     | 2026-03              | 2026 | 2026-03-20T10:00:00 | 2026-03-16 | fresh
        ";
        for row in rows(table) {
            let reported = period(row[2]);
            let year: i32 = row[3].parse().unwrap();
            let judged = calendar(row[0]).staleness(
                periodicity(row[1]),
                reported.as_ref(),
                year,
                local(row[4]),
                HCM,
            );
            let expected = period(row[5]);
            let stale = row[6] == "stale";
            assert_eq!(judged.stale, stale, "{row:?}");
            assert_eq!(judged.expected, expected, "{row:?}");
            assert_eq!(judged.overdue_by.is_some(), stale, "{row:?}");
            assert_eq!(judged.due_at.is_some(), expected.is_some(), "{row:?}");
        }
    }

    #[test]
    fn periods_due_before_the_start_of_judgement_are_not_owed() {
        // Judged from 2026-12-06 10:00 local (a first start). Monthly under decree 62 with grace:
        // October's deadline is 9 November, November's 9 December 00:00.
        // now (local) | year | latest reported | expected | verdict.
        let table = "
        2026-12-06T10:00:00 | 2026 | -       | -       | fresh
        2026-12-08T23:59:59 | 2026 | 2026-01 | -       | fresh
        2026-12-09T00:00:00 | 2026 | 2026-10 | 2026-11 | stale
        2026-12-09T00:00:00 | 2026 | 2026-11 | 2026-11 | fresh
        2026-12-06T10:00:00 | 2025 | -       | -       | fresh
        2027-06-01T00:00:00 | 2025 | 2025-03 | -       | fresh
        2027-01-09T00:00:00 | 2026 | 2026-11 | 2026-12 | stale
        2026-06-01T00:00:00 | 2026 | 2026-01 | 2026-04 | stale
        2026-06-01T00:00:00 | 2025 | -       | 2025-12 | stale
        ";
        let calendar = ReleaseCalendar {
            judged_from: Some(local("2026-12-06T10:00:00")),
            ..ReleaseCalendar::default()
        };
        for row in rows(table) {
            let year: i32 = row[1].parse().unwrap();
            let judged = calendar.staleness(
                Periodicity::Monthly,
                period(row[2]).as_ref(),
                year,
                local(row[0]),
                HCM,
            );
            assert_eq!(judged.expected, period(row[3]), "{row:?}");
            assert_eq!(judged.stale, row[4] == "stale", "{row:?}");
        }
        // Without a start, every past period is owed, as before.
        let always = ReleaseCalendar::default().staleness(
            Periodicity::Monthly,
            None,
            2025,
            local("2026-12-06T10:00:00"),
            HCM,
        );
        assert!(always.stale);
        assert_eq!(always.expected, Some(Period::Month(2025, 12)));
    }

    #[test]
    fn overdue_is_measured_from_the_due_instant() {
        use Periodicity::*;
        let calendar = ReleaseCalendar::default();
        let second = Duration::seconds(1);
        let cases = [
            // March was due 7 April; two days of grace and one second later.
            (
                Monthly,
                2026,
                "2026-04-09T00:00:01",
                "2026-04-07T00:00:00",
                Duration::days(2) + second,
            ),
            // December 2025 was due 7 January: 31 + 28 + 31 + 2 days before 9 April.
            (
                Monthly,
                2025,
                "2026-04-09T00:00:01",
                "2026-01-07T00:00:00",
                Duration::days(92) + second,
            ),
            // Day 16 was due 18 March 00:00.
            (
                Daily,
                2026,
                "2026-03-20T10:00:00",
                "2026-03-18T00:00:00",
                Duration::hours(58),
            ),
        ];
        for (periodicity, year, now, due, overdue) in cases {
            let judged = calendar.staleness(periodicity, None, year, local(now), HCM);
            assert_eq!(judged.due_at, Some(local(due)), "{periodicity:?} {year}");
            assert_eq!(judged.overdue_by, Some(overdue), "{periodicity:?} {year}");
        }
    }

    #[test]
    fn a_year_closes_when_its_last_period_is_past_due_and_grace() {
        // calendar | periodicity | year | now (local) | closed.
        // 31 December ends 1 January, is due 2 January and is late from 4 January.
        let table = "
        62 | monthly   | 2025 | 2026-01-08T23:59:59 | open
        62 | monthly   | 2025 | 2026-01-09T00:00:00 | closed
        62 | quarterly | 2025 | 2026-01-08T23:59:59 | open
        62 | quarterly | 2025 | 2026-01-09T00:00:00 | closed
        62 | yearly    | 2025 | 2026-01-08T23:59:59 | open
        62 | yearly    | 2025 | 2026-01-09T00:00:00 | closed
        62 | daily     | 2025 | 2026-01-03T23:59:59 | open
        62 | daily     | 2025 | 2026-01-04T00:00:00 | closed
        62 | monthly   | 2026 | 2026-06-01T00:00:00 | open
        62 | yearly    | 2026 | 2026-12-31T23:59:59 | open
        13 | monthly   | 2025 | 2026-01-05T23:59:59 | open
        13 | monthly   | 2025 | 2026-01-06T00:00:00 | closed
        ";
        for row in rows(table) {
            let year: i32 = row[2].parse().unwrap();
            let closed =
                calendar(row[0]).year_closed(periodicity(row[1]), year, local(row[3]), HCM);
            assert_eq!(closed, row[4] == "closed", "{row:?}");
        }
    }

    #[test]
    fn the_calendar_reads_from_config_with_defaults_for_missing_keys() {
        let empty: ReleaseCalendar = toml::from_str("").unwrap();
        assert_eq!(empty, ReleaseCalendar::decree_62_2024());
        let decree_13: ReleaseCalendar =
            toml::from_str("monthly_due_day = 3\nquarterly_due_day = 3\nyearly_due_day = 3")
                .unwrap();
        assert_eq!(decree_13, ReleaseCalendar::decree_13_2026());
        let hours: ReleaseCalendar =
            toml::from_str("daily_due_hours = 6\ngrace_hours = 0").unwrap();
        assert_eq!(hours.daily_due_after, Duration::hours(6));
        assert_eq!(hours.grace, Duration::zero());
        for text in [
            "staleness_from = \"2026-07-01\"",
            "staleness_from = 2026-07-01",
        ] {
            let from: ReleaseCalendar = toml::from_str(text).unwrap();
            assert_eq!(
                from.staleness_from,
                NaiveDate::from_ymd_opt(2026, 7, 1),
                "{text}"
            );
            assert_eq!(from.judged_from, None, "resolved at start, never read");
        }
        for bad in ["staleness_from = \"1 July\"", "staleness_from = 2026"] {
            assert!(toml::from_str::<ReleaseCalendar>(bad).is_err(), "{bad}");
        }
    }

    fn own(months_after: Option<u32>, day: Option<u32>, lag_days: Option<u32>) -> ReleaseCalendar {
        let release = IndicatorRelease {
            months_after,
            day,
            lag_days,
            grace_days: None,
        };
        ReleaseCalendar::default().with_release(Some(&release))
    }

    #[test]
    fn an_indicators_own_calendar_moves_its_due_dates() {
        // PCI-like: due by 31 May of the next year; a monthly figure due by the 15th two months
        // on; a quarter due 45 days after it ends.
        let pci = own(Some(5), Some(31), None);
        let two_months = own(Some(2), Some(15), None);
        let lag = own(None, None, Some(45));
        let cases = [
            (&pci, "2025", "2026-06-01T00:00:00"),
            (&pci, "2026", "2027-06-01T00:00:00"),
            (&two_months, "2026-03", "2026-05-16T00:00:00"),
            (&two_months, "2026-12", "2027-02-16T00:00:00"),
            (&two_months, "2026-Q4", "2027-02-16T00:00:00"),
            (&lag, "2026-Q1", "2026-05-16T00:00:00"),
            (&lag, "2026-03", "2026-05-16T00:00:00"),
        ];
        for (calendar, raw, due) in cases {
            let due_at = calendar.due_at(&period(raw).unwrap(), HCM);
            assert_eq!(due_at, local(due), "{raw}");
        }
    }

    #[test]
    fn a_yearly_index_published_in_may_is_not_stale_in_january() {
        let pci = own(Some(5), Some(31), None);
        let default = ReleaseCalendar::default();
        let yearly = Periodicity::Yearly;
        let january = local("2026-01-20T00:00:00");
        // The city's calendar wants 2025's figure from 9 January; the index's own does not.
        assert!(default.staleness(yearly, None, 2025, january, HCM).stale);
        let judged = pci.staleness(yearly, None, 2025, january, HCM);
        assert!(!judged.stale);
        assert_eq!(judged.expected, None);
        assert!(!pci.year_closed(yearly, 2025, january, HCM));
        // Due 1 June 00:00, late after two days of grace.
        let june = |day: &str| local(&format!("2026-06-{day}"));
        assert!(
            !pci.staleness(yearly, None, 2025, june("02T23:59:59"), HCM)
                .stale
        );
        let late = pci.staleness(yearly, None, 2025, june("03T00:00:00"), HCM);
        assert!(late.stale);
        assert_eq!(late.expected, Some(Period::Year(2025)));
        assert_eq!(late.due_at, Some(june("01T00:00:00")));
        assert!(pci.year_closed(yearly, 2025, june("03T00:00:00"), HCM));
        let reported = Period::Year(2025);
        let fresh = pci.staleness(yearly, Some(&reported), 2025, june("03T00:00:00"), HCM);
        assert!(!fresh.stale);
    }

    #[test]
    fn the_latest_due_period_is_found_for_the_longest_own_calendars() {
        // Every month of two years, under the longest calendars allowed: the period found is
        // the latest whose deadline has passed, as a walk back over every period tells.
        let calendars = [
            own(Some(24), Some(31), None),
            own(Some(24), Some(1), None),
            own(Some(13), Some(28), None),
            own(None, None, Some(730)),
            own(Some(1), Some(6), None),
        ];
        for calendar in &calendars {
            for periodicity in [
                Periodicity::Monthly,
                Periodicity::Quarterly,
                Periodicity::Yearly,
            ] {
                for month in 1..=24 {
                    let now = local(&format!(
                        "{}-{:02}-15T12:00:00",
                        2026 + (month - 1) / 12,
                        (month - 1) % 12 + 1
                    ));
                    let found = calendar.latest_due_period(periodicity, now, HCM);
                    let mut walk = Period::containing(periodicity, local_date(now, HCM));
                    while calendar.deadline(&walk, HCM) > now {
                        walk = walk.previous().unwrap();
                    }
                    assert_eq!(found, Some(walk), "{calendar:?} {periodicity:?} {now}");
                }
            }
        }
    }

    #[test]
    fn an_indicators_grace_replaces_the_citys() {
        let release = IndicatorRelease {
            lag_days: Some(10),
            grace_days: Some(0),
            ..IndicatorRelease::default()
        };
        let calendar = ReleaseCalendar::default().with_release(Some(&release));
        let march = Period::Month(2026, 3);
        assert_eq!(calendar.due_at(&march, HCM), local("2026-04-11T00:00:00"));
        assert_eq!(calendar.deadline(&march, HCM), local("2026-04-11T00:00:00"));
        assert_eq!(
            ReleaseCalendar::default().with_release(None),
            ReleaseCalendar::default()
        );
    }

    #[test]
    fn an_indicators_calendar_is_checked_against_its_periodicity() {
        use Periodicity::*;
        let release = |raw: &str| toml::from_str::<IndicatorRelease>(raw).unwrap();
        let cases = [
            ("months_after = 5\nday = 31", Yearly, None),
            ("lag_days = 45\ngrace_days = 7", Quarterly, None),
            ("lag_days = 2", Daily, None),
            ("months_after = 5", Yearly, Some("day")),
            ("day = 31", Yearly, Some("months_after")),
            ("", Yearly, Some("months_after")),
            (
                "months_after = 5\nday = 31\nlag_days = 3",
                Yearly,
                Some("lag_days"),
            ),
            ("months_after = 25\nday = 1", Yearly, Some("months_after")),
            ("months_after = 0\nday = 1", Monthly, Some("months_after")),
            ("months_after = 1\nday = 32", Monthly, Some("day")),
            ("months_after = 1\nday = 3", Daily, Some("months_after")),
            ("lag_days = 731", Yearly, Some("lag_days")),
            ("lag_days = 1\ngrace_days = 93", Yearly, Some("grace_days")),
        ];
        for (raw, periodicity, problem) in cases {
            let checked = release(raw).check(periodicity).err().map(|(key, _)| key);
            assert_eq!(checked, problem, "{raw}");
        }
        assert!(toml::from_str::<IndicatorRelease>("month = 5").is_err());
        assert!(toml::from_str::<IndicatorRelease>("day = -1").is_err());
    }

    #[test]
    fn the_calendar_rejects_impossible_config() {
        for bad in [
            "monthly_due_day = 0",
            "quarterly_due_day = 32",
            "yearly_due_month = 13",
            "grace_hours = -1",
            "grace = 48",
        ] {
            assert!(toml::from_str::<ReleaseCalendar>(bad).is_err(), "{bad}");
        }
    }
}
