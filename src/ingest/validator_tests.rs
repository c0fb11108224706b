use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::*;
use crate::auth::Role;
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
            lines: Vec::new(),
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
fn a_count_with_a_fraction_is_refused_and_a_whole_one_read() {
    let validator = validator();
    let finance = department("FINANCE");
    let cases = [
        (RawValue::Number(1.234), Some("value_not_whole")),
        (RawValue::Text("1.234".into()), Some("value_not_whole")),
        (RawValue::Number(0.5), Some("value_not_whole")),
        (RawValue::Number(1234.0), None),
        (RawValue::Text("1234".into()), None),
        (RawValue::Number(0.0), None),
    ];
    for (value, expected) in cases {
        let rows = vec![row("NEW_ENTERPRISES", value.clone())];
        let (accepted, rejected) = validator.validate(&finance, rows, now()).expect("in scope");
        let code = rejected.first().map(|r| r.code.as_str());
        assert_eq!(code, expected, "{value:?}");
        assert_eq!(accepted.len(), usize::from(expected.is_none()), "{value:?}");
        if let Some(refused) = rejected.first() {
            assert!(
                refused.message.contains("not a whole number")
                    && refused.message.contains("enterprises"),
                "{}",
                refused.message
            );
        }
    }
    // A measure that is not a count keeps its decimals.
    let customs = department("CUSTOMS");
    let rows = vec![row("EXPORT_TURNOVER", RawValue::Number(4_120.5))];
    let (accepted, rejected) = validator.validate(&customs, rows, now()).expect("in scope");
    assert_eq!((accepted.len(), rejected.len()), (1, 0));
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
    let mappings = crate::ingest::Mappings::default();
    let point = Format::Json(Decimal::Point)
        .parse(body, &mappings)
        .expect("json");
    let (_, rejected) = validator.validate(&customs, point, now()).expect("ok");
    assert_eq!(rejected.len(), 2);
    assert!(rejected.iter().all(|r| r.code == "ambiguous_number"));
    assert!(rejected[0].message.contains("decimal=comma"));

    let comma = Format::Json(Decimal::Comma)
        .parse(body, &mappings)
        .expect("json");
    let (valid, rejected) = validator.validate(&customs, comma, now()).expect("ok");
    assert_eq!(rejected, []);
    let values: Vec<_> = valid.iter().map(|o| o.value).collect();
    assert_eq!(values, [Some(1.5), Some(1234.5)]);
}

fn known_at(at: &str) -> RawRow {
    RawRow {
        reported_at: Some(at.into()),
        ..row("EXPORT_TURNOVER", RawValue::Number(4.0))
    }
}

fn admin() -> Principal {
    Principal {
        token_id: "t0".into(),
        name: "admin".into(),
        role: Role::Admin,
        department: None,
    }
}

#[test]
fn reported_at_is_an_instant_neither_ahead_nor_before_its_period() {
    let validator = validator();
    let customs = department("CUSTOMS");
    // now() is 2026-06-15T00:00Z; the rows are April 2026, which starts 2026-03-31T17:00Z.
    let cases = [
        ("2026-06-14T09:00:00+07:00", None),
        // Within the five minutes of tolerated skew.
        ("2026-06-15T00:04:00Z", None),
        ("2026-06-15T00:06:00Z", Some("reported_at_in_future")),
        ("2026-03-31T16:59:59Z", Some("reported_at_before_period")),
        ("yesterday", Some("invalid_reported_at")),
        // No offset: which instant it names depends on a zone nobody gave.
        ("2026-06-14T09:00:00", Some("invalid_reported_at")),
        // Older than the seven days a department may go back.
        ("2026-06-07T23:59:59Z", Some("reported_at_too_old")),
        ("2026-06-08T00:00:00Z", None),
    ];
    for (at, expected) in cases {
        let (valid, rejected) = validator
            .validate(&customs, vec![known_at(at)], now())
            .expect("in scope");
        let code = rejected.first().map(|r| r.code.as_str());
        assert_eq!(code, expected, "{at}");
        if let Some(rejection) = rejected.first() {
            assert!(
                rejection.message.contains("reported_at"),
                "{at}: {rejection:?}"
            );
        } else {
            let stored = valid[0].reported_at.expect("kept");
            assert_eq!(
                Some(stored),
                crate::ingest::validate::parse_reported_at(at, false, chrono_tz::UTC)
            );
        }
    }
    let (valid, _) = validator
        .validate(
            &customs,
            vec![row("EXPORT_TURNOVER", RawValue::Number(4.0))],
            now(),
        )
        .expect("in scope");
    assert_eq!(valid[0].reported_at, None, "none given: when it is stored");
}

