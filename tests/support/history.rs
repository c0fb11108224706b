//! A back-fill file of daily history, written from the shipped catalogue, for the tests that
//! import one.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use ktxh::config::load_catalogue;
use ktxh::domain::{Catalogue, Periodicity};

/// Writes `rows` valid CSV rows: every daily indicator, for every unit reporting it, day after
/// day from 1 January 2023, with values inside each indicator's range. Rows come series by
/// series, as a database export sorted by indicator, unit and period has them.
pub fn write_history(path: &Path, rows: usize) {
    let catalogue = load_catalogue(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config"))
        .expect("the shipped catalogue");
    let series = daily_series(&catalogue);
    assert!(series.len() >= 800, "{} daily series", series.len());
    let days = rows.div_ceil(series.len());
    let start = chrono::NaiveDate::from_ymd_opt(2023, 1, 1).unwrap();
    let mut out = String::with_capacity(rows * 56);
    out.push_str("indicator,unit,period,value,source\n");
    for row in 0..rows {
        let (indicator, unit, (lo, hi), whole) = &series[row / days];
        let day = start + chrono::Days::new((row % days) as u64);
        let value = lo + (hi - lo) * ((row * 7919 % 1000) as f64 / 1000.0);
        // A count is written whole, as its catalogue entry requires.
        let decimals = if *whole { 0 } else { 2 };
        writeln!(out, "{indicator},{unit},{day},{value:.decimals$},backfill").unwrap();
    }
    std::fs::write(path, out).unwrap();
}

/// Each daily series: indicator, unit, plausible range and whether it counts.
fn daily_series(catalogue: &Catalogue) -> Vec<(String, String, (f64, f64), bool)> {
    let mut series = Vec::new();
    for indicator in &catalogue.indicators {
        if indicator.periodicity != Periodicity::Daily {
            continue;
        }
        for unit in catalogue.reporting_units(indicator) {
            series.push((
                indicator.code.to_string(),
                unit.code.to_string(),
                indicator.range,
                indicator.whole,
            ));
        }
    }
    series
}
