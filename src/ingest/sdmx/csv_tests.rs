use super::*;
use crate::ingest::sdmx::tests::mapping;
use crate::ingest::RawValue;

fn rows(body: &str) -> Vec<RawRow> {
    parse(body.as_bytes(), &mapping()).expect("a readable message")
}

fn refused(body: &str) -> FormatError {
    parse(body.as_bytes(), &mapping()).expect_err("an unreadable message")
}

#[test]
fn reads_the_field_guide_layout_with_actions_and_custom_columns() {
    let body = "STRUCTURE,STRUCTURE_ID,ACTION,FREQ,INDICATOR,REF_AREA,TIME_PERIOD,OBS_VALUE,OBS_STATUS,UPDATED\r\n\
        dataflow,VN_HCMSO:DF_KTXH(1.0),I,M,CPI_YOY,VN-SG,2026-03,3.21,P,2026-04-06T09:00:00Z\r\n\
        dataflow,VN_HCMSO:DF_KTXH(1.0),R,Q,GRDP_GROWTH,VN-SG,2026-Q1,7.1,A,2026-04-06T09:00:00Z\r\n\
        dataflow,VN_HCMSO:DF_KTXH(1.0),D,M,CPI_YOY,VN-SG,2026-M02,-,,\r\n";
    let rows = rows(body);
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0].indicator.as_deref(), Some("CPI_GROWTH"));
    assert_eq!(rows[0].unit.as_deref(), Some("HCM"));
    assert_eq!(rows[0].period.as_deref(), Some("2026-03"));
    assert_eq!(rows[0].value, Some(RawValue::Text("3.21".into())));
    assert_eq!(rows[0].revision.as_deref(), Some("provisional"));
    assert_eq!(rows[1].indicator.as_deref(), Some("GRDP_GROWTH"));
    assert_eq!(rows[1].revision.as_deref(), Some("normal"));
    assert!(rows[2].retract);
    assert_eq!(rows[2].period.as_deref(), Some("2026-02"));
    assert_eq!(rows[2].value, None);
    // The configured reported_at attribute, as sent; a blank cell leaves it to the store.
    assert_eq!(rows[0].reported_at.as_deref(), Some("2026-04-06T09:00:00Z"));
    assert_eq!(rows[2].reported_at, None);
}

#[test]
fn a_semicolon_file_with_labels_both_and_decimal_commas_is_read_by_ids() {
    let body = "\u{feff}STRUCTURE[|];STRUCTURE_ID;ACTION;INDICATOR: Chỉ tiêu;TIME_PERIOD: Kỳ;OBS_VALUE: Giá trị\n\
        dataflow;VN_HQKV2:DF_TRADE(1.0): Xuất nhập khẩu;I;EXP_VAL: Kim ngạch xuất khẩu;2026-03: Tháng 3/2026;4120,5\n";
    let rows = rows(body);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].malformed, None);
    assert_eq!(rows[0].indicator.as_deref(), Some("EXPORT_TURNOVER"));
    assert_eq!(rows[0].unit.as_deref(), Some("HCM"));
    assert_eq!(rows[0].period.as_deref(), Some("2026-03"));
    assert_eq!(rows[0].value, Some(RawValue::Text("4120.5".into())));
    assert_eq!(rows[0].source.as_deref(), Some("VN_HQKV2:DF_TRADE(1.0)"));
}

#[test]
fn labels_name_columns_and_a_missing_action_column_are_handled() {
    let body = "STRUCTURE,STRUCTURE_ID,STRUCTURE_NAME,INDICATOR,Indicator,TIME_PERIOD,Time,OBS_VALUE,Value\n\
        dataflow,VN_HQKV2:DF_TRADE(1.0),Trade,EXP_VAL,Exports,2026-M04,April,3999.5,\n";
    let rows = rows(body);
    assert_eq!(rows[0].malformed, None, "{rows:?}");
    assert_eq!(rows[0].period.as_deref(), Some("2026-04"));
    assert!(!rows[0].retract);
}

