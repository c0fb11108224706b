//! The report's words and number formats, Vietnamese first.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::domain::number::Notation;
use crate::domain::{Period, Status};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    Vi,
    En,
}

impl Lang {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "vi" => Some(Self::Vi),
            "en" => Some(Self::En),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Self::Vi => "vi",
            Self::En => "en",
        }
    }

    /// The separators figures are written with in this language.
    pub fn notation(self) -> Notation {
        match self {
            Self::Vi => Notation::Vietnamese,
            Self::En => Notation::English,
        }
    }

    pub fn pick<'a>(self, vi: &'a str, en: &'a str) -> &'a str {
        match self {
            Self::Vi => vi,
            Self::En => en,
        }
    }
}

/// Every fixed phrase of the report.
pub struct Words {
    pub title: &'static str,
    pub unit: &'static str,
    pub cutoff: &'static str,
    pub provisional: &'static str,
    pub generated: &'static str,
    pub summary: &'static str,
    pub met_of: &'static str,
    pub met_note: &'static str,
    pub figures_note: &'static str,
    pub by_group: &'static str,
    pub group: &'static str,
    pub changes: &'static str,
    pub changes_since: &'static str,
    pub no_changes: &'static str,
    pub no_previous: &'static str,
    pub indicator: &'static str,
    pub code: &'static str,
    pub measure: &'static str,
    pub department: &'static str,
    pub target: &'static str,
    pub actual: &'static str,
    pub last_year: &'static str,
    pub change: &'static str,
    /// The CSV's column of a percent figure's change, in points.
    pub change_points: &'static str,
    pub of_plan: &'static str,
    pub expected: &'static str,
    pub projection: &'static str,
    pub probability: &'static str,
    pub status: &'static str,
    pub previous_status: &'static str,
    pub reported_through: &'static str,
    pub illustrative: &'static str,
    pub before: &'static str,
    pub now: &'static str,
    pub targets: &'static str,
    pub sheet_summary: &'static str,
    pub sheet_targets: &'static str,
    pub sheet_changes: &'static str,
}

const VI: Words = Words {
    title: "Báo cáo tình hình thực hiện chỉ tiêu kinh tế – xã hội",
    unit: "Đơn vị",
    cutoff: "Số liệu nhận đến",
    provisional: "Báo cáo tạm tính: kỳ báo cáo chưa đến hạn, số liệu còn có thể được cập nhật.",
    generated: "Lập lúc",
    summary: "Tổng hợp",
    met_of: "chỉ tiêu đạt và vượt",
    met_note: "Đạt và vượt: chỉ tiêu đã đạt hoặc vượt kế hoạch năm; khi năm chưa kết thúc, tính cả chỉ tiêu đúng tiến độ (dự báo đạt kế hoạch vào cuối năm).",
    figures_note: "Cùng kỳ năm trước: số liệu năm trước đến cùng thời điểm, theo số liệu đã nhận đến cùng ngày năm trước. % kế hoạch năm: thực hiện so với kế hoạch năm, chỉ tính cho chỉ tiêu cộng dồn; chỉ tiêu tỷ lệ, mức và tốc độ tăng để trống. Tăng/giảm so với cùng kỳ để trống với chỉ tiêu tốc độ tăng.",
    by_group: "Theo nhóm ngành, lĩnh vực",
    group: "Nhóm",
    changes: "Thay đổi so với kỳ báo cáo trước",
    changes_since: "So với kỳ",
    no_changes: "Không có chỉ tiêu nào thay đổi đánh giá.",
    no_previous: "Không có kỳ báo cáo trước để so sánh.",
    indicator: "Chỉ tiêu",
    code: "Mã",
    measure: "Đơn vị tính",
    department: "Cơ quan chủ trì",
    target: "Kế hoạch năm",
    actual: "Thực hiện",
    last_year: "Cùng kỳ năm trước",
    change: "Tăng/giảm so với cùng kỳ",
    change_points: "Tăng/giảm so với cùng kỳ (điểm %)",
    of_plan: "% kế hoạch năm",
    expected: "Theo tiến độ",
    projection: "Dự báo cả năm",
    probability: "Khả năng đạt",
    status: "Đánh giá",
    previous_status: "Kỳ trước",
    reported_through: "Số liệu đến",
    illustrative: "chỉ tiêu minh họa",
    before: "Trước",
    now: "Nay",
    targets: "chỉ tiêu",
    sheet_summary: "Tổng hợp",
    sheet_targets: "Chỉ tiêu",
    sheet_changes: "Thay đổi",
};

