//! When a pull collector runs: a fixed interval (`every = "15m"`) or a cron expression in the
//! city's zone (`cron = "0 */5 * * * *"`), and the human durations the feed config uses.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeDelta, Timelike, Utc};
use chrono_tz::Tz;

/// A duration written as in `15m`, `90s`, `1h30m`, `250ms` or `1d`.
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let text = raw.trim();
    if text.is_empty() {
        return Err("a duration such as `30s`, `15m` or `1h30m` is required".into());
    }
    let invalid =
        || format!("`{raw}` is not a duration: use e.g. `250ms`, `30s`, `15m`, `1h30m`, `1d`");
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 9 {
            return Err(invalid());
        }
        let amount: u64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let part = match &rest[..unit_len] {
            "ms" => Duration::from_millis(amount),
            "s" => Duration::from_secs(amount),
            "m" => Duration::from_secs(amount * 60),
            "h" => Duration::from_secs(amount * 3600),
            "d" => Duration::from_secs(amount * 86_400),
            _ => return Err(invalid()),
        };
        rest = &rest[unit_len..];
        total = total.checked_add(part).ok_or_else(invalid)?;
    }
    Ok(total)
}

/// Writes a duration back the way [`parse_duration`] reads it.
pub fn format_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if !millis.is_multiple_of(1000) {
        return format!("{millis}ms");
    }
    let mut seconds = duration.as_secs();
    if seconds == 0 {
        return "0s".into();
    }
    let mut text = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if seconds >= size {
            text.push_str(&format!("{}{unit}", seconds / size));
            seconds %= size;
        }
    }
    text
}

/// When a collector runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    /// Every so often, starting at once.
    Every(Duration),
    /// At the instants a cron expression names, in the city's zone.
    Cron(Cron),
}

impl Schedule {
    /// The first run after the collector starts at `now`.
    pub fn first(&self, now: DateTime<Utc>, zone: Tz) -> Option<DateTime<Utc>> {
        match self {
            Self::Every(_) => Some(now),
            Self::Cron(cron) => cron.next_after(now, zone),
        }
    }

    /// The run after one that started at `started`, never earlier than `now`; `None` when a
    /// cron expression has no further instant.
    pub fn next(
        &self,
        started: DateTime<Utc>,
        now: DateTime<Utc>,
        zone: Tz,
    ) -> Option<DateTime<Utc>> {
        match self {
            // Counted from the start, so a slow run does not push every later one back; a run
            // that took longer than the interval is followed at once rather than twice.
            Self::Every(every) => {
                let step = TimeDelta::from_std(*every).unwrap_or(TimeDelta::MAX);
                let due = started.checked_add_signed(step).unwrap_or(now);
                Some(due.max(now))
            }
            Self::Cron(cron) => cron.next_after(now.max(started), zone),
        }
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Every(every) => write!(f, "every {}", format_duration(*every)),
            Self::Cron(cron) => write!(f, "cron {}", cron.source),
        }
    }
}

/// A cron expression: `sec min hour day-of-month month day-of-week`, or the classic five
/// fields without seconds. Each field is `*`, a value, a range `a-b`, a step `*/n`, `a-b/n` or
/// `a/n`, or a comma-separated list of these; months and week days may be named (`JAN`,
/// `MON`); Sunday is 0 or 7; `?` means the same as `*` in the two day fields. As in Vixie cron,
/// when both day fields are restricted a day matching either one is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    source: String,
    seconds: u64,
    minutes: u64,
    hours: u64,
    days_of_month: u64,
    months: u64,
    days_of_week: u64,
    any_day_of_month: bool,
    any_day_of_week: bool,
}

/// How far ahead `next_after` looks: a leap day recurs within eight years (1900 → 1904 and
/// 2096 → 2104 skip one), so a schedule with no instant in that span has none at all.
const SEARCH_YEARS: i32 = 8;

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEK_DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

struct FieldSpec {
    name: &'static str,
    min: u32,
    max: u32,
    /// Names for the values from `min` on (`JAN` = 1, `SUN` = 0).
    names: &'static [&'static str],
}

