//! The directives' tasks in the period report: "x/y nhiệm vụ hoàn thành (z %)" overall and per
//! sector group, done on time or late over all tasks, and the list of overdue tasks; in the
//! HTML, in a sheet "Nhiệm vụ" of the XLSX and in rows after the targets in the CSV.
//!
//! A report's tasks are read as they stood at its cut-off, so a report of a past period does not
//! change after the fact (as its figures are judged from the revisions received by then): a task
//! stored after the cut-off is left out; the others have the status recorded in their status
//! records and the progress of their notes up to the cut-off, whatever was recorded since (a
//! completion recorded later, even one dated before the cut-off, does not count) and the
//! definition in force then (a deadline extended or an owner changed since does not count), and
//! are judged overdue or done late on the cut-off's day by that definition's due date. A task
//! counts once its directive was issued by then, unless it had been done before the report's
//! year began.

use chrono::{DateTime, NaiveDate, Utc};
use rust_xlsxwriter::{Format, FormatAlign, Workbook, XlsxError};
use serde::Serialize;

use super::text::Lang;
use super::Report;
use crate::domain::task::{RecordedStatus, Task, TaskStatus};
use crate::domain::task_view::{self, GroupCounts, TaskCounts, TaskView};
use crate::domain::Catalogue;

/// The report's section of tasks.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TaskSection {
    /// The day the tasks were judged on: the cut-off's, in the city.
    pub day: Option<NaiveDate>,
    pub counts: TaskCounts,
    pub groups: Vec<GroupCounts>,
    /// Overdue at the cut-off, the longest overdue first.
    pub overdue: Vec<TaskView>,
    /// The owning departments' names (vi, en), by code, for the overdue list.
    pub owners: std::collections::BTreeMap<crate::domain::Code, (String, String)>,
}

/// The section of `tasks` for a report of `year` cut off at `cutoff`, whose day in the city is
/// `day`.
pub fn section(
    tasks: &[Task],
    catalogue: &Catalogue,
    year: i32,
    cutoff: DateTime<Utc>,
    day: NaiveDate,
) -> TaskSection {
    let year_start = NaiveDate::from_ymd_opt(year, 1, 1).unwrap_or(day);
    let shown: Vec<Task> = tasks
        .iter()
        .filter_map(|t| t.as_known_at(cutoff, day))
        .filter(|t| t.directive.date <= day)
        .filter(|t| {
            let done_before = t.recorded == RecordedStatus::Done
                && t.completed_on.is_some_and(|on| on < year_start);
            !done_before
        })
        .collect();
    let views = task_view::views(&shown, day);
    let summary = task_view::summarize(&views, catalogue);
    let overdue: Vec<TaskView> = views
        .into_iter()
        .filter(|v| v.status == TaskStatus::Overdue)
        .collect();
    let owners = overdue
        .iter()
        .filter_map(|v| {
            let found = catalogue.department(v.owner.as_str())?;
            Some((
                v.owner.clone(),
                (found.name_vi.clone(), found.name_en.clone()),
            ))
        })
        .collect();
    TaskSection {
        day: Some(day),
        counts: summary.counts,
        groups: summary.by_group,
        overdue,
        owners,
    }
}

/// "42/82 nhiệm vụ hoàn thành (51,22 %)" / "42/82 tasks done (51.22 %)".
pub fn summary_line(counts: &TaskCounts, lang: Lang) -> String {
    let share = counts
        .share()
        .map(|share| format!(" ({})", super::text::fine_percent(share, lang)))
        .unwrap_or_default();
    match lang {
        Lang::Vi => format!(
            "{}/{} nhiệm vụ hoàn thành{share}",
            counts.completed(),
            counts.total
        ),
        Lang::En => format!("{}/{} tasks done{share}", counts.completed(), counts.total),
    }
}

fn date(day: NaiveDate, lang: Lang) -> String {
    match lang {
        Lang::Vi => day.format("%d/%m/%Y").to_string(),
        Lang::En => day.format("%Y-%m-%d").to_string(),
    }
}

/// Days past due on `day`.
fn days_late(view: &TaskView, day: NaiveDate) -> i64 {
    (day - view.due).num_days()
}

struct Words {
    heading: &'static str,
    sheet: &'static str,
    overall: &'static str,
    group: &'static str,
    overdue: &'static str,
    none_overdue: &'static str,
    code: &'static str,
    task: &'static str,
    directive: &'static str,
    owner: &'static str,
    due: &'static str,
    days_late: &'static str,
    percent: &'static str,
    last_note: &'static str,
    judged_on: &'static str,
}

