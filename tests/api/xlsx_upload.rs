//! Spreadsheet pushes (`application/vnd.openxmlformats-officedocument.spreadsheetml.sheet`):
//! a workbook stores exactly what the same table sent as CSV stores, a bad cell is named by
//! sheet, row and column, a body that is no workbook (or one that unpacks to an absurd size)
//! is refused whole, and a department may push only its own indicators, as with CSV.

use std::io::{Cursor, Write as _};

use rust_xlsxwriter::{ExcelDateTime, Format as CellFormat, Workbook};

use crate::helpers::{assert_problem, spawn_app, spawn_app_with, Backend, Reply, TestApp};
use crate::on_every_backend;

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

async fn push(app: &TestApp, token: &str, query: &str, content_type: &str, body: Vec<u8>) -> Reply {
    app.send(
        app.client
            .post(app.url(&format!("/api/v1/observations{query}")))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body),
    )
    .await
}

/// The CSV template's table as a workbook: text codes and periods, number values, a source,
/// and March's period typed as a date, as a statistics officer would.
fn export_workbook(sheet: &str) -> Vec<u8> {
    let mut book = Workbook::new();
    let data = book.add_worksheet();
    data.set_name(sheet).expect("sheet name");
    for (column, name) in ["indicator", "unit", "period", "value", "source"]
        .iter()
        .enumerate()
    {
        data.write_string(0, column as u16, *name).expect("header");
    }
    let date = CellFormat::new().set_num_format("dd/mm/yyyy");
    let rows: [(&str, f64); 3] = [("2025-01", 10.0), ("2025-02", 12.3), ("", 4120.5)];
    for (index, (period, value)) in rows.iter().enumerate() {
        let row = index as u32 + 1;
        data.write_string(row, 0, "EXPORT_TURNOVER").expect("cell");
        data.write_string(row, 1, "HCM").expect("cell");
        if period.is_empty() {
            let march = ExcelDateTime::from_ymd(2025, 3, 1).expect("date");
            data.write_datetime_with_format(row, 2, march, &date)
                .expect("cell");
        } else {
            data.write_string(row, 2, *period).expect("cell");
        }
        data.write_number(row, 3, *value).expect("cell");
        data.write_string(row, 4, "Hải quan, khu vực II")
            .expect("cell");
    }
    book.save_to_buffer().expect("workbook")
}

const SAME_AS_CSV: &str = "indicator,unit,period,value,source\n\
                           EXPORT_TURNOVER,HCM,2025-01,10,\"Hải quan, khu vực II\"\n\
                           EXPORT_TURNOVER,HCM,2025-02,12.3,\"Hải quan, khu vực II\"\n\
                           EXPORT_TURNOVER,HCM,2025-03,4120.5,\"Hải quan, khu vực II\"\n";