impl Cron {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let fields: Vec<&str> = raw.split_whitespace().collect();
        let (seconds, rest) = match fields.len() {
            6 => (fields[0], &fields[1..]),
            5 => ("0", &fields[..]),
            n => {
                return Err(format!(
                    "`{raw}` has {n} fields: use `sec min hour day month weekday` (or the five without seconds)"
                ))
            }
        };
        let spec = |name, min, max, names| FieldSpec {
            name,
            min,
            max,
            names,
        };
        let cron = Self {
            source: fields.join(" "),
            seconds: parse_field(seconds, &spec("second", 0, 59, &[]))?,
            minutes: parse_field(rest[0], &spec("minute", 0, 59, &[]))?,
            hours: parse_field(rest[1], &spec("hour", 0, 23, &[]))?,
            days_of_month: parse_field(rest[2], &spec("day of month", 1, 31, &[]))?,
            months: parse_field(rest[3], &spec("month", 1, 12, &MONTHS))?,
            days_of_week: {
                let bits = parse_field(rest[4], &spec("day of week", 0, 7, &WEEK_DAYS))?;
                // Sunday may be written 7; fold it onto 0.
                (bits | (bits >> 7)) & 0x7f
            },
            any_day_of_month: is_any(rest[2]),
            any_day_of_week: is_any(rest[4]),
        };
        let reference = DateTime::<Utc>::from_timestamp(946_684_800, 0).unwrap_or_default();
        if cron.next_after(reference, chrono_tz::UTC).is_none() {
            return Err(format!(
                "`{raw}` names no date that exists (such as 30 February)"
            ));
        }
        Ok(cron)
    }

    fn day_matches(&self, date: NaiveDate) -> bool {
        let by_month_day = bit(self.days_of_month, date.day());
        let by_week_day = bit(self.days_of_week, date.weekday().num_days_from_sunday());
        match (self.any_day_of_month, self.any_day_of_week) {
            (true, true) => true,
            (false, true) => by_month_day,
            (true, false) => by_week_day,
            (false, false) => by_month_day || by_week_day,
        }
    }

    /// The first instant strictly after `after` that the expression names, read in `zone`.
    pub fn next_after(&self, after: DateTime<Utc>, zone: Tz) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&zone).naive_local();
        let mut t = local.with_nanosecond(0)? + TimeDelta::seconds(1);
        let last_year = local.year() + SEARCH_YEARS;
        // Each step either returns or moves `t` to the start of the next candidate month,
        // day, hour, minute or second, so the loop ends within the search span.
        while t.year() <= last_year {
            if !bit(self.months, t.month()) {
                t = start_of_next_month(t)?;
                continue;
            }
            if !self.day_matches(t.date()) {
                t = t.date().succ_opt()?.and_hms_opt(0, 0, 0)?;
                continue;
            }
            if !bit(self.hours, t.hour()) {
                t = t.with_minute(0)?.with_second(0)? + TimeDelta::hours(1);
                continue;
            }
            if !bit(self.minutes, t.minute()) {
                t = t.with_second(0)? + TimeDelta::minutes(1);
                continue;
            }
            if !bit(self.seconds, t.second()) {
                t += TimeDelta::seconds(1);
                continue;
            }
            // A local time that a clock change skips does not exist; look further.
            match t.and_local_timezone(zone).earliest() {
                Some(found) => return Some(found.with_timezone(&Utc)),
                None => t += TimeDelta::seconds(1),
            }
        }
        None
    }
}

fn bit(set: u64, value: u32) -> bool {
    value < 64 && set & (1 << value) != 0
}

fn is_any(field: &str) -> bool {
    field == "*" || field == "?"
}

fn start_of_next_month(t: NaiveDateTime) -> Option<NaiveDateTime> {
    let (year, month) = if t.month() == 12 {
        (t.year() + 1, 1)
    } else {
        (t.year(), t.month() + 1)
    };
    NaiveDate::from_ymd_opt(year, month, 1)?.and_hms_opt(0, 0, 0)
}

fn parse_value(raw: &str, spec: &FieldSpec) -> Result<u32, String> {
    let upper = raw.to_ascii_uppercase();
    let value = match spec.names.iter().position(|name| *name == upper) {
        Some(index) => spec.min + index as u32,
        None => raw
            .parse::<u32>()
            .map_err(|_| format!("`{raw}` is not a valid {}", spec.name))?,
    };
    if !(spec.min..=spec.max).contains(&value) {
        return Err(format!(
            "{} {value} is outside {}-{}",
            spec.name, spec.min, spec.max
        ));
    }
    Ok(value)
}

