use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, SubsecRound, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How often a feed reports an indicator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Periodicity {
    Daily,
    Monthly,
    Quarterly,
    Yearly,
}

impl Periodicity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Daily => "daily",
            Self::Monthly => "monthly",
            Self::Quarterly => "quarterly",
            Self::Yearly => "yearly",
        }
    }

    /// Periods in one year, used to scale a yearly figure to one period.
    pub fn periods_per_year(self) -> u32 {
        match self {
            Self::Daily => 365,
            Self::Monthly => 12,
            Self::Quarterly => 4,
            Self::Yearly => 1,
        }
    }
}

/// The time an observation is about: a calendar period in the city's zone, or an instant for
/// event feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Period {
    Year(i32),
    Quarter(i32, u32),
    Month(i32, u32),
    Day(NaiveDate),
    Instant(DateTime<Utc>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    #[error("`{0}` is not a period: use YYYY, YYYY-Qn, YYYY-MM or YYYY-MM-DD")]
    Syntax(String),
    #[error("`{0}` is not a valid RFC 3339 timestamp")]
    Timestamp(String),
    #[error("year {0} is outside 1900..=2200")]
    YearOutOfRange(i32),
}

/// The years the service works with: periods, targets and reports outside them are refused.
pub const YEARS: std::ops::RangeInclusive<i32> = 1900..=2200;

fn parse_year(raw: &str) -> Option<i32> {
    if raw.len() != 4 || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    raw.parse().ok()
}

fn parse_two_digits(raw: &str) -> Option<u32> {
    if raw.len() != 2 || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    raw.parse().ok()
}

impl Period {
    /// The period before this one, of the same periodicity; `None` for an instant or at the
    /// calendar's edge.
    pub fn previous(&self) -> Option<Period> {
        Some(match *self {
            Period::Year(year) => Period::Year(year.checked_sub(1)?),
            Period::Quarter(year, quarter) if quarter <= 1 => {
                Period::Quarter(year.checked_sub(1)?, 4)
            }
            Period::Quarter(year, quarter) => Period::Quarter(year, quarter - 1),
            Period::Month(year, month) if month <= 1 => Period::Month(year.checked_sub(1)?, 12),
            Period::Month(year, month) => Period::Month(year, month - 1),
            Period::Day(day) => Period::Day(day.pred_opt()?),
            Period::Instant(_) => return None,
        })
    }

    /// The period after this one, of the same periodicity; `None` for an instant or at the
    /// calendar's edge.
    pub fn next(&self) -> Option<Period> {
        Some(match *self {
            Period::Year(year) => Period::Year(year.checked_add(1)?),
            Period::Quarter(year, quarter) if quarter >= 4 => {
                Period::Quarter(year.checked_add(1)?, 1)
            }
            Period::Quarter(year, quarter) => Period::Quarter(year, quarter + 1),
            Period::Month(year, month) if month >= 12 => Period::Month(year.checked_add(1)?, 1),
            Period::Month(year, month) => Period::Month(year, month + 1),
            Period::Day(day) => Period::Day(day.succ_opt()?),
            Period::Instant(_) => return None,
        })
    }

    /// The period of `periodicity` that holds `date`: its day, month, quarter or year.
    pub fn containing(periodicity: Periodicity, date: NaiveDate) -> Self {
        match periodicity {
            Periodicity::Daily => Self::Day(date),
            Periodicity::Monthly => Self::Month(date.year(), date.month()),
            Periodicity::Quarterly => Self::Quarter(date.year(), date.month0() / 3 + 1),
            Periodicity::Yearly => Self::Year(date.year()),
        }
    }

    /// Parses `YYYY`, `YYYY-Qn`, `YYYY-MM` or `YYYY-MM-DD`.
    pub fn parse(raw: &str) -> Result<Self, PeriodError> {
        let syntax = || PeriodError::Syntax(raw.to_owned());
        let mut parts = raw.split('-');
        let year = parts.next().and_then(parse_year).ok_or_else(syntax)?;
        if !YEARS.contains(&year) {
            return Err(PeriodError::YearOutOfRange(year));
        }
        let second = parts.next();
        let third = parts.next();
        if parts.next().is_some() {
            return Err(syntax());
        }
        match (second, third) {
            (None, None) => Ok(Self::Year(year)),
            (Some(q), None) if q.len() == 2 && q.starts_with('Q') => {
                let quarter: u32 = q[1..].parse().map_err(|_| syntax())?;
                if !(1..=4).contains(&quarter) {
                    return Err(syntax());
                }
                Ok(Self::Quarter(year, quarter))
            }
            (Some(m), None) => {
                let month = parse_two_digits(m).filter(|m| (1..=12).contains(m));
                month.map(|m| Self::Month(year, m)).ok_or_else(syntax)
            }
            (Some(m), Some(d)) => {
                let month = parse_two_digits(m).ok_or_else(syntax)?;
                let day = parse_two_digits(d).ok_or_else(syntax)?;
                NaiveDate::from_ymd_opt(year, month, day)
                    .map(Self::Day)
                    .ok_or_else(syntax)
            }
            (None, Some(_)) => Err(syntax()),
        }
    }