const EN: Words = Words {
    title: "Socio-economic targets: progress report",
    unit: "Unit",
    cutoff: "Figures received up to",
    provisional: "Provisional: the period's figures are not all due yet and may still change.",
    generated: "Generated",
    summary: "Summary",
    met_of: "targets met or exceeded",
    met_note: "Met or exceeded: the year's target is achieved or exceeded; while the year runs, targets on track (projected to meet it by the year's end) count too.",
    figures_note: "Same period last year: last year's figure to the same point of the year, as received by the same day last year. % of year target: actual over the year's target, for running totals only; levels, rates and growth figures leave it empty. The change on last year is left empty for growth figures.",
    by_group: "By sector group",
    group: "Group",
    changes: "Changes since the previous report",
    changes_since: "Compared with",
    no_changes: "No target changed status.",
    no_previous: "There is no previous report to compare with.",
    indicator: "Indicator",
    code: "Code",
    measure: "Measure",
    department: "Lead department",
    target: "Year target",
    actual: "Actual",
    last_year: "Same period last year",
    change: "Change on last year",
    change_points: "Change on last year (percentage points)",
    of_plan: "% of year target",
    expected: "Expected by now",
    projection: "Year projection",
    probability: "Chance of meeting",
    status: "Status",
    previous_status: "Previously",
    reported_through: "Figures through",
    illustrative: "illustrative target",
    before: "Before",
    now: "Now",
    targets: "targets",
    sheet_summary: "Summary",
    sheet_targets: "Targets",
    sheet_changes: "Changes",
};

pub fn words(lang: Lang) -> &'static Words {
    match lang {
        Lang::Vi => &VI,
        Lang::En => &EN,
    }
}

/// The same words as the operations-room screen uses.
pub fn status(status: Status, lang: Lang) -> &'static str {
    match (status, lang) {
        (Status::Achieved, Lang::Vi) => "Đã đạt",
        (Status::OnTrack, Lang::Vi) => "Đúng tiến độ",
        (Status::AtRisk, Lang::Vi) => "Có nguy cơ",
        (Status::OffTrack, Lang::Vi) => "Chậm tiến độ",
        (Status::Missed, Lang::Vi) => "Không đạt",
        (Status::Stale, Lang::Vi) => "Chậm báo cáo",
        (Status::NoData, Lang::Vi) => "Chưa có số liệu",
        (Status::Achieved, Lang::En) => "Achieved",
        (Status::OnTrack, Lang::En) => "On track",
        (Status::AtRisk, Lang::En) => "At risk",
        (Status::OffTrack, Lang::En) => "Off track",
        (Status::Missed, Lang::En) => "Missed",
        (Status::Stale, Lang::En) => "Stale",
        (Status::NoData, Lang::En) => "No data",
    }
}

/// A row's status as the reader needs it: a late feed keeps the verdict on what did arrive
/// ("Chậm báo cáo · chậm tiến độ"), as the wall shows it.
pub fn row_status(status: Status, verdict: Status, lang: Lang) -> String {
    late_row_status(status, verdict, self::status(status, lang), lang)
}

/// [`row_status`] of a row whose missing official figure arrived in time and waits for its
/// approval: the department is not late, the statistics office has yet to verify it.
pub fn awaiting_row_status(status: Status, verdict: Status, lang: Lang) -> String {
    let awaiting = match lang {
        Lang::Vi => "Chờ phê duyệt số liệu",
        Lang::En => "Awaiting approval",
    };
    late_row_status(status, verdict, awaiting, lang)
}

