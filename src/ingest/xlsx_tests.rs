use std::io::Write as _;

use rust_xlsxwriter::{ExcelDateTime as WriterDate, Format as CellFormat, Workbook};

use super::*;

const ZONE: Tz = chrono_tz::Asia::Ho_Chi_Minh;

fn limits() -> Limits {
    Limits::for_service(16 << 20, 1000)
}

fn monthly(code: &str) -> Option<Periodicity> {
    (code == "EXPORT_TURNOVER").then_some(Periodicity::Monthly)
}

fn read(bytes: &[u8]) -> Result<Sheet, XlsxError> {
    parse(bytes, Decimal::Point, ZONE, limits(), &monthly)
}

/// A workbook whose first sheet holds `rows` of text and numbers, header first.
fn workbook(sheet: &str, rows: &[&[Cell]]) -> Vec<u8> {
    let mut book = Workbook::new();
    let worksheet = book.add_worksheet();
    worksheet.set_name(sheet).unwrap();
    let date = CellFormat::new().set_num_format("dd/mm/yyyy");
    for (r, cells) in rows.iter().enumerate() {
        for (c, cell) in cells.iter().enumerate() {
            let (r, c) = (r as u32, c as u16);
            match cell {
                Cell::Text(text) => worksheet.write_string(r, c, *text).map(|_| ()),
                Cell::Number(n) => worksheet.write_number(r, c, *n).map(|_| ()),
                Cell::Bool(b) => worksheet.write_boolean(r, c, *b).map(|_| ()),
                Cell::Date(y, m, d) => worksheet
                    .write_datetime_with_format(
                        r,
                        c,
                        WriterDate::from_ymd(*y, *m, *d).unwrap(),
                        &date,
                    )
                    .map(|_| ()),
                Cell::Blank => Ok(()),
            }
            .unwrap();
        }
    }
    book.save_to_buffer().unwrap()
}

