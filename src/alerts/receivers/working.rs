//! The figures of a target's alert in words, beside `text.rs`: the short form the wall and
//! chat show ("dự báo 26.530 tỷ đồng, mục tiêu 28.000 tỷ đồng") and the full working an
//! email adds under it (actual, expected to date, projection with its interval, chance, the
//! target version in force). Every figure goes through `domain::number`, in the notation of
//! the text's language, with its unit of measure.

use crate::alerts::message::AlertMessage;
use crate::domain::alert::AlertWorking;
use crate::domain::number;
use crate::rules::engine::FlaggedValue;

use super::directory::Directory;
use super::text::{self, Language};

/// Up to two decimals, as the reports write figures.
const DECIMALS: usize = 2;

/// `value` in `measure`: "26.530,47 tỷ đồng", "38,96 %", "1,982,471.88 VND billion"; `—` when
/// there is none. A measure left empty writes the figure alone.
pub fn quantity(language: Language, value: Option<f64>, measure: &str) -> String {
    quantity_to(language, value, measure, DECIMALS)
}

/// An estimate (a projection, its interval, the plan to date) in `measure`: whole from a
/// thousand on ("744.462 tỷ đồng"), as a statistics office writes an estimate of that size;
/// decimals there would claim a precision it does not have.
pub fn estimate(language: Language, value: Option<f64>, measure: &str) -> String {
    quantity_to(language, value, measure, estimate_decimals(value))
}

fn estimate_decimals(value: Option<f64>) -> usize {
    if value.is_some_and(|v| v.abs() >= 1000.0) {
        0
    } else {
        DECIMALS
    }
}

/// A chance in percent, never rounded up to a certainty it is not: "> 99 %", "< 1 %".
fn chance(language: Language, probability: f64) -> String {
    let notation = text::notation(language);
    if probability > 0.99 && probability < 1.0 {
        format!("> {}", number::percent(0.99, 0, notation))
    } else if probability > 0.0 && probability < 0.01 {
        format!("< {}", number::percent(0.01, 0, notation))
    } else {
        number::percent(probability, 0, notation)
    }
}

fn quantity_to(language: Language, value: Option<f64>, measure: &str, decimals: usize) -> String {
    let Some(value) = value else {
        return "—".to_owned();
    };
    let figure = text::decimal(language, value, decimals);
    if measure.trim().is_empty() {
        figure
    } else {
        format!("{figure} {measure}")
    }
}

fn measure(language: Language, working: &AlertWorking) -> &str {
    match language {
        Language::Vi => &working.measure_vi,
        Language::En => &working.measure_en,
    }
}

/// A flagged figure's step against the usual one, as people check a figure: "tăng 12.886 tỷ
/// đồng so với kỳ trước; các kỳ gần đây thường tăng khoảng 100 tỷ đồng". A step of a figure in
/// percent is in points; a usual step under half a percent of this one reads as "barely
/// changed", and a window whose steps were all alike says so.
pub fn unusual_step(language: Language, flagged: &FlaggedValue, measure: &str) -> String {
    let vi = language == Language::Vi;
    let step_measure = if measure.trim_start().starts_with('%') {
        if vi {
            "điểm %"
        } else {
            "pp"
        }
    } else {
        measure
    };
    let amount = |value: f64| estimate(language, Some(value.abs()), step_measure);
    let moved = |value: f64| match (vi, value < 0.0) {
        (true, false) => "tăng",
        (true, true) => "giảm",
        (false, false) => "rose by",
        (false, true) => "fell by",
    };
    let this = if vi {
        format!(
            "{} {} so với kỳ trước",
            moved(flagged.change),
            amount(flagged.change)
        )
    } else {
        format!(
            "{} {} on the previous period",
            moved(flagged.change),
            amount(flagged.change)
        )
    };
    let usual = flagged.median_change;
    // Without a z every recent step was this one; otherwise this is their median.
    let (alike, about) = match (flagged.z.is_none(), vi) {
        (true, true) => ("đều", ""),
        (true, false) => ("all", ""),
        (false, true) => ("thường", "khoảng "),
        (false, false) => ("usually", "about "),
    };
    let before = if usual.abs() <= flagged.change.abs() * 0.005 {
        if vi {
            format!("các kỳ gần đây {alike} gần như không đổi")
        } else {
            format!("recent periods {alike} barely changed")
        }
    } else if vi {
        format!(
            "các kỳ gần đây {alike} {} {about}{}",
            moved(usual),
            amount(usual)
        )
    } else {
        format!(
            "recent periods {alike} {} {about}{}",
            moved(usual),
            amount(usual)
        )
    };
    format!("{this}; {before}")
}