    /// Parses an RFC 3339 timestamp for event feeds, kept to the microsecond: both stores
    /// hold instants at that precision, so a nanosecond timestamp (line protocol's default)
    /// would otherwise read back as another instant than the one the receipt, the engine and
    /// the screens were given.
    pub fn parse_instant(raw: &str) -> Result<Self, PeriodError> {
        let instant = DateTime::parse_from_rfc3339(raw)
            .map_err(|_| PeriodError::Timestamp(raw.to_owned()))?
            .with_timezone(&Utc)
            .trunc_subsecs(6);
        let year = instant.year();
        if !YEARS.contains(&year) {
            return Err(PeriodError::YearOutOfRange(year));
        }
        Ok(Self::Instant(instant))
    }

    /// The periodicity this period belongs to; an instant counts as daily data.
    pub fn periodicity(&self) -> Periodicity {
        match self {
            Self::Year(_) => Periodicity::Yearly,
            Self::Quarter(..) => Periodicity::Quarterly,
            Self::Month(..) => Periodicity::Monthly,
            Self::Day(_) | Self::Instant(_) => Periodicity::Daily,
        }
    }

    /// The calendar year the period lies in, in the city's zone.
    pub fn year(&self, zone: Tz) -> i32 {
        match self {
            Self::Year(y) | Self::Quarter(y, _) | Self::Month(y, _) => *y,
            Self::Day(d) => d.year(),
            Self::Instant(t) => t.with_timezone(&zone).year(),
        }
    }

    fn first_day(&self) -> Option<NaiveDate> {
        match *self {
            Self::Year(y) => NaiveDate::from_ymd_opt(y, 1, 1),
            Self::Quarter(y, q) => NaiveDate::from_ymd_opt(y, (q - 1) * 3 + 1, 1),
            Self::Month(y, m) => NaiveDate::from_ymd_opt(y, m, 1),
            Self::Day(d) => Some(d),
            Self::Instant(_) => None,
        }
    }

    fn day_after_last(&self) -> Option<NaiveDate> {
        match *self {
            Self::Year(y) => NaiveDate::from_ymd_opt(y + 1, 1, 1),
            Self::Quarter(y, 4) | Self::Month(y, 12) => NaiveDate::from_ymd_opt(y + 1, 1, 1),
            Self::Quarter(y, q) => NaiveDate::from_ymd_opt(y, q * 3 + 1, 1),
            Self::Month(y, m) => NaiveDate::from_ymd_opt(y, m + 1, 1),
            Self::Day(d) => d.succ_opt(),
            Self::Instant(_) => None,
        }
    }

    /// The instant the period starts, at local midnight in the city's zone.
    pub fn start(&self, zone: Tz) -> DateTime<Utc> {
        match self {
            Self::Instant(t) => *t,
            other => local_midnight(other.first_day(), zone),
        }
    }

    /// The instant the period ends (exclusive): `2026-03` ends at 2026-04-01 00:00 local time.
    /// Status is judged at this instant (ARCHITECTURE §4).
    pub fn end(&self, zone: Tz) -> DateTime<Utc> {
        match self {
            Self::Instant(t) => *t,
            other => local_midnight(other.day_after_last(), zone),
        }
    }

    /// The period whose bounds in `zone` are `[start, end)`: an instant when they are equal,
    /// else the day, month, quarter or year starting at local midnight on `start` and ending
    /// at `end`. The store keeps only the bounds and derives the text from them; `None` for
    /// bounds no period has.
    pub fn from_bounds(start: DateTime<Utc>, end: DateTime<Utc>, zone: Tz) -> Option<Self> {
        if start == end {
            return Some(Self::Instant(start));
        }
        let first = start.with_timezone(&zone).date_naive();
        let (year, month) = (first.year(), first.month());
        let first_of_month = first.day() == 1;
        [
            Some(Self::Day(first)),
            first_of_month.then_some(Self::Month(year, month)),
            (first_of_month && month % 3 == 1).then_some(Self::Quarter(year, month / 3 + 1)),
            (first_of_month && month == 1).then_some(Self::Year(year)),
        ]
        .into_iter()
        .flatten()
        .find(|p| YEARS.contains(&year) && p.start(zone) == start && p.end(zone) == end)
    }
}

fn local_midnight(date: Option<NaiveDate>, zone: Tz) -> DateTime<Utc> {
    // Parsing bounds years to 1900..=2200, so the date and midnight always exist; the
    // city's zones have no DST gap at midnight.
    let naive = date
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .unwrap_or_default();
    zone.from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| Utc.from_utc_datetime(&naive))
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Year(y) => write!(f, "{y:04}"),
            Self::Quarter(y, q) => write!(f, "{y:04}-Q{q}"),
            Self::Month(y, m) => write!(f, "{y:04}-{m:02}"),
            Self::Day(d) => write!(f, "{}", d.format("%Y-%m-%d")),
            Self::Instant(t) => write!(
                f,
                "{}",
                t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
            ),
        }
    }
}

