//! The release calendar: when each period's figures are due (ARCHITECTURE §4, §8). It is read
//! from `[release_calendar]` in `ktxh.toml`, and an indicator published on a calendar of its
//! own (an index of the year published months into the next one) overrides it with `release`
//! in its catalogue entry ([`IndicatorRelease`]); the judgements made with them (due dates,
//! staleness, closed years) are `rules::staleness`'s.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::de::{Error as _, Unexpected};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use super::Periodicity;

/// When each periodicity's figures are due after the period ends, plus a grace period.
///
/// Read from config (every key optional, missing keys take the Decree 62/2024 defaults):
///
/// ```toml
/// monthly_due_day = 3      # Decree 13/2026/NĐ-CP; 6 under Decree 62/2024/NĐ-CP
/// quarterly_due_day = 3
/// yearly_due_month = 1
/// yearly_due_day = 3
/// daily_due_hours = 24
/// grace_hours = 48
/// ```
///
/// A due day past the end of a month means its last day (31 = "by the end of the month").
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReleaseCalendar {
    /// Day of the following month by whose end a month's figure is due.
    #[serde(deserialize_with = "day_of_month")]
    pub monthly_due_day: u32,
    /// Day of the month after the quarter by whose end a quarter's figure is due.
    #[serde(deserialize_with = "day_of_month")]
    pub quarterly_due_day: u32,
    /// Month of the following year in which a year's figure is due.
    #[serde(deserialize_with = "month_of_year")]
    pub yearly_due_month: u32,
    /// Day of [`Self::yearly_due_month`] by whose end a year's figure is due.
    #[serde(deserialize_with = "day_of_month")]
    pub yearly_due_day: u32,
    /// How long after its day ends a daily figure (or an event) is due; `daily_due_hours` in
    /// config. A negative value counts as zero.
    #[serde(rename = "daily_due_hours", deserialize_with = "hours")]
    pub daily_due_after: Duration,
    /// Extra time after the due instant before a missing figure counts as stale; `grace_hours` in
    /// config. A negative value counts as zero.
    #[serde(rename = "grace_hours", deserialize_with = "hours")]
    pub grace: Duration,
    /// An indicator's own due rule, in place of the periodicity's above: never read from
    /// `[release_calendar]`, set by [`Self::with_release`].
    #[serde(skip)]
    pub own_due: Option<Due>,
    /// `staleness_from` in config: the local day from which missing figures count as late. A
    /// period whose deadline passed before it is not owed, so a new installation does not
    /// start with an alert for every figure it never had. When absent, the service's first
    /// start, which the store records (ARCHITECTURE §4).
    #[serde(default, deserialize_with = "optional_date")]
    pub staleness_from: Option<NaiveDate>,
    /// The instant staleness is judged from, resolved at start from [`Self::staleness_from`]
    /// or the recorded first start: never read from config. `None` judges every period.
    #[serde(skip)]
    pub judged_from: Option<DateTime<Utc>>,
}

impl Default for ReleaseCalendar {
    fn default() -> Self {
        Self::decree_62_2024()
    }
}

impl ReleaseCalendar {
    /// The calendar of Decree 62/2024/NĐ-CP (in force from 1 August 2024), the default.
    ///
    /// - Monthly: the 6th of the following month. The monthly socio-economic report and the CPI
    ///   "phổ biến vào ngày 6 của tháng kế tiếp sau tháng báo cáo" (baotintuc.vn, 9 June 2024,
    ///   research §5.2 [S10]).
    /// - Quarterly: the 6th of the month after the quarter: the quarterly reports, the unemployment
    ///   estimate and the GDP quarter estimates on 6 April, July, October and January ([S10]).
    /// - Yearly: 6 January of the following year: the "quý IV và cả năm" report on the 6th of the
    ///   next month, and GDP's Q4 and second full-year estimate "ngày 6 tháng 1 năm kế tiếp"
    ///   ([S10]). Later revisions (preliminary in October, final two years on) are not tracked:
    ///   the first estimate is what the feed must deliver. A yearly index published later, such
    ///   as DTI (mid next year, research §5.1 [S20]), needs its own calendar.
    /// - Daily: 24 hours after the day ends, and a grace of 48 hours. No decree covers machine
    ///   feeds; these are the project's choice (a day for the source's batch, a weekend of grace).
    pub fn decree_62_2024() -> Self {
        Self {
            monthly_due_day: 6,
            quarterly_due_day: 6,
            yearly_due_month: 1,
            yearly_due_day: 6,
            daily_due_after: Duration::hours(24),
            grace: Duration::hours(48),
            own_due: None,
            staleness_from: None,
            judged_from: None,
        }
    }

