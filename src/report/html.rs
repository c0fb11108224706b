//! The report as one self-contained HTML page: inline CSS and SVG charts, no script, nothing
//! fetched, so it can be mailed, archived and printed as it is.

use std::fmt::Write as _;

use chrono_tz::Tz;

use super::text::{self, words, Lang};
use super::{target_text, Report, ReportRow, Tally};
use crate::domain::{Status, TargetValue};

/// Status order in the charts: good news on the left.
const ORDER: [Status; 7] = [
    Status::Achieved,
    Status::OnTrack,
    Status::AtRisk,
    Status::OffTrack,
    Status::Missed,
    Status::Stale,
    Status::NoData,
];

fn colour(status: Status) -> &'static str {
    match status {
        Status::Achieved => "#17663a",
        Status::OnTrack => "#2f9e5b",
        Status::AtRisk => "#d6a100",
        Status::OffTrack => "#d9480f",
        Status::Missed => "#a61e1e",
        Status::Stale => "#6b7280",
        Status::NoData => "#b8bec8",
    }
}

pub(super) fn escape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
:root { color-scheme: light; --ink: #1f2933; --muted: #5f6b7a; --line: #d8dde3; }
* { box-sizing: border-box; }
body { font: 14px/1.45 "Segoe UI", Roboto, "Noto Sans", Arial, sans-serif; color: var(--ink);
       margin: 0 auto; max-width: 1180px; padding: 28px 32px 48px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 32px 0 10px; border-bottom: 2px solid var(--ink); padding-bottom: 4px; }
h3 { font-size: 15px; margin: 24px 0 8px; }
.meta { color: var(--muted); margin: 2px 0; }
.provisional { background: #fff6d6; border: 1px solid #e8c44d; padding: 8px 12px; margin: 12px 0; }
.headline { display: flex; align-items: baseline; gap: 14px; margin: 8px 0 6px; }
.headline .big { font-size: 34px; font-weight: 700; }
.headline .share { font-size: 22px; color: var(--muted); }
table { border-collapse: collapse; width: 100%; margin: 6px 0 12px; }
th, td { border-bottom: 1px solid var(--line); padding: 5px 6px; text-align: left; vertical-align: top; }
th { font-size: 12px; color: var(--muted); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; color: #fff; font-size: 12px;
         white-space: nowrap; }
.badge.no_data, .badge.stale { color: #1f2933; }
.was { display: block; color: var(--muted); font-size: 11px; margin-top: 2px; }
.legend { display: flex; flex-wrap: wrap; gap: 12px; font-size: 12px; color: var(--muted); margin: 4px 0; }
.legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; border-radius: 2px; }
.note { color: var(--muted); font-size: 12px; }
code { font-size: 12px; color: var(--muted); }
svg { display: block; }
@media print { body { padding: 0; max-width: none; } h2 { break-after: avoid; } tr { break-inside: avoid; } }
"#;

/// A stacked bar of a tally's statuses, `width` pixels wide.
fn tally_bar(tally: &Tally, width: u32, height: u32, lang: Lang) -> String {
    let mut svg = format!(
        r#"<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="{}">"#,
        escape(&format!(
            "{}/{} {}",
            tally.met,
            tally.total,
            words(lang).met_of
        ))
    );
    if tally.total == 0 {
        svg.push_str("</svg>");
        return svg;
    }
    let mut x = 0.0;
    for status in ORDER {
        let count = tally.by_status.get(status.as_str()).copied().unwrap_or(0);
        if count == 0 {
            continue;
        }
        let w = f64::from(width) * count as f64 / tally.total as f64;
        let _ = write!(
            svg,
            r#"<rect x="{x:.1}" y="0" width="{w:.1}" height="{height}" fill="{}"><title>{}: {count}</title></rect>"#,
            colour(status),
            escape(text::status(status, lang)),
        );
        x += w;
    }
    svg.push_str("</svg>");
    svg
}

/// How far the actual has come towards a point target, as a bar with the expected mark.
fn progress_bar(row: &ReportRow) -> String {
    const WIDTH: f64 = 120.0;
    let TargetValue::Point { value: target } = row.target else {
        return String::new();
    };
    let (Some(actual), true) = (row.actual, target > 0.0) else {
        return String::new();
    };
    // Levels and growth rates are judged against the target directly; the bar shows the
    // same ratio for every kind, capped so an overshoot does not run off the cell.
    let share = (actual / target).clamp(0.0, 1.25);
    let mut svg = format!(
        r##"<svg width="{WIDTH}" height="12" viewBox="0 0 {WIDTH} 12"><rect width="{WIDTH}" height="12" fill="#eef1f4"/><rect width="{:.1}" height="12" fill="{}"/>"##,
        WIDTH * share / 1.25,
        colour(row.status),
    );
    if let Some(expected) = row.expected {
        let x = WIDTH * (expected / target).clamp(0.0, 1.25) / 1.25;
        let _ = write!(
            svg,
            r##"<rect x="{:.1}" y="0" width="2" height="12" fill="#1f2933"/>"##,
            (x - 1.0).max(0.0)
        );
    }
    let _ = write!(
        svg,
        r##"<rect x="{:.1}" y="0" width="1" height="12" fill="#5f6b7a"/></svg>"##,
        WIDTH / 1.25
    );
    svg
}

fn badge(status: Status, lang: Lang) -> String {
    labelled_badge(status, text::status(status, lang))
}

fn labelled_badge(status: Status, label: &str) -> String {
    format!(
        r#"<span class="badge {}" style="background:{}">{}</span>"#,
        status.as_str(),
        colour(status),
        escape(label)
    )
}

fn legend(lang: Lang) -> String {
    let mut out = String::from(r#"<div class="legend">"#);
    for status in ORDER {
        let _ = write!(
            out,
            r#"<span><i style="background:{}"></i>{}</span>"#,
            colour(status),
            escape(text::status(status, lang))
        );
    }
    out.push_str("</div>");
    out
}

pub fn render(report: &Report, zone: Tz) -> String {
    let lang = report.lang;
    let w = words(lang);
    let n = |v: Option<f64>| text::optional_number(v, lang);
    let mut html = String::with_capacity(64 * 1024);
    let title = format!("{} – {}", w.title, report.period_label);
    let _ = write!(
        html,
        r#"<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title><style>{STYLE}</style></head><body>
<header><h1>{title}</h1>
<p class="meta">{city} · {unit_label}: {unit}</p>
<p class="meta">{cutoff_label}: <strong data-cutoff="{cutoff_iso}">{cutoff}</strong> · {generated_label}: {generated}</p>
</header>
"#,
        lang = lang.code(),
        title = escape(&title),
        city = escape(&report.city),
        unit_label = w.unit,
        unit = escape(&report.unit_name),
        cutoff_label = w.cutoff,
        cutoff_iso = report.cutoff.to_rfc3339(),
        cutoff = text::local_time(report.cutoff, zone, lang),
        generated_label = w.generated,
        generated = text::local_time(report.generated_at, zone, lang),
    );
    let _ = write!(
        html,
        r#"<p class="meta" data-history="{}">{}</p>"#,
        report.history.as_str(),
        super::history::note(report.history, lang)
    );
    if report.provisional {
        let _ = write!(html, r#"<p class="provisional">{}</p>"#, w.provisional);
    }

    let share = report.tally.share().map(text::percent).unwrap_or_default();
    let _ = write!(
        html,
        r#"<section id="summary"><h2>{summary}</h2>
<div class="headline"><span class="big" data-met="{met}" data-total="{total}">{met}/{total}</span>
<span>{met_of}</span><span class="share">{share}</span></div>
{bar}{legend}<p class="note">{note}</p><p class="note">{figures_note}</p>
<h3>{by_group}</h3>
<table><thead><tr><th>{group}</th><th class="num">{met_of}</th><th class="num">%</th><th></th></tr></thead><tbody>
"#,
        summary = w.summary,
        met = report.tally.met,
        total = report.tally.total,
        met_of = w.met_of,
        bar = tally_bar(&report.tally, 640, 22, lang),
        legend = legend(lang),
        note = w.met_note,
        figures_note = w.figures_note,
        by_group = w.by_group,
        group = w.group,
    );
    for group in &report.groups {
        let _ = writeln!(
            html,
            r##"<tr data-group="{code}"><td><a href="#g-{code}">{name}</a></td><td class="num">{met}/{total}</td><td class="num">{share}</td><td>{bar}</td></tr>"##,
            code = group.code,
            name = escape(&group.name),
            met = group.tally.met,
            total = group.tally.total,
            share = group.tally.share().map(text::percent).unwrap_or_default(),
            bar = tally_bar(&group.tally, 220, 12, lang),
        );
    }
    html.push_str("</tbody></table></section>\n");

    let _ = write!(html, r#"<section id="changes"><h2>{}</h2>"#, w.changes);
    match &report.previous {
        None => {
            let _ = write!(html, r#"<p class="note">{}</p>"#, w.no_previous);
        }
        Some(previous) => {
            let label = previous
                .period
                .parse()
                .map(|p| text::period_label(&p, lang))
                .unwrap_or_else(|_| previous.period.clone());
            let _ = write!(
                html,
                r#"<p class="meta">{} {} ({}: {})</p>"#,
                w.changes_since,
                escape(&label),
                w.cutoff,
                text::local_time(previous.cutoff, zone, lang)
            );
            if report.changes.is_empty() {
                let _ = write!(html, r#"<p class="note">{}</p>"#, w.no_changes);
            } else {
                let _ = write!(
                    html,
                    r#"<table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th class="num">{} ({})</th><th class="num">{} ({})</th></tr></thead><tbody>"#,
                    w.indicator, w.before, w.now, w.actual, w.before, w.actual, w.now
                );
                for change in &report.changes {
                    let _ = write!(
                        html,
                        r#"<tr data-indicator="{code}"><td>{name} <code>{code}</code></td><td>{from}</td><td>{to}</td><td class="num">{before}</td><td class="num">{now}</td></tr>"#,
                        code = change.indicator,
                        name = escape(&change.name),
                        from = change.from.map(|s| badge(s, lang)).unwrap_or_default(),
                        to = badge(change.to, lang),
                        before = n(change.actual_before),
                        now = n(change.actual_now),
                    );
                }
                html.push_str("</tbody></table>");
            }
        }
    }
    html.push_str("</section>\n");
    html.push_str(&super::explanations::html(report, zone));

    for group in &report.groups {
        let _ = write!(
            html,
            r#"<section id="g-{code}"><h2>{name} <span class="note">{met}/{total} {met_of}</span></h2>
<table><thead><tr><th>{indicator}</th><th>{measure}</th><th class="num">{target}</th><th class="num">{actual}</th><th class="num">{last_year}</th><th class="num">{change}</th><th class="num">{of_plan}</th><th class="num">{expected}</th><th class="num">{projection}</th><th class="num">{probability}</th><th></th><th>{status}</th></tr></thead><tbody>
"#,
            code = group.code,
            name = escape(&group.name),
            met = group.tally.met,
            total = group.tally.total,
            met_of = w.met_of,
            indicator = w.indicator,
            measure = w.measure,
            target = w.target,
            actual = w.actual,
            last_year = w.last_year,
            change = w.change,
            of_plan = w.of_plan,
            expected = w.expected,
            projection = w.projection,
            probability = w.probability,
            status = w.status,
        );
        for row in &group.rows {
            let was = match row.previous {
                Some(previous) if previous != row.status => format!(
                    r#"<span class="was">{}: {}</span>"#,
                    w.previous_status,
                    escape(text::status(previous, lang))
                ),
                _ => String::new(),
            };
            let through = row
                .reported_through
                .map(|t| {
                    format!(
                        r#"<span class="was">{}: {}</span>"#,
                        w.reported_through,
                        text::local_date(t, zone, lang)
                    )
                })
                .unwrap_or_default();
            let illustrative = if row.illustrative {
                format!(r#" <span class="note">({})</span>"#, w.illustrative)
            } else {
                String::new()
            };
            let _ = writeln!(
                html,
                r#"<tr data-indicator="{code}" data-status="{status_code}" data-actual="{actual_raw}"><td>{name}{illustrative} <code>{code}</code>{through}</td><td>{measure}</td><td class="num">{target}</td><td class="num">{actual}</td><td class="num">{last_year}</td><td class="num">{change}</td><td class="num">{of_plan}</td><td class="num">{expected}</td><td class="num">{projection}</td><td class="num">{probability}</td><td>{bar}</td><td>{badge}{was}</td></tr>"#,
                code = row.indicator,
                status_code = row.status.as_str(),
                actual_raw = row.actual.map(|v| v.to_string()).unwrap_or_default(),
                name = escape(&row.name),
                measure = escape(&row.measure),
                target = target_text(&row.target, lang),
                actual = n(row.actual),
                last_year = n(row.last_year),
                change = text::change_text(row.change, row.change_points, lang),
                of_plan = text::optional_percent(row.of_plan, lang),
                expected = n(row.expected),
                projection = n(row.projection),
                probability = row
                    .probability
                    .map(text::percent)
                    .unwrap_or_else(|| "–".into()),
                bar = progress_bar(row),
                badge = labelled_badge(row.status, &row.status_text(lang)),
            );
        }
        html.push_str("</tbody></table></section>\n");
    }
    html.push_str(&super::plan::html(report));
    html.push_str(&super::tasks::html(report));
    html.push_str("</body></html>\n");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape(r#"<b>"Tăng" & 'giảm'</b>"#),
            "&lt;b&gt;&quot;Tăng&quot; &amp; &#39;giảm&#39;&lt;/b&gt;"
        );
    }
}
