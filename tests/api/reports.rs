//! The period report over real HTTP: a past quarter's report agrees with the status API as of
//! its cut-off in every format, and a late revision does not rewrite it.
//!
//! The XLSX is read back with openpyxl (`KTXH_TEST_PYTHON`) and the HTML is rendered by
//! headless Chromium (`KTXH_TEST_CHROMIUM`); both come from `scripts/test.sh`. Without them
//! those checks are skipped, unless `KTXH_TEST_REQUIRE_ALL_BACKENDS=1` makes them fail.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use chrono::{DateTime, TimeZone, Utc};
use ktxh::domain::{Code, NewObservation, Period};
use ktxh::store::WriteBatch;
use serde_json::Value;

use crate::helpers::{spawn_app, Backend, TestApp};
use crate::on_every_backend;

const HCM: chrono_tz::Tz = chrono_tz::Asia::Ho_Chi_Minh;

fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 0, 0, 0)
        .single()
        .expect("valid date")
}

/// Writes figures straight to the store as received at `received`, as a department would
/// have sent them then.
async fn write(app: &TestApp, indicator: &str, values: &[(&str, f64)], received: DateTime<Utc>) {
    let rows = values
        .iter()
        .map(|(period, value)| {
            let period = Period::parse(period).expect("period");
            NewObservation {
                indicator: Code::parse(indicator).expect("code"),
                unit: Code::parse("HCM").expect("code"),
                period,
                period_start: period.start(HCM),
                period_end: period.end(HCM),
                value: Some(*value),
                revision_label: None,
                source: Some("report-test".into()),
                reported_at: None,
            }
        })
        .collect();
    app.store
        .write_batch(&WriteBatch {
            rows,
            recorded_by: "report-test".into(),
            received_at: received,
            rejected: Vec::new(),
            idempotency: None,
        })
        .await
        .expect("write");
}

/// One target's figures as a report or the status API gives them.
#[derive(Debug, Clone, PartialEq)]
struct Figures {
    status: String,
    actual: Option<f64>,
    expected: Option<f64>,
    projection: Option<f64>,
}

fn close(a: Option<f64>, b: Option<f64>) -> bool {
    close_within(a, b, 0.0)
}

/// Equal but for floating-point noise, or for rounding to within `rounding` either way.
fn close_within(a: Option<f64>, b: Option<f64>, rounding: f64) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => (a - b).abs() <= rounding + 1e-6 * a.abs().max(1.0),
        _ => false,
    }
}

/// The CSV writes four decimals: it equals the status API to within half the last place.
const CSV_ROUNDING: f64 = 0.5e-4;

fn assert_same(what: &str, got: &BTreeMap<String, Figures>, want: &BTreeMap<String, Figures>) {
    assert_same_within(what, got, want, 0.0);
}

fn assert_same_within(
    what: &str,
    got: &BTreeMap<String, Figures>,
    want: &BTreeMap<String, Figures>,
    rounding: f64,
) {
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{what}: the same targets"
    );
    for (code, expected) in want {
        let figures = &got[code];
        assert_eq!(figures.status, expected.status, "{what}: status of {code}");
        for (name, a, b) in [
            ("actual", figures.actual, expected.actual),
            ("expected", figures.expected, expected.expected),
            ("projection", figures.projection, expected.projection),
        ] {
            assert!(
                close_within(a, b, rounding),
                "{what}: {name} of {code}: {a:?} vs {b:?}"
            );
        }
    }
}

