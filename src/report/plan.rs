//! The yearly report's section on the five-year plan ("Kế hoạch 5 năm 2026–2030"): each
//! multi-year target with its baseline, target, the year's figure, Open SDG's ratio and
//! category, counted per group (ARCHITECTURE §4, §12). Rendered into the HTML report, as its own
//! XLSX sheet and as a block of rows after the CSV's targets.
//!
//! It is judged as known at the report's cut-off from the figures of the years up to the
//! report's, read as the rest of the report reads them (ARCHITECTURE §8, §12): the official
//! figures only, each from when it became official, or with `history=latest` the latest,
//! preliminary ones included. So a report made again later reads the same, and the section says
//! which figures it read in the report's own words.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use rust_xlsxwriter::{Color, Format, FormatAlign, Workbook, XlsxError};
use serde::Serialize;

use super::html::escape;
use super::text;
use super::{Lang, Report, Sources};
use crate::domain::approval::History;
use crate::domain::Period;
use crate::rules::five_year::Progress;
use crate::rules::plan_progress::{
    self, category_key, direction_words, PlanAssessment, TargetProgress, CATEGORY_KEYS,
};
use crate::store::StoreError;

/// The plan as the report shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PlanSection {
    pub assessment: PlanAssessment,
    /// The report's year: later years' figures are left out.
    pub year: i32,
    /// Which figures were read, as for the report's targets.
    pub history: History,
}

/// The section of a yearly report, when a plan covers its year.
pub async fn section(
    sources: &Sources<'_>,
    period: &Period,
    cutoff: DateTime<Utc>,
    history: History,
) -> Result<Option<PlanSection>, StoreError> {
    let Period::Year(year) = *period else {
        return Ok(None);
    };
    let Some(plan) = sources
        .catalogue
        .plans
        .iter()
        .find(|plan| plan.covers(year))
    else {
        return Ok(None);
    };
    let mut figures = plan_progress::read_figures_as_of(
        sources.store,
        sources.catalogue,
        plan,
        sources.zone,
        cutoff,
        history,
    )
    .await?;
    for series in figures.values_mut() {
        series.retain(|figure| figure.year <= year);
    }
    Ok(Some(PlanSection {
        assessment: plan_progress::assess_plan(plan, sources.catalogue, &figures),
        year,
        history,
    }))
}

/// The section's title: `Kế hoạch 5 năm 2026–2030`.
pub fn title(plan: &PlanAssessment, lang: Lang) -> String {
    let words = lang.pick("Kế hoạch 5 năm", "Five-year plan");
    format!("{words} {}–{}", plan.start_year, plan.end_year)
}

/// A category's name: Open SDG's categories in the city's words.
pub fn category_name(key: &str, lang: Lang) -> &'static str {
    match key {
        "target_achieved" => lang.pick("Đã đạt mục tiêu", "Target achieved"),
        "substantial" => lang.pick("Tiến bộ đáng kể", "Substantial progress"),
        "moderate" => lang.pick("Tiến bộ vừa phải", "Moderate progress"),
        "limited" => lang.pick("Tiến bộ hạn chế", "Limited progress"),
        "deterioration" => lang.pick("Thụt lùi", "Deterioration"),
        _ => lang.pick("Chưa đánh giá được", "Not assessed yet"),
    }
}

fn colour(key: &str) -> &'static str {
    match key {
        "target_achieved" => "#1b7f3b",
        "substantial" => "#2e9d57",
        "moderate" => "#d9a300",
        "limited" => "#e06c00",
        "deterioration" => "#c62828",
        _ => "#8a8f98",
    }
}

/// The method, then which figures were read in the words the report's heading uses.
fn note(history: History, lang: Lang) -> String {
    let method = lang.pick(
        "Phương pháp Open SDG: R = tốc độ tăng bình quân (CAGR) thực hiện / CAGR cần có để đạt mục tiêu đúng hạn, theo hướng mong muốn. R ≥ 0,95: tiến bộ đáng kể; 0,60–0,95: vừa phải; 0–0,60: hạn chế; R < 0: thụt lùi. Năm gốc chưa có số quan sát thì dùng số của kế hoạch.",
        "Open SDG's measure: R = observed compound annual growth over the growth needed to reach the target on time, in the desired direction. R ≥ 0.95: substantial; 0.60–0.95: moderate; 0–0.60: limited; R < 0: deterioration. The plan's baseline stands in until its year is observed.",
    );
    format!("{method} {}", super::history::note(history, lang))
}