enum Cell {
    Text(&'static str),
    Number(f64),
    Bool(bool),
    Date(u16, u8, u8),
    Blank,
}
use Cell::*;

#[test]
fn numbers_are_read_as_numbers_without_float_noise() {
    let bytes = workbook(
        "Sheet1",
        &[
            &[
                Text("unit"),
                Text("indicator"),
                Text("period"),
                Text("value"),
            ],
            &[
                Text("HCM"),
                Text("EXPORT_TURNOVER"),
                Text("2026-03"),
                Number(10.0),
            ],
            &[
                Text("HCM"),
                Text("EXPORT_TURNOVER"),
                Text("2026-04"),
                Number(12.3),
            ],
            &[
                Text("HCM"),
                Text("EXPORT_TURNOVER"),
                Text("2026-05"),
                Number(0.1 + 0.2),
            ],
        ],
    );
    let sheet = read(&bytes).unwrap();
    assert_eq!(sheet.name, "Sheet1");
    let values: Vec<_> = sheet.rows.iter().map(|r| r.value.clone()).collect();
    assert_eq!(
        values,
        vec![
            Some(RawValue::Number(10.0)),
            Some(RawValue::Number(12.3)),
            Some(RawValue::Number(0.3)),
        ]
    );
    assert_eq!(sheet.rows[0].unit.as_deref(), Some("HCM"));
    assert_eq!(sheet.places[2].row, 4);
}

#[test]
fn a_date_in_period_is_the_indicators_period_that_holds_it() {
    let bytes = workbook(
        "Sheet1",
        &[
            &[
                Text("indicator"),
                Text("unit"),
                Text("period"),
                Text("value"),
                Text("reported_at"),
            ],
            &[
                Text("EXPORT_TURNOVER"),
                Text("HCM"),
                Date(2026, 3, 15),
                Number(1.0),
                Date(2026, 4, 6),
            ],
            &[
                Text("OTHER"),
                Text("HCM"),
                Date(2026, 3, 15),
                Number(2.0),
                Blank,
            ],
            &[
                Text("EXPORT_TURNOVER"),
                Text("HCM"),
                Number(2026.0),
                Number(3.0),
                Blank,
            ],
        ],
    );
    let sheet = read(&bytes).unwrap();
    assert_eq!(sheet.rows[0].period.as_deref(), Some("2026-03"));
    assert_eq!(
        sheet.rows[0].reported_at.as_deref(),
        Some("2026-04-06T00:00:00+07:00")
    );
    assert_eq!(sheet.rows[1].period.as_deref(), Some("2026-03-15"));
    assert_eq!(sheet.rows[2].period.as_deref(), Some("2026"));
}

#[test]
fn the_template_sheet_is_read_before_the_first_and_blank_rows_are_skipped() {
    let mut book = Workbook::new();
    book.add_worksheet()
        .set_name("Hướng dẫn")
        .unwrap()
        .write_string(0, 0, "Đọc tôi")
        .unwrap();
    let data = book.add_worksheet().set_name("observations").unwrap();
    for (c, name) in ["indicator", "unit", "period", "value"].iter().enumerate() {
        data.write_string(0, c as u16, *name).unwrap();
    }
    data.write_string(3, 0, "EXPORT_TURNOVER").unwrap();
    data.write_string(3, 1, "HCM").unwrap();
    data.write_string(3, 2, "2026-03").unwrap();
    data.write_string(3, 3, "4120,5").unwrap();
    let sheet = read(&book.save_to_buffer().unwrap()).unwrap();
    assert_eq!(sheet.name, "observations");

    // A template saved from Excel: its sheet is named after the CSV file.
    let mut book = Workbook::new();
    book.add_worksheet()
        .set_name("Ghi chú")
        .unwrap()
        .write_string(0, 0, "x")
        .unwrap();
    let data = book
        .add_worksheet()
        .set_name("mau-so-lieu-FINANCE")
        .unwrap();
    for (c, name) in ["indicator", "unit", "period", "value"].iter().enumerate() {
        data.write_string(0, c as u16, *name).unwrap();
    }
    assert_eq!(
        read(&book.save_to_buffer().unwrap()).unwrap().name,
        "mau-so-lieu-FINANCE"
    );
    assert_eq!(sheet.rows.len(), 1);
    assert_eq!(sheet.places[0].row, 4);
    assert_eq!(sheet.rows[0].value, Some(RawValue::Text("4120.5".into())));
}

#[test]
fn a_cell_that_cannot_be_a_value_rejects_its_row_naming_row_and_column() {
    let bytes = workbook(
        "Data",
        &[
            &[
                Text("indicator"),
                Text("unit"),
                Text("period"),
                Text("value"),
            ],
            &[
                Text("EXPORT_TURNOVER"),
                Text("HCM"),
                Text("2026-03"),
                Bool(true),
            ],
            &[
                Text("EXPORT_TURNOVER"),
                Text("HCM"),
                Text("2026-04"),
                Number(5.0),
            ],
        ],
    );
    let sheet = read(&bytes).unwrap();
    assert_eq!(
        sheet.rows[0].malformed.as_deref(),
        Some("sheet `Data` row 2, column D (value): the cell holds TRUE or FALSE, not a number")
    );
    assert_eq!(sheet.rows[1].value, Some(RawValue::Number(5.0)));
    assert_eq!(
        sheet
            .locate(1, "value_out_of_range", "5 is outside 10..=20")
            .as_deref(),
        Some("sheet `Data` row 3, column D (value)")
    );
    assert_eq!(
        sheet
            .locate(1, "missing_field", "`unit` is required")
            .as_deref(),
        Some("sheet `Data` row 3, column B (unit)")
    );
}

#[test]
fn a_wrong_header_names_its_cell() {
    let unknown = workbook("S", &[&[Text("indicator"), Text("unit"), Text("colour")]]);
    let error = read(&unknown).unwrap_err();
    assert_eq!(error.pointer(), "S!C1");
    assert!(
        error.to_string().contains("unknown column `colour`"),
        "{error}"
    );
    let missing = workbook("S", &[&[Text("indicator"), Text("unit"), Text("period")]]);
    let error = read(&missing).unwrap_err();
    assert!(error.to_string().contains("no `value` column"), "{error}");
    let empty = workbook("S", &[]);
    assert!(matches!(read(&empty), Err(XlsxError::Empty { .. })));
}

#[test]
fn a_body_that_is_no_workbook_is_refused() {
    assert!(matches!(
        read(b"indicator,unit,period,value\n"),
        Err(XlsxError::NotXlsx(_))
    ));
    // A zip archive that is not a workbook.
    let mut plain = Vec::new();
    {
        let mut writer = zip_reader::ZipWriter::new(Cursor::new(&mut plain));
        writer
            .start_file("hello.txt", zip_reader::write::SimpleFileOptions::default())
            .unwrap();
        writer.write_all(b"hello").unwrap();
        writer.finish().unwrap();
    }
    assert!(matches!(read(&plain), Err(XlsxError::NotXlsx(_))));
}

#[test]
fn an_archive_that_unpacks_past_the_limit_is_refused_before_it_is_opened() {
    let mut bomb = Vec::new();
    {
        let mut writer = zip_reader::ZipWriter::new(Cursor::new(&mut bomb));
        let options = zip_reader::write::SimpleFileOptions::default()
            .compression_method(zip_reader::CompressionMethod::Deflated);
        writer.start_file("xl/sharedStrings.xml", options).unwrap();
        let zeros = vec![b'0'; 1 << 20];
        for _ in 0..70 {
            writer.write_all(&zeros).unwrap();
        }
        writer.finish().unwrap();
    }
    assert!(bomb.len() < 1 << 20, "{} bytes", bomb.len());
    let tight = Limits {
        unpacked_bytes: 64 << 20,
        ..limits()
    };
    assert_eq!(
        parse(&bomb, Decimal::Point, ZONE, tight, &monthly),
        Err(XlsxError::Unpacked { limit: 64 << 20 })
    );
}

#[test]
fn rows_and_cells_past_the_limits_are_refused() {
    let header: &[Cell] = &[
        Text("indicator"),
        Text("unit"),
        Text("period"),
        Text("value"),
    ];
    let row: &[Cell] = &[Text("A"), Text("HCM"), Text("2026-03"), Number(1.0)];
    let bytes = workbook("S", &[header, row, row, row]);
    let two = Limits {
        rows: 2,
        ..limits()
    };
    assert!(matches!(
        parse(&bytes, Decimal::Point, ZONE, two, &monthly),
        Err(XlsxError::TooManyRows { limit: 2, .. })
    ));
    let few_cells = Limits {
        cells: 10,
        ..limits()
    };
    assert!(matches!(
        parse(&bytes, Decimal::Point, ZONE, few_cells, &monthly),
        Err(XlsxError::TooManyCells { limit: 10, .. })
    ));
}

#[test]
fn column_letters_follow_excel() {
    assert_eq!(letter(0), "A");
    assert_eq!(letter(25), "Z");
    assert_eq!(letter(26), "AA");
    assert_eq!(letter(27), "AB");
}

#[test]
fn a_text_cell_grouping_thousands_with_points_is_ambiguous() {
    let row = |period: &'static str, value: Cell| -> [Cell; 4] {
        [Text("HCM"), Text("TOURISM_REVENUE"), Text(period), value]
    };
    let header = [
        Text("unit"),
        Text("indicator"),
        Text("period"),
        Text("value"),
    ];
    let (a, b, c) = (
        row("2025-08", Text("21.582")),
        row("2025-09", Text("21.58")),
        row("2025-10", Number(21.582)),
    );
    let bytes = workbook("Sheet1", &[&header, &a, &b, &c]);
    let values: Vec<_> = read(&bytes)
        .unwrap()
        .rows
        .iter()
        .map(|r| r.value.clone())
        .collect();
    assert_eq!(
        values,
        vec![
            Some(RawValue::Ambiguous("21.582".into())),
            Some(RawValue::Text("21.58".into())),
            Some(RawValue::Number(21.582)),
        ]
    );
    let comma = parse(&bytes, Decimal::Comma, ZONE, limits(), &monthly).unwrap();
    assert_eq!(comma.rows[0].value, Some(RawValue::Text("21582".into())));
}