async fn status_as_of(app: &TestApp, year: i32, cutoff: &str) -> BTreeMap<String, Figures> {
    let reply = app
        .get(
            &format!("/api/v1/status?year={year}&as_of={cutoff}"),
            &app.viewer,
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body["statuses"]
        .as_array()
        .expect("statuses")
        .iter()
        .map(|s| {
            (
                s["indicator"].as_str().unwrap_or_default().to_owned(),
                Figures {
                    status: s["status"].as_str().unwrap_or_default().to_owned(),
                    actual: s["actual"].as_f64(),
                    expected: s["expected"].as_f64(),
                    projection: s["projection"].as_f64(),
                },
            )
        })
        .collect()
}

/// Status words of the English report back to the API's codes.
fn status_code(label: &str) -> String {
    match label {
        "Achieved" => "achieved",
        "On track" => "on_track",
        "At risk" => "at_risk",
        "Off track" => "off_track",
        "Missed" => "missed",
        "Stale" => "stale",
        "No data" => "no_data",
        other => other,
    }
    .to_owned()
}

async fn fetch(app: &TestApp, path: &str) -> (u16, String, Vec<u8>) {
    // These reports read every figure as soon as it is known, as the status API judges them;
    // reports read only official figures unless asked (tests/api/approvals.rs).
    let separator = if path.contains('?') { '&' } else { '?' };
    crate::workbook::get(app, &format!("{path}{separator}history=latest")).await
}

fn from_csv(body: &[u8]) -> BTreeMap<String, Figures> {
    let body = body
        .strip_prefix(b"\xEF\xBB\xBF")
        .expect("a UTF-8 byte-order mark");
    let mut reader = csv::Reader::from_reader(body);
    let number = |cell: &str| (!cell.is_empty()).then(|| cell.parse::<f64>().expect("number"));
    // The targets' rows end at the first blank row; sections (tasks, the five-year plan) follow.
    reader
        .records()
        .map(|record| record.expect("csv record"))
        .take_while(|record| record.iter().any(|field| !field.is_empty()))
        .map(|record| {
            (
                record[1].to_owned(),
                Figures {
                    status: status_code(&record[10]),
                    actual: number(&record[6]),
                    expected: number(&record[7]),
                    projection: number(&record[8]),
                },
            )
        })
        .collect()
}

fn require_all() -> bool {
    std::env::var("KTXH_TEST_REQUIRE_ALL_BACKENDS").is_ok_and(|v| v == "1")
}

fn artefacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-artefacts");
    std::fs::create_dir_all(&dir).expect("artefact directory");
    dir
}

/// The spreadsheet's Targets sheet as openpyxl reads it (values and number formats by
/// indicator), or `None` when no Python has it.
fn xlsx_rows(path: &std::path::Path) -> Option<Value> {
    let python = std::env::var_os("KTXH_TEST_PYTHON").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-venv/bin/python"),
        PathBuf::from,
    );
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/xlsx_figures.py");
    let output = Command::new(&python).arg(script).arg(path).output();
    let output = match output {
        Ok(output) if output.status.success() => output,
        Ok(output) if require_all() => panic!(
            "openpyxl could not read the report: {}",
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(e) if require_all() => panic!("{} cannot run: {e}", python.display()),
        _ => {
            eprintln!("skipped: no Python with openpyxl (scripts/test.sh installs it)");
            return None;
        }
    };
    Some(serde_json::from_slice(&output.stdout).expect("JSON from the script"))
}

/// The spreadsheet's Targets sheet read by openpyxl, or `None` when no Python has it.
fn from_xlsx(path: &std::path::Path) -> Option<BTreeMap<String, Figures>> {
    let rows = xlsx_rows(path)?;
    Some(
        rows.as_object()
            .expect("object")
            .iter()
            .map(|(code, row)| {
                (
                    code.clone(),
                    Figures {
                        status: status_code(row["status"].as_str().unwrap_or_default()),
                        actual: row["actual"].as_f64(),
                        expected: row["expected"].as_f64(),
                        projection: row["projection"].as_f64(),
                    },
                )
            })
            .collect(),
    )
}

