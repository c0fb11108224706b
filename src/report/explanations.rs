//! The departments' explanations (giải trình) in the report: each slipping target's explanation
//! as it stood at the report's cut-off, with its actions and their due dates, so the report can
//! be produced again, identical, later (ARCHITECTURE §12). A slipping target without one says so.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::NaiveDate;
use chrono_tz::Tz;

use super::html::escape;
use super::text::{self, Lang};
use super::{Report, ReportRow};
use crate::domain::explanation::{Explanation, ExplanationAction};
use crate::domain::{Code, Status};

/// A target slips when it is judged at risk, off track or missed, or, while its feed is late,
/// when the figures that did arrive say so: what the wall marks and a slippage alert fires on.
pub fn is_slipping(status: Status, verdict: Status) -> bool {
    let slipping = |s: Status| matches!(s, Status::AtRisk | Status::OffTrack | Status::Missed);
    slipping(status) || (status == Status::Stale && slipping(verdict))
}

/// The explanations in force at the cut-off, by indicator.
pub(super) fn by_indicator(current: Vec<Explanation>, unit: &Code) -> BTreeMap<Code, Explanation> {
    current
        .into_iter()
        .filter(|e| e.unit == *unit)
        .map(|e| (e.indicator.clone(), e))
        .collect()
}

/// The phrases of this part of the report.
pub struct Words {
    pub heading: &'static str,
    pub sheet: &'static str,
    pub explanation: &'static str,
    pub actions: &'static str,
    pub explained_on: &'static str,
    pub by: &'static str,
    pub none: &'static str,
    pub nothing_slips: &'static str,
    pub due: &'static str,
    pub done: &'static str,
}

const VI: Words = Words {
    heading: "Giải trình của các chỉ tiêu chậm tiến độ",
    sheet: "Giải trình",
    explanation: "Giải trình",
    actions: "Giải pháp",
    explained_on: "Ngày giải trình",
    by: "Người gửi",
    none: "Chưa có giải trình",
    nothing_slips: "Không có chỉ tiêu nào chậm tiến độ.",
    due: "hạn",
    done: "đã xong",
};

const EN: Words = Words {
    heading: "Explanations of slipping targets",
    sheet: "Explanations",
    explanation: "Explanation",
    actions: "Actions",
    explained_on: "Explained on",
    by: "Given by",
    none: "No explanation yet",
    nothing_slips: "No target is slipping.",
    due: "due",
    done: "done",
};

pub fn words(lang: Lang) -> &'static Words {
    match lang {
        Lang::Vi => &VI,
        Lang::En => &EN,
    }
}

fn day(date: NaiveDate, lang: Lang) -> String {
    match lang {
        Lang::Vi => date.format("%d/%m/%Y").to_string(),
        Lang::En => date.format("%Y-%m-%d").to_string(),
    }
}

/// "Đẩy mạnh xúc tiến (hạn 15/12/2026; đã xong 01/12/2026)".
pub fn action_line(action: &ExplanationAction, lang: Lang) -> String {
    let w = words(lang);
    let mut line = format!("{} ({} {}", action.text, w.due, day(action.due, lang));
    if let Some(done) = action.done {
        let _ = write!(line, "; {} {}", w.done, day(done, lang));
    }
    line.push(')');
    line
}

/// Every action on a line of its own, for a spreadsheet cell or a CSV field.
pub fn actions_text(explanation: &Explanation, lang: Lang) -> String {
    explanation
        .actions
        .iter()
        .map(|action| format!("• {}", action_line(action, lang)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The report's slipping rows with their group's name, in report order.
pub fn slipping_rows(report: &Report) -> Vec<(&str, &ReportRow)> {
    report
        .groups
        .iter()
        .flat_map(|g| g.rows.iter().map(move |row| (g.name.as_str(), row)))
        .filter(|(_, row)| is_slipping(row.status, row.verdict))
        .collect()
}

/// The report's section of explanations.
pub(super) fn html(report: &Report, zone: Tz) -> String {
    let lang = report.lang;
    let w = words(lang);
    let mut html = format!(r#"<section id="explanations"><h2>{}</h2>"#, w.heading);
    let rows = slipping_rows(report);
    if rows.is_empty() {
        let _ = write!(html, r#"<p class="note">{}</p></section>"#, w.nothing_slips);
        html.push('\n');
        return html;
    }
    let r = text::words(lang);
    let _ = write!(
        html,
        "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
        r.indicator, r.status, w.explanation, w.actions
    );
    for (_, row) in rows {
        let (said, actions) = match &row.explanation {
            Some(e) => (
                format!(
                    r#"{}<span class="was">{}: {} · {}: {}</span>"#,
                    escape(&e.text),
                    w.explained_on,
                    text::local_time(e.created_at, zone, lang),
                    w.by,
                    escape(&e.author)
                ),
                e.actions
                    .iter()
                    .map(|a| format!("<li>{}</li>", escape(&action_line(a, lang))))
                    .collect::<String>(),
            ),
            None => (
                format!(r#"<span class="note">{}</span>"#, w.none),
                String::new(),
            ),
        };
        let actions = if actions.is_empty() {
            String::new()
        } else {
            format!("<ul>{actions}</ul>")
        };
        let _ = write!(
            html,
            r#"<tr data-explained="{code}" data-has-explanation="{has}"><td>{name} <code>{code}</code></td><td>{status}</td><td>{said}</td><td>{actions}</td></tr>"#,
            code = row.indicator,
            has = row.explanation.is_some(),
            name = escape(&row.name),
            status = escape(&row.status_text(lang)),
        );
    }
    html.push_str("</tbody></table></section>\n");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slipping_is_at_risk_off_track_missed_or_late_and_behind() {
        assert!(is_slipping(Status::AtRisk, Status::AtRisk));
        assert!(is_slipping(Status::Missed, Status::Missed));
        assert!(is_slipping(Status::Stale, Status::OffTrack));
        assert!(!is_slipping(Status::Stale, Status::OnTrack));
        assert!(!is_slipping(Status::OnTrack, Status::OnTrack));
        assert!(!is_slipping(Status::NoData, Status::NoData));
    }

    #[test]
    fn actions_read_with_their_dates_in_each_language() {
        let action = ExplanationAction {
            text: "Đẩy mạnh xúc tiến thương mại".into(),
            due: NaiveDate::from_ymd_opt(2026, 12, 15).unwrap(),
            done: NaiveDate::from_ymd_opt(2026, 12, 1),
        };
        assert_eq!(
            action_line(&action, Lang::Vi),
            "Đẩy mạnh xúc tiến thương mại (hạn 15/12/2026; đã xong 01/12/2026)"
        );
        assert_eq!(
            action_line(&action, Lang::En),
            "Đẩy mạnh xúc tiến thương mại (due 2026-12-15; done 2026-12-01)"
        );
    }
}
