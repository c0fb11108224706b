use serde_json::json;

use super::*;
use crate::ingest::sdmx::tests::mapping;
use crate::ingest::RawValue;

const KTXH_URN: &str = "urn:sdmx:org.sdmx.infomodel.datastructure.Dataflow=VN_HCMSO:DF_KTXH(1.0)";

fn values(ids: &[&str]) -> Value {
    Value::Array(ids.iter().map(|id| json!({"id": id, "name": id})).collect())
}

/// The statistics dataflow by time series: FREQ at data-set level, INDICATOR and REF_AREA
/// by series, TIME_PERIOD by observation, OBS_STATUS coded at observation level.
fn structure() -> Value {
    json!({
        "links": [
            {"rel": "datastructure", "urn": "urn:sdmx:org.sdmx.infomodel.datastructure.DataStructure=VN_HCMSO:DSD_KTXH(1.0)"},
            {"rel": "dataflow", "urn": KTXH_URN, "href": "https://thongke.hochiminhcity.gov.vn/rest/dataflow/VN_HCMSO/DF_KTXH/1.0"}
        ],
        "dimensions": {
            "dataSet": [{"id": "FREQ", "keyPosition": 0, "values": values(&["M"])}],
            "series": [
                {"id": "INDICATOR", "keyPosition": 1, "values": values(&["CPI_YOY", "RETAIL_SALES"])},
                {"id": "REF_AREA", "keyPosition": 2, "values": values(&["VN-SG"])}
            ],
            "observation": [
                {"id": "TIME_PERIOD", "keyPosition": 3, "values": values(&["2026-01", "2026-02", "2026-M03"])}
            ]
        },
        "measures": {"observation": [{"id": "OBS_VALUE"}]},
        "attributes": {
            "observation": [
                {"id": "OBS_STATUS", "default": "A", "relationship": {"observation": {}}, "values": values(&["A", "P"])}
            ]
        }
    })
}

/// A message around data sets written as text: `json!` would sort their keys, and the order
/// of keys is what row indexes follow.
fn message(data_sets: &str) -> Vec<u8> {
    format!(
        r#"{{"meta": {{"id": "KTXH-2026-03", "prepared": "2026-04-06T09:00:00+07:00", "sender": {{"id": "VN_HCMSO"}}}},
            "data": {{"structures": [{}], "dataSets": {data_sets}}}}}"#,
        structure()
    )
    .into_bytes()
}

fn rows(body: &[u8]) -> Vec<RawRow> {
    parse(body, &mapping()).expect("a readable message")
}

fn refused(body: &[u8]) -> FormatError {
    parse(body, &mapping()).expect_err("an unreadable message")
}

#[test]
fn series_are_read_in_message_order_with_their_attributes() {
    // Keys deliberately out of numeric order: rows follow the message.
    let body = message(
        r#"[{
        "action": "Information",
        "series": {
            "1:0": {"observations": {"2": [250000.5, 1], "0": [231000]}},
            "0:0": {"attributes": [], "observations": {"0": ["3.1", null], "1": [3.3, 0]}}
        }
    }]"#,
    );
    let rows = rows(&body);
    let summary: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| {
            (
                r.indicator.clone().unwrap(),
                r.period.clone().unwrap(),
                r.revision.clone().unwrap(),
            )
        })
        .collect();
    let expected = [
        ("RETAIL_SALES", "2026-03", "provisional"),
        ("RETAIL_SALES", "2026-01", "normal"),
        ("CPI_GROWTH", "2026-01", "normal"),
        ("CPI_GROWTH", "2026-02", "normal"),
    ];
    let expected: Vec<(String, String, String)> = expected
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect();
    assert_eq!(summary, expected);
    assert_eq!(rows[0].value, Some(RawValue::Number(250000.5)));
    assert_eq!(rows[2].value, Some(RawValue::Text("3.1".into())));
    assert!(rows.iter().all(|r| r.unit.as_deref() == Some("HCM")));
    assert!(rows
        .iter()
        .all(|r| r.source.as_deref() == Some("VN_HCMSO:DF_KTXH(1.0)")));
    // No observation has an UPDATED attribute: the message's preparation stands in.
    assert!(rows
        .iter()
        .all(|r| r.reported_at.as_deref() == Some("2026-04-06T09:00:00+07:00")));
    assert!(rows.iter().all(|r| r.reported_at_implied));
}

