//! The close of a target's year (ARCHITECTURE §4, §5): once its figures are final (the rules
//! judge it on its final value, `method = final_value`), slippage is no longer something to act
//! on today. Its slippage alert resolves with one closing notice saying whether the year's
//! target was achieved or missed, with the final figures; the outcome stays in the year's report
//! and on the wall's year view. A figure of that year still missing remains a data gap for the
//! owning department (`feed_stale`).

use crate::domain::{Catalogue, Status, TargetValue};
use crate::rules::engine::TargetStatus;
use crate::rules::projection::Method;

use super::receivers::text::{self, Language};

/// Whether `status` is its year's final judgement.
pub fn is_closed(status: &TargetStatus) -> bool {
    status.evaluation.method == Some(Method::FinalValue)
}

/// What a closing slippage alert says: the outcome and its texts.
#[derive(Debug, Clone, PartialEq)]
pub struct Closing {
    /// `achieved` or `missed`, also set as the resolved alert's `outcome` label.
    pub outcome: &'static str,
    pub summary_vi: String,
    pub summary_en: String,
}

/// The target as figures in `language`: `12,5` or the band `10–12`.
fn target_figures(target: &TargetValue, language: Language) -> String {
    match *target {
        TargetValue::Point { value } => text::figure(language, Some(value)),
        TargetValue::Band { lo, hi } => format!(
            "{}–{}",
            text::figure(language, Some(lo)),
            text::figure(language, Some(hi))
        ),
    }
}

/// The closing notice of a closed target's slippage alert; `None` while the year is open.
pub fn closing(status: &TargetStatus, catalogue: &Catalogue) -> Option<Closing> {
    if !is_closed(status) {
        return None;
    }
    let indicator = catalogue.indicator(status.indicator.as_str())?;
    let unit = catalogue.unit(status.unit.as_str());
    let unit_vi = unit.map_or(status.unit.as_str(), |u| u.name_vi.as_str());
    let unit_en = unit.map_or(status.unit.as_str(), |u| u.name_en.as_str());
    let achieved = status.evaluation.status == Status::Achieved;
    let (outcome, outcome_vi, outcome_en) = if achieved {
        ("achieved", "đạt kế hoạch", "target achieved")
    } else {
        ("missed", "không đạt kế hoạch", "target missed")
    };
    let value = status.evaluation.projection.or(status.evaluation.actual);
    Some(Closing {
        outcome,
        summary_vi: format!(
            "{} – {} năm {}: đã khép lại năm, {}; thực hiện cả năm {} {}, kế hoạch {} {}",
            indicator.name_vi,
            unit_vi,
            status.year,
            outcome_vi,
            text::figure(Language::Vi, value),
            indicator.measure_vi,
            target_figures(&status.target.value, Language::Vi),
            indicator.measure_vi,
        ),
        summary_en: format!(
            "{} – {} {}: the year has closed, {}; final value {} {}, target {} {}",
            indicator.name_en,
            unit_en,
            status.year,
            outcome_en,
            text::figure(Language::En, value),
            indicator.measure_en,
            target_figures(&status.target.value, Language::En),
            indicator.measure_en,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_band_reads_as_its_bounds_in_each_notation() {
        let band = TargetValue::Band { lo: 3.5, hi: 4.25 };
        assert_eq!(target_figures(&band, Language::Vi), "3,5–4,25");
        assert_eq!(target_figures(&band, Language::En), "3.5–4.25");
        let point = TargetValue::Point { value: 26530.47 };
        assert_eq!(target_figures(&point, Language::Vi), "26.530,47");
        assert_eq!(target_figures(&point, Language::En), "26,530.47");
    }
}
