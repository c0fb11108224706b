use super::*;

fn mapping() -> LineMapping {
    toml::from_str(
        r#"
        unit_tag = "ward"
        [units]
        "Ben Thanh" = "P_BEN_THANH"

        [[measurements]]
        measurement = "air_quality"
        field = "aqi"
        indicator = "AQI_DAILY"
        default_unit = "HCM"

        [[measurements]]
        measurement = "air_quality"
        field = "pm25"
        indicator = "PM25"

        [[measurements]]
        measurement = "revenue"
        indicator = "BUDGET_REVENUE"
        unit_tag = "unit"
        [measurements.units]
        city = "HCM"
        "#,
    )
    .unwrap()
}

fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .with_timezone(&Utc)
}

fn rows(body: &str, precision: Precision) -> Vec<LineRow> {
    parse_lines(
        body.as_bytes(),
        precision,
        &mapping(),
        at("2026-03-20T01:02:03Z"),
        100,
    )
    .unwrap()
}

#[test]
fn every_precision_reads_the_same_instant() {
    for (written, precision) in [
        ("1773968523000000000", Precision::Nanoseconds),
        ("1773968523000000", Precision::Microseconds),
        ("1773968523000", Precision::Milliseconds),
        ("1773968523", Precision::Seconds),
    ] {
        let body = format!("air_quality,ward=Ben\\ Thanh aqi=87i {written}");
        let rows = rows(&body, precision);
        assert_eq!(
            rows[0].row.ts.as_deref(),
            Some("2026-03-20T01:02:03Z"),
            "{precision:?}"
        );
    }
    assert_eq!(
        Precision::Minutes.instant(29_566_142),
        Some(at("2026-03-20T01:02:00Z"))
    );
    assert_eq!(
        Precision::Hours.instant(492_769),
        Some(at("2026-03-20T01:00:00Z"))
    );
    assert_eq!(
        Precision::Nanoseconds.instant(1_773_968_523_000_000_001),
        Some(at("2026-03-20T01:02:03.000000001Z"))
    );
    assert_eq!(
        Precision::Seconds.instant(-1),
        Some(at("1969-12-31T23:59:59Z"))
    );
    assert_eq!(Precision::Hours.instant(i64::MAX), None);
}

#[test]
fn precision_names_follow_each_api() {
    for name in ["ns", "us", "ms", "s"] {
        assert!(Precision::parse_v2(name).is_some(), "{name}");
        assert!(Precision::parse_v1(name).is_some(), "{name}");
    }
    for name in ["n", "u", "m", "h"] {
        assert!(Precision::parse_v2(name).is_none(), "{name}");
        assert!(Precision::parse_v1(name).is_some(), "{name}");
    }
    assert_eq!(Precision::parse_v1("h"), Some(Precision::Hours));
    assert!(Precision::parse_v1("d").is_none());
    assert!(Precision::parse_v2("NS").is_none());
}

#[test]
fn each_mapped_field_is_a_row_and_other_fields_are_ignored() {
    let rows = rows(
        "air_quality,ward=Ben\\ Thanh,sensor=a1 aqi=87i,pm25=35.5,humidity=80 1773968523\n",
        Precision::Seconds,
    );
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].line, 1);
    assert_eq!(rows[0].row.indicator.as_deref(), Some("AQI_DAILY"));
    assert_eq!(rows[0].row.unit.as_deref(), Some("P_BEN_THANH"));
    assert_eq!(rows[0].row.value, Some(RawValue::Number(87.0)));
    assert_eq!(rows[1].row.indicator.as_deref(), Some("PM25"));
    assert_eq!(rows[1].row.value, Some(RawValue::Number(35.5)));
}

#[test]
fn the_unit_comes_from_the_tag_its_map_or_the_default() {
    let rows = rows(
        "air_quality,ward=P_TAN_DINH aqi=1\n\
         air_quality aqi=2\n\
         air_quality pm25=3\n\
         revenue,unit=city value=4u\n\
         revenue,ward=P_TAN_DINH value=5\n",
        Precision::Seconds,
    );
    let units: Vec<_> = rows
        .iter()
        .map(|r| (r.line, r.row.unit.clone(), r.row.malformed.clone()))
        .collect();
    assert_eq!(units[0], (1, Some("P_TAN_DINH".into()), None));
    assert_eq!(units[1], (2, Some("HCM".into()), None));
    assert_eq!(units[3], (4, Some("HCM".into()), None));
    assert!(
        units[2].2.as_deref().unwrap().contains("no `ward` tag"),
        "{units:?}"
    );
    assert!(
        units[4].2.as_deref().unwrap().contains("no `unit` tag"),
        "{units:?}"
    );
}

#[test]
fn points_without_a_timestamp_are_stamped_with_the_time_of_receipt() {
    let rows = rows("air_quality aqi=87", Precision::Seconds);
    assert_eq!(rows[0].row.ts.as_deref(), Some("2026-03-20T01:02:03Z"));
}

#[test]
fn unreadable_and_unmapped_lines_are_rejected_rows_naming_their_line() {
    let rows = rows(
        "# Telegraf\n\
         \n\
         cpu,host=a usage=1\n\
         air_quality humidity=80\n\
         air_quality aqi=\"high\"\n\
         air_quality aqi=true\n\
         air_quality aqi=1 notatime\n\
         air_quality aqi=1 99999999999999999\n\
         revenue,unit=HCM value=12",
        Precision::Hours,
    );
    let summary: Vec<(usize, Option<&str>)> = rows
        .iter()
        .map(|r| (r.line, r.row.malformed.as_deref()))
        .collect();
    assert_eq!(summary.len(), 7, "{summary:?}");
    assert!(summary[0].1.unwrap().contains("`cpu` is not mapped"));
    assert_eq!(summary[0].0, 3);
    assert!(summary[1]
        .1
        .unwrap()
        .contains("none of its mapped fields (aqi, pm25)"));
    // A string is left for validation, which reads numbers written as text.
    assert_eq!(summary[2], (5, None));
    assert_eq!(rows[2].row.value, Some(RawValue::Text("high".into())));
    assert!(summary[3].1.unwrap().contains("is a boolean"));
    assert!(summary[4].1.unwrap().contains("not a timestamp"));
    assert!(summary[5].1.unwrap().contains("out of range"));
    assert_eq!(summary[6], (9, None));
}

#[test]
fn the_generic_parser_names_lines_in_its_reasons() {
    let rows = parse(
        b"air_quality aqi=1\ncpu v=1\n",
        Precision::Nanoseconds,
        &mapping(),
    )
    .unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows[1]
        .malformed
        .as_deref()
        .unwrap()
        .starts_with("line 2: measurement `cpu`"));
}

#[test]
fn a_body_over_the_row_limit_is_counted_and_refused() {
    let body = "air_quality aqi=1,pm25=2\n".repeat(3);
    let result = parse_lines(
        body.as_bytes(),
        Precision::Nanoseconds,
        &mapping(),
        Utc::now(),
        5,
    );
    assert_eq!(
        result,
        Err(LineBodyError::TooManyRows { count: 6, limit: 5 })
    );
}

#[test]
fn mapping_problems_are_found() {
    let mut broken = mapping();
    broken.measurements.push(broken.measurements[0].clone());
    broken.measurements[1].indicator = " ".into();
    broken.measurements[2].measurement = "_internal".into();
    let problems = broken.problems();
    let keys: Vec<&str> = problems.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "line.measurements[1].indicator",
            "line.measurements[2].measurement",
            "line.measurements[3].field",
        ]
    );
    assert!(mapping().problems().is_empty());
}