#[test]
fn admins_and_the_statistics_office_may_back_date_and_departments_may_not() {
    let validator = validator();
    let old = "2026-04-06T09:00:00+07:00";
    let customs = department("CUSTOMS");
    let (_, rejected) = validator
        .validate(&customs, vec![known_at(old)], now())
        .expect("in scope");
    assert_eq!(rejected[0].code, "reported_at_too_old");
    assert!(
        rejected[0].message.contains("7 days"),
        "{}",
        rejected[0].message
    );

    let mut cpi = known_at(old);
    cpi.indicator = Some("CPI_GROWTH".into());
    let (valid, rejected) = validator
        .validate(&department("STATISTICS"), vec![cpi], now())
        .expect("in scope");
    assert_eq!(rejected, []);
    let backdating = validator.backdating(&valid, now()).expect("back-dated");
    assert_eq!(backdating.rows, 1);
    assert_eq!(
        backdating.earliest,
        "2026-04-06T02:00:00Z".parse::<DateTime<Utc>>().unwrap()
    );

    let rows = vec![
        known_at(old),
        known_at("2026-05-01T00:00:00Z"),
        known_at("2026-06-14T00:00:00Z"),
    ];
    let (valid, rejected) = validator.validate(&admin(), rows, now()).expect("admin");
    assert_eq!(rejected, []);
    let backdating = validator.backdating(&valid, now()).expect("back-dated");
    assert_eq!(backdating.rows, 2, "the recent row is not back-dated");
    assert_eq!(
        backdating.earliest,
        "2026-04-06T02:00:00Z".parse::<DateTime<Utc>>().unwrap()
    );

    // An import back-fills history whoever it scopes rows as.
    let (_, rejected) = validator
        .validate_backdating(&customs, vec![known_at(old)], now(), Backdate::Allowed)
        .expect("in scope");
    assert_eq!(rejected, []);
}

#[test]
fn a_formats_own_old_time_from_a_department_is_not_taken_and_the_row_is_kept() {
    let validator = validator();
    let customs = department("CUSTOMS");
    let implied = |at: &str| RawRow {
        reported_at_implied: true,
        ..known_at(at)
    };
    let (valid, rejected) = validator
        .validate(
            &customs,
            vec![
                implied("2026-04-06T09:00:00+07:00"),
                implied("2026-06-14T09:00:00+07:00"),
                implied("2026-06-16T00:00:00Z"),
            ],
            now(),
        )
        .expect("in scope");
    assert_eq!(valid[0].reported_at, None, "known when stored");
    assert_eq!(
        valid[1].reported_at,
        Some("2026-06-14T02:00:00Z".parse().unwrap())
    );
    // Only the age is forgiven: a time ahead of now is refused all the same.
    assert_eq!(rejected.len(), 1);
    assert_eq!(
        (rejected[0].index, rejected[0].code.as_str()),
        (2, "reported_at_in_future")
    );
    assert_eq!(validator.backdating(&valid, now()), None);
    // The statistics office's old times are taken.
    let mut cpi = implied("2026-04-06T09:00:00+07:00");
    cpi.indicator = Some("CPI_GROWTH".into());
    let (valid, _) = validator
        .validate(&department("STATISTICS"), vec![cpi], now())
        .expect("in scope");
    assert!(valid[0].reported_at.is_some());
}

#[test]
fn dhis2_local_times_are_read_in_the_city_zone() {
    use crate::ingest::validate::parse_reported_at;
    let zone = chrono_tz::Asia::Ho_Chi_Minh;
    let at = |s: &str| Some(s.parse::<DateTime<Utc>>().unwrap());
    assert_eq!(
        parse_reported_at("2026-04-06T09:00:00.000", true, zone),
        at("2026-04-06T02:00:00Z")
    );
    assert_eq!(
        parse_reported_at("2026-04-06 09:00:00", true, zone),
        at("2026-04-06T02:00:00Z")
    );
    assert_eq!(
        parse_reported_at("2026-04-06T09:00:00.000+0000", true, zone),
        at("2026-04-06T09:00:00Z")
    );
    assert_eq!(
        parse_reported_at("2026-04-06", true, zone),
        at("2026-04-05T17:00:00Z")
    );
    assert_eq!(
        parse_reported_at("2026-04-06T09:00:00.000", false, zone),
        None
    );
}
