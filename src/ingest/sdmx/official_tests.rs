//! The SDMX Technical Working Group's own data messages, read by the parsers: the samples of
//! sdmx-twg/sdmx-json at 2.0.0 and 2.1.0 and the examples of the SDMX-CSV field guide at 2.0.0
//! and 2.1.0 (tests/fixtures/sdmx-official, README.md there says where each comes from).
//!
//! `expected.toml` there lists every file with what the parser makes of it: how many rows it
//! stores, withdraws and rejects (and why), or why it refuses the message as a whole. Messages
//! marked `meta.test` are refused as test data, then read once more with the mark cleared so
//! that their content is checked too.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{parse_csv, parse_json, SdmxMapping};
use crate::ingest::{RawRow, RawValue};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sdmx-official")
}

fn mapping() -> SdmxMapping {
    let text = std::fs::read_to_string(fixtures().join("mapping.toml")).expect("mapping.toml");
    toml::from_str(&text).expect("the samples' mapping is valid")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    sample: Vec<Sample>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Sample {
    file: String,
    /// The message says `meta.test: true`.
    #[serde(default)]
    test: bool,
    /// The message is refused whole with a message holding this text; `reason` says why.
    refused: Option<String>,
    #[serde(default)]
    stored: usize,
    #[serde(default)]
    withdrawn: usize,
    /// A text each rejected row's reason holds, in row order.
    #[serde(default)]
    rejected: Vec<String>,
    /// Why the message, or some of its rows, cannot be stored.
    reason: Option<String>,
}

fn expected() -> Expected {
    let text = std::fs::read_to_string(fixtures().join("expected.toml")).expect("expected.toml");
    toml::from_str(&text).expect("expected.toml is valid")
}

/// Every `.json` and `.csv` under the version directories, relative to the fixtures.
fn sample_files() -> BTreeSet<String> {
    fn walk(dir: &Path, root: &Path, found: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).expect("readable fixtures") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(&path, root, found);
            } else if path
                .extension()
                .is_some_and(|ext| ext == "json" || ext == "csv")
            {
                let relative = path.strip_prefix(root).expect("under the fixtures");
                found.insert(relative.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let root = fixtures();
    let mut found = BTreeSet::new();
    for version in ["json-2.0.0", "json-2.1.0", "csv-2.0.0", "csv-2.1.0"] {
        walk(&root.join(version), &root, &mut found);
    }
    found
}

fn parse(file: &str, body: &[u8], mapping: &SdmxMapping) -> Result<Vec<RawRow>, String> {
    let parsed = if file.ends_with(".csv") {
        parse_csv(body, mapping)
    } else {
        parse_json(body, mapping)
    };
    parsed.map_err(|error| format!("{}: {}", error.pointer, error.message))
}

/// The message with `meta.test` cleared.
fn without_test_mark(body: &[u8]) -> Vec<u8> {
    let mut message: serde_json::Value = serde_json::from_slice(body).expect("JSON");
    message["meta"]["test"] = serde_json::Value::Bool(false);
    serde_json::to_vec(&message).expect("serialisable")
}

fn read(file: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// Checks one sample against its entry; the differences, if any.
fn check(sample: &Sample, mapping: &SdmxMapping) -> Vec<String> {
    let file = sample.file.as_str();
    let mut body = read(file);
    let mut wrong = Vec::new();
    if sample.test {
        match parse(file, &body, mapping) {
            Err(message) if message.contains("meta.test is true") => {}
            other => wrong.push(format!("{file}: a test message, but read as {other:?}")),
        }
        body = without_test_mark(&body);
    }
    if sample.refused.is_some() || !sample.rejected.is_empty() {
        assert!(
            sample.reason.is_some(),
            "{file}: a refused message or rejected rows need their `reason`"
        );
    }
    match (parse(file, &body, mapping), &sample.refused) {
        (Err(message), Some(expected)) if message.contains(expected.as_str()) => {}
        (Err(message), _) => wrong.push(format!("{file}: refused: {message}")),
        (Ok(rows), Some(expected)) => wrong.push(format!(
            "{file}: read as {} rows, expected refused with `{expected}`",
            rows.len()
        )),
        (Ok(rows), None) => {
            let rejected: Vec<&str> = rows.iter().filter_map(|r| r.malformed.as_deref()).collect();
            let withdrawn = rows
                .iter()
                .filter(|r| r.retract && r.malformed.is_none())
                .count();
            let stored = rows.len() - rejected.len() - withdrawn;
            if (stored, withdrawn) != (sample.stored, sample.withdrawn) {
                wrong.push(format!(
                    "{file}: {stored} stored and {withdrawn} withdrawn, expected {} and {}",
                    sample.stored, sample.withdrawn
                ));
            }
            let matches = rejected.len() == sample.rejected.len()
                && rejected
                    .iter()
                    .zip(&sample.rejected)
                    .all(|(reason, expected)| reason.contains(expected.as_str()));
            if !matches {
                wrong.push(format!(
                    "{file}: rejected {rejected:?}, expected {:?}",
                    sample.rejected
                ));
            }
        }
    }
    wrong
}

#[test]
fn every_official_sample_is_read_as_listed() {
    let expected = expected();
    let mapping = mapping();
    let listed: BTreeSet<String> = expected.sample.iter().map(|s| s.file.clone()).collect();
    assert_eq!(
        listed.len(),
        expected.sample.len(),
        "a file is listed twice in expected.toml"
    );
    assert_eq!(
        listed,
        sample_files(),
        "expected.toml lists exactly the vendored samples"
    );
    let wrong: Vec<String> = expected
        .sample
        .iter()
        .flat_map(|sample| check(sample, &mapping))
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// A row read: indicator, unit, period, value, revision label, and whether it withdraws.
type Read = (
    String,
    String,
    String,
    Option<RawValue>,
    Option<String>,
    bool,
);

/// The rows the sample gives, its rejected rows left out.
fn rows_of(file: &str) -> Vec<Read> {
    let mut body = read(file);
    if file.ends_with(".json") {
        body = without_test_mark(&body);
    }
    let rows = parse(file, &body, &mapping()).unwrap_or_else(|e| panic!("{file}: {e}"));
    // Rejected rows are checked by `every_official_sample_is_read_as_listed`.
    rows.into_iter()
        .filter(|row| row.malformed.is_none())
        .map(|row| {
            (
                row.indicator.unwrap_or_default(),
                row.unit.unwrap_or_default(),
                row.period.unwrap_or_default(),
                row.value,
                row.revision,
                row.retract,
            )
        })
        .collect()
}

fn number(value: f64) -> Option<RawValue> {
    Some(RawValue::Number(value))
}

fn text(value: &str) -> Option<RawValue> {
    Some(RawValue::Text(value.into()))
}

#[test]
fn the_exchange_rate_series_of_sdmx_json_2_1_read_as_the_sample_says() {
    // exr-time-series.json: NZD and RUB against EUR, 18 and 21 January 2013, OBS_STATUS `A`
    // (index 0) on each observation; the second RUB observation adds an index past the
    // attributes, which is ignored.
    let a = || Some("A".to_owned());
    let row = |currency: &str, day: &str, value: f64| {
        (
            currency.to_owned(),
            "EUR".to_owned(),
            format!("2013-01-{day}"),
            number(value),
            a(),
            false,
        )
    };
    assert_eq!(
        rows_of("json-2.1.0/exr/exr-time-series.json"),
        vec![
            row("NZD", "18", 1.5931),
            row("NZD", "21", 1.5925),
            row("RUB", "18", 40.3426),
            row("RUB", "21", 40.3),
        ]
    );
}

#[test]
fn a_null_entry_of_an_attributes_values_is_no_value() {
    // constructed-sample-full.json lists OBS_STATUS values `[null, {"id": "A"}]`: observations
    // pointing at index 0 have no status, so no revision label, and are still read.
    let rows = rows_of("json-2.1.0/constructed-sample-full.json");
    let revisions: Vec<Option<&str>> = rows.iter().map(|r| r.4.as_deref()).collect();
    assert!(revisions.contains(&None), "{rows:?}");
    assert!(revisions.contains(&Some("A")), "{rows:?}");
    assert!(rows.iter().all(|r| r.3.is_some() && !r.5), "{rows:?}");
}

#[test]
fn a_delete_data_set_withdraws_the_observation_its_key_names() {
    // exr-action-delete.json: after a Replace data set (whose rows expected.toml lists as
    // rejected), a Delete data set names NZD of 2013-01-18 with an empty observation array.
    for version in ["json-2.0.0", "json-2.1.0"] {
        let rows = rows_of(&format!("{version}/exr/exr-action-delete.json"));
        assert_eq!(
            rows,
            vec![(
                "NZD".to_owned(),
                "EUR".to_owned(),
                "2013-01-18".to_owned(),
                None,
                None,
                true
            )]
        );
    }
}

#[test]
fn the_csv_field_guides_merge_and_replace_rows_write_their_values() {
    let row = |month: &str, value: &str, status: &str| {
        (
            "A".to_owned(),
            "B".to_owned(),
            format!("2014-{month}"),
            text(value),
            Some(status.to_owned()),
            false,
        )
    };
    // Example 1: two Merge rows, ATTR_1 the revision attribute.
    assert_eq!(
        rows_of("csv-2.1.0/example-01.csv"),
        vec![row("01", "12.4", "N"), row("02", "10.8", "Y")]
    );
    // Example 4: `;`-separated, decimal commas, `labels=both`.
    assert_eq!(
        rows_of("csv-2.1.0/example-04.csv"),
        vec![row("01", "12.4", "N"), row("02", "10.8", "Y")]
    );
    // Example 10: a Merge row and a Replace row.
    assert_eq!(
        rows_of("csv-2.1.0/example-10.csv"),
        vec![row("01", "12.4", "X"), row("02", "10.8", "Y")]
    );
}
