use super::*;
use crate::ingest::RawValue;

const IMMUNISED: &str = "fbfJHSPpUQD";
const EHR: &str = "eY5ehpbEsB7";
const BEDS: &str = "Ix2HsbDMLea";
const CITY: &str = "ImspTQPwCqd";
const WARD: &str = "DiszpKrYNg8";
const TOTAL: &str = "HllvX50cXC0";
const FEMALE: &str = "Prlt0C1RF0s";

fn mapping() -> Dhis2Mapping {
    toml::from_str(&format!(
        r#"
        [[data_elements]]
        uid = "{IMMUNISED}"
        code = "DE_IMM_FULL"
        indicator = "FULL_IMMUNIZATION_RATE"
        category_option_combo = "{TOTAL}"

        [[data_elements]]
        uid = "{IMMUNISED}"
        indicator = "FULL_IMMUNIZATION_RATE_FEMALE"
        category_option_combo = "{FEMALE}"

        [[data_elements]]
        uid = "{EHR}"
        code = "DE_EHR"
        indicator = "EHR_COVERAGE"

        [[data_elements]]
        uid = "{BEDS}"
        indicator = "HOSPITAL_BEDS_PER_10K"

        [[org_units]]
        uid = "{CITY}"
        code = "OU_HCM"
        unit = "HCM"

        [[org_units]]
        uid = "{WARD}"
        code = "OU_BEN_THANH"
        unit = "P_BEN_THANH"
        "#
    ))
    .unwrap()
}

fn json(body: &str) -> Dhis2Batch {
    parse_json_with(body.as_bytes(), &mapping(), &ImportOptions::default(), 100)
        .unwrap_or_else(|e| panic!("{e}"))
}

fn csv(body: &str, query: &ImportOptions) -> Dhis2Batch {
    parse_csv_with(body.as_bytes(), &mapping(), query, 100).unwrap_or_else(|e| panic!("{e}"))
}

/// `(indicator, unit, period, value)` of a well-formed row, or its rejection.
fn summary(row: &RawRow) -> Result<(String, String, String, Option<RawValue>), String> {
    match &row.malformed {
        Some(reason) => Err(reason.clone()),
        None => Ok((
            row.indicator.clone().unwrap_or_default(),
            row.unit.clone().unwrap_or_default(),
            row.period.clone().unwrap_or_default(),
            row.value.clone(),
        )),
    }
}

fn ok(
    indicator: &str,
    unit: &str,
    period: &str,
    value: RawValue,
) -> Result<(String, String, String, Option<RawValue>), String> {
    Ok((indicator.into(), unit.into(), period.into(), Some(value)))
}

#[test]
fn the_set_level_period_and_org_unit_apply_to_values_that_omit_them() {
    let batch = json(&format!(
        r#"{{"dataSet": "pBOMPrpg1QX", "completeDate": "2026-04-03", "period": "202603",
            "orgUnit": "{WARD}", "attributeOptionCombo": "{TOTAL}",
            "dataValues": [
              {{"dataElement": "{IMMUNISED}", "categoryOptionCombo": "{TOTAL}", "value": "96.5",
                "comment": "ok", "storedBy": "nurse.lan", "followup": false}},
              {{"dataElement": "{EHR}", "value": 71.25, "period": "202603"}},
              {{"dataElement": "{EHR}", "value": "70", "orgUnit": "{CITY}", "period": "202602"}}
            ]}}"#
    ));
    let rows: Vec<_> = batch.rows.iter().map(summary).collect();
    assert_eq!(
        rows[0],
        ok(
            "FULL_IMMUNIZATION_RATE",
            "P_BEN_THANH",
            "2026-03",
            RawValue::Text("96.5".into())
        )
    );
    assert_eq!(batch.rows[0].source.as_deref(), Some("nurse.lan"));
    assert_eq!(
        rows[1],
        ok(
            "EHR_COVERAGE",
            "P_BEN_THANH",
            "2026-03",
            RawValue::Number(71.25)
        )
    );
    // A value's own period or org unit may not contradict the set's.
    let conflict = rows[2].clone().unwrap_err();
    assert!(
        conflict.contains("period `202602` differs from the data value set's period `202603`"),
        "{conflict}"
    );
    assert_eq!(batch.values[2].problem, Some(ConflictKind::Period));
    assert_eq!(batch.values[0].period.as_deref(), Some("202603"));
    assert_eq!(batch.values[0].org_unit.as_deref(), Some(WARD));
    assert_eq!(batch.options, EffectiveOptions::default());
}

