//! The five-year plan over HTTP: yearly figures pushed, each target's ratio and category by
//! Open SDG's progress measure as worked out by hand, the official figure preferred, and the
//! counts per group in the summary.
//!
//! The shipped plan (`config/plan/2026-2030.toml`) asks GRDP per capita to grow from 8 944 USD
//! in 2025 to 14 000 USD in 2030. With an observed 2025 figure of 10 000:
//! `CAGR_req = (14000 / 10000)^(1/5) − 1 = 1.4^0.2 − 1 = 0.0696104`, and a 2026 figure `v` gives
//! `CAGR_obs = v / 10000 − 1` and `R = CAGR_obs / CAGR_req`, against Open SDG's thresholds
//! (R ≥ 0.95 substantial, 0.60 ≤ R < 0.95 moderate, 0 ≤ R < 0.60 limited, R < 0 deterioration).

use std::path::PathBuf;

use serde_json::{json, Value};

use crate::helpers::{
    assert_problem, mint_token, misnotated, spawn_app, visible_text, Backend, TestApp,
};
use crate::on_every_backend;
use crate::workbook::{fetch, xlsx_formats, xlsx_sheet};
use ktxh::auth::Role;
use ktxh::domain::number::Notation;

async fn push(app: &TestApp, indicator: &str, period: &str, value: f64) {
    let reply = app
        .post_observations(
            &app.admin,
            &json!({"observations": [{"indicator": indicator, "unit": "HCM",
                                      "period": period, "value": value}]}),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["accepted"], 1, "{reply:?}");
}

/// The plan's entry for `indicator`.
async fn target(app: &TestApp, indicator: &str) -> Value {
    let reply = app.get("/api/v1/plan", &app.viewer).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["code"], "2026-2030", "{reply:?}");
    reply.body["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|group| group["targets"].as_array().expect("targets").iter())
        .find(|t| t["indicator"] == indicator)
        .cloned()
        .unwrap_or_else(|| panic!("no {indicator} in {}", reply.body))
}

fn assert_latest(target: &Value, year: i64, value: f64, category: &str, ratio: f64) {
    let latest = &target["latest"];
    assert_eq!(latest["year"], year, "{target}");
    assert_eq!(latest["value"].as_f64(), Some(value), "{target}");
    assert_eq!(latest["category"], category, "{target}");
    let got = latest["ratio"].as_f64().expect("a ratio");
    assert!((got - ratio).abs() < 1e-6, "R {got} != {ratio}: {target}");
}

