//! The report as a workbook: a summary sheet, every target with formatted numbers, and the
//! changes since the previous report. Figures are stored as numbers, so they can be summed,
//! filtered and charted in the spreadsheet.

use chrono_tz::Tz;
use rust_xlsxwriter::{Color, Format, FormatAlign, FormatBorder, Workbook, Worksheet, XlsxError};

use super::text::{self, words, Lang};
use super::{Report, Tally};
use crate::domain::{Status, TargetValue};

fn fill(status: Status) -> Color {
    Color::RGB(match status {
        Status::Achieved => 0x00C6_E9D2,
        Status::OnTrack => 0x00DF_F3E6,
        Status::AtRisk => 0x00FF_F1BF,
        Status::OffTrack => 0x00FC_D9C5,
        Status::Missed => 0x00F4_C2C2,
        Status::Stale => 0x00E5_E7EB,
        Status::NoData => 0x00F3_F4F6,
    })
}

struct Styles {
    title: Format,
    meta: Format,
    header: Format,
    text: Format,
    wrap: Format,
    /// A whole figure: `#,##0`, so `10` is not shown as `10.` as `#,##0.##` would.
    integer: Format,
    /// A figure with decimals, always two, so a column's decimal separators line up.
    decimal: Format,
    percent: Format,
    /// Shares of the plan and changes on last year, where a tenth of a percent matters.
    fine_percent: Format,
    /// A percent figure's change on last year, in points: `+0.30 điểm %`, a number still.
    points: Format,
}

impl Styles {
    fn new(lang: Lang) -> Self {
        let points = match lang {
            Lang::Vi => r#"+0.00" điểm %";-0.00" điểm %";0" điểm %""#,
            Lang::En => r#"+0.00" pp";-0.00" pp";0" pp""#,
        };
        let header = Format::new()
            .set_bold()
            .set_background_color(Color::RGB(0x001F_2933))
            .set_font_color(Color::White)
            .set_text_wrap()
            .set_align(FormatAlign::VerticalCenter)
            .set_border(FormatBorder::Thin);
        Self {
            title: Format::new().set_bold().set_font_size(14),
            meta: Format::new().set_font_color(Color::RGB(0x005F_6B7A)),
            header,
            text: Format::new().set_border(FormatBorder::Thin),
            wrap: Format::new()
                .set_text_wrap()
                .set_border(FormatBorder::Thin)
                .set_align(FormatAlign::Top),
            integer: Format::new()
                .set_num_format("#,##0")
                .set_border(FormatBorder::Thin),
            decimal: Format::new()
                .set_num_format("#,##0.00")
                .set_border(FormatBorder::Thin),
            percent: Format::new()
                .set_num_format("0%")
                .set_border(FormatBorder::Thin),
            fine_percent: Format::new()
                .set_num_format("0.00%")
                .set_border(FormatBorder::Thin),
            points: Format::new()
                .set_num_format(points)
                .set_border(FormatBorder::Thin),
        }
    }
}

/// Writes a figure with the format that shows it as the HTML report does: whole when it rounds
/// to a whole number at two decimals, else with two decimals. The spreadsheet program puts in
/// the reader's own separators (`1.234,50` on a Vietnamese system, `1,234.50` on an English one).
fn figure(
    sheet: &mut Worksheet,
    row: u32,
    col: u16,
    value: Option<f64>,
    styles: &Styles,
) -> Result<(), XlsxError> {
    let format = if value.is_none_or(is_whole) {
        &styles.integer
    } else {
        &styles.decimal
    };
    optional_number(sheet, row, col, value, format)
}

/// Whether a figure shows as a whole number at the two decimals the reports write: such a
/// figure takes a `#,##0` format, any other `#,##0.00` (never `#,##0.##`, which shows `10.`).
pub(super) fn is_whole(value: f64) -> bool {
    ((value * 100.0).round() / 100.0).fract() == 0.0
}

fn optional_number(
    sheet: &mut Worksheet,
    row: u32,
    col: u16,
    value: Option<f64>,
    format: &Format,
) -> Result<(), XlsxError> {
    match value {
        Some(value) => sheet.write_number_with_format(row, col, value, format)?,
        None => sheet.write_blank(row, col, format)?,
    };
    Ok(())
}

fn heading(
    sheet: &mut Worksheet,
    report: &Report,
    styles: &Styles,
    zone: Tz,
) -> Result<(), XlsxError> {
    let lang = report.lang;
    let w = words(lang);
    sheet.write_string_with_format(
        0,
        0,
        format!("{} – {}", w.title, report.period_label),
        &styles.title,
    )?;
    sheet.write_string_with_format(
        1,
        0,
        format!(
            "{} · {}: {} · {}: {} · {}",
            report.city,
            w.unit,
            report.unit_name,
            w.cutoff,
            text::local_time(report.cutoff, zone, lang),
            super::history::note(report.history, lang)
        ),
        &styles.meta,
    )?;
    if report.provisional {
        sheet.write_string_with_format(2, 0, w.provisional, &styles.meta)?;
    }
    Ok(())
}