#[test]
fn bulk_values_carry_their_own_periods_and_org_units_of_every_storable_type() {
    let batch = json(&format!(
        r#"{{"dataValues": [
              {{"dataElement": "{EHR}", "period": "202601", "orgUnit": "{CITY}", "value": "12"}},
              {{"dataElement": "{BEDS}", "period": "2025", "orgUnit": "{CITY}", "value": "31.4"}},
              {{"dataElement": "{EHR}", "period": "2026Q1", "orgUnit": "{CITY}", "value": "1"}},
              {{"dataElement": "{EHR}", "period": "20260315", "orgUnit": "{CITY}", "value": "1"}},
              {{"dataElement": "{EHR}", "period": "2026W11", "orgUnit": "{CITY}", "value": "1"}},
              {{"dataElement": "{EHR}", "orgUnit": "{CITY}", "value": "1"}}
            ]}}"#
    ));
    let periods: Vec<_> = batch.rows.iter().map(|r| r.period.as_deref()).collect();
    assert_eq!(
        periods[..4],
        [
            Some("2026-01"),
            Some("2025"),
            Some("2026-Q1"),
            Some("2026-03-15")
        ]
    );
    let weekly = batch.rows[4].malformed.as_deref().unwrap();
    assert!(weekly.contains("`2026W11` is a weekly period"), "{weekly}");
    assert!(batch.rows[5]
        .malformed
        .as_deref()
        .unwrap()
        .contains("period is required"));
    assert_eq!(batch.values[4].problem, Some(ConflictKind::Period));
}

#[test]
fn unmapped_identifiers_are_rejected_naming_them_and_keep_the_indicator_for_scoping() {
    let batch = json(&format!(
        r#"{{"dataValues": [
              {{"dataElement": "xxxxxxxxxxx", "period": "202601", "orgUnit": "{CITY}", "value": "1"}},
              {{"dataElement": "{EHR}", "period": "202601", "orgUnit": "yyyyyyyyyyy", "value": "1"}},
              {{"period": "202601", "orgUnit": "{CITY}", "value": "1"}}
            ]}}"#
    ));
    let reason = |i: usize| batch.rows[i].malformed.clone().unwrap();
    assert!(
        reason(0).contains("data element UID `xxxxxxxxxxx` is not mapped"),
        "{}",
        reason(0)
    );
    assert!(
        reason(1).contains("org unit UID `yyyyyyyyyyy` is not mapped"),
        "{}",
        reason(1)
    );
    assert!(reason(2).contains("dataElement is required"));
    assert_eq!(batch.rows[1].indicator.as_deref(), Some("EHR_COVERAGE"));
    let kinds: Vec<_> = batch.values.iter().map(|v| v.problem).collect();
    assert_eq!(
        kinds,
        [
            Some(ConflictKind::DataElement),
            Some(ConflictKind::OrgUnit),
            Some(ConflictKind::DataElement)
        ]
    );
}

