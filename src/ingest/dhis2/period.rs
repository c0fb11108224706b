//! DHIS2 period identifiers (the ISO forms of the Web API) and the periods the catalogue has.
//!
//! DHIS2 writes `2026` (yearly), `202603` (monthly), `2026Q1` (quarterly) and `20260315`
//! (daily); these become `2026`, `2026-03`, `2026-Q1` and `2026-03-15`. Its other period types
//! (weekly, bi-weekly, bi-monthly, six-monthly, financial years) have no counterpart in the
//! catalogue and are refused by name, so the sender learns which setting to change.

use crate::domain::Period;

/// Why a DHIS2 period cannot be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodProblem {
    #[error("`{period}` is a {kind} period; the catalogue has daily, monthly, quarterly and yearly periods only")]
    Unsupported { period: String, kind: &'static str },
    #[error("`{0}` is not a DHIS2 period: use 2026, 202603, 2026Q1 or 20260315")]
    Syntax(String),
    #[error("`{period}`: {reason}")]
    Invalid { period: String, reason: String },
}

fn digits(raw: &str, count: usize) -> bool {
    raw.len() == count && raw.bytes().all(|b| b.is_ascii_digit())
}

/// `1`..=`53` with at most two digits.
fn ordinal(raw: &str) -> bool {
    (1..=2).contains(&raw.len())
        && raw.bytes().all(|b| b.is_ascii_digit())
        && raw.parse::<u32>().is_ok_and(|n| (1..=53).contains(&n))
}

/// The period type of an identifier the catalogue cannot hold, if it is one.
fn unsupported_kind(raw: &str) -> Option<&'static str> {
    let year = raw.get(..4).filter(|y| digits(y, 4))?;
    let rest = &raw[year.len()..];
    if rest.strip_prefix("BiW").is_some_and(ordinal) {
        return Some("bi-weekly");
    }
    let weekly = ["W", "WedW", "ThuW", "SatW", "SunW"]
        .iter()
        .any(|prefix| rest.strip_prefix(prefix).is_some_and(ordinal));
    if weekly {
        return Some("weekly");
    }
    if digits(rest.strip_suffix('B').unwrap_or(""), 2) {
        return Some("bi-monthly");
    }
    for prefix in ["S", "AprilS", "NovS"] {
        if matches!(rest.strip_prefix(prefix), Some("1" | "2")) {
            return Some("six-monthly");
        }
    }
    matches!(rest, "April" | "July" | "Oct" | "Nov" | "Sep").then_some("financial-year")
}

/// Converts a DHIS2 period to the form [`Period::parse`] reads.
pub fn convert(raw: &str) -> Result<String, PeriodProblem> {
    let raw = raw.trim();
    let converted = if digits(raw, 4) {
        raw.to_owned()
    } else if digits(raw, 6) {
        format!("{}-{}", &raw[..4], &raw[4..])
    } else if digits(raw, 8) {
        format!("{}-{}-{}", &raw[..4], &raw[4..6], &raw[6..])
    } else if raw.len() == 6
        && raw.get(..4).is_some_and(|year| digits(year, 4))
        && raw.as_bytes()[4] == b'Q'
    {
        format!("{}-{}", &raw[..4], &raw[4..])
    } else if let Some(kind) = unsupported_kind(raw) {
        return Err(PeriodProblem::Unsupported {
            period: raw.to_owned(),
            kind,
        });
    } else {
        return Err(PeriodProblem::Syntax(raw.to_owned()));
    };
    // The calendar checks (month 13, 30 February, the year range) are the domain's.
    Period::parse(&converted)
        .map(|period| period.to_string())
        .map_err(|error| PeriodProblem::Invalid {
            period: raw.to_owned(),
            reason: error.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_four_storable_period_types_are_converted() {
        for (dhis2, ours) in [
            ("2026", "2026"),
            ("202603", "2026-03"),
            ("202612", "2026-12"),
            ("2026Q1", "2026-Q1"),
            ("2026Q4", "2026-Q4"),
            ("20260315", "2026-03-15"),
            ("20240229", "2024-02-29"),
            (" 202603 ", "2026-03"),
        ] {
            assert_eq!(convert(dhis2).as_deref(), Ok(ours), "{dhis2}");
        }
    }

    #[test]
    fn other_dhis2_period_types_are_refused_by_name() {
        for (dhis2, kind) in [
            ("2026W11", "weekly"),
            ("2026W1", "weekly"),
            ("2026W53", "weekly"),
            ("2026WedW5", "weekly"),
            ("2026ThuW5", "weekly"),
            ("2026SatW5", "weekly"),
            ("2026SunW5", "weekly"),
            ("2026BiW3", "bi-weekly"),
            ("202601B", "bi-monthly"),
            ("2026S1", "six-monthly"),
            ("2026AprilS2", "six-monthly"),
            ("2026NovS1", "six-monthly"),
            ("2026April", "financial-year"),
            ("2026July", "financial-year"),
            ("2026Oct", "financial-year"),
            ("2026Nov", "financial-year"),
        ] {
            match convert(dhis2) {
                Err(PeriodProblem::Unsupported { kind: found, .. }) => {
                    assert_eq!(found, kind, "{dhis2}")
                }
                other => panic!("{dhis2}: {other:?}"),
            }
        }
        let message = convert("2026W11").unwrap_err().to_string();
        assert!(
            message.contains("`2026W11` is a weekly period"),
            "{message}"
        );
    }

    #[test]
    fn malformed_and_impossible_periods_are_refused() {
        for raw in [
            "",
            "26",
            "2026-03",
            "2026-Q1",
            "2026q1",
            "2026W",
            "2026W54",
            "2026W123",
            "2026S3",
            "2026Jan",
            "20260",
            "2026031",
            "२०२६",
            "2026Q1x",
            "abcd",
            "aaa€",
            "20€Q1",
        ] {
            assert!(
                matches!(convert(raw), Err(PeriodProblem::Syntax(_))),
                "{raw}: {:?}",
                convert(raw)
            );
        }
        for raw in [
            "202613", "202600", "2026Q5", "2026Q0", "20260230", "1800", "300001",
        ] {
            assert!(
                matches!(convert(raw), Err(PeriodProblem::Invalid { .. })),
                "{raw}: {:?}",
                convert(raw)
            );
        }
    }
}