#[test]
fn bad_rows_are_rejected_one_by_one_and_the_rest_kept() {
    let body = "STRUCTURE,STRUCTURE_ID,ACTION,INDICATOR,REF_AREA,TIME_PERIOD,OBS_VALUE\n\
        dataflow,VN_HCMSO:DF_KTXH(1.0),I,CPI_YOY,VN-SG,2026-03,3.2\n\
        dataflow,VN_OTHER:DF_X(1.0),I,CPI_YOY,VN-SG,2026-03,3.2\n\
        dataflow,VN_HCMSO:DF_KTXH(1.0),X,CPI_YOY,VN-SG,2026-03,3.2\n\
        table,VN_HCMSO:DF_KTXH(1.0),I,CPI_YOY,VN-SG,2026-03,3.2\n\
        dataflow,VN_HCMSO:DF_KTXH(1.0),I,CPI_YOY,VN-SG,2026-03\n\
        dataflow,VN_HCMSO:DF_KTXH(1.0),I,CPI_YOY,VN-SG,2026-03,NaN\n\
        dataflow,VN_HCMSO:DF_KTXH(1.0),I,CPI_YOY,VN-SG,2026-W10,3.2\n\
        dataflow,not a reference,I,CPI_YOY,VN-SG,2026-03,3.2\n\
        \n\
        dataflow,VN_HCMSO:DF_KTXH(1.0),D,,VN-SG,2026-03,-\n\
        dataflow,VN_HCMSO:DF_KTXH(1.0),A,CPI_YOY,VN-SG,2026-04,3.4\n";
    let rows = rows(body);
    assert_eq!(rows.len(), 10, "the blank line is not a row");
    let reasons: Vec<Option<&str>> = rows.iter().map(|r| r.malformed.as_deref()).collect();
    assert_eq!(reasons[0], None);
    let expected = [
        (1, "not a dataflow this service reads"),
        (2, "ACTION is `X`"),
        (3, "STRUCTURE is `table`"),
        (4, "6 fields; the header has 7"),
        (
            5,
            "INDICATOR=CPI_YOY, REF_AREA=VN-SG, TIME_PERIOD=2026-03: OBS_VALUE is NaN",
        ),
        (6, "is a week"),
        (7, "STRUCTURE_ID"),
        (8, "full key"),
    ];
    for (index, text) in expected {
        let reason = reasons[index].unwrap_or_default();
        assert!(reason.contains(text), "row {index}: {reason:?}");
    }
    assert_eq!(reasons[9], None);
}

#[test]
fn a_header_that_cannot_serve_the_message_is_refused_with_the_column() {
    assert_eq!(refused("").pointer, "body");
    let old = refused("DATAFLOW,FREQ,OBS_VALUE\nECB:EXR(1.0),M,1\n");
    assert!(old.message.contains("SDMX-CSV 1.0"), "{old:?}");
    assert_eq!(refused("INDICATOR,OBS_VALUE\nX,1\n").pointer, "STRUCTURE");
    assert_eq!(refused("STRUCTURE\n").pointer, "STRUCTURE");
    assert_eq!(refused("STRUCTURE[;,ID\n").pointer, "STRUCTURE");
    assert_eq!(
        refused("STRUCTURE,ACTION,INDICATOR\n").pointer,
        "STRUCTURE_ID"
    );
    let no_area = refused(
        "STRUCTURE,STRUCTURE_ID,INDICATOR,TIME_PERIOD,OBS_VALUE\n\
         dataflow,VN_HCMSO:DF_KTXH(1.0),CPI_YOY,2026-03,3.2\n",
    );
    assert_eq!(no_area.pointer, "REF_AREA");
    assert!(
        no_area.message.contains("VN_HCMSO:DF_KTXH(1.*)"),
        "{no_area:?}"
    );
    let twice = refused(
        "STRUCTURE,STRUCTURE_ID,INDICATOR,INDICATOR,TIME_PERIOD,OBS_VALUE\n\
         dataflow,VN_HQKV2:DF_TRADE(1.0),EXP_VAL,EXP_VAL,2026-03,1\n",
    );
    assert_eq!(twice.pointer, "INDICATOR");
}