    /// This calendar as an indicator with `release` follows it: its own due rule, and its own
    /// grace when it gives one. Without `release`, this calendar.
    pub fn with_release(&self, release: Option<&IndicatorRelease>) -> Self {
        let Some(release) = release else {
            return self.clone();
        };
        Self {
            own_due: release.due(),
            grace: release
                .grace_days
                .map_or(self.grace, |days| Duration::days(i64::from(days))),
            ..self.clone()
        }
    }

    /// The calendar of Decree 13/2026/NĐ-CP (13 January 2026): the 6th becomes the 3rd.
    ///
    /// CPI, the labour indicators and the monthly and quarterly reports move to the 3rd of the
    /// following month (cafef.vn, 15 January 2026, research §5.2 [S10b]); GDP's Q4 and full-year
    /// estimate move to 3 January of the following year (vietnam.vn, 14 January 2026). Daily and
    /// grace as in [`Self::decree_62_2024`]. The same decree publishes GRDP on the 29th of a
    /// quarter's last month, before the quarter ends; this calendar never expects a figure before
    /// its period ends, so a GRDP feed is held to the later date of the 3rd.
    ///
    /// In config: `monthly_due_day = 3`, `quarterly_due_day = 3`, `yearly_due_day = 3`.
    pub fn decree_13_2026() -> Self {
        Self {
            monthly_due_day: 3,
            quarterly_due_day: 3,
            yearly_due_day: 3,
            ..Self::decree_62_2024()
        }
    }
}

/// When a figure is due after its period, as an indicator's own calendar says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Due {
    /// By the end of day `day` (clamped to the month's length) of the `months`-th month after
    /// the month in which the period ends: `months = 1, day = 6` is the decree's "the 6th of the
    /// following month", and for a year `months = 5, day = 31` is 31 May of the next year.
    MonthsAfter { months: u32, day: u32 },
    /// A fixed time after the period ends.
    After(Duration),
}

/// The longest an indicator's figure may be due after its period: two years. A later one
/// would never be expected while its year's targets are watched.
pub const MAX_MONTHS_AFTER: u32 = 24;
/// [`MAX_MONTHS_AFTER`] in days, for `lag_days`.
pub const MAX_LAG_DAYS: u32 = 730;
/// The longest grace an indicator's calendar may give.
pub const MAX_GRACE_DAYS: u32 = 92;

/// An indicator's own release calendar: `release` in its catalogue entry. Either a month and
/// day after the period (`months_after` with `day`) or a lag in days (`lag_days`); `grace_days`
/// replaces the city's grace when given.
///
/// ```toml
/// # VCCI publishes the PCI of a year in April or May of the next one: due by 31 May.
/// release = { months_after = 5, day = 31 }
/// # 45 days after the quarter ends, and a week of grace.
/// release = { lag_days = 45, grace_days = 7 }
/// ```
///
/// Deserializing checks only the shape; [`Self::check`] checks the values against the
/// indicator's periodicity, as the catalogue loader does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IndicatorRelease {
    /// The month after the month in which the period ends when the figure is due: 1 is the
    /// next month; with `day`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub months_after: Option<u32>,
    /// The day of that month by whose end the figure is due (31 = its last day).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day: Option<u32>,
    /// Days after the period ends when the figure is due, instead of `months_after` and `day`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_days: Option<u32>,
    /// Days after the due date before a missing figure counts as stale; the city's
    /// `grace_hours` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_days: Option<u32>,
}