fn parse_field(raw: &str, spec: &FieldSpec) -> Result<u64, String> {
    let mut set = 0u64;
    for part in raw.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => {
                let step: u32 = step
                    .parse()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("`{part}`: the step must be a positive number"))?;
                (range, step)
            }
            None => (part, 1),
        };
        let (from, to) = if range == "*" || (range == "?" && spec.name.starts_with("day")) {
            (spec.min, spec.max)
        } else if let Some((from, to)) = range.split_once('-') {
            (parse_value(from, spec)?, parse_value(to, spec)?)
        } else {
            let from = parse_value(range, spec)?;
            // `5/15` runs from 5 to the end of the range; a bare `5` is only 5.
            (from, if part.contains('/') { spec.max } else { from })
        };
        if from > to {
            return Err(format!("`{part}`: the range runs backwards"));
        }
        for value in (from..=to).step_by(step as usize) {
            set |= 1 << value;
        }
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const HCM: Tz = chrono_tz::Asia::Ho_Chi_Minh;

    fn local(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        HCM.with_ymd_and_hms(y, mo, d, h, mi, s)
            .single()
            .expect("a valid local time")
            .with_timezone(&Utc)
    }

    fn next(expr: &str, after: DateTime<Utc>) -> DateTime<Utc> {
        Cron::parse(expr)
            .expect("valid")
            .next_after(after, HCM)
            .expect("an instant")
    }

    #[test]
    fn durations_are_read_with_their_units_and_written_back() {
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        for bad in ["", "15", "m", "1.5s", "-3s", "10 minutes", "99999999999s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_millis(200)), "200ms");
    }

    #[test]
    fn every_five_minutes_fires_on_the_next_multiple_of_five() {
        let after = local(2026, 3, 10, 9, 7, 12);
        assert_eq!(next("0 */5 * * * *", after), local(2026, 3, 10, 9, 10, 0));
        assert_eq!(next("*/5 * * * *", after), local(2026, 3, 10, 9, 10, 0));
    }

    #[test]
    fn the_next_instant_is_strictly_after_the_given_one() {
        let at = local(2026, 3, 10, 9, 10, 0);
        assert_eq!(next("0 */5 * * * *", at), local(2026, 3, 10, 9, 15, 0));
    }

    #[test]
    fn hours_are_read_in_the_city_zone() {
        // 07:30 in Ho Chi Minh City is 00:30 UTC.
        let after = local(2026, 3, 10, 12, 0, 0);
        let fire = next("0 30 7 * * *", after);
        assert_eq!(fire, local(2026, 3, 11, 7, 30, 0));
        assert_eq!(fire.hour(), 0);
    }

    #[test]
    fn month_and_year_ends_roll_over() {
        let after = local(2026, 12, 31, 23, 59, 59);
        assert_eq!(next("0 0 0 1 * *", after), local(2027, 1, 1, 0, 0, 0));
        // April has no 31st: the next one is in May.
        assert_eq!(
            next("0 0 8 31 * *", local(2026, 4, 1, 0, 0, 0)),
            local(2026, 5, 31, 8, 0, 0)
        );
    }

    #[test]
    fn names_ranges_lists_and_sunday_as_seven_are_understood() {
        // 2026-03-10 is a Tuesday.
        let after = local(2026, 3, 10, 9, 0, 0);
        assert_eq!(
            next("0 0 8 * * MON-FRI", after),
            local(2026, 3, 11, 8, 0, 0)
        );
        assert_eq!(next("0 0 8 * * 7", after), local(2026, 3, 15, 8, 0, 0));
        assert_eq!(next("0 0 8 * * SUN", after), local(2026, 3, 15, 8, 0, 0));
        assert_eq!(next("0 0 8 1,15 JUN ?", after), local(2026, 6, 1, 8, 0, 0));
        assert_eq!(
            next("0 0 6-18/6 * * *", after),
            local(2026, 3, 10, 12, 0, 0)
        );
    }

    #[test]
    fn both_day_fields_restricted_means_either_day() {
        // The 13th, or any Friday: from Tuesday the 10th, Friday the 13th comes first; from
        // Saturday the 14th, Friday the 20th.
        assert_eq!(
            next("0 0 9 13 * FRI", local(2026, 3, 10, 0, 0, 0)),
            local(2026, 3, 13, 9, 0, 0)
        );
        assert_eq!(
            next("0 0 9 13 * FRI", local(2026, 3, 14, 0, 0, 0)),
            local(2026, 3, 20, 9, 0, 0)
        );
    }

    #[test]
    fn a_leap_day_schedule_waits_for_the_leap_year() {
        assert_eq!(
            next("0 0 0 29 2 *", local(2026, 3, 1, 0, 0, 0)),
            local(2028, 2, 29, 0, 0, 0)
        );
    }

    #[test]
    fn impossible_or_malformed_expressions_are_refused() {
        for bad in [
            "0 0 0 30 2 *",
            "* * * *",
            "0 60 * * * *",
            "0 0 24 * * *",
            "0 0 0 0 * *",
            "0 0 0 * 13 *",
            "0 */0 * * * *",
            "0 10-5 * * * *",
            "0 0 8 * * FUNDAY",
            "0 0 8 x * *",
            "0 ? * * * *",
        ] {
            assert!(Cron::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_interval_counts_from_the_start_of_the_last_run() {
        let every = Schedule::Every(Duration::from_secs(60));
        let started = local(2026, 3, 10, 9, 0, 0);
        let finished = started + TimeDelta::seconds(5);
        assert_eq!(
            every.next(started, finished, HCM),
            Some(local(2026, 3, 10, 9, 1, 0))
        );
        let slow = started + TimeDelta::seconds(90);
        assert_eq!(every.next(started, slow, HCM), Some(slow));
        assert_eq!(every.first(started, HCM), Some(started));
    }
}
