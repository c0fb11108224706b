//! What every fuzz target does with its input: parse it as one push format with the mappings of
//! the shipped `config/feeds.toml`, check what a parser promises, and validate the rows against
//! the shipped catalogue as a push would.
//!
//! A parser promises never to panic and never to allocate without bound: whatever the input, it
//! either refuses the body or returns rows, at most one per byte of input (a row needs at least
//! one byte of its own: a line, a cell, an array element).

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, TimeZone, Utc};
use ktxh::auth::{Principal, Role};
use ktxh::collectors::feeds::FeedsConfig;
use ktxh::config::{load_catalogue, Settings};
use ktxh::ingest::{Format, Mappings, Validator};

struct Harness {
    mappings: Mappings,
    validator: Validator,
    admin: Principal,
    /// A fixed "now", so that a crash found once crashes again on replay.
    now: DateTime<Utc>,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config");
        let settings = Settings::load(&dir, std::iter::empty())
            .unwrap_or_else(|e| panic!("the shipped configuration is invalid: {e}"));
        let feeds = FeedsConfig::load(&dir)
            .unwrap_or_else(|e| panic!("the shipped feeds.toml is invalid: {e}"));
        let catalogue = Arc::new(
            load_catalogue(&dir)
                .unwrap_or_else(|e| panic!("the shipped catalogue is invalid: {e}")),
        );
        Harness {
            validator: Validator::new(catalogue.clone(), settings.zone(), settings.ingest.clone()),
            mappings: feeds.mappings,
            admin: Principal {
                token_id: "fuzz".into(),
                name: "fuzz".into(),
                role: Role::Admin,
                department: None,
            },
            now: Utc.with_ymd_and_hms(2026, 6, 30, 12, 0, 0).unwrap(),
        }
    })
}

/// Parses `data` as `format`, checks the parser's promises and validates the rows.
pub fn exercise(format: Format, data: &[u8]) {
    let harness = harness();
    let rows = match format.parse(data, &harness.mappings) {
        Ok(rows) => rows,
        Err(error) => {
            // The message goes back to the sender; building it must not fail either.
            let _ = error.to_string();
            return;
        }
    };
    assert!(
        rows.len() <= data.len(),
        "{format}: {} rows from {} bytes",
        rows.len(),
        data.len()
    );
    // As an admin, whom no scope refuses: the validation of every row is what is exercised.
    let (valid, rejected) = harness
        .validator
        .validate(&harness.admin, rows, harness.now)
        .unwrap_or_else(|foreign| panic!("{format}: an admin was refused: {foreign:?}"));
    for row in &valid {
        assert!(
            row.value.is_none_or(f64::is_finite),
            "{format}: a non-finite value passed validation: {row:?}"
        );
    }
    for rejection in &rejected {
        assert!(
            !rejection.code.is_empty(),
            "{format}: a rejection without a code"
        );
    }
}
