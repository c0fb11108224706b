use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::*;
use crate::domain::Code;

fn validator() -> Validator {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let catalogue = crate::config::load_catalogue(&dir).expect("the shipped catalogue is valid");
    Validator::new(
        Arc::new(catalogue),
        chrono_tz::Asia::Ho_Chi_Minh,
        IngestSettings::default(),
    )
}

fn department(code: &str) -> Principal {
    Principal {
        token_id: "t1".into(),
        name: "feed".into(),
        role: Role::Department,
        department: Some(Code::parse(code).expect("a department code")),
    }
}

fn now() -> DateTime<Utc> {
    "2026-06-15T00:00:00Z".parse().expect("an instant")
}

fn row(indicator: &str, value: RawValue) -> RawRow {
    RawRow {
        indicator: Some(indicator.to_owned()),
        unit: Some("HCM".into()),
        period: Some("2026-04".into()),
        value: Some(value),
        ..RawRow::default()
    }
}

const PADDINGS: [(&str, &str); 6] = [
    ("a leading space", " EXPORT_TURNOVER"),
    ("a trailing space", "EXPORT_TURNOVER "),
    ("a tab", "\tEXPORT_TURNOVER"),
    ("a no-break space", "EXPORT_TURNOVER\u{a0}"),
    ("a zero-width space", "\u{200b}EXPORT_TURNOVER"),
    (
        "a byte-order mark and a word joiner",
        "\u{feff}EXPORT_TURNOVER\u{2060}",
    ),
];

#[test]
fn a_padded_code_of_another_department_refuses_the_request_whole() {
    let validator = validator();
    let statistics = department("STATISTICS");
    for (padding, code) in PADDINGS {
        let rows = vec![
            row("CPI_GROWTH", RawValue::Number(3.1)),
            row(code, RawValue::Number(4.0)),
        ];
        let expected = ForeignRows {
            rows: vec![1],
            indicators: vec!["EXPORT_TURNOVER".into()],
        };
        assert_eq!(
            validator.check_scope(&statistics, &rows),
            Err(expected.clone()),
            "check_scope, {padding}"
        );
        assert_eq!(
            validator.validate(&statistics, rows, now()).map(|_| ()),
            Err(expected),
            "validate, {padding}"
        );
    }
}

#[test]
fn a_padded_code_of_the_callers_department_is_stored_under_the_clean_code() {
    let validator = validator();
    let customs = department("CUSTOMS");
    for (padding, code) in PADDINGS {
        let rows = vec![row(code, RawValue::Number(4.0))];
        assert_eq!(validator.check_scope(&customs, &rows), Ok(()), "{padding}");
        let (valid, rejected) = validator.validate(&customs, rows, now()).expect("in scope");
        assert_eq!(rejected, [], "{padding}");
        assert_eq!(valid[0].indicator.as_str(), "EXPORT_TURNOVER", "{padding}");
    }
}

#[test]
fn a_code_in_another_case_is_an_unknown_indicator_rejected_on_its_own() {
    let validator = validator();
    let statistics = department("STATISTICS");
    let rows = vec![
        row("export_turnover", RawValue::Number(4.0)),
        row("CPI_GROWTH", RawValue::Number(3.1)),
    ];
    assert_eq!(validator.check_scope(&statistics, &rows), Ok(()));
    let (valid, rejected) = validator
        .validate(&statistics, rows, now())
        .expect("nothing foreign");
    assert_eq!(valid.len(), 1);
    assert_eq!(rejected.len(), 1);
    assert_eq!(
        (rejected[0].index, rejected[0].code.as_str()),
        (0, "unknown_indicator")
    );
    assert!(rejected[0].message.contains("export_turnover"));
}

#[test]
fn padded_unit_codes_are_read_as_indicator_codes_are() {
    let validator = validator();
    let customs = department("CUSTOMS");
    let mut padded = row("EXPORT_TURNOVER", RawValue::Number(4.0));
    padded.unit = Some("\u{a0}HCM\u{200b}".into());
    let mut lower = row("EXPORT_TURNOVER", RawValue::Number(4.0));
    lower.unit = Some("hcm".into());
    let (valid, rejected) = validator
        .validate(&customs, vec![padded, lower], now())
        .expect("in scope");
    assert_eq!(valid[0].unit.as_str(), "HCM");
    assert_eq!(rejected[0].code, "unknown_unit");
}

#[test]
fn text_with_a_comma_is_an_ambiguous_number_and_text_with_a_point_is_read() {
    let validator = validator();
    let customs = department("CUSTOMS");
    let cases = [
        ("1,234", Some("ambiguous_number")),
        ("4120,5", Some("ambiguous_number")),
        ("1.234,5", Some("ambiguous_number")),
        ("1234.5", None),
        (" 12 ", None),
        ("abc", Some("invalid_value")),
    ];
    for (text, expected) in cases {
        let rows = vec![row("EXPORT_TURNOVER", RawValue::Text(text.into()))];
        let (_, rejected) = validator.validate(&customs, rows, now()).expect("in scope");
        let code = rejected.first().map(|r| r.code.as_str());
        assert_eq!(code, expected, "{text}");
    }
}

#[test]
fn a_declared_decimal_comma_reads_json_text_as_vietnamese_write_it() {
    let validator = validator();
    let customs = department("CUSTOMS");
    let body = br#"{"observations":[
        {"indicator":"EXPORT_TURNOVER","unit":"HCM","period":"2026-03","value":"1,5"},
        {"indicator":"EXPORT_TURNOVER","unit":"HCM","period":"2026-04","value":"1.234,5"}
    ]}"#;
    let feeds = crate::config::feeds::FeedsConfig::default();
    let point = Format::Json(Decimal::Point)
        .parse(body, &feeds)
        .expect("json");
    let (_, rejected) = validator.validate(&customs, point, now()).expect("ok");
    assert_eq!(rejected.len(), 2);
    assert!(rejected.iter().all(|r| r.code == "ambiguous_number"));
    assert!(rejected[0].message.contains("decimal=comma"));

    let comma = Format::Json(Decimal::Comma)
        .parse(body, &feeds)
        .expect("json");
    let (valid, rejected) = validator.validate(&customs, comma, now()).expect("ok");
    assert_eq!(rejected, []);
    let values: Vec<_> = valid.iter().map(|o| o.value).collect();
    assert_eq!(values, [Some(1.5), Some(1234.5)]);
}
