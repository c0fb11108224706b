//! Shared fixtures of the SDMX parsers' tests, and the rules both formats share.

use std::path::Path;

use super::*;
// The shipped `feeds.toml` is read as the service reads it, by the collectors' loader.
use crate::collectors::feeds::FeedsConfig;

/// Two dataflows: the statistics office's, with an area dimension and code translations, and
/// the customs office's, with a fixed unit.
pub(crate) const MAPPING: &str = r#"
[[dataflow]]
structure = "VN_HCMSO:DF_KTXH(1.*)"
indicator_dimension = "INDICATOR"
unit_dimension = "REF_AREA"
revision_attribute = "OBS_STATUS"
reported_at_attribute = "UPDATED"
indicator_codes = { CPI_YOY = "CPI_GROWTH" }
unit_codes = { "VN-SG" = "HCM" }
revision_labels = { P = "provisional", A = "normal" }

[[dataflow]]
structure = "VN_HQKV2:DF_TRADE(*)"
indicator_dimension = "INDICATOR"
unit = "HCM"
indicator_codes = { EXP_VAL = "EXPORT_TURNOVER" }
"#;

pub(crate) fn mapping() -> SdmxMapping {
    toml::from_str(MAPPING).expect("the test mapping is valid")
}

fn observation<'a>(
    dataflow: &'a Dataflow,
    structure: &'a StructureRef,
    action: Action,
    time: Option<&'a str>,
    measure: Measure,
) -> Observation<'a> {
    Observation {
        dataflow,
        structure,
        action,
        indicator: Some("CPI_YOY"),
        unit: Some("VN-SG"),
        time,
        measure,
        revision: Some("P"),
        reported_at: None,
        reported_at_implied: false,
        has_attributes: true,
    }
}

fn text(value: &str) -> Measure {
    Measure::Value(RawValue::Text(value.into()))
}

#[test]
fn an_observation_becomes_a_row_of_catalogue_codes() {
    let mapping = mapping();
    let structure = StructureRef::parse("VN_HCMSO:DF_KTXH(1.0)").unwrap();
    let (_, dataflow) = mapping.dataflow(&structure).unwrap();
    let row = observation(
        dataflow,
        &structure,
        Action::Replace,
        Some("2026-M03"),
        text("3.2"),
    )
    .into_row();
    assert_eq!(row.malformed, None);
    assert_eq!(row.indicator.as_deref(), Some("CPI_GROWTH"));
    assert_eq!(row.unit.as_deref(), Some("HCM"));
    assert_eq!(row.period.as_deref(), Some("2026-03"));
    assert_eq!(row.value, Some(RawValue::Text("3.2".into())));
    assert_eq!(row.revision.as_deref(), Some("provisional"));
    assert_eq!(row.source.as_deref(), Some("VN_HCMSO:DF_KTXH(1.0)"));
    assert!(!row.retract);
}

#[test]
fn missing_values_are_rejected_with_the_rows_key() {
    let mapping = mapping();
    let structure = StructureRef::parse("VN_HCMSO:DF_KTXH(1.0)").unwrap();
    let (_, dataflow) = mapping.dataflow(&structure).unwrap();
    for measure in [Measure::Missing, text("NaN"), text(" nan ")] {
        let row = observation(
            dataflow,
            &structure,
            Action::Information,
            Some("2026-03"),
            measure,
        )
        .into_row();
        let reason = row.malformed.unwrap();
        assert!(
            reason.starts_with("INDICATOR=CPI_YOY, REF_AREA=VN-SG, TIME_PERIOD=2026-03: OBS_VALUE"),
            "{reason}"
        );
    }
    let half_year = observation(
        dataflow,
        &structure,
        Action::Append,
        Some("2026-S1"),
        text("1"),
    )
    .into_row();
    assert!(half_year.malformed.unwrap().contains("half-year"));
    let partial = observation(dataflow, &structure, Action::Append, None, text("1")).into_row();
    assert!(partial.malformed.unwrap().contains("no TIME_PERIOD"));
}

#[test]
fn a_delete_withdraws_a_full_key_and_nothing_less() {
    let mapping = mapping();
    let structure = StructureRef::parse("VN_HCMSO:DF_KTXH(1.0)").unwrap();
    let (_, dataflow) = mapping.dataflow(&structure).unwrap();

    let marked = observation(
        dataflow,
        &structure,
        Action::Delete,
        Some("2026-03"),
        text("-"),
    );
    let row = marked.into_row();
    assert!(row.retract, "{row:?}");
    assert_eq!((row.value, row.revision, row.malformed), (None, None, None));

    let mut bare = observation(
        dataflow,
        &structure,
        Action::Delete,
        Some("2026-03"),
        Measure::Missing,
    );
    bare.revision = None;
    bare.has_attributes = false;
    assert!(bare.into_row().retract);

    let attributes_only = observation(
        dataflow,
        &structure,
        Action::Delete,
        Some("2026-03"),
        Measure::Missing,
    );
    assert!(attributes_only
        .into_row()
        .malformed
        .unwrap()
        .contains("attributes only"));

    let wildcard = observation(dataflow, &structure, Action::Delete, None, text("-"));
    assert!(wildcard.into_row().malformed.unwrap().contains("full key"));
}