/// The report page as Chromium rendered it (its DOM), with a PDF print kept as an artefact.
fn rendered_by_chromium(html: &std::path::Path, pdf: &std::path::Path) -> Option<String> {
    let Some(chromium) = std::env::var_os("KTXH_TEST_CHROMIUM") else {
        assert!(!require_all(), "KTXH_TEST_CHROMIUM is not set");
        eprintln!("skipped: KTXH_TEST_CHROMIUM is not set");
        return None;
    };
    let profile = tempfile::tempdir().expect("profile dir");
    let run = |extra: &[String]| {
        let output = Command::new(&chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(format!("file://{}", html.display()))
            .output()
            .expect("chromium runs");
        assert!(output.status.success(), "chromium failed: {output:?}");
        output
    };
    run(&[format!("--print-to-pdf={}", pdf.display())]);
    let pdf_bytes = std::fs::read(pdf).expect("a PDF was printed");
    assert!(pdf_bytes.starts_with(b"%PDF"), "not a PDF");
    let dom = run(&["--dump-dom".to_owned()]);
    Some(String::from_utf8(dom.stdout).expect("UTF-8 DOM"))
}

/// `data-*` attributes of the rendered target rows: indicator → (status, actual).
fn from_dom(dom: &str) -> BTreeMap<String, (String, Option<f64>)> {
    let attribute = |tag: &str, name: &str| -> Option<String> {
        let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
        let end = tag[start..].find('"')? + start;
        Some(tag[start..end].to_owned())
    };
    dom.split("<tr ")
        .skip(1)
        .filter_map(|rest| {
            let tag = &rest[..rest.find('>')?];
            let status = attribute(tag, "data-status")?;
            let code = attribute(tag, "data-indicator")?;
            let actual = attribute(tag, "data-actual")
                .filter(|a| !a.is_empty())
                .map(|a| a.parse::<f64>().expect("number"));
            Some((code, (status, actual)))
        })
        .collect()
}

async fn a_past_quarter_reads_as_its_cut_off_in_every_format(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let months = [
        ("2025-01", 7000.0),
        ("2025-02", 6800.0),
        ("2025-03", 7600.0),
        ("2025-04", 7400.0),
        ("2025-05", 7900.0),
        ("2025-06", 7700.0),
        ("2025-07", 8000.0),
        ("2025-08", 8100.0),
        ("2025-09", 7900.0),
    ];
    write(&app, "EXPORT_TURNOVER", &months, at(2025, 10, 2)).await;
    write(
        &app,
        "GRDP_GROWTH",
        &[("2025-Q1", 7.5), ("2025-Q2", 8.2), ("2025-Q3", 8.4)],
        at(2025, 10, 3),
    )
    .await;
    // September is revised after the third quarter's report was due: that report keeps the
    // first figure.
    write(
        &app,
        "EXPORT_TURNOVER",
        &[("2025-09", 9900.0)],
        at(2025, 11, 20),
    )
    .await;

    // Quarterly figures are due on the 6th of the next month, 00:00 in Ho Chi Minh City.
    let cutoff = "2025-10-06T17:00:00Z";
    let truth = status_as_of(&app, 2025, cutoff).await;
    let exports = &truth["EXPORT_TURNOVER"];
    assert_eq!(exports.actual, Some(months.iter().map(|(_, v)| v).sum()));
    assert!(truth.len() > 100, "every 2025 target of the city is judged");

    let (status, content_type, csv) =
        fetch(&app, "/api/v1/reports/2025-Q3?format=csv&lang=en").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&csv));
    assert!(content_type.starts_with("text/csv"), "{content_type}");
    assert_same_within("CSV", &from_csv(&csv), &truth, CSV_ROUNDING);

    let (status, content_type, xlsx) =
        fetch(&app, "/api/v1/reports/2025-Q3?format=xlsx&lang=en").await;
    assert_eq!(status, 200);
    assert!(content_type.contains("spreadsheetml"), "{content_type}");
    let xlsx_path = artefacts().join(format!("report-2025-Q3-{backend:?}.xlsx"));
    std::fs::write(&xlsx_path, &xlsx).expect("write the workbook");
    if let Some(sheet) = from_xlsx(&xlsx_path) {
        assert_same("XLSX", &sheet, &truth);
    }

    let (status, content_type, html) = fetch(&app, "/api/v1/reports/2025-Q3").await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let page = String::from_utf8(html).expect("UTF-8 page");
    assert!(page.contains("Quý III/2025"), "Vietnamese by default");
    let html_path = artefacts().join(format!("report-2025-Q3-{backend:?}.html"));
    std::fs::write(&html_path, &page).expect("write the page");
    let pdf_path = artefacts().join(format!("report-2025-Q3-{backend:?}.pdf"));
    if let Some(dom) = rendered_by_chromium(&html_path, &pdf_path) {
        let shown = from_dom(&dom);
        assert_eq!(shown.len(), truth.len(), "one row per target");
        for (code, figures) in &truth {
            let (status, actual) = &shown[code];
            assert_eq!(status, &figures.status, "rendered status of {code}");
            assert!(close(*actual, figures.actual), "rendered actual of {code}");
        }
    }

    // The fourth quarter's report, due later, has the revision.
    let (_, _, later) = fetch(&app, "/api/v1/reports/2025-Q4?format=csv&lang=en").await;
    let later = from_csv(&later);
    assert_eq!(
        later["EXPORT_TURNOVER"].actual,
        Some(months.iter().map(|(_, v)| v).sum::<f64>() + 2000.0)
    );
    app.stop().await;
}

