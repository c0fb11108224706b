//! The current explanation of each target (giải trình), as the screens show it beside the
//! target: loaded from the store at start, then kept current by the pipeline as explanations
//! are posted here or on another instance. A target's view carries its explanation, so the
//! `overview`, `group:`, `unit:` and `indicator:` topics need no topic of their own for it.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::domain::explanation::Explanation;
use crate::rules::engine::TargetKey;

/// The newest explanation of every target that has one.
#[derive(Debug, Default)]
pub struct Explanations {
    current: Mutex<HashMap<TargetKey, Explanation>>,
}

fn key_of(explanation: &Explanation) -> TargetKey {
    (
        explanation.year,
        explanation.indicator.clone(),
        explanation.unit.clone(),
    )
}

impl Explanations {
    /// Keeps the newest of `explanations` per target (a store's current ones, in any order).
    pub fn replace_all(&self, explanations: Vec<Explanation>) {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        current.clear();
        for explanation in explanations {
            Self::keep_newest(&mut current, explanation);
        }
    }

    /// Takes `explanation` as its target's current one unless a newer one is already known (an
    /// instance may read another's commits after its own later post); returns its target.
    pub fn add(&self, explanation: Explanation) -> TargetKey {
        let key = key_of(&explanation);
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        Self::keep_newest(&mut current, explanation);
        key
    }

    fn keep_newest(current: &mut HashMap<TargetKey, Explanation>, explanation: Explanation) {
        let key = key_of(&explanation);
        let newer = current.get(&key).is_none_or(|known| {
            (explanation.created_at, explanation.id) >= (known.created_at, known.id)
        });
        if newer {
            current.insert(key, explanation);
        }
    }

    pub fn get(&self, key: &TargetKey) -> Option<Explanation> {
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, NaiveDate, Utc};

    use super::*;
    use crate::domain::explanation::ExplanationAction;
    use crate::domain::Code;

    fn explanation(id: i64, minutes: i64) -> Explanation {
        Explanation {
            id,
            year: 2026,
            indicator: Code::parse("EXPORT_TURNOVER").unwrap(),
            unit: Code::parse("HCM").unwrap(),
            text: format!("giải trình {id}"),
            actions: vec![ExplanationAction {
                text: "Đẩy mạnh xúc tiến thương mại".into(),
                due: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
                done: None,
            }],
            author: "customs".into(),
            department: Code::parse("CUSTOMS").unwrap(),
            created_at: Utc::now() + Duration::minutes(minutes),
        }
    }

    #[test]
    fn an_older_explanation_read_late_does_not_replace_a_newer_one() {
        let explanations = Explanations::default();
        let key = explanations.add(explanation(2, 5));
        explanations.add(explanation(1, 0));
        assert_eq!(explanations.get(&key).map(|e| e.id), Some(2));
        explanations.add(explanation(3, 6));
        assert_eq!(explanations.get(&key).map(|e| e.id), Some(3));
        explanations.replace_all(vec![explanation(4, 1), explanation(5, 0)]);
        assert_eq!(explanations.get(&key).map(|e| e.id), Some(4));
    }
}