/// The target in force: "28.000 tỷ đồng", or a band "7,5–8 %".
pub fn target(language: Language, working: &AlertWorking) -> String {
    let measure = measure(language, working);
    match (working.target, working.target_low, working.target_high) {
        (Some(value), _, _) => quantity(language, Some(value), measure),
        (None, Some(low), Some(high)) => {
            let low = text::decimal(language, low, DECIMALS);
            format!("{low}–{}", quantity(language, Some(high), measure))
        }
        _ => "—".to_owned(),
    }
}

/// The short form of a slippage alert: "Kim ngạch xuất khẩu – TP.HCM năm 2026: chậm tiến độ;
/// dự báo 26.530 tỷ đồng, mục tiêu 28.000 tỷ đồng". Without a projection the actual
/// figure stands in; without either, the status alone.
pub fn slippage_summary(
    language: Language,
    title: &str,
    year: i32,
    status: &str,
    working: &AlertWorking,
) -> String {
    let measure = measure(language, working);
    let target = target(language, working);
    let (head, figure) = match language {
        Language::Vi => (format!("{title} năm {year}: {status}"), "dự báo"),
        Language::En => (format!("{title} {year}: {status}"), "projected"),
    };
    let target_word = match language {
        Language::Vi => "mục tiêu",
        Language::En => "target",
    };
    let (word, value) = match (working.projection, working.actual) {
        (Some(projection), _) => (figure, estimate(language, Some(projection), measure)),
        (None, Some(actual)) => (
            match language {
                Language::Vi => "thực hiện",
                Language::En => "actual",
            },
            quantity(language, Some(actual), measure),
        ),
        (None, None) => return head,
    };
    format!("{head}; {word} {value}, {target_word} {target}")
}

/// The full working of an alert, one line each, for an email under its summary; nothing for
/// an alert without figures. The target version's time is told as `directory` tells times.
pub fn working_lines(
    language: Language,
    alert: &AlertMessage,
    directory: &Directory,
) -> Vec<String> {
    let Some(working) = &alert.working else {
        return Vec::new();
    };
    let vi = language == Language::Vi;
    let measure = measure(language, working);
    let amount = |value: Option<f64>| quantity(language, value, measure);
    let mut lines = Vec::new();
    let label = |vi_word: &str, en_word: &str| if vi { vi_word } else { en_word }.to_owned();
    if working.actual.is_some() {
        lines.push(format!(
            "{}: {}",
            label("Thực hiện", "Actual"),
            amount(working.actual)
        ));
    }
    if working.expected.is_some() {
        lines.push(format!(
            "{}: {}",
            label("Kế hoạch đến nay", "Expected to date"),
            estimate(language, working.expected, measure)
        ));
    }
    if working.projection.is_some() {
        let mut line = format!(
            "{}: {}",
            label("Dự báo cả năm", "Projection for the year"),
            estimate(language, working.projection, measure)
        );
        if let Some([low, high]) = working.interval {
            line.push_str(&format!(
                " ({} {} – {})",
                label("khoảng tin cậy 90 %:", "90 % interval:"),
                text::decimal(language, low, estimate_decimals(Some(low))),
                estimate(language, Some(high), measure)
            ));
        }
        lines.push(line);
    }
    if let Some(probability) = working.probability {
        lines.push(format!(
            "{}: {}",
            label("Khả năng đạt mục tiêu", "Chance of meeting the target"),
            chance(language, probability)
        ));
    }
    let mut target_line = format!(
        "{}: {}",
        label("Mục tiêu", "Target"),
        target(language, working)
    );
    let mut about = Vec::new();
    if let Some(since) = working.target_since {
        about.push(format!(
            "{} {}",
            label("phiên bản áp dụng từ", "version in force since"),
            directory.time(language, since)
        ));
    }
    if let Some(reason) = working.target_reason.as_deref().filter(|r| !r.is_empty()) {
        about.push(format!("{}: {reason}", label("lý do", "reason")));
    }
    if let Some(source) = working.target_source.as_deref().filter(|s| !s.is_empty()) {
        about.push(format!("{}: {source}", label("nguồn", "source")));
    }
    if !about.is_empty() {
        target_line.push_str(&format!(" ({})", about.join("; ")));
    }
    lines.push(target_line);
    lines
}

#[cfg(test)]
#[path = "working_tests.rs"]
mod tests;
