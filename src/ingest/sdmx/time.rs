//! SDMX time periods → the catalogue's periods.
//!
//! SDMX writes a period either in the Gregorian forms the catalogue shares (`2026`, `2026-03`,
//! `2026-03-15`), in reporting-period forms (`2026-A1`, `2026-S1`, `2026-T1`, `2026-Q1`,
//! `2026-M03`, `2026-W05`, `2026-D075`), as a date-time, or as a time range
//! (`2026-01-01/P3M`). Reporting periods are read against a calendar reporting year (starting
//! on 1 January), the year the city's plans and budget use.

use chrono::{Datelike, NaiveDate};

use crate::domain::{Period, PeriodError};

/// A time the catalogue can hold.
#[derive(Debug, Clone, PartialEq)]
pub enum Time {
    Period(Period),
    /// A date-time, passed on as the row's `ts` for event feeds of daily indicators.
    Instant(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("`{0}` is a half-year; the catalogue has no half-yearly indicators")]
    HalfYear(String),
    #[error("`{0}` is a four-month period (trimester); the catalogue has no such indicators")]
    Trimester(String),
    #[error("`{0}` is a week; the catalogue has no weekly indicators")]
    Week(String),
    #[error(
        "`{0}` is not an SDMX time period: use 2026, 2026-A1, 2026-Q1, 2026-03, 2026-M03, \
         2026-03-15, 2026-D075, a date-time or a range such as 2026-01-01/P3M"
    )]
    Syntax(String),
    #[error("`{raw}`: {source}")]
    Invalid { raw: String, source: PeriodError },
    #[error(
        "time range `{0}` is not one calendar year, quarter, month or day \
         (use YYYY-01-01/P1Y, a quarter's first day/P3M, a month's first day/P1M or a day/P1D)"
    )]
    Range(String),
}

fn calendar(raw: &str, text: &str) -> Result<Time, TimeError> {
    Period::parse(text)
        .map(Time::Period)
        .map_err(|source| TimeError::Invalid {
            raw: raw.to_owned(),
            source,
        })
}

/// Converts an SDMX time period (`TIME_PERIOD`) into a period the catalogue parses.
pub fn parse(raw: &str) -> Result<Time, TimeError> {
    let text = raw.trim();
    if let Some((start, duration)) = text.split_once('/') {
        return time_range(text, start, duration);
    }
    // `YYYY-MM-DDThh:mm:ss...`; a `T` elsewhere is a trimester (`2026-T1`).
    if text.get(10..11) == Some("T") {
        return Ok(Time::Instant(text.to_owned()));
    }
    let Some((year, rest)) = text.split_once('-') else {
        return calendar(raw, text);
    };
    match rest.chars().next() {
        Some(letter) if letter.is_ascii_alphabetic() => {
            // The letter is ASCII, so slicing after its one byte stays on a char boundary.
            reporting_period(text, year, letter.to_ascii_uppercase(), &rest[1..])
        }
        _ => calendar(raw, text),
    }
}

/// `YYYY-Xn...`: the reporting-period forms of SDMX.
fn reporting_period(raw: &str, year: &str, letter: char, number: &str) -> Result<Time, TimeError> {
    let syntax = || TimeError::Syntax(raw.to_owned());
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(syntax());
    }
    // At most three digits, so the number always fits.
    let n: u32 = match number.len() {
        1..=3 => number.parse().map_err(|_| syntax())?,
        _ => return Err(syntax()),
    };
    let in_range = |width: usize, max: u32| number.len() == width && (1..=max).contains(&n);
    match letter {
        'A' if in_range(1, 1) => calendar(raw, year),
        'S' if in_range(1, 2) => Err(TimeError::HalfYear(raw.to_owned())),
        'T' if in_range(1, 3) => Err(TimeError::Trimester(raw.to_owned())),
        'Q' if in_range(1, 4) => calendar(raw, &format!("{year}-Q{n}")),
        'M' if in_range(2, 12) => calendar(raw, &format!("{year}-{number}")),
        'W' if in_range(2, 53) => Err(TimeError::Week(raw.to_owned())),
        'D' if in_range(3, 366) => {
            let Time::Period(Period::Year(year)) = calendar(raw, year)? else {
                return Err(syntax());
            };
            NaiveDate::from_yo_opt(year, n)
                .map(|date| Time::Period(Period::Day(date)))
                .ok_or_else(syntax)
        }
        _ => Err(syntax()),
    }
}