fn illustrative_mark(lang: Lang) -> &'static str {
    lang.pick("minh họa", "illustrative")
}

fn target_text(target: &TargetProgress, lang: Lang) -> String {
    let plan = &target.target;
    format!(
        "{} {} ({})",
        plan.direction.symbol(),
        text::number(plan.target, lang),
        plan.target_year
    )
}

fn ratio_text(ratio: Option<f64>, lang: Lang) -> String {
    ratio.map_or_else(
        || "–".into(),
        |r| text::number((r * 100.0).round() / 100.0, lang),
    )
}

/// The HTML section, appended before the report's end.
pub fn html(report: &Report) -> String {
    let Some(section) = &report.plan else {
        return String::new();
    };
    let lang = report.lang;
    let plan = &section.assessment;
    let mut html = String::with_capacity(16 * 1024);
    let _ = write!(
        html,
        r#"<section id="plan" data-plan="{code}"><h2>{title}</h2><p class="note">{name}</p><table class="plan-counts"><thead><tr><th>{group}</th>"#,
        code = escape(&plan.code),
        title = escape(&title(plan, lang)),
        name = escape(lang.pick(&plan.name_vi, &plan.name_en)),
        group = lang.pick("Nhóm", "Group"),
    );
    for key in CATEGORY_KEYS {
        let _ = write!(html, r#"<th class="num">{}</th>"#, category_name(key, lang));
    }
    html.push_str("</tr></thead><tbody>");
    let count_row = |html: &mut String,
                     label: &str,
                     code: &str,
                     counts: &std::collections::BTreeMap<String, usize>| {
        let _ = write!(
            html,
            r#"<tr data-group="{code}"><td>{}</td>"#,
            escape(label)
        );
        for key in CATEGORY_KEYS {
            let n = counts.get(key).copied().unwrap_or(0);
            let _ = write!(html, r#"<td class="num" data-category="{key}">{n}</td>"#);
        }
        html.push_str("</tr>");
    };
    for group in &plan.groups {
        let name = lang.pick(&group.name_vi, &group.name_en);
        count_row(&mut html, name, group.code.as_str(), &group.counts);
    }
    count_row(&mut html, lang.pick("Cộng", "Total"), "", &plan.counts);
    let _ = write!(
        html,
        r#"</tbody></table><p class="note" data-history="{}">{}</p><table class="plan-targets"><thead><tr><th>{}</th><th>{}</th><th class="num">{}</th><th class="num">{}</th><th class="num">{}</th><th class="num">R</th><th>{}</th></tr></thead><tbody>"#,
        section.history.as_str(),
        note(section.history, lang),
        lang.pick("Chỉ tiêu", "Indicator"),
        lang.pick("Đơn vị tính", "Measure"),
        lang.pick("Năm gốc", "Baseline"),
        lang.pick("Mục tiêu", "Target"),
        lang.pick("Số năm gần nhất", "Latest year"),
        lang.pick("Đánh giá", "Progress"),
    );
    for target in plan.groups.iter().flat_map(|g| &g.targets) {
        let plan_target = &target.target;
        let key = target.category_key();
        let latest = target.latest.as_ref();
        let latest_text = latest.map_or_else(
            || "–".to_owned(),
            |l| format!("{} ({})", text::number(l.value, lang), l.year),
        );
        let illustrative = if plan_target.illustrative {
            format!(
                r#" <em class="illustrative">({})</em>"#,
                illustrative_mark(lang)
            )
        } else {
            String::new()
        };
        let _ = write!(
            html,
            r#"<tr data-indicator="{code}" data-category="{key}"><td>{name}{illustrative} <code>{code}</code></td><td>{measure}</td><td class="num">{baseline} ({baseline_year})</td><td class="num">{target}</td><td class="num">{latest_text}</td><td class="num">{ratio}</td><td><span class="badge" style="background:{colour}">{category}</span></td></tr>"#,
            code = plan_target.indicator,
            name = escape(lang.pick(&target.name_vi, &target.name_en)),
            measure = escape(lang.pick(&target.measure_vi, &target.measure_en)),
            baseline = text::number(plan_target.baseline, lang),
            baseline_year = plan_target.baseline_year,
            target = escape(&target_text(target, lang)),
            ratio = ratio_text(latest.and_then(|l| l.ratio), lang),
            colour = colour(key),
            category = category_name(key, lang),
        );
    }
    html.push_str("</tbody></table></section>\n");
    html
}

/// The plan's own sheet of the XLSX report.
pub fn xlsx_sheet(book: &mut Workbook, report: &Report) -> Result<(), XlsxError> {
    let Some(section) = &report.plan else {
        return Ok(());
    };
    let lang = report.lang;
    let plan = &section.assessment;
    let sheet = book
        .add_worksheet()
        .set_name(lang.pick("Kế hoạch 5 năm", "Five-year plan"))?;
    let bold = Format::new().set_bold();
    let title_format = Format::new().set_bold().set_font_size(14);
    let wrap = Format::new().set_text_wrap().set_align(FormatAlign::Top);
    let whole = Format::new().set_num_format("#,##0");
    let decimal = Format::new().set_num_format("#,##0.00");
    let number = |value: f64| {
        if super::xlsx::is_whole(value) {
            &whole
        } else {
            &decimal
        }
    };
    let ratio = Format::new().set_num_format("0.00");
    sheet.write_string_with_format(0, 0, title(plan, lang), &title_format)?;
    sheet.write_string(1, 0, lang.pick(&plan.name_vi, &plan.name_en))?;
    sheet.write_string(2, 0, note(section.history, lang))?;
    let columns = [
        (lang.pick("Nhóm", "Group"), 24.0),
        (lang.pick("Mã", "Code"), 30.0),
        (lang.pick("Chỉ tiêu", "Indicator"), 40.0),
        (lang.pick("Đơn vị tính", "Measure"), 14.0),
        (lang.pick("Hướng", "Direction"), 12.0),
        (lang.pick("Năm gốc", "Baseline year"), 10.0),
        (lang.pick("Số năm gốc", "Baseline"), 12.0),
        (lang.pick("Năm mục tiêu", "Target year"), 10.0),
        (lang.pick("Mục tiêu", "Target"), 12.0),
        (lang.pick("Năm gần nhất", "Latest year"), 10.0),
        (lang.pick("Số gần nhất", "Latest"), 12.0),
        ("R", 8.0),
        (lang.pick("Đánh giá", "Progress"), 22.0),
        (lang.pick("Chính thức", "Official"), 10.0),
        (lang.pick("Minh họa", "Illustrative"), 10.0),
        (lang.pick("Nguồn", "Source"), 60.0),
    ];
    let top = 4;
    for (col, (label, width)) in columns.iter().enumerate() {
        sheet.write_string_with_format(top, col as u16, *label, &bold)?;
        sheet.set_column_width(col as u16, *width)?;
    }
    let yes_no = |flag: bool| if flag { lang.pick("có", "yes") } else { "" };
    let mut row = top + 1;
    for group in &plan.groups {
        for target in &group.targets {
            let p = &target.target;
            let (vi, en) = direction_words(p.direction);
            let key = target.category_key();
            let fill = Format::new().set_background_color(Color::RGB(
                u32::from_str_radix(colour(key).trim_start_matches('#'), 16).unwrap_or(0x8a8f98),
            ));
            sheet.write_string_with_format(
                row,
                0,
                lang.pick(&group.name_vi, &group.name_en),
                &wrap,
            )?;
            sheet.write_string(row, 1, p.indicator.as_str())?;
            sheet.write_string_with_format(
                row,
                2,
                lang.pick(&target.name_vi, &target.name_en),
                &wrap,
            )?;
            sheet.write_string(row, 3, lang.pick(&target.measure_vi, &target.measure_en))?;
            sheet.write_string(row, 4, lang.pick(vi, en))?;
            sheet.write_number(row, 5, p.baseline_year)?;
            sheet.write_number_with_format(row, 6, p.baseline, number(p.baseline))?;
            sheet.write_number(row, 7, p.target_year)?;
            sheet.write_number_with_format(row, 8, p.target, number(p.target))?;
            if let Some(latest) = &target.latest {
                sheet.write_number(row, 9, latest.year)?;
                sheet.write_number_with_format(row, 10, latest.value, number(latest.value))?;
                if let Some(r) = latest.ratio {
                    sheet.write_number_with_format(row, 11, r, &ratio)?;
                }
                sheet.write_string(row, 13, yes_no(latest.official))?;
            }
            sheet.write_string_with_format(row, 12, category_name(key, lang), &fill)?;
            sheet.write_string(row, 14, yes_no(p.illustrative))?;
            sheet.write_string_with_format(row, 15, p.source.as_deref().unwrap_or(""), &wrap)?;
            row += 1;
        }
    }
    row += 1;
    sheet.write_string_with_format(
        row,
        0,
        lang.pick("Số chỉ tiêu theo mức đánh giá", "Targets per category"),
        &bold,
    )?;
    for (col, key) in (1u16..).zip(CATEGORY_KEYS) {
        sheet.write_string_with_format(row + 1, col, category_name(key, lang), &bold)?;
        sheet.write_number(
            row + 2,
            col,
            plan.counts.get(key).copied().unwrap_or(0) as f64,
        )?;
    }
    sheet.write_string(row + 2, 0, lang.pick("Cộng", "Total"))?;
    sheet.set_freeze_panes(top + 1, 3)?;
    Ok(())
}

/// The plan's rows after the CSV's targets: an empty row, a heading row, then one row per
/// target, each `width` fields wide (the CSV's rows all have one width).
pub fn csv_rows(report: &Report, width: usize) -> Vec<Vec<String>> {
    let Some(section) = &report.plan else {
        return Vec::new();
    };
    let lang = report.lang;
    let plan = &section.assessment;
    let pad = |mut fields: Vec<String>| {
        fields.resize(width.max(fields.len()), String::new());
        fields.truncate(width);
        fields
    };
    let heading = [
        title(plan, lang).as_str(),
        lang.pick("Mã", "Code"),
        lang.pick("Chỉ tiêu", "Indicator"),
        lang.pick("Hướng", "Direction"),
        lang.pick("Năm gốc", "Baseline year"),
        lang.pick("Số năm gốc", "Baseline"),
        lang.pick("Năm mục tiêu", "Target year"),
        lang.pick("Mục tiêu", "Target"),
        lang.pick("Năm gần nhất", "Latest year"),
        lang.pick("Số gần nhất", "Latest"),
        "R",
        lang.pick("Đánh giá", "Progress"),
        lang.pick("Minh họa", "Illustrative"),
        lang.pick("Nguồn", "Source"),
        super::history::heading(lang),
    ]
    .map(str::to_owned)
    .to_vec();
    let mut rows = vec![pad(Vec::new()), pad(heading)];
    for group in &plan.groups {
        for target in &group.targets {
            let p = &target.target;
            let latest = target.latest.as_ref();
            let (vi, en) = direction_words(p.direction);
            rows.push(pad(vec![
                lang.pick(&group.name_vi, &group.name_en).to_owned(),
                p.indicator.to_string(),
                lang.pick(&target.name_vi, &target.name_en).to_owned(),
                lang.pick(vi, en).to_owned(),
                p.baseline_year.to_string(),
                p.baseline.to_string(),
                p.target_year.to_string(),
                p.target.to_string(),
                latest.map(|l| l.year.to_string()).unwrap_or_default(),
                latest.map(|l| l.value.to_string()).unwrap_or_default(),
                latest
                    .and_then(|l| l.ratio)
                    .map(|r| format!("{r:.4}"))
                    .unwrap_or_default(),
                category_name(target.category_key(), lang).to_owned(),
                if p.illustrative {
                    lang.pick("có", "yes").to_owned()
                } else {
                    String::new()
                },
                p.source.clone().unwrap_or_default(),
                super::history::word(section.history, lang).to_owned(),
            ]));
        }
    }
    rows
}

/// The category a progress reads as, for callers that hold a [`Progress`].
pub fn progress_name(progress: Progress, lang: Lang) -> &'static str {
    category_name(category_key(progress), lang)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_category_has_its_vietnamese_and_english_name() {
        assert_eq!(category_name("substantial", Lang::Vi), "Tiến bộ đáng kể");
        assert_eq!(category_name("moderate", Lang::Vi), "Tiến bộ vừa phải");
        assert_eq!(category_name("limited", Lang::Vi), "Tiến bộ hạn chế");
        assert_eq!(category_name("deterioration", Lang::Vi), "Thụt lùi");
        assert_eq!(
            progress_name(Progress::Deterioration, Lang::En),
            "Deterioration"
        );
        for key in CATEGORY_KEYS {
            assert_ne!(category_name(key, Lang::Vi), category_name(key, Lang::En));
        }
    }
}