#[test]
fn a_header_fit_for_one_dataflow_only_still_reads_its_rows_when_no_other_is_used() {
    // The header lacks REF_AREA, which only the statistics dataflow needs.
    let body = "STRUCTURE,STRUCTURE_ID,INDICATOR,TIME_PERIOD,OBS_VALUE\n\
        dataflow,VN_HQKV2:DF_TRADE(1.0),EXP_VAL,2026-03,1\n\
        dataflow,VN_UNKNOWN:DF(1.0),EXP_VAL,2026-03,1\n";
    let rows = rows(body);
    assert_eq!(rows[0].malformed, None);
    assert!(rows[1].malformed.is_some());
}

#[test]
fn a_quoted_header_and_tab_separator_are_detected() {
    let body = "\"STRUCTURE\"\tSTRUCTURE_ID\tINDICATOR\tTIME_PERIOD\tOBS_VALUE\n\
        dataflow\tVN_HQKV2:DF_TRADE(1.0)\tEXP_VAL\t2026\t1\n";
    assert_eq!(rows(body)[0].period.as_deref(), Some("2026"));
}

#[test]
fn arbitrary_bytes_never_panic() {
    let samples: [&[u8]; 8] = [
        b"STRUCTURE,",
        b"STRUCTURE,STRUCTURE_ID\n\xff\xfe,\"",
        b"STRUCTURE;STRUCTURE_ID\n;;;;\n\"\"\"",
        b"\"STRUCTURE",
        b"STRUCTURE[",
        b"STRUCTURE,STRUCTURE_ID,INDICATOR: ,TIME_PERIOD,OBS_VALUE\ndataflow,VN_HQKV2:DF_TRADE(1.0): ,: ,: ,: \n",
        b"\xEF\xBB\xBF",
        b"STRUCTURE,STRUCTURE_ID,ACTION,INDICATOR,TIME_PERIOD,OBS_VALUE\ndataflow,VN_HQKV2:DF_TRADE(1.0),D,,,\n",
    ];
    for sample in samples {
        let _ = parse(sample, &mapping());
    }
}

#[test]
fn sdmx_2_1_merge_rows_write_and_a_delete_of_other_components_withdraws_nothing() {
    let body = "STRUCTURE,STRUCTURE_ID,ACTION,INDICATOR,REF_AREA,TIME_PERIOD,OBS_VALUE,OBS_STATUS,OBS_COMMENT\r\n\
        dataflow,VN_HCMSO:DF_KTXH(1.0),M,CPI_YOY,VN-SG,2026-03,3.21,,\r\n\
        dataflow,VN_HCMSO:DF_KTXH(1.0),D,CPI_YOY,VN-SG,2026-02,-,,\r\n\
        dataflow,VN_HCMSO:DF_KTXH(1.0),D,CPI_YOY,VN-SG,2026-01,,,-\r\n\
        dataflow,VN_HCMSO:DF_KTXH(1.0),D,CPI_YOY,VN-SG,2025-12,,,\r\n";
    let rows = rows(body);
    // Merge writes; an empty OBS_STATUS is no status, hence no revision label.
    assert_eq!(rows[0].malformed, None, "{rows:?}");
    assert_eq!(rows[0].value, Some(RawValue::Text("3.21".into())));
    assert_eq!(rows[0].revision, None);
    assert!(!rows[0].retract);
    // The measure marked: the observation is withdrawn.
    assert!(rows[1].retract && rows[1].malformed.is_none(), "{rows:?}");
    // Only OBS_COMMENT marked: SDMX deletes that value alone, which is not the observation.
    assert!(rows[2]
        .malformed
        .as_deref()
        .is_some_and(|m| m.contains("attributes only")));
    // Nothing but the key: the whole observation.
    assert!(rows[3].retract && rows[3].malformed.is_none(), "{rows:?}");
}