#[test]
fn category_option_combos_choose_the_indicator_or_are_refused() {
    let batch = json(&format!(
        r#"{{"period": "202603", "orgUnit": "{CITY}", "dataValues": [
              {{"dataElement": "{IMMUNISED}", "categoryOptionCombo": "{FEMALE}", "value": "95"}},
              {{"dataElement": "{IMMUNISED}", "categoryOptionCombo": "aaaaaaaaaaa", "value": "95"}},
              {{"dataElement": "{IMMUNISED}", "value": "95"}},
              {{"dataElement": "{EHR}", "categoryOptionCombo": "anything", "value": "95"}}
            ]}}"#
    ));
    assert_eq!(
        batch.rows[0].indicator.as_deref(),
        Some("FULL_IMMUNIZATION_RATE_FEMALE")
    );
    let other = batch.rows[1].malformed.clone().unwrap();
    assert!(
        other.contains("combo `aaaaaaaaaaa` of data element `fbfJHSPpUQD` is not mapped"),
        "{other}"
    );
    assert!(other.contains(TOTAL) && other.contains(FEMALE), "{other}");
    let missing = batch.rows[2].malformed.clone().unwrap();
    assert!(missing.contains("send categoryOptionCombo"), "{missing}");
    assert_eq!(
        batch.values[2].problem,
        Some(ConflictKind::CategoryOptionCombo)
    );
    assert_eq!(batch.rows[3].indicator.as_deref(), Some("EHR_COVERAGE"));
    assert!(batch.rows[3].malformed.is_none());
}

#[test]
fn codes_are_read_by_the_id_scheme_with_dhis2_precedence() {
    let body = r#"{"dataValues": [
        {"dataElement": "DE_EHR", "period": "202601", "orgUnit": "OU_BEN_THANH", "value": "1"}]}"#;
    let by_uid = json(body);
    assert!(by_uid.rows[0]
        .malformed
        .as_deref()
        .unwrap()
        .contains("data element UID `DE_EHR`"));

    let query = ImportOptions {
        id_scheme: Some(IdScheme::Code),
        ..ImportOptions::default()
    };
    let by_code = parse_json_with(body.as_bytes(), &mapping(), &query, 10).unwrap();
    assert_eq!(
        summary(&by_code.rows[0]),
        ok(
            "EHR_COVERAGE",
            "P_BEN_THANH",
            "2026-01",
            RawValue::Text("1".into())
        )
    );

    // The payload's schemes win over the query's, the specific over the general.
    let payload = format!(
        r#"{{"idScheme": "code", "orgUnitIdScheme": "UID", "dataValues": [
            {{"dataElement": "DE_EHR", "period": "202601", "orgUnit": "{WARD}", "value": "1"}}]}}"#
    );
    let query = ImportOptions {
        data_element_id_scheme: Some(IdScheme::Uid),
        org_unit_id_scheme: Some(IdScheme::Code),
        ..ImportOptions::default()
    };
    let mixed = parse_json_with(payload.as_bytes(), &mapping(), &query, 10).unwrap();
    assert_eq!(mixed.options.data_element_id_scheme, IdScheme::Code);
    assert_eq!(mixed.options.org_unit_id_scheme, IdScheme::Uid);
    assert!(mixed.rows[0].malformed.is_none(), "{:?}", mixed.rows[0]);

    assert_eq!(IdScheme::parse("uid"), Ok(IdScheme::Uid));
    assert!(IdScheme::parse("NAME")
        .unwrap_err()
        .contains("not supported"));
    assert!(IdScheme::parse("attribute:DnrLSdo4hMl").is_err());
    assert!(IdScheme::parse("colour").is_err());
}

#[test]
fn deletions_are_retractions_and_need_no_value() {
    let body = format!(
        r#"{{"period": "202603", "orgUnit": "{CITY}", "dataValues": [
              {{"dataElement": "{EHR}", "deleted": true}},
              {{"dataElement": "{EHR}", "value": "3", "deleted": "true"}},
              {{"dataElement": "{EHR}", "value": "4", "deleted": false}}
            ]}}"#
    );
    let batch = json(&body);
    let retract: Vec<_> = batch.rows.iter().map(|r| r.retract).collect();
    assert_eq!(retract, [true, true, false]);
    assert!(batch.rows.iter().all(|r| r.malformed.is_none()));
    assert_eq!(batch.rows[0].value, None);

    let query = ImportOptions {
        strategy: Some(ImportStrategy::Delete),
        ..ImportOptions::default()
    };
    let deleting = parse_json_with(body.as_bytes(), &mapping(), &query, 10).unwrap();
    assert!(deleting.rows.iter().all(|r| r.retract));
    assert_eq!(deleting.options.strategy, ImportStrategy::Delete);

    let payload = r#"{"importStrategy": "DELETE", "dryRun": true, "dataValues": []}"#;
    let options = json(payload).options;
    assert_eq!(options.strategy, ImportStrategy::Delete);
    assert!(options.dry_run);
    assert_eq!(
        ImportStrategy::parse("new_and_updates"),
        Ok(ImportStrategy::CreateAndUpdate)
    );
    assert!(ImportStrategy::parse("CREATE")
        .unwrap_err()
        .contains("not supported"));
}