async fn a_workbook_stores_what_the_same_csv_stores(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let preview = push(
        &app,
        &app.customs,
        "?dry_run=true",
        XLSX,
        export_workbook("Sheet1"),
    )
    .await;
    assert_eq!(preview.status, 200, "{preview:?}");
    assert_eq!(preview.body["accepted"], 3, "{preview:?}");
    assert!(app
        .revisions("EXPORT_TURNOVER", "HCM", "2025-01")
        .await
        .is_empty());

    let stored = push(&app, &app.customs, "", XLSX, export_workbook("Sheet1")).await;
    assert_eq!(stored.status, 200, "{stored:?}");
    assert_eq!(stored.body["accepted"], 3, "{stored:?}");
    assert_eq!(stored.body["rejected"].as_array().map(Vec::len), Some(0));

    // The same table as CSV changes nothing: every row is what the workbook stored.
    let again = push(
        &app,
        &app.customs,
        "",
        "text/csv",
        SAME_AS_CSV.as_bytes().to_vec(),
    )
    .await;
    assert_eq!(again.status, 200, "{again:?}");
    assert_eq!(again.body["accepted"], 0, "{again:?}");
    assert_eq!(again.body["duplicates"], 3, "{again:?}");

    let read = app
        .get(
            "/api/v1/observations?indicator=EXPORT_TURNOVER&unit=HCM&from=2025-01&to=2025-03",
            &app.viewer,
        )
        .await;
    let rows: Vec<(String, String, String)> = read.body["observations"]
        .as_array()
        .expect("observations")
        .iter()
        .map(|row| {
            (
                row["period"].as_str().unwrap_or("").to_owned(),
                row["value"].to_string(),
                row["source"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let source = "Hải quan, khu vực II".to_owned();
    assert_eq!(
        rows,
        vec![
            ("2025-01".into(), "10.0".into(), source.clone()),
            ("2025-02".into(), "12.3".into(), source.clone()),
            ("2025-03".into(), "4120.5".into(), source),
        ]
    );
    app.stop().await;
}

async fn a_bad_cell_is_named_by_its_row_and_column(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    // A header cell that names no column refuses the workbook, pointing at the cell.
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name("observations").expect("name");
    for (column, name) in ["indicator", "unit", "period", "value", "colour"]
        .iter()
        .enumerate()
    {
        sheet.write_string(0, column as u16, *name).expect("header");
    }
    let header = push(
        &app,
        &app.customs,
        "",
        XLSX,
        book.save_to_buffer().expect("xlsx"),
    )
    .await;
    assert_problem(&header, 422, "invalid_field");
    assert_eq!(
        header.body["errors"][0]["pointer"], "observations!E1",
        "{header:?}"
    );
    assert!(
        header.body["detail"]
            .as_str()
            .unwrap_or("")
            .contains("`colour`"),
        "{header:?}"
    );

    // Cells that cannot be read or do not pass: each row refused on its own, named by its
    // sheet row and column; the good row is stored.
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name("observations").expect("name");
    for (column, name) in ["indicator", "unit", "period", "value"].iter().enumerate() {
        sheet.write_string(0, column as u16, *name).expect("header");
    }
    let cells: [(&str, &str); 4] = [
        ("HCM", "2025-05"),
        ("HCM", "2025-06"),
        ("NOWHERE", "2025-07"),
        ("HCM", "2025-08"),
    ];
    for (index, (unit, period)) in cells.iter().enumerate() {
        let row = index as u32 + 1;
        sheet.write_string(row, 0, "EXPORT_TURNOVER").expect("cell");
        sheet.write_string(row, 1, *unit).expect("cell");
        sheet.write_string(row, 2, *period).expect("cell");
    }
    sheet.write_boolean(1, 3, true).expect("cell");
    sheet.write_number(2, 3, 99_999_999.0).expect("cell");
    sheet.write_number(3, 3, 1.0).expect("cell");
    sheet.write_number(4, 3, 3800.0).expect("cell");
    let reply = push(
        &app,
        &app.customs,
        "",
        XLSX,
        book.save_to_buffer().expect("xlsx"),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["accepted"], 1, "{reply:?}");
    let rejected: Vec<(u64, String, String)> = reply.body["rejected"]
        .as_array()
        .expect("rejected")
        .iter()
        .map(|r| {
            (
                r["index"].as_u64().unwrap_or(99),
                r["code"].as_str().unwrap_or("").to_owned(),
                r["message"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(rejected.len(), 3, "{reply:?}");
    assert_eq!(
        (rejected[0].0, rejected[0].1.as_str()),
        (0, "malformed_row")
    );
    assert!(
        rejected[0]
            .2
            .starts_with("sheet `observations` row 2, column D (value): "),
        "{rejected:?}"
    );
    assert_eq!(
        (rejected[1].0, rejected[1].1.as_str()),
        (1, "value_out_of_range")
    );
    assert!(
        rejected[1]
            .2
            .starts_with("sheet `observations` row 3, column D (value): "),
        "{rejected:?}"
    );
    assert_eq!((rejected[2].0, rejected[2].1.as_str()), (2, "unknown_unit"));
    assert!(
        rejected[2]
            .2
            .starts_with("sheet `observations` row 4, column B (unit): "),
        "{rejected:?}"
    );
    assert_eq!(
        app.revisions("EXPORT_TURNOVER", "HCM", "2025-08")
            .await
            .len(),
        1
    );
    app.stop().await;
}

/// A zip archive of one entry of `size` zero bytes: a few kilobytes that unpack to `size`.
fn zip_of_zeros(size: usize) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut writer = zip::ZipWriter::new(Cursor::new(&mut bytes));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    writer
        .start_file("xl/sharedStrings.xml", options)
        .expect("entry");
    let chunk = vec![b'0'; 1 << 20];
    for _ in 0..size.div_ceil(chunk.len()) {
        writer.write_all(&chunk).expect("write");
    }
    writer.finish().expect("zip");
    bytes
}

async fn a_body_that_is_no_workbook_is_refused_whole(backend: Backend) {
    // A small body limit keeps the archive small; its unpacked limit is then 64 MiB.
    let Some(app) = spawn_app_with(backend, |settings| {
        settings.server.body_limit_bytes = 512 * 1024;
    })
    .await
    else {
        return;
    };
    let csv = push(
        &app,
        &app.customs,
        "",
        XLSX,
        SAME_AS_CSV.as_bytes().to_vec(),
    )
    .await;
    assert_problem(&csv, 422, "invalid_field");
    assert_eq!(csv.body["errors"][0]["pointer"], "body");
    assert!(
        csv.body["detail"]
            .as_str()
            .unwrap_or("")
            .contains("not an .xlsx workbook"),
        "{csv:?}"
    );

    let bomb = zip_of_zeros(80 << 20);
    assert!(bomb.len() < 512 * 1024, "{} bytes", bomb.len());
    let refused = push(&app, &app.customs, "", XLSX, bomb).await;
    assert_problem(&refused, 413, "workbook_too_large");
    assert!(app
        .revisions("EXPORT_TURNOVER", "HCM", "2025-01")
        .await
        .is_empty());
    app.stop().await;
}

async fn a_department_pushes_only_its_own_indicators_in_a_workbook(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    // EXPORT_TURNOVER is the customs office's: Finance may not push it, even as a preview.
    for query in ["", "?dry_run=true"] {
        let foreign = push(&app, &app.finance, query, XLSX, export_workbook("Sheet1")).await;
        assert_problem(&foreign, 403, "foreign_indicators");
        // Named where the person who filled the sheet looks: its rows and the indicator cells.
        let detail = foreign.body["detail"].as_str().unwrap_or_default();
        assert!(
            detail.starts_with("sheet `Sheet1` row 2, column A (indicator); sheet `Sheet1` row 3"),
            "{detail}"
        );
        let first = &foreign.body["errors"][0];
        assert_eq!(first["pointer"], "Sheet1!A2", "{foreign:?}");
        assert_eq!(
            first["message"],
            "sheet `Sheet1` row 2, column A (indicator): indicator of another department"
        );
    }
    let viewer = push(&app, &app.viewer, "", XLSX, export_workbook("Sheet1")).await;
    assert_problem(&viewer, 403, "forbidden");
    assert!(app
        .revisions("EXPORT_TURNOVER", "HCM", "2025-01")
        .await
        .is_empty());
    let own = push(
        &app,
        &app.customs,
        "",
        XLSX,
        export_workbook("observations"),
    )
    .await;
    assert_eq!(own.body["accepted"], 3, "{own:?}");
    app.stop().await;
}

on_every_backend!(
    a_workbook_stores_what_the_same_csv_stores,
    a_bad_cell_is_named_by_its_row_and_column,
    a_body_that_is_no_workbook_is_refused_whole,
    a_department_pushes_only_its_own_indicators_in_a_workbook,
);