fn tally_row(
    sheet: &mut Worksheet,
    row: u32,
    name: &str,
    tally: &Tally,
    styles: &Styles,
) -> Result<(), XlsxError> {
    sheet.write_string_with_format(row, 0, name, &styles.text)?;
    sheet.write_number_with_format(row, 1, tally.met as f64, &styles.integer)?;
    sheet.write_number_with_format(row, 2, tally.total as f64, &styles.integer)?;
    optional_number(sheet, row, 3, tally.share(), &styles.percent)?;
    Ok(())
}

pub fn render(report: &Report, zone: Tz) -> Result<Vec<u8>, XlsxError> {
    let lang: Lang = report.lang;
    let w = words(lang);
    let styles = Styles::new(lang);
    let mut book = Workbook::new();

    let summary = book.add_worksheet().set_name(w.sheet_summary)?;
    heading(summary, report, &styles, zone)?;
    let top = 4;
    for (col, label) in [w.group, w.met_of, w.targets, "%"].iter().enumerate() {
        summary.write_string_with_format(top, col as u16, *label, &styles.header)?;
    }
    let mut row = top + 1;
    for group in &report.groups {
        tally_row(summary, row, &group.name, &group.tally, &styles)?;
        row += 1;
    }
    tally_row(summary, row, w.summary, &report.tally, &styles)?;
    summary.write_string_with_format(row + 2, 0, w.met_note, &styles.meta)?;
    summary.write_string_with_format(row + 3, 0, w.figures_note, &styles.meta)?;
    summary.set_column_width(0, 52)?;
    summary.set_column_width(1, 14)?;
    summary.set_column_width(2, 12)?;
    summary.set_column_width(3, 8)?;

    let targets = book.add_worksheet().set_name(w.sheet_targets)?;
    heading(targets, report, &styles, zone)?;
    let columns = [
        (w.group, 26.0),
        (w.code, 22.0),
        (w.indicator, 48.0),
        (w.measure, 14.0),
        (w.target, 14.0),
        (w.actual, 14.0),
        (w.last_year, 14.0),
        (w.change, 12.0),
        (w.of_plan, 11.0),
        (w.expected, 14.0),
        (w.projection, 14.0),
        (w.probability, 11.0),
        (w.status, 16.0),
        (w.previous_status, 16.0),
        (w.reported_through, 13.0),
        (w.department, 30.0),
    ];
    for (col, (label, width)) in columns.iter().enumerate() {
        targets.write_string_with_format(top, col as u16, *label, &styles.header)?;
        targets.set_column_width(col as u16, *width)?;
    }
    let mut row = top + 1;
    for group in &report.groups {
        for line in &group.rows {
            targets.write_string_with_format(row, 0, &group.name, &styles.wrap)?;
            targets.write_string_with_format(row, 1, line.indicator.as_str(), &styles.text)?;
            targets.write_string_with_format(row, 2, &line.name, &styles.wrap)?;
            targets.write_string_with_format(row, 3, &line.measure, &styles.text)?;
            match line.target {
                TargetValue::Point { value } => {
                    figure(targets, row, 4, Some(value), &styles)?;
                }
                TargetValue::Band { .. } => {
                    let band = super::target_text(&line.target, lang);
                    targets.write_string_with_format(row, 4, band, &styles.text)?;
                }
            }
            figure(targets, row, 5, line.actual, &styles)?;
            figure(targets, row, 6, line.last_year, &styles)?;
            match line.change_points {
                Some(points) => optional_number(targets, row, 7, Some(points), &styles.points)?,
                None => optional_number(targets, row, 7, line.change, &styles.fine_percent)?,
            }
            optional_number(targets, row, 8, line.of_plan, &styles.fine_percent)?;
            figure(targets, row, 9, line.expected, &styles)?;
            figure(targets, row, 10, line.projection, &styles)?;
            optional_number(targets, row, 11, line.probability, &styles.percent)?;
            let status = styles.text.clone().set_background_color(fill(line.status));
            let shown = line.status_text(lang);
            targets.write_string_with_format(row, 12, &shown, &status)?;
            targets.write_string_with_format(
                row,
                13,
                line.previous.map_or("", |s| text::status(s, lang)),
                &styles.text,
            )?;
            targets.write_string_with_format(
                row,
                14,
                line.reported_through
                    .map(|t| text::local_date(t, zone, lang))
                    .unwrap_or_default(),
                &styles.text,
            )?;
            targets.write_string_with_format(row, 15, &line.department, &styles.wrap)?;
            row += 1;
        }
    }
    if row > top + 1 {
        targets.autofilter(top, 0, row - 1, (columns.len() - 1) as u16)?;
    }
    targets.set_freeze_panes(top + 1, 3)?;

    let changes = book.add_worksheet().set_name(w.sheet_changes)?;
    heading(changes, report, &styles, zone)?;
    let labels = [
        (w.code, 22.0),
        (w.indicator, 48.0),
        (w.before, 16.0),
        (w.now, 16.0),
        (w.actual, 14.0),
        (w.actual, 14.0),
    ];
    for (col, (label, width)) in labels.iter().enumerate() {
        let label = match col {
            4 => format!("{label} ({})", w.before),
            5 => format!("{label} ({})", w.now),
            _ => (*label).to_owned(),
        };
        changes.write_string_with_format(top, col as u16, label, &styles.header)?;
        changes.set_column_width(col as u16, *width)?;
    }
    if report.previous.is_none() {
        changes.write_string_with_format(top + 1, 0, w.no_previous, &styles.meta)?;
    } else if report.changes.is_empty() {
        changes.write_string_with_format(top + 1, 0, w.no_changes, &styles.meta)?;
    }
    for (row, change) in (top + 1..).zip(&report.changes) {
        changes.write_string_with_format(row, 0, change.indicator.as_str(), &styles.text)?;
        changes.write_string_with_format(row, 1, &change.name, &styles.wrap)?;
        changes.write_string_with_format(
            row,
            2,
            change.from.map_or("", |s| text::status(s, lang)),
            &styles.text,
        )?;
        let to = styles.text.clone().set_background_color(fill(change.to));
        changes.write_string_with_format(row, 3, text::status(change.to, lang), &to)?;
        figure(changes, row, 4, change.actual_before, &styles)?;
        figure(changes, row, 5, change.actual_now, &styles)?;
    }

    explanations_sheet(&mut book, report, &styles, zone)?;
    super::plan::xlsx_sheet(&mut book, report)?;
    super::tasks::xlsx_sheet(&mut book, report)?;
    book.save_to_buffer()
}

