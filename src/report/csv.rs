//! The report as one CSV table, a row per target: for spreadsheets and further processing.
//!
//! The columns added since the first version (same period last year, the change on it as a
//! fraction, the share of the year's target as a fraction, a slipping target's explanation and
//! its actions, the figures' history, a percent figure's change in points) come last, so
//! readers that pick columns by position keep working.
//!
//! Numbers are written plainly (`1234.5`) whatever the language, so that they read back as
//! numbers, rounded to [`DECIMALS`] places: projections and chances are estimates, and sixteen
//! digits would claim a precision they do not have. The byte-order mark makes spreadsheet
//! programs read the Vietnamese text as UTF-8.

use chrono_tz::Tz;

use super::text::{self, words};
use super::Report;
use crate::domain::TargetValue;

/// Decimal places of the numbers written.
pub const DECIMALS: usize = 4;

fn plain(value: Option<f64>) -> String {
    value.map(rounded).unwrap_or_default()
}

/// `value` to [`DECIMALS`] places, without trailing zeros: `2356027.3972602743` is
/// `2356027.3973`, `10.5` stays `10.5`, and a value that rounds to zero is `0`.
fn rounded(value: f64) -> String {
    let text = format!("{value:.DECIMALS$}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    match text {
        "-0" | "" => "0".to_owned(),
        other => other.to_owned(),
    }
}

/// A cell as a spreadsheet may open it: text that would start a formula (`=`, `+`, `-`, `@`,
/// a tab or a carriage return; an explanation or a task note typed by a department) gets a
/// leading apostrophe, as OWASP advises against CSV injection, so it shows as the text it is.
/// Plain numbers, negative ones included, are left as they are.
fn cell(text: &str) -> std::borrow::Cow<'_, str> {
    // A lone sign, as a table writes for "none", is no formula.
    let formula = text.len() > 1 && text.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if formula && text.parse::<f64>().is_err() {
        format!("'{text}").into()
    } else {
        text.into()
    }
}

/// Writes one record, each cell made safe to open ([`cell`]).
fn write<I, S>(out: &mut csv::Writer<Vec<u8>>, record: I)
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    // Writing into a Vec cannot fail; the result is ignored for that reason.
    let _ = out.write_record(record.into_iter().map(|c| cell(c.as_ref()).into_owned()));
}

/// A slipping target's explanation, or that it has none; empty for the other targets.
fn explanation_text(row: &super::ReportRow, lang: super::Lang) -> String {
    use super::explanations::{is_slipping, words};
    match &row.explanation {
        Some(explanation) => explanation.text.clone(),
        None if is_slipping(row.status, row.verdict) => words(lang).none.to_owned(),
        None => String::new(),
    }
}

pub fn render(report: &Report, zone: Tz) -> Vec<u8> {
    let lang = report.lang;
    let w = words(lang);
    let explained = super::explanations::words(lang);
    let mut out = csv::WriterBuilder::new().from_writer(b"\xEF\xBB\xBF".to_vec());
    let header = [
        w.group,
        w.code,
        w.indicator,
        w.measure,
        w.department,
        w.target,
        w.actual,
        w.expected,
        w.projection,
        w.probability,
        w.status,
        w.previous_status,
        w.reported_through,
        w.last_year,
        w.change,
        w.of_plan,
        explained.explanation,
        explained.actions,
        super::history::heading(lang),
        w.change_points,
    ];
    write(&mut out, header);
    for group in &report.groups {
        for row in &group.rows {
            let target = match row.target {
                TargetValue::Point { value } => rounded(value),
                TargetValue::Band { lo, hi } => format!("{}..{}", rounded(lo), rounded(hi)),
            };
            write(
                &mut out,
                [
                    group.name.as_str(),
                    row.indicator.as_str(),
                    row.name.as_str(),
                    row.measure.as_str(),
                    row.department.as_str(),
                    &target,
                    &plain(row.actual),
                    &plain(row.expected),
                    &plain(row.projection),
                    &plain(row.probability),
                    &row.status_text(lang),
                    row.previous.map_or("", |s| text::status(s, lang)),
                    &row.reported_through
                        .map(|t| text::local_date(t, zone, lang))
                        .unwrap_or_default(),
                    &plain(row.last_year),
                    &plain(row.change),
                    &plain(row.of_plan),
                    &explanation_text(row, lang),
                    &row.explanation
                        .as_ref()
                        .map(|e| super::explanations::actions_text(e, lang))
                        .unwrap_or_default(),
                    super::history::word(report.history, lang),
                    &plain(row.change_points),
                ],
            );
        }
    }
    for row in super::plan::csv_rows(report, header.len()) {
        write(&mut out, &row);
    }
    for row in super::tasks::csv_rows(report, header.len()) {
        write(&mut out, &row);
    }
    out.into_inner().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::rounded;

    #[test]
    fn text_that_would_start_a_formula_is_written_as_text() {
        use super::cell;
        for formula in [
            "=HYPERLINK(\"http://evil.example\",\"x\")",
            "+1+cmd|' /C calc'!A0",
            "-2+3",
            "@SUM(A1)",
            "\t=1",
            "\r=1",
        ] {
            assert_eq!(cell(formula), format!("'{formula}"), "{formula}");
        }
        for plain in ["-12.3457", "0.25", "Sở Y tế", "• Hành động", "", "-", "1e5"] {
            assert_eq!(cell(plain), plain, "{plain}");
        }
    }

    #[test]
    fn numbers_are_rounded_without_trailing_zeros() {
        assert_eq!(rounded(2_356_027.397_260_274_3), "2356027.3973");
        assert_eq!(rounded(0.692_681_622_885_518_8), "0.6927");
        assert_eq!(rounded(10.5), "10.5");
        assert_eq!(rounded(3_150_000.0), "3150000");
        assert_eq!(rounded(-0.000_01), "0");
        assert_eq!(rounded(-12.345_67), "-12.3457");
    }
}