fn late_row_status(status: Status, verdict: Status, late: &str, lang: Lang) -> String {
    let late_with_verdict =
        status == Status::Stale && !matches!(verdict, Status::Stale | Status::NoData);
    if late_with_verdict {
        format!("{late} · {}", self::status(verdict, lang).to_lowercase())
    } else if status == Status::Stale {
        late.to_owned()
    } else {
        self::status(status, lang).to_owned()
    }
}

const ROMAN: [&str; 4] = ["I", "II", "III", "IV"];
const MONTHS_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// `Quý I/2026`, `Tháng 3/2026`, `Năm 2026`; `Q1 2026`, `March 2026`, `Year 2026`.
pub fn period_label(period: &Period, lang: Lang) -> String {
    match (*period, lang) {
        (Period::Year(y), Lang::Vi) => format!("Năm {y}"),
        (Period::Year(y), Lang::En) => format!("Year {y}"),
        (Period::Quarter(y, q), Lang::Vi) => {
            let roman = ROMAN.get(q as usize - 1).copied().unwrap_or("?");
            format!("Quý {roman}/{y}")
        }
        (Period::Quarter(y, q), Lang::En) => format!("Q{q} {y}"),
        (Period::Month(y, m), Lang::Vi) => format!("Tháng {m}/{y}"),
        (Period::Month(y, m), Lang::En) => {
            let name = MONTHS_EN.get(m as usize - 1).copied().unwrap_or("?");
            format!("{name} {y}")
        }
        (other, _) => other.to_string(),
    }
}

/// A figure with up to two decimals and grouped thousands: `1.234,5` in Vietnamese,
/// `1,234.5` in English.
pub fn number(value: f64, lang: Lang) -> String {
    crate::domain::number::format(value, 2, lang.notation())
}

/// A fraction as a percentage with up to two decimals: `38,96 %` (vi), `38.96 %` (en).
pub fn fine_percent(share: f64, lang: Lang) -> String {
    crate::domain::number::percent(share, 2, lang.notation())
}

/// A change as a signed percentage, so a rise and a fall read apart at a glance: `+8,5 %`.
pub fn signed_percent(change: f64, lang: Lang) -> String {
    let text = fine_percent(change, lang);
    if text.starts_with('-') || text.starts_with("0 ") {
        text
    } else {
        format!("+{text}")
    }
}

/// A change in percentage points, signed: `+0,3 điểm %` (vi), `+0.3 pp` (en).
pub fn signed_points(points: f64, lang: Lang) -> String {
    let figure = number(points, lang);
    let sign = if figure.starts_with('-') || figure == "0" {
        ""
    } else {
        "+"
    };
    let unit = match lang {
        Lang::Vi => "điểm %",
        Lang::En => "pp",
    };
    format!("{sign}{figure} {unit}")
}

/// The change on last year as the row tells it: in points for a figure in percent, else as
/// a signed percentage; `–` when there is none.
pub fn change_text(change: Option<f64>, points: Option<f64>, lang: Lang) -> String {
    match (points, change) {
        (Some(points), _) => signed_points(points, lang),
        (None, Some(change)) => signed_percent(change, lang),
        (None, None) => "–".to_owned(),
    }
}

pub fn optional_percent(share: Option<f64>, lang: Lang) -> String {
    share.map_or_else(|| "–".to_owned(), |v| fine_percent(v, lang))
}

pub fn optional_number(value: Option<f64>, lang: Lang) -> String {
    value.map_or_else(|| "–".to_owned(), |v| number(v, lang))
}

/// A whole percentage with a space before the sign, as both languages' style guides write it.
pub fn percent(share: f64) -> String {
    format!("{} %", (share * 100.0).round() as i64)
}