/// Each slipping target with its department's explanation and actions, or that it has none.
fn explanations_sheet(
    book: &mut Workbook,
    report: &Report,
    styles: &Styles,
    zone: Tz,
) -> Result<(), XlsxError> {
    use super::explanations::{actions_text, slipping_rows, words as explained};
    let lang = report.lang;
    let w = words(lang);
    let e = explained(lang);
    let sheet = book.add_worksheet().set_name(e.sheet)?;
    heading(sheet, report, styles, zone)?;
    let top = 4;
    let columns = [
        (w.group, 24.0),
        (w.code, 22.0),
        (w.indicator, 40.0),
        (w.status, 16.0),
        (e.explanation, 60.0),
        (e.actions, 60.0),
        (e.explained_on, 16.0),
        (e.by, 18.0),
        (w.department, 28.0),
    ];
    for (col, (label, width)) in columns.iter().enumerate() {
        sheet.write_string_with_format(top, col as u16, *label, &styles.header)?;
        sheet.set_column_width(col as u16, *width)?;
    }
    let rows = slipping_rows(report);
    if rows.is_empty() {
        sheet.write_string_with_format(top + 1, 0, e.nothing_slips, &styles.meta)?;
    }
    for (row, (group, line)) in (top + 1..).zip(rows) {
        sheet.write_string_with_format(row, 0, group, &styles.wrap)?;
        sheet.write_string_with_format(row, 1, line.indicator.as_str(), &styles.text)?;
        sheet.write_string_with_format(row, 2, &line.name, &styles.wrap)?;
        let status = styles.text.clone().set_background_color(fill(line.status));
        let shown = line.status_text(lang);
        sheet.write_string_with_format(row, 3, &shown, &status)?;
        match &line.explanation {
            Some(explanation) => {
                sheet.write_string_with_format(row, 4, &explanation.text, &styles.wrap)?;
                let actions = actions_text(explanation, lang);
                sheet.write_string_with_format(row, 5, &actions, &styles.wrap)?;
                let on = text::local_time(explanation.created_at, zone, lang);
                sheet.write_string_with_format(row, 6, &on, &styles.text)?;
                sheet.write_string_with_format(row, 7, &explanation.author, &styles.text)?;
            }
            None => {
                sheet.write_string_with_format(row, 4, e.none, &styles.meta)?;
                for col in 5..=7 {
                    sheet.write_blank(row, col, &styles.text)?;
                }
            }
        }
        sheet.write_string_with_format(row, 8, &line.department, &styles.wrap)?;
    }
    sheet.set_freeze_panes(top + 1, 3)?;
    Ok(())
}