#[test]
fn an_observations_own_reported_at_attribute_overrides_the_messages_preparation() {
    let mut structure = structure();
    structure["attributes"]["observation"]
        .as_array_mut()
        .unwrap()
        .push(json!({"id": "UPDATED", "relationship": {"observation": {}}}));
    let body = format!(
        r#"{{"meta": {{"prepared": "2026-04-06T09:00:00+07:00"}},
            "data": {{"structures": [{structure}], "dataSets": [{{"series": {{
              "0:0": {{"observations": {{"0": [3.1, 0, "2026-02-06T10:00:00+07:00"], "1": [3.3, 0]}}}}
            }}}}]}}}}"#
    );
    let rows = rows(body.as_bytes());
    let known: Vec<_> = rows.iter().map(|r| r.reported_at.as_deref()).collect();
    assert_eq!(
        known,
        [
            Some("2026-02-06T10:00:00+07:00"),
            Some("2026-04-06T09:00:00+07:00")
        ]
    );
    let implied: Vec<_> = rows.iter().map(|r| r.reported_at_implied).collect();
    assert_eq!(implied, [false, true]);
}

#[test]
fn a_flat_data_set_keys_observations_by_all_their_dimensions() {
    let mut structure = structure();
    let dimensions = &mut structure["dimensions"];
    let series = dimensions["series"].take();
    let mut flat = series.as_array().unwrap().clone();
    flat.push(dimensions["observation"][0].take());
    dimensions["series"] = json!([]);
    dimensions["observation"] = Value::Array(flat);
    // No `measures`: the values are OBS_VALUE, as in SDMX-JSON before 2.0.
    structure.as_object_mut().unwrap().remove("measures");
    let body = json!({"data": {
        "structures": [structure],
        "dataSets": [{"structure": 0, "action": "Replace", "observations": {
            "0:0:1": [3.4], "1:0:2": [260000, 1]
        }}]
    }});
    let rows = rows(&serde_json::to_vec(&body).unwrap());
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].indicator.as_deref(), Some("CPI_GROWTH"));
    assert_eq!(rows[0].period.as_deref(), Some("2026-02"));
    assert_eq!(rows[1].indicator.as_deref(), Some("RETAIL_SALES"));
    assert_eq!(rows[1].revision.as_deref(), Some("provisional"));
}

#[test]
fn a_delete_data_set_withdraws_its_observations() {
    let body = message(
        r#"[
        {"action": "Append", "series": {"0:0": {"observations": {"2": [3.5]}}}},
        {"action": "Delete", "series": {"0:0": {"observations": {"2": []}}, "1:0": {}}}
    ]"#,
    );
    let rows = rows(&body);
    assert_eq!(rows.len(), 3);
    assert!(!rows[0].retract);
    assert!(
        rows[1].retract && rows[1].malformed.is_none(),
        "{:?}",
        rows[1]
    );
    assert_eq!(rows[1].period.as_deref(), Some("2026-03"));
    assert!(rows[2]
        .malformed
        .as_deref()
        .unwrap()
        .contains("whole series"));
}

#[test]
fn unreadable_observations_are_rejected_one_by_one() {
    let body = message(
        r#"[{"series": {
        "0:0": {"observations": {
            "0": [3.1],
            "9": [3.2],
            "x": [3.3],
            "1": ["NaN"],
            "2": [null, 1],
            "0:0": [1.0]
        }},
        "0": {"observations": {"0": [1.0]}},
        "0:0:7": {"observations": {"0": [1.0]}},
        "0:5": {"observations": {"0": [{"en": "three"}]}}
    }}]"#,
    );
    let rows = rows(&body);
    let reasons: Vec<Option<&str>> = rows.iter().map(|r| r.malformed.as_deref()).collect();
    assert_eq!(rows.len(), 9);
    assert_eq!(reasons[0], None);
    let expected = [
        (1, "observation \"9\": TIME_PERIOD has no value at index 9"),
        (2, "the observation key is not 1 value indexes"),
        (3, "OBS_VALUE is NaN"),
        (4, "OBS_VALUE is empty"),
        (5, "observation key"),
        (6, "the series key is not 2 value indexes"),
        (7, "series key"),
        (8, "REF_AREA has no value at index 5"),
    ];
    for (index, text) in expected {
        let reason = reasons[index].unwrap_or_default();
        assert!(reason.contains(text), "row {index}: {reason:?}");
    }
}