async fn bad_report_requests_name_the_parameter(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    for (path, pointer) in [
        ("/api/v1/reports/2025-13", "period"),
        ("/api/v1/reports/2025-03-01", "period"),
        ("/api/v1/reports/2099", "period"),
        ("/api/v1/reports/2025?format=pdf", "format"),
        ("/api/v1/reports/2025?lang=fr", "lang"),
        ("/api/v1/reports/2025?unit=ATLANTIS", "unit"),
        ("/api/v1/reports/2025?history=draft", "history"),
    ] {
        let reply = app.get(path, &app.viewer).await;
        assert_eq!(reply.status, 422, "{path}: {reply:?}");
        assert_eq!(reply.body["errors"][0]["pointer"], pointer, "{path}");
    }
    let anonymous = app
        .send(app.client.get(app.url("/api/v1/reports/2025")))
        .await;
    assert_eq!(anonymous.status, 401);

    // `as_of` may be a day, as the status reads it: its end in the city. Judged before the
    // quarter ended, the report is provisional; at its own cut-off, long past, it is not.
    let early = app
        .get(
            "/api/v1/reports/2025-Q3?format=json&as_of=2025-09-01",
            &app.viewer,
        )
        .await;
    assert_eq!(early.status, 200, "{early:?}");
    assert_eq!(early.body["cutoff"], "2025-09-01T17:00:00Z");
    assert_eq!(early.body["provisional"], true);
    let due = app
        .get("/api/v1/reports/2025-Q3?format=json", &app.viewer)
        .await;
    assert_eq!(due.body["provisional"], false, "{due:?}");
    app.stop().await;
}

