//! SDMX-CSV and SDMX-JSON 2.0 and 2.1 pushed over real HTTP, mapped by the shipped
//! `config/feeds.toml`, read back through the observation API on every backend.

use std::path::Path;

use ktxh::auth::Role;
use serde_json::Value;

use crate::helpers::{assert_problem, mint_token, spawn_app, Backend, Reply, TestApp};
use crate::on_every_backend;

const SDMX_CSV: &str = "application/vnd.sdmx.data+csv;version=2.0.0";
const SDMX_JSON: &str = "application/vnd.sdmx.data+json;version=2.0.0";

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sdmx")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

async fn push(app: &TestApp, token: &str, content_type: &str, body: impl Into<String>) -> Reply {
    app.send(
        app.client
            .post(app.url("/api/v1/observations"))
            .bearer_auth(token)
            .header("Content-Type", content_type)
            .body(body.into()),
    )
    .await
}

async fn statistics_token(app: &TestApp) -> String {
    mint_token(&app.store, Role::Department, Some("STATISTICS"))
        .await
        .1
}

/// The latest observations of a series in `[from, to]`, as `(period, value, label, source)`.
async fn latest(
    app: &TestApp,
    indicator: &str,
    unit: &str,
    from: &str,
    to: &str,
) -> Vec<(String, f64, String, String)> {
    let reply = app
        .get(
            &format!("/api/v1/observations?indicator={indicator}&unit={unit}&from={from}&to={to}"),
            &app.viewer,
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    reply.body["observations"]
        .as_array()
        .expect("observations")
        .iter()
        .map(|o| {
            (
                text(&o["period"]),
                o["value"].as_f64().expect("a value"),
                text(&o["revision_label"]),
                text(&o["source"]),
            )
        })
        .collect()
}

fn rejected_codes(reply: &Reply) -> Vec<(u64, String)> {
    reply.body["rejected"]
        .as_array()
        .expect("rejected")
        .iter()
        .map(|r| {
            (
                r["index"].as_u64().unwrap(),
                r["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn owned(rows: &[(&str, f64, &str, &str)]) -> Vec<(String, f64, String, String)> {
    rows.iter()
        .map(|(p, v, l, s)| (p.to_string(), *v, l.to_string(), s.to_string()))
        .collect()
}

async fn an_sdmx_csv_file_is_stored_with_its_labels_and_revised_by_replace(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let statistics = statistics_token(&app).await;
    let body = fixture("statistics-ktxh.csv");
    let first = push(&app, &statistics, SDMX_CSV, body.clone()).await;
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(first.body["accepted"], 4, "{first:?}");
    assert_eq!(first.body["rejected"], serde_json::json!([]));

    let source = "VN_HCMSO:DF_KTXH(1.0)";
    assert_eq!(
        latest(&app, "CPI_GROWTH", "HCM", "2026-01", "2026-12").await,
        owned(&[
            ("2026-01", 3.21, "normal", source),
            ("2026-02", 3.35, "provisional", source)
        ])
    );
    assert_eq!(
        latest(&app, "RETAIL_SALES", "HCM", "2026-01", "2026-12").await,
        owned(&[("2026-02", 118450.2, "provisional", source)])
    );
    assert_eq!(
        latest(&app, "GRDP_GROWTH", "HCM", "2026", "2026").await,
        owned(&[("2026-Q1", 6.8, "provisional", source)])
    );

    let again = push(&app, &statistics, SDMX_CSV, body).await;
    assert_eq!(
        (
            again.body["accepted"].clone(),
            again.body["duplicates"].clone()
        ),
        (0.into(), 4.into()),
        "a re-sent file stores nothing twice: {again:?}"
    );

    let official =
        "STRUCTURE,STRUCTURE_ID,ACTION,INDICATOR,REF_AREA,TIME_PERIOD,OBS_VALUE,OBS_STATUS\n\
        dataflow,VN_HCMSO:DF_KTXH(1.0),R,CPI_YOY,VN-SG,2026-M02,3.41,A\n";
    let replaced = push(&app, &statistics, SDMX_CSV, official).await;
    assert_eq!(replaced.body["accepted"], 1, "{replaced:?}");
    let history = app.revisions("CPI_GROWTH", "HCM", "2026-02").await;
    let values: Vec<(f64, &str)> = history
        .iter()
        .map(|r| {
            (
                r["value"].as_f64().unwrap(),
                r["revision_label"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(values, vec![(3.35, "provisional"), (3.41, "normal")]);
    app.stop().await;
}

async fn labels_both_semicolons_decimal_commas_and_reporting_days_are_read(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let customs = push(
        &app,
        &app.customs,
        "application/vnd.sdmx.data+csv; version=2.0.0; labels=both",
        fixture("customs-xnk-labels.csv"),
    )
    .await;
    assert_eq!(customs.status, 200, "{customs:?}");
    assert_eq!(customs.body["accepted"], 3, "{customs:?}");
    let source = "VN_HQKV2:DF_XNK(1.0)";
    assert_eq!(
        latest(&app, "EXPORT_TURNOVER", "HCM", "2026-08", "2026-09").await,
        owned(&[
            ("2026-08", 4120.5, "", source),
            ("2026-09", 3987.25, "", source)
        ])
    );
    assert_eq!(
        latest(&app, "IMPORT_EXPORT_REVENUE", "HCM", "2026-09", "2026-09").await,
        owned(&[("2026-09", 12350.8, "", source)])
    );

    let daily = push(
        &app,
        &app.finance,
        SDMX_CSV,
        fixture("finance-ngansach-daily.csv"),
    )
    .await;
    assert_eq!(daily.body["accepted"], 3, "{daily:?}");
    let periods: Vec<String> = latest(
        &app,
        "PUBLIC_INVESTMENT_DISBURSEMENT_RATE",
        "HCM",
        "2026-03",
        "2026-03",
    )
    .await
    .into_iter()
    .map(|(period, ..)| period)
    .collect();
    assert_eq!(periods, ["2026-03-16", "2026-03-17", "2026-03-18"]);
    app.stop().await;
}

async fn an_sdmx_json_series_message_is_stored_in_message_order(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let body = fixture("finance-ngansach-series.json");
    // One unreadable value shows which row index the receipt gives the observations: the
    // series "1:2" lists "1" before "0", and rows follow the message.
    let with_nan = body.replacen("[98.3, 1]", "[\"NaN\", 1]", 1);
    assert_ne!(with_nan, body);
    let reply = push(&app, &app.finance, SDMX_JSON, with_nan).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["accepted"], 5);
    assert_eq!(
        rejected_codes(&reply),
        vec![(4, "malformed_row".to_owned())]
    );
    let message = reply.body["rejected"][0]["message"].as_str().unwrap();
    assert!(
        message.contains(
            "INDICATOR=COMMUNE_BUDGET_REVENUE, REF_AREA=P_BEN_THANH, TIME_PERIOD=2026-M08"
        ),
        "{message}"
    );

    let whole = push(&app, &app.finance, SDMX_JSON, body).await;
    assert_eq!(
        (
            whole.body["accepted"].clone(),
            whole.body["duplicates"].clone()
        ),
        (1.into(), 5.into()),
        "{whole:?}"
    );
    let source = "VN_HCMSTC:DF_NGANSACH(1.0)";
    assert_eq!(
        latest(
            &app,
            "COMMUNE_BUDGET_REVENUE",
            "P_BEN_THANH",
            "2026-07",
            "2026-08"
        )
        .await,
        owned(&[
            ("2026-07", 91.05, "normal", source),
            ("2026-08", 98.3, "provisional", source)
        ])
    );
    assert_eq!(
        latest(&app, "BUDGET_REVENUE", "HCM", "2026-07", "2026-08").await,
        owned(&[
            ("2026-07", 48210.6, "normal", source),
            ("2026-08", 51375.9, "provisional", source)
        ])
    );
    app.stop().await;
}

async fn a_flat_sdmx_json_message_is_read_by_all_its_dimensions(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let statistics = statistics_token(&app).await;
    let reply = push(
        &app,
        &statistics,
        SDMX_JSON,
        fixture("statistics-ktxh-flat.json"),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["accepted"], 3, "{reply:?}");
    let source = "VN_HCMSO:DF_KTXH(1.0)";
    assert_eq!(
        latest(&app, "CPI_GROWTH", "HCM", "2026-06", "2026-07").await,
        owned(&[
            ("2026-06", 3.12, "normal", source),
            ("2026-07", 3.05, "provisional", source)
        ])
    );
    assert_eq!(
        latest(&app, "IIP_GROWTH", "HCM", "2026-07", "2026-07").await,
        owned(&[("2026-07", 8.4, "provisional", source)])
    );
    app.stop().await;
}

/// Each bad row is rejected with its own code and the good rows beside it are stored.
async fn malformed_sdmx_rows_are_rejected_one_by_one(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let reply = push(
        &app,
        &app.finance,
        SDMX_CSV,
        fixture("finance-ngansach-malformed.csv"),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["accepted"], 2, "{reply:?}");
    let expected: Vec<(u64, String)> = [
        (1, "malformed_row"),
        (2, "malformed_row"),
        (3, "malformed_row"),
        (4, "unknown_indicator"),
        (5, "unit_not_reporting"),
        (6, "malformed_row"),
        (7, "malformed_row"),
        (8, "value_out_of_range"),
    ]
    .iter()
    .map(|(i, c)| (*i, c.to_string()))
    .collect();
    assert_eq!(rejected_codes(&reply), expected);
    let messages: Vec<&str> = reply.body["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["message"].as_str().unwrap())
        .collect();
    let key = "INDICATOR=BUDGET_REVENUE, REF_AREA=VN-SG, TIME_PERIOD=2026-M06";
    assert!(
        messages[0].contains(key) && messages[0].contains("NaN"),
        "{}",
        messages[0]
    );
    assert!(
        messages[1].contains(key) && messages[1].contains("empty"),
        "{}",
        messages[1]
    );
    assert!(messages[2].contains("half-year"), "{}", messages[2]);
    assert!(
        messages[5].contains("VN_HCMSO:DF_GDP(1.0)"),
        "{}",
        messages[5]
    );

    let june = app.revisions("BUDGET_REVENUE", "HCM", "2026-06").await;
    assert_eq!(june.len(), 1, "{june:?}");
    assert_eq!(june[0]["value"], 46000.75);
    assert_eq!(
        app.revisions("BUDGET_REVENUE", "HCM", "2026-05")
            .await
            .len(),
        1
    );
    app.stop().await;
}

/// Messages that cannot be interpreted are refused whole, naming the field at fault.
async fn unreadable_sdmx_messages_are_refused_whole(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let statistics = statistics_token(&app).await;
    let pointer = |reply: &Reply| {
        reply.body["errors"][0]["pointer"]
            .as_str()
            .map(str::to_owned)
    };

    let unknown = push(
        &app,
        &statistics,
        SDMX_JSON,
        fixture("unknown-dataflow.json"),
    )
    .await;
    assert_problem(&unknown, 422, "invalid_field");
    assert_eq!(
        pointer(&unknown).as_deref(),
        Some("/data/structures/0/links")
    );
    assert!(unknown.body["detail"]
        .as_str()
        .is_some_and(|d| d.contains("VN_GSO:DF_GDP_PROVINCE(2.0)")));

    let broken = push(&app, &statistics, SDMX_JSON, "{\"data\": {\"dataSets\": [").await;
    assert_problem(&broken, 400, "malformed_json");

    let test_message = fixture("statistics-ktxh-flat.json").replacen(
        "\"meta\": {",
        "\"meta\": {\"test\": true,",
        1,
    );
    let test = push(&app, &statistics, SDMX_JSON, test_message).await;
    assert_problem(&test, 422, "invalid_field");
    assert_eq!(pointer(&test).as_deref(), Some("/meta/test"));

    let no_area = "STRUCTURE,STRUCTURE_ID,ACTION,INDICATOR,TIME_PERIOD,OBS_VALUE\n\
        dataflow,VN_HCMSO:DF_KTXH(1.0),I,CPI_YOY,2026-M05,3.0\n";
    let reply = push(&app, &statistics, SDMX_CSV, no_area).await;
    assert_problem(&reply, 422, "invalid_field");
    assert_eq!(pointer(&reply).as_deref(), Some("REF_AREA"));

    let version_one = "DATAFLOW,FREQ,INDICATOR,REF_AREA,TIME_PERIOD,OBS_VALUE\n\
        VN_HCMSO:DF_KTXH(1.0),M,CPI_YOY,VN-SG,2026-05,3.0\n";
    let reply = push(&app, &statistics, SDMX_CSV, version_one).await;
    assert_problem(&reply, 422, "invalid_field");
    assert_eq!(pointer(&reply).as_deref(), Some("STRUCTURE"));

    let csv = fixture("statistics-ktxh.csv");
    for content_type in [
        "application/vnd.sdmx.data+csv;version=1.0.0",
        "application/vnd.sdmx.data+csv;version=2.0.0;timeFormat=normalized",
        "application/vnd.sdmx.data+json;version=1.0.0",
    ] {
        let reply = push(&app, &statistics, content_type, csv.clone()).await;
        assert_problem(&reply, 422, "invalid_field");
        assert_eq!(
            pointer(&reply).as_deref(),
            Some("Content-Type"),
            "{content_type}"
        );
    }
    assert!(app
        .revisions("CPI_GROWTH", "HCM", "2026-01")
        .await
        .is_empty());
    assert!(app
        .revisions("CPI_GROWTH", "HCM", "2026-05")
        .await
        .is_empty());
    app.stop().await;
}

async fn a_foreign_departments_dataflow_is_refused_and_nothing_stored(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let csv = push(&app, &app.finance, SDMX_CSV, fixture("statistics-ktxh.csv")).await;
    assert_problem(&csv, 403, "foreign_indicators");
    let json = push(
        &app,
        &app.customs,
        SDMX_JSON,
        fixture("finance-ngansach-series.json"),
    )
    .await;
    assert_problem(&json, 403, "foreign_indicators");
    let viewer = push(&app, &app.viewer, SDMX_CSV, fixture("statistics-ktxh.csv")).await;
    assert_problem(&viewer, 403, "forbidden");
    assert!(app
        .revisions("CPI_GROWTH", "HCM", "2026-01")
        .await
        .is_empty());
    assert!(app
        .revisions("BUDGET_REVENUE", "HCM", "2026-07")
        .await
        .is_empty());
    app.stop().await;
}

/// ACTION=D withdraws a stored value: the period reads as empty and the retraction is the last
/// revision. Both formats, since SDMX-CSV says it per row and SDMX-JSON per data set.
async fn a_delete_withdraws_the_value_as_a_last_revision(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let april =
        "STRUCTURE,STRUCTURE_ID,ACTION,INDICATOR,REF_AREA,TIME_PERIOD,OBS_VALUE,OBS_STATUS\n\
        dataflow,VN_HCMSTC:DF_NGANSACH(1.0),I,BUDGET_REVENUE,VN-SG,2026-M04,44780.2,P\n";
    let stored = push(&app, &app.finance, SDMX_CSV, april).await;
    assert_eq!(stored.body["accepted"], 1, "{stored:?}");
    assert_eq!(
        latest(&app, "BUDGET_REVENUE", "HCM", "2026-04", "2026-04")
            .await
            .len(),
        1
    );

    let delete = push(
        &app,
        &app.finance,
        SDMX_CSV,
        fixture("finance-ngansach-delete.csv"),
    )
    .await;
    assert_eq!(delete.status, 200, "{delete:?}");
    assert_eq!(delete.body["accepted"], 1, "{delete:?}");
    assert!(latest(&app, "BUDGET_REVENUE", "HCM", "2026-04", "2026-04")
        .await
        .is_empty());
    let history = app.revisions("BUDGET_REVENUE", "HCM", "2026-04").await;
    assert_eq!(history.len(), 2, "{history:?}");
    assert_eq!(history[0]["value"], 44780.2);
    assert!(history[1]["value"].is_null(), "{history:?}");
    let retried = push(
        &app,
        &app.finance,
        SDMX_CSV,
        fixture("finance-ngansach-delete.csv"),
    )
    .await;
    assert_eq!(
        retried.body["duplicates"], 1,
        "a retried delete changes nothing: {retried:?}"
    );

    let statistics = statistics_token(&app).await;
    let flat = push(
        &app,
        &statistics,
        SDMX_JSON,
        fixture("statistics-ktxh-flat.json"),
    )
    .await;
    assert_eq!(flat.body["accepted"], 3, "{flat:?}");
    let withdrawn = push(
        &app,
        &statistics,
        SDMX_JSON,
        fixture("statistics-ktxh-delete.json"),
    )
    .await;
    assert_eq!(withdrawn.body["accepted"], 1, "{withdrawn:?}");
    assert!(latest(&app, "IIP_GROWTH", "HCM", "2026-07", "2026-07")
        .await
        .is_empty());
    let history = app.revisions("IIP_GROWTH", "HCM", "2026-07").await;
    assert!(
        history.last().is_some_and(|r| r["value"].is_null()),
        "{history:?}"
    );
    app.stop().await;
}

/// SDMX 2.1 (`version=2.1.0`): Merge, the default action, stores each value as a revision, and
/// a status index that points at a `null` entry of OBS_STATUS's values means no status.
async fn sdmx_2_1_merges_store_revisions_and_null_statuses_mean_no_label(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let statistics = statistics_token(&app).await;
    let message = |action: Option<&str>, june: f64, july: f64| {
        let mut data_set = serde_json::json!({
            "observations": {"0:0": [june, 0], "0:1": [july, 2]}
        });
        if let Some(action) = action {
            data_set["action"] = action.into();
        }
        serde_json::json!({
            "meta": {"id": "KTXH-2026-07-MERGE", "prepared": "2026-08-06T09:00:00+07:00"},
            "data": {
                "structures": [{
                    "links": [{"rel": "dataflow", "urn": "urn:sdmx:org.sdmx.infomodel.datastructure.Dataflow=VN_HCMSO:DF_KTXH(1.0)"}],
                    "dimensions": {
                        "dataSet": [
                            {"id": "FREQ", "values": [{"id": "M"}]},
                            {"id": "REF_AREA", "values": [{"id": "VN-SG"}]}
                        ],
                        "observation": [
                            {"id": "INDICATOR", "values": [{"id": "CPI_YOY"}]},
                            {"id": "TIME_PERIOD", "values": [{"id": "2026-06"}, {"id": "2026-07"}]}
                        ]
                    },
                    "measures": {"observation": [{"id": "OBS_VALUE"}]},
                    "attributes": {"observation": [
                        {"id": "OBS_STATUS", "values": [null, {"id": "A"}, {"id": "P"}]}
                    ]}
                }],
                "dataSets": [data_set]
            }
        })
        .to_string()
    };
    let json_2_1 = "application/vnd.sdmx.data+json;version=2.1.0";
    let merged = push(
        &app,
        &statistics,
        json_2_1,
        message(Some("Merge"), 3.12, 3.05),
    )
    .await;
    assert_eq!(merged.status, 200, "{merged:?}");
    assert_eq!(merged.body["accepted"], 2, "{merged:?}");
    assert_eq!(merged.body["rejected"], serde_json::json!([]));
    let source = "VN_HCMSO:DF_KTXH(1.0)";
    assert_eq!(
        latest(&app, "CPI_GROWTH", "HCM", "2026-06", "2026-07").await,
        owned(&[
            ("2026-06", 3.12, "", source),
            ("2026-07", 3.05, "provisional", source)
        ])
    );

    // No action: 2.1's default, Merge. The changed July value becomes a new revision.
    let revised = push(&app, &statistics, json_2_1, message(None, 3.12, 3.09)).await;
    assert_eq!(
        (
            revised.body["accepted"].clone(),
            revised.body["duplicates"].clone()
        ),
        (1.into(), 1.into()),
        "{revised:?}"
    );
    let history = app.revisions("CPI_GROWTH", "HCM", "2026-07").await;
    let values: Vec<f64> = history
        .iter()
        .map(|r| r["value"].as_f64().unwrap())
        .collect();
    assert_eq!(values, vec![3.05, 3.09]);

    // SDMX-CSV 2.1: `M`, and a blank ACTION read as Merge.
    let csv = "STRUCTURE,STRUCTURE_ID,ACTION,INDICATOR,REF_AREA,TIME_PERIOD,OBS_VALUE,OBS_STATUS\n\
        dataflow,VN_HCMSO:DF_KTXH(1.0),M,CPI_YOY,VN-SG,2026-M08,3.2,\n\
        dataflow,VN_HCMSO:DF_KTXH(1.0),,CPI_YOY,VN-SG,2026-M09,3.3,A\n";
    let csv_reply = push(
        &app,
        &statistics,
        "application/vnd.sdmx.data+csv;version=2.1.0",
        csv,
    )
    .await;
    assert_eq!(csv_reply.body["accepted"], 2, "{csv_reply:?}");
    assert_eq!(
        latest(&app, "CPI_GROWTH", "HCM", "2026-08", "2026-09").await,
        owned(&[
            ("2026-08", 3.2, "", source),
            ("2026-09", 3.3, "normal", source)
        ])
    );
    app.stop().await;
}

on_every_backend!(
    an_sdmx_csv_file_is_stored_with_its_labels_and_revised_by_replace,
    labels_both_semicolons_decimal_commas_and_reporting_days_are_read,
    an_sdmx_json_series_message_is_stored_in_message_order,
    a_flat_sdmx_json_message_is_read_by_all_its_dimensions,
    malformed_sdmx_rows_are_rejected_one_by_one,
    unreadable_sdmx_messages_are_refused_whole,
    a_foreign_departments_dataflow_is_refused_and_nothing_stored,
    a_delete_withdraws_the_value_as_a_last_revision,
    sdmx_2_1_merges_store_revisions_and_null_statuses_mean_no_label,
);
