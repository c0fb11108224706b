//! The release calendar: when each period's figures are due (ARCHITECTURE §4, §8). It is read
//! from `[release_calendar]` in `ktxh.toml`; the judgements made with it (due dates, staleness,
//! closed years) are `rules::staleness`'s.

use chrono::Duration;
use serde::de::{Error as _, Unexpected};
use serde::{Deserialize, Deserializer};

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