/// The `<tr>` of `indicator` in a rendered report page.
fn html_row<'a>(page: &'a str, indicator: &str) -> &'a str {
    let start = page
        .find(&format!(r#"<tr data-indicator="{indicator}" data-status"#))
        .unwrap_or_else(|| panic!("a row for {indicator}"));
    let end = page[start..].find("</tr>").expect("end of row") + start;
    &page[start..end]
}

/// The cells after the measure: target, actual, same period last year, change, % of the year's
/// target.
fn html_figures(row: &str) -> Vec<String> {
    row.split(r#"<td class="num">"#)
        .skip(1)
        .take(5)
        .map(|cell| cell[..cell.find("</td>").expect("end of cell")].to_owned())
        .collect()
}

/// The row of `indicator` in a JSON report.
fn json_row(report: &Value, indicator: &str) -> Value {
    report["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rows"].as_array().expect("rows"))
        .find(|r| r["indicator"] == indicator)
        .unwrap_or_else(|| panic!("the {indicator} row"))
        .clone()
}

async fn last_year_and_the_year_target_read_as_computed_by_hand(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    // The first quarter's report of 2026 is cut off on 6 April 2026, 00:00 in Ho Chi Minh City;
    // last year is read as it was known on 6 April 2025.
    write(
        &app,
        "EXPORT_TURNOVER",
        &[
            ("2025-01", 7000.0),
            ("2025-02", 6800.0),
            ("2025-03", 7600.0),
        ],
        at(2025, 4, 2),
    )
    .await;
    // Revised and extended after that instant: not what was known then.
    write(
        &app,
        "EXPORT_TURNOVER",
        &[("2025-03", 9600.0), ("2025-04", 7400.0)],
        at(2025, 5, 2),
    )
    .await;
    write(
        &app,
        "EXPORT_TURNOVER",
        &[
            ("2026-01", 7700.0),
            ("2026-02", 7300.0),
            ("2026-03", 8400.5),
        ],
        at(2026, 4, 2),
    )
    .await;
    // Retail sales: March 2026 is late, so the comparison runs to February on both sides.
    write(
        &app,
        "RETAIL_SALES",
        &[
            ("2025-01", 180_000.25),
            ("2025-02", 175_000.5),
            ("2025-03", 190_000.0),
        ],
        at(2025, 4, 2),
    )
    .await;
    write(
        &app,
        "RETAIL_SALES",
        &[("2026-01", 200_000.0), ("2026-02", 190_500.75)],
        at(2026, 3, 10),
    )
    .await;

    // Budget revenue: February 2026 is missing between January and March, so last year's
    // February is left out too: 150 + 350 = 500 against 100 + 300 = 400, +25 % (not against
    // the quarter's 600).
    write(
        &app,
        "BUDGET_REVENUE",
        &[("2025-01", 100.0), ("2025-02", 200.0), ("2025-03", 300.0)],
        at(2025, 4, 2),
    )
    .await;
    write(
        &app,
        "BUDGET_REVENUE",
        &[("2026-01", 150.0), ("2026-03", 350.0)],
        at(2026, 4, 2),
    )
    .await;

    // Tourism revenue: last year lacks the February this year has. No figure of last year
    // leaves February out of this year's total, so there is no comparison.
    write(
        &app,
        "TOURISM_REVENUE",
        &[("2025-01", 20_000.0), ("2025-03", 21_000.0)],
        at(2025, 4, 2),
    )
    .await;
    write(
        &app,
        "TOURISM_REVENUE",
        &[
            ("2026-01", 22_000.0),
            ("2026-02", 21_500.0),
            ("2026-03", 23_000.0),
        ],
        at(2026, 4, 2),
    )
    .await;

    // CPI, an average rate in percent: its change is told in points, not as a ratio of rates.
    write(
        &app,
        "CPI_GROWTH",
        &[("2025-01", 3.63), ("2025-02", 3.2), ("2025-03", 3.1)],
        at(2025, 4, 2),
    )
    .await;
    write(
        &app,
        "CPI_GROWTH",
        &[("2026-01", 3.0), ("2026-02", 3.2), ("2026-03", 3.4)],
        at(2026, 4, 2),
    )
    .await;

    // By hand. Exports: 7700 + 7300 + 8400.5 = 23400.5 against 7000 + 6800 + 7600 = 21400,
    // 23400.5 / 21400 - 1 = 9.3481 %; of the 2026 target 105400: 22.2016 %.
    // Retail: 200000 + 190500.75 = 390500.75 against 180000.25 + 175000.5 = 355000.75,
    // 390500.75 / 355000.75 - 1 = 9.99998 %; of the 2026 target 2240000: 17.4331 %.
    let exports = (
        23_400.5,
        21_400.0,
        23_400.5 / 21_400.0 - 1.0,
        23_400.5 / 105_400.0,
    );
    let retail = (
        390_500.75,
        355_000.75,
        390_500.75 / 355_000.75 - 1.0,
        390_500.75 / 2_240_000.0,
    );

    let (status, _, xlsx) = fetch(&app, "/api/v1/reports/2026-Q1?format=xlsx&lang=en").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&xlsx));
    let xlsx_path = artefacts().join(format!("report-2026-Q1-last-year-{backend:?}.xlsx"));
    std::fs::write(&xlsx_path, &xlsx).expect("write the workbook");
    if let Some(sheet) = xlsx_rows(&xlsx_path) {
        for (code, (actual, last_year, change, of_plan)) in
            [("EXPORT_TURNOVER", exports), ("RETAIL_SALES", retail)]
        {
            let row = &sheet[code];
            for (name, want) in [
                ("actual", actual),
                ("last_year", last_year),
                ("change", change),
                ("of_plan", of_plan),
            ] {
                assert!(
                    close(row[name].as_f64(), Some(want)),
                    "XLSX {name} of {code}: {} vs {want}",
                    row[name]
                );
            }
            assert_eq!(row["formats"]["change"], "0.00%", "{row}");
            assert_eq!(row["formats"]["of_plan"], "0.00%", "{row}");
            assert_eq!(row["formats"]["actual"], "#,##0.00", "{row}");
        }
        // A whole figure shows without a trailing separator ("21,400", not "21,400.").
        assert_eq!(sheet["EXPORT_TURNOVER"]["formats"]["last_year"], "#,##0");
        // And it is stored as a whole number: the spreadsheet reads back the integer 21400.
        assert!(
            sheet["EXPORT_TURNOVER"]["last_year"].is_u64(),
            "{}",
            sheet["EXPORT_TURNOVER"]["last_year"]
        );
        assert_eq!(sheet["EXPORT_TURNOVER"]["last_year"], 21_400);
        // A level has no share of the year's target.
        assert!(sheet["HOSPITAL_BEDS_PER_10K"]["of_plan"].is_null());
        // CPI: a mean of 3.2 against 3.31, -0.11 points, a number the sheet shows as points.
        let cpi = &sheet["CPI_GROWTH"];
        assert!(close(cpi["change"].as_f64(), Some(-0.11)), "{cpi}");
        assert_eq!(
            cpi["formats"]["change"], r#"+0.00" pp";-0.00" pp";0" pp""#,
            "{cpi}"
        );
    }
    let (_, _, json) = fetch(&app, "/api/v1/reports/2026-Q1?format=json").await;
    let json: Value = serde_json::from_slice(&json).expect("JSON report");
    let cpi = json_row(&json, "CPI_GROWTH");
    assert_eq!(cpi["change"], Value::Null, "{cpi}");
    assert_eq!(cpi["change_points"], -0.11, "{cpi}");
    let budget = json_row(&json, "BUDGET_REVENUE");
    assert_eq!(
        (&budget["actual"], &budget["last_year"], &budget["change"]),
        (
            &serde_json::json!(500.0),
            &serde_json::json!(400.0),
            &serde_json::json!(0.25)
        ),
        "{budget}"
    );
    let tourism = json_row(&json, "TOURISM_REVENUE");
    assert_eq!(
        (
            &tourism["actual"],
            &tourism["last_year"],
            &tourism["change"]
        ),
        (&serde_json::json!(66_500.0), &Value::Null, &Value::Null),
        "{tourism}"
    );
    assert!(json["groups"][0]["rows"][0].get("change_points").is_some());

    let (_, _, csv) = fetch(&app, "/api/v1/reports/2026-Q1?format=csv&lang=vi").await;
    let csv = String::from_utf8(csv).expect("UTF-8");
    let line = csv
        .lines()
        .find(|l| l.contains(",EXPORT_TURNOVER,"))
        .expect("the exports row");
    assert!(
        line.contains(",23400.5,") && line.contains(",21400,0.0935,0.222,"),
        "CSV numbers stay plain in Vietnamese too: {line}"
    );
    let header = csv.lines().next().expect("the header");
    assert!(
        header.ends_with(",Tăng/giảm so với cùng kỳ (điểm %)"),
        "{header}"
    );
    let cpi = csv
        .lines()
        .find(|l| l.contains(",CPI_GROWTH,"))
        .expect("the CPI row");
    assert!(cpi.ends_with(",-0.11"), "the change in points, last: {cpi}");
    assert!(
        cpi.contains(",3.31,,,"),
        "no ratio of rates, no share of plan: {cpi}"
    );
    assert!(line.ends_with(','), "no points for exports: {line}");

    let (_, _, html) = fetch(&app, "/api/v1/reports/2026-Q1").await;
    let page = String::from_utf8(html).expect("UTF-8 page");
    assert!(page.contains("Cùng kỳ năm trước"), "the new column");
    assert!(page.contains("% kế hoạch năm"), "the new column");
    assert_eq!(
        html_figures(html_row(&page, "EXPORT_TURNOVER")),
        ["105.400", "23.400,5", "21.400", "+9,35 %", "22,2 %"]
    );
    assert_eq!(
        html_figures(html_row(&page, "RETAIL_SALES")),
        ["2.240.000", "390.500,75", "355.000,75", "+10 %", "17,43 %"]
    );
    assert_eq!(
        html_figures(html_row(&page, "CPI_GROWTH"))[2..4],
        ["3,31", "-0,11 điểm %"]
    );
    let (_, _, html) = fetch(&app, "/api/v1/reports/2026-Q1?lang=en").await;
    let page = String::from_utf8(html).expect("UTF-8 page");
    assert_eq!(
        html_figures(html_row(&page, "RETAIL_SALES")),
        ["2,240,000", "390,500.75", "355,000.75", "+10 %", "17.43 %"]
    );
    assert_eq!(
        html_figures(html_row(&page, "CPI_GROWTH"))[2..4],
        ["3.31", "-0.11 pp"]
    );

    // "x/y chỉ tiêu đạt và vượt", overall and per group, counted as the status API judges.
    let reply = app
        .get(
            "/api/v1/status?year=2026&as_of=2026-04-05T17:00:00Z",
            &app.viewer,
        )
        .await;
    let statuses = reply.body["statuses"].as_array().expect("statuses").clone();
    let met = |group: Option<&str>| {
        let of_group = statuses
            .iter()
            .filter(|s| group.is_none_or(|g| s["group"] == g))
            .collect::<Vec<_>>();
        let met = of_group
            .iter()
            .filter(|s| s["status"] == "achieved" || s["status"] == "on_track")
            .count();
        (met, of_group.len())
    };
    let (all_met, all) = met(None);
    assert!(all > 100, "every 2026 target of the city is judged");
    let (_, _, html) = fetch(&app, "/api/v1/reports/2026-Q1").await;
    let page = String::from_utf8(html).expect("UTF-8 page");
    assert!(
        page.contains(&format!(
            r#"data-met="{all_met}" data-total="{all}">{all_met}/{all}</span>
<span>chỉ tiêu đạt và vượt</span>"#
        )),
        "overall tally {all_met}/{all}"
    );
    let (trade_met, trade) = met(Some("TRADE"));
    let trade_row = page
        .lines()
        .find(|l| l.starts_with(r#"<tr data-group="TRADE">"#))
        .expect("the trade group's row");
    assert!(
        trade_row.contains(&format!(r#"<td class="num">{trade_met}/{trade}</td>"#)),
        "the trade group's tally {trade_met}/{trade}: {trade_row}"
    );
    app.stop().await;
}

async fn alert_texts_write_figures_in_vietnamese_notation(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let year = chrono::Datelike::year(&Utc::now().with_timezone(&HCM));
    // Half the 2026 target of 37 beds, with decimals: a slipping target that raises an alert.
    let body = serde_json::json!({"observations": [{
        "indicator": "HOSPITAL_BEDS_PER_10K", "unit": "HCM",
        "period": year.to_string(), "value": 18.75
    }]});
    let reply = app.post_observations(&app.admin, &body).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let alerts = app.get("/api/v1/alerts", &app.viewer).await;
    let alert = alerts.body["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .find(|a| a["rule"] == "slippage" && a["labels"]["indicator"] == "HOSPITAL_BEDS_PER_10K")
        .cloned()
        .expect("a slippage alert");
    let vi = alert["summary_vi"].as_str().unwrap_or_default();
    let en = alert["summary_en"].as_str().unwrap_or_default();
    // The short form names the projection, which for a yearly level is the figure itself.
    assert!(vi.contains("dự báo 18,75 giường/vạn dân"), "{vi}");
    assert!(!vi.contains("18.75"), "{vi}");
    assert!(en.contains("18.75") && !en.contains("18,75"), "{en}");
    app.stop().await;
}

on_every_backend!(
    a_past_quarter_reads_as_its_cut_off_in_every_format,
    bad_report_requests_name_the_parameter,
    last_year_and_the_year_target_read_as_computed_by_hand,
    alert_texts_write_figures_in_vietnamese_notation,
);