/// A local date and time: `07/04/2026 00:00` (vi) or `2026-04-07 00:00` (en).
pub fn local_time(at: DateTime<Utc>, zone: Tz, lang: Lang) -> String {
    let local = at.with_timezone(&zone);
    match lang {
        Lang::Vi => local.format("%d/%m/%Y %H:%M").to_string(),
        Lang::En => local.format("%Y-%m-%d %H:%M").to_string(),
    }
}

/// A local date: the day a period's figures run through.
pub fn local_date(at: DateTime<Utc>, zone: Tz, lang: Lang) -> String {
    // A period ends at the next day's midnight; the last second is the day the figures cover.
    let local = (at - chrono::Duration::seconds(1)).with_timezone(&zone);
    match lang {
        Lang::Vi => local.format("%d/%m/%Y").to_string(),
        Lang::En => local.format("%Y-%m-%d").to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_percent_figures_change_reads_in_points() {
        assert_eq!(change_text(None, Some(0.3), Lang::Vi), "+0,3 điểm %");
        assert_eq!(change_text(None, Some(-1.25), Lang::En), "-1.25 pp");
        assert_eq!(change_text(None, Some(0.0), Lang::En), "0 pp");
        assert_eq!(change_text(Some(0.085), None, Lang::Vi), "+8,5 %");
        assert_eq!(change_text(None, None, Lang::En), "–");
    }

    #[test]
    fn a_late_row_keeps_its_verdict_and_other_rows_read_as_their_status() {
        let cases = [
            (
                Status::Stale,
                Status::OffTrack,
                Lang::Vi,
                "Chậm báo cáo · chậm tiến độ",
            ),
            (Status::Stale, Status::OnTrack, Lang::En, "Stale · on track"),
            (Status::Stale, Status::NoData, Lang::Vi, "Chậm báo cáo"),
            (Status::Stale, Status::Stale, Lang::En, "Stale"),
            (Status::AtRisk, Status::OffTrack, Lang::Vi, "Có nguy cơ"),
        ];
        for (status, verdict, lang, expected) in cases {
            assert_eq!(
                row_status(status, verdict, lang),
                expected,
                "{status:?} {verdict:?}"
            );
        }
        assert_eq!(
            awaiting_row_status(Status::Stale, Status::OnTrack, Lang::Vi),
            "Chờ phê duyệt số liệu · đúng tiến độ"
        );
        assert_eq!(
            awaiting_row_status(Status::Stale, Status::NoData, Lang::En),
            "Awaiting approval"
        );
    }

    #[test]
    fn numbers_are_written_the_way_each_language_reads_them() {
        assert_eq!(number(1_234_567.891, Lang::Vi), "1.234.567,89");
        assert_eq!(number(1_234_567.891, Lang::En), "1,234,567.89");
        assert_eq!(number(-0.5, Lang::Vi), "-0,5");
        assert_eq!(number(100.0, Lang::En), "100");
        assert_eq!(number(999.999, Lang::En), "1,000");
        assert_eq!(signed_percent(0.0852, Lang::Vi), "+8,52 %");
        assert_eq!(signed_percent(-0.031, Lang::Vi), "-3,1 %");
        assert_eq!(signed_percent(0.0, Lang::En), "0 %");
        assert_eq!(fine_percent(0.389_634, Lang::Vi), "38,96 %");
        assert_eq!(percent(0.4706), "47 %");
        assert_eq!(percent(0.4766), "48 %");
    }

    #[test]
    fn periods_are_named_as_reports_name_them() {
        assert_eq!(
            period_label(&Period::Quarter(2026, 1), Lang::Vi),
            "Quý I/2026"
        );
        assert_eq!(
            period_label(&Period::Month(2026, 3), Lang::Vi),
            "Tháng 3/2026"
        );
        assert_eq!(
            period_label(&Period::Month(2026, 3), Lang::En),
            "March 2026"
        );
        assert_eq!(period_label(&Period::Year(2026), Lang::En), "Year 2026");
    }
}
