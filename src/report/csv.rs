//! The report as one CSV table, a row per target: for spreadsheets and further processing.
//!
//! Numbers are written plainly (`1234.5`) whatever the language, so that they read back as
//! numbers; the byte-order mark makes spreadsheet programs read the Vietnamese text as UTF-8.

use chrono_tz::Tz;

use super::text::{self, words};
use super::Report;
use crate::domain::TargetValue;

fn plain(value: Option<f64>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

pub fn render(report: &Report, zone: Tz) -> Vec<u8> {
    let lang = report.lang;
    let w = words(lang);
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
    ];
    // Writing into a Vec cannot fail; the results are ignored for that reason.
    let _ = out.write_record(header);
    for group in &report.groups {
        for row in &group.rows {
            let target = match row.target {
                TargetValue::Point { value } => value.to_string(),
                TargetValue::Band { lo, hi } => format!("{lo}..{hi}"),
            };
            let _ = out.write_record([
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
                text::status(row.status, lang),
                row.previous.map_or("", |s| text::status(s, lang)),
                &row.reported_through
                    .map(|t| text::local_date(t, zone, lang))
                    .unwrap_or_default(),
            ]);
        }
    }
    out.into_inner().unwrap_or_default()
}
