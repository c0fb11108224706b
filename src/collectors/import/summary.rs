//! What an import did, counted across runs (it is saved with the position, so a resumed import
//! ends with the whole file's figures) and printed at the end.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::store::Rejection;

/// Rejections kept as examples per code; the counts are always complete.
pub const EXAMPLES_PER_CODE: usize = 5;

/// Rows counted so far, and the time all runs spent on them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    /// Rows the format's parser produced, readable or not.
    pub rows: u64,
    /// Rows stored as a new observation or a new revision (in a dry run: rows found valid).
    pub accepted: u64,
    /// Valid rows identical to what the store already held.
    pub duplicates: u64,
    pub rejected: u64,
    pub seconds: f64,
    /// Rejections by code, each with its first few rows.
    pub reasons: BTreeMap<String, RejectionGroup>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RejectionGroup {
    pub count: u64,
    /// `row 17: unknown unit `X``, in file order.
    pub examples: Vec<String>,
}

impl Tally {
    /// Counts a batch's rejections; `first_row` is the 0-based index of the batch's first row in
    /// the file, so examples name rows by their 1-based number in the whole file.
    pub fn reject(&mut self, first_row: u64, rejected: &[Rejection]) {
        self.rejected += rejected.len() as u64;
        for rejection in rejected {
            let group = self.reasons.entry(rejection.code.clone()).or_default();
            group.count += 1;
            if group.examples.len() < EXAMPLES_PER_CODE {
                let row = first_row + rejection.index as u64 + 1;
                group
                    .examples
                    .push(format!("row {}: {}", grouped(row), rejection.message));
            }
        }
    }

    /// Rows that passed validation.
    pub fn valid(&self) -> u64 {
        self.accepted + self.duplicates
    }
}

/// The closing report of one run of `ktxh import`.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub file: String,
    pub format: &'static str,
    pub dry_run: bool,
    /// The whole file so far, this run and the runs it resumed.
    pub total: Tally,
    /// Rows and time of this run alone.
    pub this_run_rows: u64,
    pub this_run_seconds: f64,
    /// The row this run started at when it resumed an earlier one.
    pub resumed_at: Option<u64>,
    /// False when the run stopped before the end of the file.
    pub complete: bool,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = &self.total;
        let verb = match (self.dry_run, self.complete) {
            (true, true) => "checked",
            (true, false) => "checking stopped for",
            (false, true) => "imported",
            (false, false) => "import stopped for",
        };
        writeln!(
            f,
            "{verb} {} ({}) in {}: {} rows/s",
            self.file,
            self.format,
            seconds(total.seconds),
            grouped(rate(total.rows, total.seconds)),
        )?;
        writeln!(f, "  rows read:  {:>12}", grouped(total.rows))?;
        if self.dry_run {
            writeln!(f, "  valid:      {:>12}", grouped(total.accepted))?;
        } else {
            writeln!(f, "  accepted:   {:>12}", grouped(total.accepted))?;
            writeln!(f, "  duplicates: {:>12}", grouped(total.duplicates))?;
        }
        writeln!(f, "  rejected:   {:>12}", grouped(total.rejected))?;
        if let Some(row) = self.resumed_at {
            writeln!(
                f,
                "  this run resumed at row {} and read {} rows in {}",
                grouped(row + 1),
                grouped(self.this_run_rows),
                seconds(self.this_run_seconds),
            )?;
        }
        if !total.reasons.is_empty() {
            writeln!(
                f,
                "rejected rows by reason (the first {EXAMPLES_PER_CODE} of each):"
            )?;
            for (code, group) in &total.reasons {
                writeln!(f, "  {code}: {}", grouped(group.count))?;
                for example in &group.examples {
                    writeln!(f, "    {example}")?;
                }
            }
        }
        if self.dry_run {
            writeln!(
                f,
                "dry run: nothing was stored, and valid rows were not compared with the store"
            )?;
        }
        Ok(())
    }
}

/// Rows per second, 0 before any time has passed.
pub fn rate(rows: u64, seconds: f64) -> u64 {
    if seconds > 0.0 {
        (rows as f64 / seconds).round() as u64
    } else {
        0
    }
}

/// `1234567` → `1,234,567`: the command speaks English.
pub fn grouped(number: u64) -> String {
    crate::domain::number::integer(number, crate::domain::number::Notation::English)
}

/// `0.4` → `0.4 s`, `83` → `1 min 23 s`.
pub fn seconds(value: f64) -> String {
    if value < 60.0 {
        format!("{value:.1} s")
    } else {
        let whole = value.round() as u64;
        format!("{} min {} s", whole / 60, whole % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejection(index: usize, code: &str) -> Rejection {
        Rejection {
            index,
            code: code.into(),
            message: format!("reason {index}"),
            message_vi: None,
        }
    }

    #[test]
    fn rejections_are_grouped_by_code_with_file_wide_row_numbers() {
        let mut tally = Tally::default();
        let batch: Vec<_> = (0..8).map(|i| rejection(i, "unknown_unit")).collect();
        tally.reject(1_000, &batch);
        tally.reject(2_000, &[rejection(3, "malformed_row")]);
        assert_eq!(tally.rejected, 9);
        let units = &tally.reasons["unknown_unit"];
        assert_eq!(units.count, 8);
        assert_eq!(units.examples.len(), EXAMPLES_PER_CODE);
        assert_eq!(units.examples[0], "row 1,001: reason 0");
        assert_eq!(
            tally.reasons["malformed_row"].examples,
            ["row 2,004: reason 3"]
        );
    }

    #[test]
    fn numbers_and_durations_read_well() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1_000), "1,000");
        assert_eq!(grouped(1_234_567), "1,234,567");
        assert_eq!(seconds(0.42), "0.4 s");
        assert_eq!(seconds(83.2), "1 min 23 s");
        assert_eq!(rate(1_000, 0.0), 0);
        assert_eq!(rate(1_000, 0.5), 2_000);
    }

    #[test]
    fn a_summary_names_every_count_and_reason() {
        let mut total = Tally {
            rows: 12,
            accepted: 9,
            duplicates: 1,
            seconds: 2.0,
            ..Tally::default()
        };
        total.reject(
            0,
            &[rejection(4, "unknown_unit"), rejection(7, "malformed_row")],
        );
        let summary = Summary {
            file: "history.csv".into(),
            format: "csv",
            dry_run: false,
            total,
            this_run_rows: 7,
            this_run_seconds: 1.0,
            resumed_at: Some(5),
            complete: true,
        };
        let text = summary.to_string();
        assert!(
            text.starts_with("imported history.csv (csv) in 2.0 s: 6 rows/s"),
            "{text}"
        );
        for line in [
            "rows read:            12",
            "accepted:              9",
            "duplicates:            1",
            "rejected:              2",
            "resumed at row 6 and read 7 rows",
            "malformed_row: 1",
            "row 8: reason 7",
            "unknown_unit: 1",
            "row 5: reason 4",
        ] {
            assert!(text.contains(line), "`{line}` missing in:\n{text}");
        }
    }
}