/// `start/duration` where the range is exactly one calendar period.
fn time_range(raw: &str, start: &str, duration: &str) -> Result<Time, TimeError> {
    let range = || TimeError::Range(raw.to_owned());
    let date_text = start.strip_suffix("T00:00:00").unwrap_or(start);
    let Ok(Period::Day(date)) = Period::parse(date_text) else {
        return Err(range());
    };
    let (year, month, day) = (date.year(), date.month(), date.day());
    let period = match duration {
        "P1Y" | "P12M" if month == 1 && day == 1 => Period::Year(year),
        "P3M" if day == 1 && month % 3 == 1 => Period::Quarter(year, month.div_ceil(3)),
        "P1M" if day == 1 => Period::Month(year, month),
        "P1D" => Period::Day(date),
        _ => return Err(range()),
    };
    Ok(Time::Period(period))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn period(raw: &str) -> String {
        match parse(raw) {
            Ok(Time::Period(period)) => period.to_string(),
            other => panic!("{raw}: {other:?}"),
        }
    }

    #[test]
    fn gregorian_and_reporting_forms_become_catalogue_periods() {
        let cases = [
            ("2026", "2026"),
            ("2026-A1", "2026"),
            ("2026-Q1", "2026-Q1"),
            ("2026-q4", "2026-Q4"),
            ("2026-03", "2026-03"),
            ("2026-M03", "2026-03"),
            ("2026-M12", "2026-12"),
            ("2026-03-15", "2026-03-15"),
            ("2026-D001", "2026-01-01"),
            ("2026-D075", "2026-03-16"),
            ("2024-D366", "2024-12-31"),
            (" 2026-M07 ", "2026-07"),
            ("2026-01-01/P1Y", "2026"),
            ("2026-04-01/P3M", "2026-Q2"),
            ("2026-10-01T00:00:00/P3M", "2026-Q4"),
            ("2026-03-01/P1M", "2026-03"),
            ("2026-03-15/P1D", "2026-03-15"),
        ];
        for (raw, expected) in cases {
            assert_eq!(period(raw), expected, "{raw}");
        }
    }

    #[test]
    fn date_times_pass_through_as_instants() {
        assert_eq!(
            parse("2026-03-15T10:00:00+07:00"),
            Ok(Time::Instant("2026-03-15T10:00:00+07:00".into()))
        );
    }

    #[test]
    fn periodicities_the_catalogue_lacks_are_refused_by_name() {
        assert!(matches!(parse("2026-S1"), Err(TimeError::HalfYear(_))));
        assert!(matches!(parse("2026-T3"), Err(TimeError::Trimester(_))));
        assert!(matches!(parse("2026-W05"), Err(TimeError::Week(_))));
        assert!(parse("2026-S1")
            .unwrap_err()
            .to_string()
            .contains("half-year"));
    }

    #[test]
    fn malformed_periods_are_errors_never_panics() {
        for bad in [
            "",
            "-",
            "2026-",
            "2026-A2",
            "2026-S3",
            "2026-Q5",
            "2026-Q01",
            "2026-M3",
            "2026-M13",
            "2026-M00",
            "2026-D000",
            "2026-D367",
            "2025-D366",
            "2026-D75",
            "2026-W54",
            "2026-X1",
            "2026-13",
            "1800",
            "2026-Mé1",
            "é-é",
            "2026-Q1é",
            "2026-02-30",
            "2026-01-02/P1Y",
            "2026-02-01/P3M",
            "2026-01-01/P2M",
            "2026-01-01/",
            "/P1Y",
            "2026-03-15T10:00:00/P1D",
            "2026-D99999999999999999999",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} → {:?}", parse(bad));
        }
    }
}