#[test]
fn values_of_every_json_type_are_read_or_rejected_one_by_one() {
    let batch = json(&format!(
        r#"{{"period": "202603", "orgUnit": "{CITY}", "dataValues": [
              {{"dataElement": "{EHR}", "value": 12}},
              {{"dataElement": "{EHR}", "value": "12,5"}},
              {{"dataElement": "{EHR}", "value": null}},
              {{"dataElement": "{EHR}", "value": ""}},
              {{"dataElement": "{EHR}", "value": true}},
              {{"dataElement": "{EHR}", "value": [1, {{"a": 2}}]}}
            ]}}"#
    ));
    assert_eq!(batch.rows[0].value, Some(RawValue::Number(12.0)));
    assert_eq!(batch.rows[1].value, Some(RawValue::Text("12,5".into())));
    // No value is not a deletion here: validation answers that the value is required.
    assert_eq!(batch.rows[2].value, None);
    assert!(batch.rows[2].malformed.is_none() && !batch.rows[2].retract);
    assert_eq!(batch.rows[3].value, None);
    assert!(batch.rows[4]
        .malformed
        .as_deref()
        .unwrap()
        .contains("value is true"));
    assert!(batch.rows[5]
        .malformed
        .as_deref()
        .unwrap()
        .contains("value is an array"));
    assert_eq!(batch.values[5].problem, Some(ConflictKind::Value));
}