async fn each_category_follows_the_hand_computed_ratio_of_the_pushed_figures(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    // Nothing observed yet: the target is listed with its plan figures, not assessed.
    let before = target(&app, "GRDP_PER_CAPITA").await;
    assert_eq!(before["baseline"].as_f64(), Some(8944.0));
    assert_eq!(before["target"].as_f64(), Some(14000.0));
    assert_eq!(before["direction"], "increase");
    assert_eq!(before["illustrative"], false);
    assert!(before["source"]
        .as_str()
        .is_some_and(|s| s.contains("Đại hội")));
    assert_eq!(before["name_vi"], "GRDP bình quân đầu người");
    assert!(before["latest"].is_null(), "{before}");

    // Only 2026, from the plan's baseline of 8 944: CAGR_obs = 10500 / 8944 − 1 = 0.173971;
    // CAGR_req = (14000 / 8944)^(1/5) − 1 = 0.093753; R = 1.855636.
    push(&app, "GRDP_PER_CAPITA", "2026", 10_500.0).await;
    let only_2026 = target(&app, "GRDP_PER_CAPITA").await;
    assert_latest(&only_2026, 2026, 10_500.0, "substantial", 1.855_635_72);
    assert_eq!(only_2026["series"][0]["from_plan"], true, "{only_2026}");

    // An observed 2025 of 10 000 replaces the plan's baseline.
    push(&app, "GRDP_PER_CAPITA", "2025", 10_000.0).await;
    // R = 0.05 / 0.0696104 = 0.718284: moderate.
    assert_latest(
        &target(&app, "GRDP_PER_CAPITA").await,
        2026,
        10_500.0,
        "moderate",
        0.718_283_73,
    );
    // R = 0.08 / 0.0696104 = 1.149254: substantial.
    push(&app, "GRDP_PER_CAPITA", "2026", 10_800.0).await;
    assert_latest(
        &target(&app, "GRDP_PER_CAPITA").await,
        2026,
        10_800.0,
        "substantial",
        1.149_253_96,
    );
    // R = 0.01 / 0.0696104 = 0.143657: limited.
    push(&app, "GRDP_PER_CAPITA", "2026", 10_100.0).await;
    assert_latest(
        &target(&app, "GRDP_PER_CAPITA").await,
        2026,
        10_100.0,
        "limited",
        0.143_656_75,
    );
    // R = −0.01 / 0.0696104 = −0.143657: deterioration.
    push(&app, "GRDP_PER_CAPITA", "2026", 9_900.0).await;
    let fallen = target(&app, "GRDP_PER_CAPITA").await;
    assert_latest(&fallen, 2026, 9_900.0, "deterioration", -0.143_656_75);
    assert_eq!(fallen["latest"]["official"], false, "{fallen}");

    // A quarterly level reads its latest quarter, and an illustrative target says so. From the
    // plan's 3.0 % towards at most 2.5 %: CAGR_req = (2.5 / 3)^(1/5) − 1 = −0.035807; 3.3 % in
    // 2026 is CAGR_obs = 0.1, R = (−1)(0.1) / 0.035807 = −2.792711.
    push(&app, "URBAN_UNEMPLOYMENT_RATE", "2026-Q1", 2.9).await;
    push(&app, "URBAN_UNEMPLOYMENT_RATE", "2026-Q2", 3.3).await;
    let unemployment = target(&app, "URBAN_UNEMPLOYMENT_RATE").await;
    assert_latest(&unemployment, 2026, 3.3, "deterioration", -2.792_711_34);
    assert_eq!(unemployment["illustrative"], true);
    assert_eq!(unemployment["direction"], "at_most");

    // The summary counts them per group; every other target is not assessed yet.
    let summary = app.get("/api/v1/plan/summary", &app.viewer).await;
    assert_eq!(summary.status, 200, "{summary:?}");
    let counts = &summary.body["counts"];
    assert_eq!(counts["deterioration"], 2, "{summary:?}");
    let targets = summary.body["targets"].as_u64().expect("targets");
    assert_eq!(
        counts["not_assessed"].as_u64(),
        Some(targets - 2),
        "{summary:?}"
    );
    let economy = summary.body["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["code"] == "ECONOMY")
        .expect("economy");
    assert_eq!(economy["counts"]["deterioration"], 1, "{economy}");
    assert_eq!(economy["indicators"], json!(["GRDP_PER_CAPITA"]));
    assert!(summary.body["illustrative"]
        .as_u64()
        .is_some_and(|n| n >= 1));
}

async fn the_official_figure_is_read_where_one_exists(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (_, statistics) = mint_token(&app.store, Role::Statistics, None).await;
    push(&app, "GRDP_PER_CAPITA", "2025", 10_000.0).await;
    push(&app, "GRDP_PER_CAPITA", "2026", 10_500.0).await;
    for period in ["2025", "2026"] {
        let reply = app
            .send(
                app.client
                    .post(app.url("/api/v1/approvals"))
                    .bearer_auth(&statistics)
                    .json(&json!({"indicator": "GRDP_PER_CAPITA", "unit": "HCM",
                                  "period": period, "state": "official"})),
            )
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    // A preliminary revision after the official one does not move the plan: R stays
    // 0.05 / 0.0696104 = 0.718284.
    push(&app, "GRDP_PER_CAPITA", "2026", 9_000.0).await;
    let official = target(&app, "GRDP_PER_CAPITA").await;
    assert_latest(&official, 2026, 10_500.0, "moderate", 0.718_283_73);
    assert_eq!(official["latest"]["official"], true, "{official}");
}

async fn an_unknown_plan_is_refused_naming_the_parameter(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let reply = app.get("/api/v1/plan?plan=1999-2003", &app.viewer).await;
    assert_problem(&reply, 422, "invalid_field");
    assert_eq!(reply.body["errors"][0]["pointer"], "plan", "{reply:?}");
    let reply = app
        .send(app.client.get(app.url("/api/v1/plan/summary")))
        .await;
    assert_eq!(reply.status, 401, "{reply:?}");
}

/// A number format that shows a figure wrongly: one with optional decimals (`#,##0.##` shows a
/// whole 10 as `10.`), or a whole-number format on a figure with decimals at two places.
fn misshown(cell: &Value) -> Option<String> {
    let format = cell["format"].as_str().unwrap_or_default();
    let value = cell["value"].as_f64().unwrap_or_default();
    let optional_decimals = format.contains(".#");
    let hides_decimals =
        matches!(format, "0" | "#,##0") && ((value * 100.0).round() / 100.0).fract() != 0.0;
    (optional_decimals || hides_decimals).then(|| cell.to_string())
}

async fn the_yearly_report_has_the_plans_section_in_every_format(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    // R = 0.05 / 0.0696104 = 0.718284: moderate, as above.
    push(&app, "GRDP_PER_CAPITA", "2025", 10_000.0).await;
    push(&app, "GRDP_PER_CAPITA", "2026", 10_500.0).await;

    let html =
        String::from_utf8(fetch(&app, "/api/v1/reports/2026?history=latest").await).expect("UTF-8");
    assert!(
        html.contains("<h2>Kế hoạch 5 năm 2026–2030</h2>"),
        "no plan section"
    );
    assert!(
        html.contains(r#"data-indicator="GRDP_PER_CAPITA" data-category="moderate""#),
        "GRDP per capita is not moderate in the HTML"
    );
    assert!(html.contains("Tiến bộ vừa phải"));
    // A quarter's report has no plan section.
    let quarter = String::from_utf8(fetch(&app, "/api/v1/reports/2026-Q1?history=latest").await)
        .expect("UTF-8");
    assert!(!quarter.contains(r#"id="plan""#));

    let report_csv = |lang: &'static str| {
        let app = &app;
        async move {
            let path = format!("/api/v1/reports/2026?format=csv&lang={lang}&history=latest");
            String::from_utf8(fetch(app, &path).await).expect("UTF-8")
        }
    };
    let csv = report_csv("en").await;
    let mut reader = csv::Reader::from_reader(csv.trim_start_matches('\u{feff}').as_bytes());
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("record")).collect();
    let heading = records
        .iter()
        .position(|r| &r[0] == "Five-year plan 2026–2030")
        .expect("the plan's heading row");
    assert!(
        records[heading - 1].iter().all(str::is_empty),
        "no empty row before it"
    );
    let at = |name: &str| {
        records[heading]
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no {name} in {:?}", records[heading]))
    };
    let row = records[heading..]
        .iter()
        .find(|r| &r[1] == "GRDP_PER_CAPITA")
        .expect("the plan's GRDP per capita row");
    // Words in the report's language, as its other rows, not the API's codes.
    assert_eq!(&row[at("Progress")], "Moderate progress");
    assert_eq!(&row[at("Direction")], "increase");
    let vi = report_csv("vi").await;
    let line = vi
        .lines()
        .find(|line| line.contains(",GRDP_PER_CAPITA,") && line.contains("Tiến bộ"))
        .expect("the plan's GRDP per capita row in Vietnamese");
    assert!(
        line.contains(",tăng,") && line.contains("Tiến bộ vừa phải"),
        "{line}"
    );
    assert_eq!(&row[at("R")], "0.7183");
    assert_eq!(&row[at("Latest")], "10500");
    assert_eq!(&row[at("Baseline")], "8944");

    let xlsx = fetch(
        &app,
        "/api/v1/reports/2026?format=xlsx&lang=vi&history=latest",
    )
    .await;
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-artefacts");
    std::fs::create_dir_all(&dir).expect("artefact directory");
    let file = dir.join(format!("report-plan-{backend:?}.xlsx"));
    std::fs::write(&file, &xlsx).expect("write the workbook");
    if let Some(rows) = xlsx_sheet(&file, "Kế hoạch 5 năm") {
        assert_eq!(rows[0][0], "Kế hoạch 5 năm 2026–2030");
        let header = rows
            .iter()
            .position(|row| row.iter().any(|cell| cell == "Mã"))
            .expect("a header row");
        let column = |name: &str| {
            rows[header]
                .iter()
                .position(|cell| cell == name)
                .unwrap_or_else(|| panic!("a column {name}: {:?}", rows[header]))
        };
        let row = rows
            .iter()
            .find(|row| row.get(column("Mã")) == Some(&json!("GRDP_PER_CAPITA")))
            .unwrap_or_else(|| panic!("a row for GRDP_PER_CAPITA: {rows:?}"));
        assert_eq!(row[column("Đánh giá")], "Tiến bộ vừa phải", "{row:?}");
        let ratio = row[column("R")].as_f64().expect("R as a number");
        assert!((ratio - 0.718_283_73).abs() < 1e-6, "{row:?}");
        assert_eq!(
            row[column("Số gần nhất")].as_f64(),
            Some(10_500.0),
            "{row:?}"
        );
    }
    // The whole page in each language — targets, plan, tasks, explanations — writes every
    // figure in that language's notation.
    for (lang, notation, latest) in [
        ("vi", Notation::Vietnamese, "10.500"),
        ("en", Notation::English, "10,500"),
    ] {
        let page = String::from_utf8(
            fetch(
                &app,
                &format!("/api/v1/reports/2026?history=latest&lang={lang}"),
            )
            .await,
        )
        .expect("UTF-8");
        let text = visible_text(&page);
        assert!(text.contains(latest), "{lang}: no {latest} in the page");
        let wrong = misnotated(&text, notation);
        assert!(
            wrong.is_empty(),
            "{lang}: figures in another notation: {wrong:?}"
        );
    }

    // Every sheet, in both languages: each figure shows whole or with two decimals, as the
    // HTML report writes it, and never with a dangling separator.
    for lang in ["vi", "en"] {
        let xlsx = fetch(
            &app,
            &format!("/api/v1/reports/2026?format=xlsx&lang={lang}&history=latest"),
        )
        .await;
        let file = dir.join(format!("report-plan-{backend:?}-{lang}.xlsx"));
        std::fs::write(&file, &xlsx).expect("write the workbook");
        let Some(cells) = xlsx_formats(&file) else {
            break;
        };
        let sheets: std::collections::BTreeSet<&str> =
            cells.iter().filter_map(|c| c["sheet"].as_str()).collect();
        assert!(sheets.len() >= 3, "figures on several sheets: {sheets:?}");
        let wrong: Vec<String> = cells.iter().filter_map(misshown).collect();
        assert!(wrong.is_empty(), "{lang}: cells shown wrongly: {wrong:#?}");
        let baseline = cells
            .iter()
            .find(|c| {
                c["sheet"]
                    == if lang == "vi" {
                        "Kế hoạch 5 năm"
                    } else {
                        "Five-year plan"
                    }
                    && c["value"] == json!(8944)
            })
            .unwrap_or_else(|| panic!("the plan's GRDP per capita baseline 8944: {cells:?}"));
        assert_eq!(baseline["format"], "#,##0", "{baseline}");
    }
}

/// Posts the statistics office's approval making `period`'s latest revision official.
async fn make_official(app: &TestApp, statistics: &str, indicator: &str, period: &str) {
    let reply = app
        .send(
            app.client
                .post(app.url("/api/v1/approvals"))
                .bearer_auth(statistics)
                .json(&json!({"indicator": indicator, "unit": "HCM",
                              "period": period, "state": "official"})),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
}

/// The 2026 report's plan section as data, with the query's `as_of` and `history` when given.
async fn report_plan(app: &TestApp, query: &str) -> Value {
    let reply = app
        .get(
            &format!("/api/v1/reports/2026?format=json{query}"),
            &app.viewer,
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let plan = reply.body["plan"].clone();
    assert!(plan.is_object(), "no plan section: {}", reply.body);
    plan
}

/// `indicator`'s entry in a report's plan section.
fn report_target(plan: &Value, indicator: &str) -> Value {
    plan["assessment"]["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|group| group["targets"].as_array().expect("targets").iter())
        .find(|t| t["indicator"] == indicator)
        .cloned()
        .unwrap_or_else(|| panic!("no {indicator} in {plan}"))
}

/// An instant strictly between what was pushed before and what is pushed after it: revisions
/// are stamped with the server's clock, which the tests share.
async fn instant_between() -> chrono::DateTime<chrono::Utc> {
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let at = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    at
}

async fn a_past_reports_plan_section_stays_as_it_was_at_its_cut_off(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (_, statistics) = mint_token(&app.store, Role::Statistics, None).await;
    push(&app, "GRDP_PER_CAPITA", "2025", 10_000.0).await;
    push(&app, "GRDP_PER_CAPITA", "2026", 10_500.0).await;
    let cutoff = instant_between().await;
    let as_of = format!(
        "&as_of={}",
        cutoff.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    );
    let latest_then = format!("{as_of}&history=latest");

    // As known at the cut-off: 2026's 10 500 on 2025's 10 000, R = 0.718284, nothing official.
    let before = report_plan(&app, &latest_then).await;
    let grdp = report_target(&before, "GRDP_PER_CAPITA");
    assert_latest(&grdp, 2026, 10_500.0, "moderate", 0.718_283_73);
    assert_eq!(grdp["latest"]["official"], false, "{grdp}");
    let official_before = report_plan(&app, &as_of).await;

    // After the cut-off: a revision of 2026 and both years made official.
    push(&app, "GRDP_PER_CAPITA", "2026", 10_800.0).await;
    make_official(&app, &statistics, "GRDP_PER_CAPITA", "2025").await;
    make_official(&app, &statistics, "GRDP_PER_CAPITA", "2026").await;

    // The report as of the cut-off reads as it did, in either history.
    for (query, then) in [(&latest_then, &before), (&as_of, &official_before)] {
        let again = report_plan(&app, query).await;
        assert!(
            &again == then,
            "{query}: GRDP per capita was {} and is now {}",
            report_target(then, "GRDP_PER_CAPITA"),
            report_target(&again, "GRDP_PER_CAPITA")
        );
    }
    // Nothing was official at the cut-off: the default report had no figure to judge by.
    assert!(
        report_target(&official_before, "GRDP_PER_CAPITA")["latest"].is_null(),
        "{official_before}"
    );
    // A report cut off now has them: R = 0.08 / 0.0696104 = 1.149254, official.
    for query in ["", "&history=latest"] {
        let now = report_target(&report_plan(&app, query).await, "GRDP_PER_CAPITA");
        assert_latest(&now, 2026, 10_800.0, "substantial", 1.149_253_96);
        assert_eq!(now["latest"]["official"], true, "{query}: {now}");
    }
}

async fn the_report_reads_official_figures_only_unless_asked_for_the_latest(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (_, statistics) = mint_token(&app.store, Role::Statistics, None).await;
    push(&app, "GRDP_PER_CAPITA", "2025", 10_000.0).await;
    push(&app, "GRDP_PER_CAPITA", "2026", 10_500.0).await;

    // Preliminary figures: the default report does not use them, the latest does (R = 0.718284).
    let official = report_plan(&app, "").await;
    let grdp = report_target(&official, "GRDP_PER_CAPITA");
    assert!(
        grdp["latest"].is_null(),
        "a preliminary figure used: {grdp}"
    );
    assert_eq!(official["history"], "official");
    assert!(
        grdp["series"]
            .as_array()
            .is_some_and(|s| s.iter().all(|f| f["from_plan"] == true)),
        "{grdp}"
    );
    let latest = report_plan(&app, "&history=latest").await;
    assert_eq!(latest["history"], "latest");
    let grdp = report_target(&latest, "GRDP_PER_CAPITA");
    assert_latest(&grdp, 2026, 10_500.0, "moderate", 0.718_283_73);
    assert_eq!(grdp["latest"]["official"], false, "{grdp}");

    // Each rendering of the section says which figures it read, in the report's own words.
    for (query, note) in [
        (
            "",
            "Số liệu: chỉ số liệu chính thức, mỗi số liệu tính từ khi được công bố chính thức.",
        ),
        (
            "?history=latest&lang=en",
            "Figures: the latest, preliminary figures included (not all are official).",
        ),
    ] {
        let html = String::from_utf8(fetch(&app, &format!("/api/v1/reports/2026{query}")).await)
            .expect("UTF-8");
        let section = &html[html
            .find(r#"<section id="plan""#)
            .expect("the plan section")..];
        let section = &section[..section.find("</section>").expect("its end")];
        assert!(section.contains(note), "{query}: no `{note}` in {section}");
    }

    // Made official by the statistics office: the default report uses them.
    make_official(&app, &statistics, "GRDP_PER_CAPITA", "2025").await;
    make_official(&app, &statistics, "GRDP_PER_CAPITA", "2026").await;
    let grdp = report_target(&report_plan(&app, "").await, "GRDP_PER_CAPITA");
    assert_latest(&grdp, 2026, 10_500.0, "moderate", 0.718_283_73);
    assert_eq!(grdp["latest"]["official"], true, "{grdp}");

    // A preliminary revision after them: the default report keeps the official figure, the
    // latest reads the new one (R = −0.1 / 0.0696104 = −1.436568).
    push(&app, "GRDP_PER_CAPITA", "2026", 9_000.0).await;
    let grdp = report_target(&report_plan(&app, "").await, "GRDP_PER_CAPITA");
    assert_latest(&grdp, 2026, 10_500.0, "moderate", 0.718_283_73);
    let grdp = report_target(
        &report_plan(&app, "&history=latest").await,
        "GRDP_PER_CAPITA",
    );
    assert_latest(&grdp, 2026, 9_000.0, "deterioration", -1.436_567_45);
    assert_eq!(grdp["latest"]["official"], false, "{grdp}");
}

on_every_backend!(
    each_category_follows_the_hand_computed_ratio_of_the_pushed_figures,
    the_official_figure_is_read_where_one_exists,
    an_unknown_plan_is_refused_naming_the_parameter,
    the_yearly_report_has_the_plans_section_in_every_format,
    a_past_reports_plan_section_stays_as_it_was_at_its_cut_off,
    the_report_reads_official_figures_only_unless_asked_for_the_latest,
);