const VI: Words = Words {
    heading: "Thực hiện nhiệm vụ được giao",
    sheet: "Nhiệm vụ",
    overall: "Toàn thành phố",
    group: "Nhóm lĩnh vực",
    overdue: "Nhiệm vụ quá hạn",
    none_overdue: "Không có nhiệm vụ quá hạn",
    code: "Mã",
    task: "Nhiệm vụ",
    directive: "Văn bản chỉ đạo",
    owner: "Cơ quan chủ trì",
    due: "Hạn hoàn thành",
    days_late: "Số ngày quá hạn",
    percent: "Tiến độ (%)",
    last_note: "Báo cáo gần nhất",
    judged_on: "Tính đến ngày",
};

const EN: Words = Words {
    heading: "Assigned tasks",
    sheet: "Tasks",
    overall: "Whole city",
    group: "Sector group",
    overdue: "Overdue tasks",
    none_overdue: "No task is overdue",
    code: "Code",
    task: "Task",
    directive: "Directive",
    owner: "Lead department",
    due: "Due",
    days_late: "Days overdue",
    percent: "Progress (%)",
    last_note: "Latest report",
    judged_on: "As of",
};

fn words(lang: Lang) -> &'static Words {
    match lang {
        Lang::Vi => &VI,
        Lang::En => &EN,
    }
}

/// The directive as a reader names it: "Chỉ thị 02/CT-UBND".
fn directive_name(view: &TaskView, lang: Lang) -> String {
    let kind = lang.pick(view.directive.kind.name_vi(), view.directive.kind.name_en());
    format!("{kind} {}", view.directive.number)
}