#[test]
fn bodies_that_are_not_a_data_value_set_are_refused_where_they_break() {
    let refuse = |body: &str| match parse_json_with(
        body.as_bytes(),
        &mapping(),
        &ImportOptions::default(),
        10,
    ) {
        Err(Dhis2BodyError::Format(error)) => error,
        other => panic!("{body}: {other:?}"),
    };
    assert!(refuse(r#"{"dataValues": ["#).syntax);
    assert!(refuse(r#"{"dataValues": []} trailing"#).syntax);
    let wrong_type = refuse(r#"{"dataValues": [{"dataElement": "a"}, {"dataElement": 7}]}"#);
    assert_eq!(wrong_type.pointer, "/dataValues/1/dataElement");
    assert!(!wrong_type.syntax);
    assert_eq!(refuse("[]").pointer, "");
    assert_eq!(
        refuse(r#"{"idScheme": "NAME", "dataValues": []}"#).pointer,
        "/idScheme"
    );
    assert_eq!(
        refuse(r#"{"importStrategy": "UPDATE"}"#).pointer,
        "/importStrategy"
    );
    assert_eq!(refuse(r#"{"dryRun": "yes"}"#).pointer, "/dryRun");
    // A set without values is an empty import, as in DHIS2.
    assert!(json("{}").rows.is_empty());
}

#[test]
fn more_values_than_the_limit_are_counted_not_kept() {
    let value = format!(
        r#"{{"dataElement": "{EHR}", "period": "202601", "orgUnit": "{CITY}", "value": "1"}}"#
    );
    let body = format!(
        r#"{{"dataValues": [{}], "period": "202601"}}"#,
        vec![value; 7].join(",")
    );
    let error =
        parse_json_with(body.as_bytes(), &mapping(), &ImportOptions::default(), 5).unwrap_err();
    assert_eq!(error, Dhis2BodyError::TooManyValues { count: 7, limit: 5 });
    assert_eq!(
        parse_json_with(body.as_bytes(), &mapping(), &ImportOptions::default(), 7)
            .unwrap()
            .rows
            .len(),
        7
    );

    let lines = format!("{EHR},202601,{CITY},,,1\n").repeat(4);
    let error =
        parse_csv_with(lines.as_bytes(), &mapping(), &ImportOptions::default(), 3).unwrap_err();
    assert_eq!(error, Dhis2BodyError::TooManyValues { count: 4, limit: 3 });
}

#[test]
fn csv_reads_the_documented_columns_with_or_without_a_header() {
    let with_header = format!(
        "\u{feff}\"dataelement\",\"period\",\"orgunit\",\"catoptcombo\",\"attroptcombo\",\"value\",\"storedby\",\"lastupdated\",\"comment\",\"followup\"\n\
         \"{IMMUNISED}\",\"202602\",\"{WARD}\",\"{TOTAL}\",,\"97.1\",\"bombali\",\"2026-03-02\",\"a, comment\",\"false\"\n\
         \n\
         {EHR},2026Q1,{CITY},,,\"70,5\"\n"
    );
    let batch = csv(&with_header, &ImportOptions::default());
    assert_eq!(batch.rows.len(), 2);
    assert_eq!(
        summary(&batch.rows[0]),
        ok(
            "FULL_IMMUNIZATION_RATE",
            "P_BEN_THANH",
            "2026-02",
            RawValue::Text("97.1".into())
        )
    );
    assert_eq!(batch.rows[0].source.as_deref(), Some("bombali"));
    assert_eq!(batch.values[0].line, Some(2));
    assert_eq!(batch.values[1].line, Some(4));
    // A CSV cell's lone comma is the decimal mark, as in the service's own CSV.
    assert_eq!(batch.rows[1].value, Some(RawValue::Text("70.5".into())));

    let headerless = format!("{EHR},202601,{CITY},,,12\n{EHR},202602,{CITY},,,13\n");
    assert_eq!(csv(&headerless, &ImportOptions::default()).rows.len(), 2);
    let declared = ImportOptions {
        first_row_is_header: Some(true),
        ..ImportOptions::default()
    };
    assert_eq!(csv(&headerless, &declared).rows.len(), 1);
    let not_a_header = ImportOptions {
        first_row_is_header: Some(false),
        ..ImportOptions::default()
    };
    let kept = csv(&with_header, &not_a_header);
    assert_eq!(kept.rows.len(), 3);
    assert_eq!(kept.values[0].problem, Some(ConflictKind::DataElement));
}

#[test]
fn csv_deletions_short_lines_and_broken_lines_are_answered_line_by_line() {
    let body = format!(
        "dataelement,period,orgunit,catoptcombo,attroptcombo,value,storedby,lastupdated,comment,followup,deleted\n\
         {EHR},202601,{CITY},,,,,,,,true\n\
         {EHR},202601\n\
         {EHR},202603,{CITY},,,\"unterminated\n"
    );
    let batch = csv(&body, &ImportOptions::default());
    assert!(batch.rows[0].retract && batch.rows[0].malformed.is_none());
    let short = batch.rows[1].malformed.clone().unwrap();
    assert!(
        short.contains("needs at least dataelement, period and orgunit"),
        "{short}"
    );
    assert_eq!(batch.values[1].problem, Some(ConflictKind::Line));
    assert_eq!(batch.values[1].line, Some(3));
    assert_eq!(batch.rows.len(), 3);

    let invalid_utf8 = parse_csv_with(
        b"a,b,c\n\xff,2026,x\n",
        &mapping(),
        &ImportOptions::default(),
        10,
    )
    .unwrap();
    assert_eq!(invalid_utf8.values[1].problem, Some(ConflictKind::Line));
    assert!(invalid_utf8.rows[1]
        .malformed
        .as_deref()
        .unwrap()
        .contains("cannot be read"));
}

#[test]
fn the_generic_parsers_refuse_a_dry_run_they_cannot_honour() {
    let error = parse_json(br#"{"dryRun": true, "dataValues": []}"#, &mapping()).unwrap_err();
    assert_eq!(error.pointer, "/dryRun");
    assert!(parse_json(br#"{"dataValues": []}"#, &mapping())
        .unwrap()
        .is_empty());
    assert_eq!(
        parse_csv(format!("{EHR},202601,{CITY},,,1").as_bytes(), &mapping())
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn validation_codes_map_to_dhis2_conflicts() {
    for (code, kind, error_code) in [
        ("unknown_indicator", ConflictKind::DataElement, "E7610"),
        ("unknown_unit", ConflictKind::OrgUnit, "E7612"),
        ("invalid_period", ConflictKind::Period, "E7611"),
        ("period_mismatch", ConflictKind::PeriodType, "E7632"),
        ("period_in_future", ConflictKind::FuturePeriod, "E7641"),
        ("value_out_of_range", ConflictKind::Value, "E7619"),
        ("missing_field", ConflictKind::ValueMissing, "E7618"),
    ] {
        assert_eq!(ConflictKind::of_rejection(code), Some(kind), "{code}");
        assert_eq!(kind.error_code(), Some(error_code), "{code}");
    }
    // Every validation code but an unreadable line's has its DHIS2 conflict.
    for code in crate::ingest::validate::RowError::CODES {
        let kind = ConflictKind::of_rejection(code);
        assert_eq!(kind.is_none(), code == "malformed_row", "{code}");
    }
    assert_eq!(ConflictKind::of_rejection("something_new"), None);
    assert_eq!(ConflictKind::Line.error_code(), None);
}

#[test]
fn mapping_problems_are_found() {
    assert!(
        mapping().problems().is_empty(),
        "{:?}",
        mapping().problems()
    );
    let mut broken = mapping();
    broken.data_elements[3].uid = "not-a-uid".into();
    broken.data_elements.push(broken.data_elements[2].clone());
    broken.org_units[1].code = Some("OU_HCM".into());
    let keys: Vec<String> = broken.problems().into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        keys,
        [
            "dhis2.data_elements[3].uid",
            "dhis2.data_elements[4].uid",
            "dhis2.org_units[1].uid"
        ]
    );
}

#[test]
fn arbitrary_bytes_never_panic() {
    let samples: [&[u8]; 4] = [
        br#"{"period":"202603","orgUnit":"ImspTQPwCqd","dataValues":[{"dataElement":"eY5ehpbEsB7","value":"1","deleted":true}]}"#,
        b"dataelement,period\n\"a\"\"b\",2026W1,\xff\n,,,,,,,,,,,,\n",
        b"{\"dataValues\":[{},{},[],1,\"x\"]}",
        b"\"\"\"\n\n\r\n,\"",
    ];
    for sample in samples {
        for end in 0..=sample.len() {
            let _ = parse_json_with(&sample[..end], &mapping(), &ImportOptions::default(), 3);
            let _ = parse_csv_with(&sample[..end], &mapping(), &ImportOptions::default(), 3);
        }
    }
}

#[test]
fn last_updated_else_created_is_when_a_value_became_known() {
    let batch = json(&format!(
        r#"{{"period": "202603", "orgUnit": "{CITY}", "dataValues": [
              {{"dataElement": "{EHR}", "value": "1", "created": "2026-04-02T08:00:00.000",
                "lastUpdated": "2026-04-03T09:30:00.000"}},
              {{"dataElement": "{EHR}", "value": "2", "created": "2026-04-02T08:00:00.000"}},
              {{"dataElement": "{EHR}", "value": "3"}}
            ]}}"#
    ));
    let known: Vec<_> = batch
        .rows
        .iter()
        .map(|r| r.reported_at.as_deref())
        .collect();
    assert_eq!(
        known,
        [
            Some("2026-04-03T09:30:00.000"),
            Some("2026-04-02T08:00:00.000"),
            None
        ]
    );
    assert!(batch
        .rows
        .iter()
        .all(|r| r.reported_at_local && r.reported_at_implied));

    let body = format!(
        "dataelement,period,orgunit,catoptcombo,attroptcombo,value,storedby,lastupdated\n\
         {EHR},202603,{CITY},,,5,nurse,2026-04-03T09:30:00.000\n"
    );
    let batch = csv(&body, &ImportOptions::default());
    assert_eq!(
        batch.rows[0].reported_at.as_deref(),
        Some("2026-04-03T09:30:00.000")
    );
}