#[test]
fn a_fixed_unit_needs_no_unit_dimension() {
    let mapping = mapping();
    let structure = StructureRef::parse("VN_HQKV2:DF_TRADE(2.1)").unwrap();
    let (_, dataflow) = mapping.dataflow(&structure).unwrap();
    let mut customs = observation(
        dataflow,
        &structure,
        Action::Information,
        Some("2026-03"),
        text("4120,5"),
    );
    customs.indicator = Some("EXP_VAL");
    customs.unit = None;
    let row = customs.into_row();
    assert_eq!(row.malformed, None);
    assert_eq!(row.indicator.as_deref(), Some("EXPORT_TURNOVER"));
    assert_eq!(row.unit.as_deref(), Some("HCM"));
}

#[test]
fn actions_read_letters_and_names() {
    assert_eq!(Action::from_csv("D"), Some(Action::Delete));
    assert_eq!(Action::from_csv(" r "), Some(Action::Replace));
    // SDMX 2.1: Merge is the default, Information and Append are still read (deprecated).
    assert_eq!(Action::from_csv(""), Some(Action::Merge));
    assert_eq!(Action::from_csv("M"), Some(Action::Merge));
    assert_eq!(Action::from_csv("i"), Some(Action::Information));
    assert_eq!(Action::from_csv("A"), Some(Action::Append));
    assert_eq!(Action::from_csv("X"), None);
    assert_eq!(Action::from_json("Append"), Some(Action::Append));
    assert_eq!(Action::from_json("Information"), Some(Action::Information));
    assert_eq!(Action::from_json("Delete"), Some(Action::Delete));
    assert_eq!(Action::from_json("Merge"), Some(Action::Merge));
    assert_eq!(Action::from_json("Upsert"), None);
}

#[test]
fn media_parameters_accept_version_2_and_readable_options() {
    let params = |pairs: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.to_string())
        }
    };
    assert!(check_media_parameters(Format::SdmxCsv, params(&[])).is_ok());
    assert!(check_media_parameters(
        Format::SdmxCsv,
        params(&[("version", "2.0.0"), ("labels", "both")])
    )
    .is_ok());
    assert!(check_media_parameters(Format::SdmxJson, params(&[("version", "2.0.0")])).is_ok());
    let old = check_media_parameters(Format::SdmxCsv, params(&[("version", "1.0.0")])).unwrap_err();
    assert!(old.contains("version=1.0.0"), "{old}");
    assert!(check_media_parameters(Format::SdmxJson, params(&[("version", "1.0")])).is_err());
    assert!(check_media_parameters(Format::SdmxCsv, params(&[("labels", "code")])).is_err());
    assert!(
        check_media_parameters(Format::SdmxCsv, params(&[("timeformat", "normalized")])).is_err()
    );
}

#[test]
fn the_shipped_feeds_config_maps_dataflows() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let feeds = FeedsConfig::load(&dir).expect("config/feeds.toml is valid");
    assert!(!feeds.mappings.sdmx.dataflows().is_empty());
    let statistics = StructureRef::parse("VN_HCMSO:DF_KTXH(1.0)").unwrap();
    let (_, dataflow) = feeds
        .mappings
        .sdmx
        .dataflow(&statistics)
        .expect("the KT-XH dataflow");
    assert_eq!(dataflow.indicator("CPI_YOY"), "CPI_GROWTH");
    assert_eq!(dataflow.unit("VN-SG"), "HCM");
}

/// A small deterministic mutation fuzzer over the fixtures, so that every `cargo test` checks
/// what the libFuzzer targets (fuzz/) check at length: no panic, at most one row per byte.
#[test]
fn mutated_messages_never_panic_nor_yield_more_rows_than_bytes() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sdmx");
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&fixtures)
        .expect("the SDMX fixtures")
        .map(|entry| std::fs::read(entry.expect("a fixture").path()).expect("readable"))
        .collect();
    seeds.sort();
    assert!(
        seeds.len() >= 5,
        "fixtures missing from {}",
        fixtures.display()
    );
    let mapping = mapping();
    let feeds = FeedsConfig::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("config"))
        .expect("config/feeds.toml is valid");
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move |bound: usize| {
        // xorshift64: reproducible without a dependency.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        usize::try_from(state % bound.max(1) as u64).unwrap_or(0)
    };
    const TOKENS: [&[u8]; 14] = [
        b":", b",", b";", b"\"", b"\n", b"[", b"]", b"{", b"}", b"-", b": ", b"null", b"9", b"D",
    ];
    for seed in &seeds {
        for _ in 0..400 {
            let mut input = seed.clone();
            for _ in 0..=next(4) {
                let at = next(input.len() + 1);
                match next(4) {
                    0 if at < input.len() => input[at] = next(256) as u8,
                    1 => {
                        let end = (at + next(16)).min(input.len());
                        input.drain(at..end);
                    }
                    2 => {
                        let token = TOKENS[next(TOKENS.len())];
                        input.splice(at..at, token.iter().copied());
                    }
                    _ => {
                        let end = (at + next(64)).min(input.len());
                        let copy = input[at..end].to_vec();
                        input.splice(at..at, copy);
                    }
                }
            }
            for rows in [
                parse_csv(&input, &mapping),
                parse_json(&input, &mapping),
                parse_csv(&input, &feeds.mappings.sdmx),
                parse_json(&input, &feeds.mappings.sdmx),
            ]
            .into_iter()
            .flatten()
            {
                assert!(
                    rows.len() <= input.len(),
                    "{} rows from {:?}",
                    rows.len(),
                    input
                );
            }
        }
    }
}