impl FromStr for Period {
    type Err = PeriodError;

    /// Accepts both calendar periods and RFC 3339 instants, as stored.
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        if raw.contains('T') {
            Self::parse_instant(raw)
        } else {
            Self::parse(raw)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HCM: Tz = chrono_tz::Asia::Ho_Chi_Minh;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn parses_every_calendar_form() {
        assert_eq!(Period::parse("2026").unwrap(), Period::Year(2026));
        assert_eq!(Period::parse("2026-Q1").unwrap(), Period::Quarter(2026, 1));
        assert_eq!(Period::parse("2026-03").unwrap(), Period::Month(2026, 3));
        assert_eq!(
            Period::parse("2026-03-15").unwrap(),
            Period::Day(NaiveDate::from_ymd_opt(2026, 3, 15).unwrap())
        );
    }

    #[test]
    fn rejects_malformed_periods() {
        for bad in [
            "",
            "26",
            "2026-13",
            "2026-00",
            "2026-Q5",
            "2026-Q0",
            "2026-3",
            "2026-02-30",
            "2026-03-15-01",
            "abcd",
            "2026-",
            "-03",
            "1800",
            "2026-q1",
        ] {
            assert!(Period::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn a_month_ends_at_local_midnight_of_the_next_month() {
        let march = Period::parse("2026-03").unwrap();
        assert_eq!(march.start(HCM), utc("2026-03-01T00:00:00+07:00"));
        assert_eq!(march.end(HCM), utc("2026-04-01T00:00:00+07:00"));
    }

    #[test]
    fn quarter_and_year_ends_roll_over_the_year() {
        assert_eq!(
            Period::parse("2026-Q4").unwrap().end(HCM),
            utc("2027-01-01T00:00:00+07:00")
        );
        assert_eq!(
            Period::parse("2026-Q1").unwrap().end(HCM),
            utc("2026-04-01T00:00:00+07:00")
        );
        assert_eq!(
            Period::parse("2026").unwrap().end(HCM),
            utc("2027-01-01T00:00:00+07:00")
        );
        assert_eq!(
            Period::parse("2026-12").unwrap().end(HCM),
            utc("2027-01-01T00:00:00+07:00")
        );
    }

    #[test]
    fn an_instant_belongs_to_the_local_year() {
        let late = Period::parse_instant("2026-12-31T20:00:00Z").unwrap();
        assert_eq!(late.year(HCM), 2027);
        assert_eq!(late.periodicity(), Periodicity::Daily);
    }

    #[test]
    fn bounds_give_back_the_period() {
        for raw in [
            "2026",
            "2026-Q1",
            "2026-Q2",
            "2026-Q4",
            "2026-01",
            "2026-07",
            "2026-12",
            "2026-01-01",
            "2026-07-09",
            "2024-02-29",
            "2026-12-31",
        ] {
            let period = Period::parse(raw).unwrap();
            let back = Period::from_bounds(period.start(HCM), period.end(HCM), HCM);
            assert_eq!(back, Some(period), "{raw}");
        }
        // An instant at local midnight is not the day that starts then.
        let midnight = utc("2026-07-09T00:00:00+07:00");
        assert_eq!(
            Period::from_bounds(midnight, midnight, HCM),
            Some(Period::Instant(midnight))
        );
        let instant: Period = "2026-07-09T10:00:00.25Z".parse().unwrap();
        let Period::Instant(at) = instant else {
            unreachable!()
        };
        assert_eq!(
            Period::from_bounds(at, at, HCM).unwrap().to_string(),
            "2026-07-09T10:00:00.250Z"
        );
    }

    #[test]
    fn bounds_of_no_period_give_nothing() {
        let start = utc("2026-03-01T00:00:00+07:00");
        // Two months, a day not starting at local midnight, an end before the start.
        assert_eq!(
            Period::from_bounds(start, utc("2026-05-01T00:00:00+07:00"), HCM),
            None
        );
        assert_eq!(
            Period::from_bounds(
                utc("2026-03-01T01:00:00+07:00"),
                utc("2026-03-02T01:00:00+07:00"),
                HCM
            ),
            None
        );
        assert_eq!(
            Period::from_bounds(start, utc("2026-02-01T00:00:00+07:00"), HCM),
            None
        );
        // Bounds read in another zone than the one they were made in do not line up.
        assert_eq!(
            Period::from_bounds(start, utc("2026-04-01T00:00:00+07:00"), chrono_tz::UTC),
            None
        );
    }

    #[test]
    fn display_round_trips() {
        for raw in ["2026", "2026-Q3", "2026-07", "2026-07-09"] {
            assert_eq!(Period::parse(raw).unwrap().to_string(), raw);
        }
        let instant: Period = "2026-07-09T10:00:00Z".parse().unwrap();
        assert_eq!(instant.to_string(), "2026-07-09T10:00:00Z");
    }
}