#[test]
fn a_message_that_cannot_be_interpreted_is_refused_with_a_pointer() {
    let syntax = refused(b"{\"data\": ");
    assert!(syntax.syntax);
    let wrong_type = refused(br#"{"data": {"dataSets": [{"action": 5}]}}"#);
    assert!(!wrong_type.syntax);
    assert_eq!(wrong_type.pointer, "/data/dataSets/0/action");

    let mut unknown = structure();
    unknown["links"] = json!([{"rel": "dataflow", "urn": "urn:sdmx:org.sdmx.infomodel.datastructure.Dataflow=VN_X:DF_Y(1.0)"}]);
    let body = json!({"data": {"structures": [unknown], "dataSets": [{"series": {}}]}});
    let error = refused(&serde_json::to_vec(&body).unwrap());
    assert_eq!(error.pointer, "/data/structures/0/links");
    assert!(error.message.contains("VN_X:DF_Y(1.0)"), "{error:?}");

    let mut no_area = structure();
    no_area["dimensions"]["series"] = json!([{"id": "INDICATOR", "values": values(&["CPI_YOY"])}]);
    let body = json!({"data": {"structures": [no_area], "dataSets": [{"series": {}}]}});
    let error = refused(&serde_json::to_vec(&body).unwrap());
    assert_eq!(error.pointer, "/data/structures/0/dimensions");
    assert!(error.message.contains("REF_AREA"));

    let mut grouped = structure();
    grouped["attributes"] = json!({"dimensionGroup": [{"id": "OBS_STATUS"}]});
    let body = json!({"data": {"structures": [grouped], "dataSets": [{"series": {}}]}});
    assert_eq!(
        refused(&serde_json::to_vec(&body).unwrap()).pointer,
        "/data/structures/0/attributes/dimensionGroup"
    );

    let cases = [
        (json!({"meta": {"test": true}, "data": {}}), "/meta/test"),
        (json!({"meta": {}}), "/data"),
        (
            json!({"data": {"structure": {}, "dataSets": [{}]}}),
            "/data/structure",
        ),
        (json!({"data": {"dataSets": [{}]}}), "/data/structures"),
        (
            json!({"data": {"structures": [structure()], "dataSets": [{"structure": 3}]}}),
            "/data/dataSets/0/structure",
        ),
        (
            json!({"data": {"structures": [structure()], "dataSets": [{"action": "Upsert"}]}}),
            "/data/dataSets/0/action",
        ),
    ];
    for (body, pointer) in cases {
        assert_eq!(
            refused(&serde_json::to_vec(&body).unwrap()).pointer,
            pointer,
            "{body}"
        );
    }
}

#[test]
fn a_structure_named_by_href_only_is_found() {
    let mut by_href = structure();
    by_href["links"] = json!([{"rel": "dataflow", "href": "https://example.org/rest/dataflow/VN_HQKV2/DF_TRADE/1.0?detail=full"}]);
    by_href["dimensions"]["series"] = json!([{"id": "INDICATOR", "values": values(&["EXP_VAL"])}]);
    let body = json!({"data": {"structures": [by_href], "dataSets": [
        {"series": {"0": {"observations": {"2": [4120.5]}}}}
    ]}});
    let rows = rows(&serde_json::to_vec(&body).unwrap());
    assert_eq!(rows[0].malformed, None, "{rows:?}");
    assert_eq!(rows[0].indicator.as_deref(), Some("EXPORT_TURNOVER"));
    assert_eq!(rows[0].unit.as_deref(), Some("HCM"));
    assert_eq!(rows[0].source.as_deref(), Some("VN_HQKV2:DF_TRADE(1.0)"));
}

#[test]
fn an_empty_message_has_no_rows_and_garbage_never_panics() {
    assert!(rows(br#"{"data": {"dataSets": []}}"#).is_empty());
    for shapeless in [&br#"{"data": {}}"#[..], br#"{"data": {"structures": []}}"#] {
        let refused = refused(shapeless);
        assert_eq!(refused.pointer, "/data/dataSets", "{refused:?}");
        assert!(!refused.syntax);
    }
    let samples: [&[u8]; 6] = [
        b"",
        b"[]",
        b"{\"data\": {\"structures\": [{}], \"dataSets\": [{}]}}",
        b"{\"data\": {\"structures\": [{\"links\": [{\"urn\": \"=\"}, {\"rel\": \"dataflow\", \"href\": \"dataflow/\"}]}], \"dataSets\": [{}]}}",
        b"{\"data\": {\"structures\": [{\"links\": [{\"urn\": \"x.Dataflow=VN_HCMSO:DF_KTXH(1.0)\"}], \"dimensions\": {\"dataSet\": [{\"id\": \"INDICATOR\"}, {\"id\": \"REF_AREA\"}, {\"id\": \"TIME_PERIOD\"}]}}], \"dataSets\": [{\"observations\": {\"\": [1]}}]}}",
        b"{\"data\": {\"structures\": [{\"links\": [{\"urn\": \"x.Dataflow=VN_HCMSO:DF_KTXH(1.0)\"}], \"dimensions\": {\"observation\": [{\"id\": \"INDICATOR\", \"values\": [null]}, {\"id\": \"REF_AREA\", \"values\": []}, {\"id\": \"TIME_PERIOD\"}]}}], \"dataSets\": [{\"observations\": {\"0:18446744073709551615:99999999999999999999\": [1]}}]}}",
    ];
    for sample in samples {
        let _ = parse(sample, &mapping());
    }
}

#[test]
fn a_long_value_is_refused_rather_than_copied_into_every_row() {
    let long = "X".repeat(100_000);
    let mut structure = structure();
    structure["dimensions"]["series"][0]["values"] = values(&[long.as_str()]);
    let long_key = format!("0:{}", "0".repeat(10_000));
    let mut series = serde_json::Map::new();
    series.insert(
        "0:0".into(),
        json!({"observations": {"0": [1.0], "1": [2.0]}}),
    );
    series.insert(long_key, json!({"observations": {"0": [1.0]}}));
    let body = json!({"data": {"structures": [structure], "dataSets": [{"series": series}]}});
    let rows = rows(&serde_json::to_vec(&body).unwrap());
    assert_eq!(rows.len(), 3);
    for row in &rows {
        let reason = row.malformed.as_deref().unwrap();
        assert!(reason.len() < 300, "{}", &reason[..300]);
        assert!(
            reason.contains("longer than 256 bytes") || reason.contains('…'),
            "{reason}"
        );
    }
}

#[test]
fn sdmx_2_1_merge_and_null_attribute_values_are_read() {
    // OBS_STATUS lists `null` among its values, as the 2.1 field guide allows: an index that
    // points at it means no status, hence no revision label, not an unreadable observation.
    let mut with_null = structure();
    with_null["attributes"]["observation"][0]["values"] =
        json!([null, {"id": "P", "name": "Provisional"}]);
    with_null["attributes"]["observation"][0]
        .as_object_mut()
        .unwrap()
        .remove("default");
    let body = json!({"data": {"structures": [with_null], "dataSets": [
        {"action": "Merge", "series": {"0:0": {"observations": {"0": [3.1, 0], "1": [3.2, 1], "2": [3.3, null]}}}},
        {"series": {"0:0": {"observations": {"0": [3.4, 0]}}}}
    ]}});
    let merged = rows(&serde_json::to_vec(&body).unwrap());
    let read: Vec<(Option<RawValue>, Option<&str>)> = merged
        .iter()
        .map(|r| {
            assert_eq!(r.malformed, None, "{r:?}");
            (r.value.clone(), r.revision.as_deref())
        })
        .collect();
    assert_eq!(
        read,
        vec![
            (Some(RawValue::Number(3.1)), None),
            (Some(RawValue::Number(3.2)), Some("provisional")),
            (Some(RawValue::Number(3.3)), None),
            // No action: 2.1's default, Merge, writes the value.
            (Some(RawValue::Number(3.4)), None),
        ]
    );
    // Every 2.1 action name and the deprecated 2.0 ones are read; only Delete withdraws.
    for (action, withdraws) in [
        ("Merge", false),
        ("Replace", false),
        ("Information", false),
        ("Append", false),
        ("Delete", true),
    ] {
        let body = json!({"data": {"structures": [structure()], "dataSets": [
            {"action": action, "series": {"0:0": {"observations": {"0": [3.1]}}}}
        ]}});
        let read = rows(&serde_json::to_vec(&body).unwrap());
        assert_eq!(read[0].malformed, None, "{action}");
        assert_eq!(read[0].retract, withdraws, "{action}");
    }
}

#[test]
fn a_flat_data_set_against_a_series_structure_keys_series_dimensions_first() {
    // The field guide's constructed sample writes flat data sets against a structure that
    // presents INDICATOR and REF_AREA by series: keys are INDICATOR:REF_AREA:TIME_PERIOD.
    let body = json!({"data": {"structures": [structure()], "dataSets": [
        {"observations": {"1:0:2": [250000.5], "0:0": [1]}}
    ]}});
    // `json!` sorts the keys: "0:0" (two indexes, refused) comes first.
    let rows = rows(&serde_json::to_vec(&body).unwrap());
    assert!(rows[0]
        .malformed
        .as_deref()
        .unwrap()
        .contains("not 3 value indexes"));
    assert_eq!(rows[1].malformed, None, "{rows:?}");
    assert_eq!(rows[1].indicator.as_deref(), Some("RETAIL_SALES"));
    assert_eq!(rows[1].period.as_deref(), Some("2026-03"));
}