fn owner_name(view: &TaskView, section: &TaskSection, lang: Lang) -> String {
    section.owners.get(&view.owner).map_or_else(
        || view.owner.to_string(),
        |(vi, en)| lang.pick(vi, en).to_owned(),
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The report's HTML section of tasks; empty when there is no task.
pub fn html(report: &Report) -> String {
    let section = &report.tasks;
    let Some(day) = section.day.filter(|_| section.counts.total > 0) else {
        return String::new();
    };
    let lang = report.lang;
    let w = words(lang);
    let counts = &section.counts;
    let mut html = format!(
        r#"<section id="tasks"><h2>{heading}</h2><p class="meta">{judged_on}: {day}</p>
<p class="headline" data-tasks-done="{done}" data-tasks-total="{total}"><strong>{line}</strong></p>
<table><thead><tr><th>{group}</th><th>{heading}</th></tr></thead><tbody>"#,
        heading = w.heading,
        judged_on = w.judged_on,
        day = date(day, lang),
        done = counts.completed(),
        total = counts.total,
        line = escape(&summary_line(counts, lang)),
        group = w.group,
    );
    for group in &section.groups {
        html.push_str(&format!(
            r#"<tr data-task-group="{code}" data-tasks-done="{done}" data-tasks-total="{total}"><td>{name}</td><td>{line}</td></tr>"#,
            code = group.group,
            done = group.counts.completed(),
            total = group.counts.total,
            name = escape(lang.pick(&group.name_vi, &group.name_en)),
            line = escape(&summary_line(&group.counts, lang)),
        ));
    }
    html.push_str(&format!(
        r#"<tr data-task-group=""><td><strong>{}</strong></td><td><strong>{}</strong></td></tr></tbody></table><h3>{}</h3>"#,
        w.overall,
        escape(&summary_line(counts, lang)),
        w.overdue
    ));
    if section.overdue.is_empty() {
        html.push_str(&format!(r#"<p class="meta">{}</p>"#, w.none_overdue));
    } else {
        html.push_str(&format!(
            "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th class=\"num\">{}</th><th class=\"num\">{}</th></tr></thead><tbody>",
            w.task, w.directive, w.owner, w.due, w.days_late, w.percent
        ));
        for view in &section.overdue {
            html.push_str(&format!(
                r#"<tr data-overdue-task="{code}"><td>{title} <code>{code}</code></td><td>{directive}</td><td>{owner}</td><td>{due}</td><td class="num">{late}</td><td class="num">{percent}</td></tr>"#,
                code = view.code,
                title = escape(lang.pick(&view.title_vi, &view.title_en)),
                directive = escape(&directive_name(view, lang)),
                owner = escape(&owner_name(view, section, lang)),
                due = date(view.due, lang),
                late = days_late(view, day),
                percent = view.percent.map(|p| p.to_string()).unwrap_or_else(|| "–".into()),
            ));
        }
        html.push_str("</tbody></table>");
    }
    html.push_str("</section>");
    html
}

/// The sheet "Nhiệm vụ" ("Tasks"): the summary lines, then the overdue tasks.
pub fn xlsx_sheet(book: &mut Workbook, report: &Report) -> Result<(), XlsxError> {
    let section = &report.tasks;
    let Some(day) = section.day else {
        return Ok(());
    };
    let lang = report.lang;
    let w = words(lang);
    let sheet = book.add_worksheet().set_name(w.sheet)?;
    let bold = Format::new().set_bold();
    let title = Format::new().set_bold().set_font_size(14);
    let wrap = Format::new().set_text_wrap().set_align(FormatAlign::Top);
    sheet.write_string_with_format(0, 0, w.heading, &title)?;
    sheet.write_string(1, 0, format!("{}: {}", w.judged_on, date(day, lang)))?;
    sheet.write_string_with_format(3, 0, w.group, &bold)?;
    sheet.write_string_with_format(3, 1, w.heading, &bold)?;
    sheet.set_column_width(0, 32.0)?;
    sheet.set_column_width(1, 48.0)?;
    let mut row = 4;
    for group in &section.groups {
        sheet.write_string(row, 0, lang.pick(&group.name_vi, &group.name_en))?;
        sheet.write_string(row, 1, summary_line(&group.counts, lang))?;
        row += 1;
    }
    sheet.write_string_with_format(row, 0, w.overall, &bold)?;
    sheet.write_string_with_format(row, 1, summary_line(&section.counts, lang), &bold)?;
    row += 2;
    sheet.write_string_with_format(row, 0, w.overdue, &title)?;
    row += 1;
    if section.overdue.is_empty() {
        sheet.write_string(row, 0, w.none_overdue)?;
        return Ok(());
    }
    let columns = [
        (w.code, 32.0),
        (w.task, 48.0),
        (w.directive, 28.0),
        (w.owner, 28.0),
        (w.due, 14.0),
        (w.days_late, 12.0),
        (w.percent, 12.0),
        (w.last_note, 48.0),
    ];
    for (col, (label, width)) in columns.iter().enumerate() {
        sheet.write_string_with_format(row, col as u16, *label, &bold)?;
        if col > 1 {
            sheet.set_column_width(col as u16, *width)?;
        }
    }
    for view in &section.overdue {
        row += 1;
        sheet.write_string(row, 0, view.code.as_str())?;
        sheet.write_string_with_format(row, 1, lang.pick(&view.title_vi, &view.title_en), &wrap)?;
        sheet.write_string(row, 2, directive_name(view, lang))?;
        sheet.write_string(row, 3, owner_name(view, section, lang))?;
        sheet.write_string(row, 4, date(view.due, lang))?;
        sheet.write_number(row, 5, days_late(view, day) as f64)?;
        if let Some(percent) = view.percent {
            sheet.write_number(row, 6, f64::from(percent))?;
        }
        if let Some(note) = &view.last_progress {
            sheet.write_string_with_format(row, 7, &note.note, &wrap)?;
        }
    }
    Ok(())
}

/// The CSV's rows of tasks, after the targets, each `width` fields wide: a blank row, the
/// summary lines (group, line, done, total), then the overdue tasks.
pub fn csv_rows(report: &Report, width: usize) -> Vec<Vec<String>> {
    let section = &report.tasks;
    let Some(day) = section.day else {
        return Vec::new();
    };
    let lang = report.lang;
    let w = words(lang);
    let pad = |mut fields: Vec<String>| {
        fields.resize(width.max(fields.len()), String::new());
        fields.truncate(width);
        fields
    };
    let count_row = |name: &str, counts: &TaskCounts| {
        pad(vec![
            w.heading.to_owned(),
            name.to_owned(),
            summary_line(counts, lang),
            counts.completed().to_string(),
            counts.total.to_string(),
            counts.overdue.to_string(),
        ])
    };
    let mut rows = vec![pad(Vec::new())];
    for group in &section.groups {
        rows.push(count_row(
            lang.pick(&group.name_vi, &group.name_en),
            &group.counts,
        ));
    }
    rows.push(count_row(w.overall, &section.counts));
    for view in &section.overdue {
        rows.push(pad(vec![
            w.overdue.to_owned(),
            view.code.to_string(),
            lang.pick(&view.title_vi, &view.title_en).to_owned(),
            directive_name(view, lang),
            owner_name(view, section, lang),
            view.due.to_string(),
            days_late(view, day).to_string(),
        ]));
    }
    rows
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::domain::task::{test_directive, StatusRecord, TaskDef};
    use crate::domain::{Code, Department, Group};

    fn day(raw: &str) -> NaiveDate {
        raw.parse().expect("a date")
    }

    fn task(code: &str, group: &str, due: &str, done: Option<&str>, issued: &str) -> Task {
        let at = Utc
            .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .expect("time");
        Task {
            def: TaskDef {
                code: Code::parse(code).expect("code"),
                title_vi: format!("Nhiệm vụ {code}"),
                title_en: format!("Task {code}"),
                directive: "1/CT-UBND".into(),
                owner: Code::parse("POLICE").expect("code"),
                cooperating: Vec::new(),
                group: Code::parse(group).expect("code"),
                due: day(due),
                indicators: Vec::new(),
            },
            directive: test_directive(day(issued)),
            recorded: if done.is_some() {
                RecordedStatus::Done
            } else {
                RecordedStatus::InProgress
            },
            completed_on: done.map(day),
            percent: None,
            start_percent: None,
            origin: "api".into(),
            created_at: at,
            updated_at: at,
            updated_by: "test".into(),
            progress: Vec::new(),
            definitions: Vec::new(),
            // Started when stored, done recorded on its completion's day.
            history: std::iter::once((at, RecordedStatus::InProgress, None))
                .chain(done.map(|on| {
                    let noon = day(on).and_hms_opt(5, 0, 0).expect("time").and_utc();
                    (noon.max(at), RecordedStatus::Done, Some(day(on)))
                }))
                .map(|(at, status, completed_on)| StatusRecord {
                    at,
                    by: "test".into(),
                    status,
                    completed_on,
                })
                .collect(),
        }
    }

    /// 10 April 2026, 00:00 in the city.
    fn cutoff() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 4, 9, 17, 0, 0)
            .single()
            .expect("time")
    }

    fn catalogue() -> Catalogue {
        let group = |code: &str, order| Group {
            code: Code::parse(code).expect("code"),
            order,
            name_vi: format!("Nhóm {code}"),
            name_en: format!("Group {code}"),
        };
        Catalogue::new(
            vec![group("SECURITY", 1), group("HEALTH", 2)],
            vec![Department {
                code: Code::parse("POLICE").expect("code"),
                name_vi: "Công an Thành phố".into(),
                name_en: "City Police".into(),
            }],
            Vec::new(),
            Vec::new(),
            Vec::new(),
        )
    }

    #[test]
    fn the_report_counts_done_and_done_late_over_every_task_of_the_period() {
        let tasks = [
            task(
                "A",
                "SECURITY",
                "2026-03-31",
                Some("2026-03-01"),
                "2026-01-05",
            ), // done
            task(
                "B",
                "SECURITY",
                "2026-03-31",
                Some("2026-04-05"),
                "2026-01-05",
            ), // done late
            task("C", "SECURITY", "2026-03-31", None, "2026-01-05"), // overdue
            task("D", "HEALTH", "2026-06-30", None, "2026-01-05"),   // in progress
            task(
                "E",
                "HEALTH",
                "2026-02-01",
                Some("2026-05-01"),
                "2026-01-05",
            ), // later: overdue
            task(
                "F",
                "HEALTH",
                "2025-12-31",
                Some("2025-12-20"),
                "2025-10-01",
            ), // last year's
            task("G", "HEALTH", "2026-09-30", None, "2026-05-01"),   // not issued yet
        ];
        let section = section(&tasks, &catalogue(), 2026, cutoff(), day("2026-04-10"));
        assert_eq!(section.counts.total, 5);
        assert_eq!(section.counts.done, 1);
        assert_eq!(section.counts.done_late, 1);
        assert_eq!(section.counts.overdue, 2);
        assert_eq!(section.counts.in_progress, 1);
        assert_eq!(
            summary_line(&section.counts, Lang::Vi),
            "2/5 nhiệm vụ hoàn thành (40 %)"
        );
        let security = &section.groups[0];
        assert_eq!(security.group.as_str(), "SECURITY");
        assert_eq!(
            summary_line(&security.counts, Lang::Vi),
            "2/3 nhiệm vụ hoàn thành (66,67 %)"
        );
        assert_eq!(
            summary_line(&security.counts, Lang::En),
            "2/3 tasks done (66.67 %)"
        );
        let overdue: Vec<&str> = section.overdue.iter().map(|v| v.code.as_str()).collect();
        assert_eq!(overdue, ["E", "C"], "the longest overdue first");
        assert_eq!(days_late(&section.overdue[0], day("2026-04-10")), 68);
    }

    #[test]
    fn no_task_reads_as_none_done_without_a_share() {
        assert_eq!(
            summary_line(&TaskCounts::default(), Lang::Vi),
            "0/0 nhiệm vụ hoàn thành"
        );
    }
}