impl IndicatorRelease {
    /// The due rule, once [`Self::check`] has passed.
    pub fn due(&self) -> Option<Due> {
        match (self.months_after, self.day, self.lag_days) {
            (Some(months), Some(day), None) => Some(Due::MonthsAfter { months, day }),
            (None, None, Some(days)) => Some(Due::After(Duration::days(i64::from(days)))),
            _ => None,
        }
    }

    /// The first problem with these values for an indicator of `periodicity`: the key it is
    /// under (`months_after`, `day`, `lag_days`, `grace_days`) and what is wrong.
    pub fn check(&self, periodicity: Periodicity) -> Result<(), (&'static str, String)> {
        match (self.months_after, self.day, self.lag_days) {
            (None, None, None) => {
                return Err((
                    "months_after",
                    "give `months_after` with `day`, or `lag_days`".to_owned(),
                ))
            }
            (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => {
                return Err((
                    "lag_days",
                    "give either `months_after` with `day` or `lag_days`, not both".to_owned(),
                ))
            }
            (Some(_), None, None) => {
                return Err(("day", "`months_after` needs a `day` (1 to 31)".to_owned()))
            }
            (None, Some(_), None) => {
                return Err((
                    "months_after",
                    "`day` needs `months_after` (1 = the month after the period)".to_owned(),
                ))
            }
            (Some(months), Some(day), None) => {
                if !(1..=MAX_MONTHS_AFTER).contains(&months) {
                    return Err((
                        "months_after",
                        format!("{months} is not 1 to {MAX_MONTHS_AFTER} months after the period"),
                    ));
                }
                if !(1..=31).contains(&day) {
                    return Err(("day", format!("{day} is not a day of the month, 1 to 31")));
                }
                if periodicity == Periodicity::Daily {
                    return Err((
                        "months_after",
                        "a daily indicator's figures are due `lag_days` after their day".to_owned(),
                    ));
                }
            }
            (None, None, Some(days)) => {
                if days > MAX_LAG_DAYS {
                    return Err((
                        "lag_days",
                        format!("{days} is not 0 to {MAX_LAG_DAYS} days after the period"),
                    ));
                }
            }
        }
        if let Some(days) = self.grace_days {
            if days > MAX_GRACE_DAYS {
                return Err((
                    "grace_days",
                    format!("{days} is not 0 to {MAX_GRACE_DAYS} days of grace"),
                ));
            }
        }
        Ok(())
    }
}

/// A day written `"2026-01-01"`: a string, as an environment variable gives it, or a TOML
/// local date.
fn optional_date<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<NaiveDate>, D::Error> {
    let raw = toml::Value::deserialize(deserializer)?;
    let text = match &raw {
        toml::Value::String(text) => text.clone(),
        toml::Value::Datetime(date) if date.time.is_none() && date.offset.is_none() => {
            date.to_string()
        }
        _ => {
            return Err(D::Error::invalid_type(
                Unexpected::Other("a value that is not a date"),
                &"a day such as \"2026-01-01\"",
            ))
        }
    };
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map(Some)
        .map_err(|_| {
            D::Error::invalid_value(Unexpected::Str(&text), &"a day such as \"2026-01-01\"")
        })
}

fn day_of_month<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
    let day = u32::deserialize(deserializer)?;
    if (1..=31).contains(&day) {
        return Ok(day);
    }
    let unexpected = Unexpected::Unsigned(u64::from(day));
    Err(D::Error::invalid_value(
        unexpected,
        &"a day of the month, 1 to 31",
    ))
}

fn month_of_year<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
    let month = u32::deserialize(deserializer)?;
    if (1..=12).contains(&month) {
        return Ok(month);
    }
    let unexpected = Unexpected::Unsigned(u64::from(month));
    Err(D::Error::invalid_value(unexpected, &"a month, 1 to 12"))
}

fn hours<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let hours = u32::deserialize(deserializer)?;
    Ok(Duration::hours(i64::from(hours)))
}
