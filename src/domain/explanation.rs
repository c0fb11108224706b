//! Explanations (giải trình): what the owning department says about a slipping target, with the
//! actions it takes (giải pháp), each due by a date. Explanations are appended, never edited: a
//! new one supersedes the previous for display, and every earlier one stays readable.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Code;

/// One action the department takes, due by a date and done (or not yet) on another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ExplanationAction {
    /// What is done.
    #[schema(example = "Đẩy nhanh giải ngân các dự án trọng điểm")]
    pub text: String,
    /// When it is due (a date in the city).
    #[schema(value_type = String, format = Date, example = "2026-12-15")]
    pub due: NaiveDate,
    /// When it was done; absent while it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Date, example = "2026-12-01")]
    pub done: Option<NaiveDate>,
}

/// An explanation of one target (year, indicator, unit) as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Explanation {
    pub id: i64,
    #[schema(example = 2026)]
    pub year: i32,
    #[schema(value_type = String, example = "EXPORT_TURNOVER")]
    pub indicator: Code,
    #[schema(value_type = String, example = "HCM")]
    pub unit: Code,
    /// The explanation itself.
    pub text: String,
    /// The actions taken, in the order given.
    pub actions: Vec<ExplanationAction>,
    /// The name of the token that wrote it.
    #[schema(example = "so-cong-thuong")]
    pub author: String,
    /// The department it speaks for: the indicator's owner.
    #[schema(value_type = String, example = "INDUSTRY_TRADE")]
    pub department: Code,
    pub created_at: DateTime<Utc>,
}

/// An explanation about to be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct NewExplanation {
    pub year: i32,
    pub indicator: Code,
    pub unit: Code,
    pub text: String,
    pub actions: Vec<ExplanationAction>,
    pub author: String,
    pub department: Code,
    pub created_at: DateTime<Utc>,
}

impl NewExplanation {
    /// The row this becomes under `id`.
    pub fn stored(&self, id: i64) -> Explanation {
        Explanation {
            id,
            year: self.year,
            indicator: self.indicator.clone(),
            unit: self.unit.clone(),
            text: self.text.clone(),
            actions: self.actions.clone(),
            author: self.author.clone(),
            department: self.department.clone(),
            created_at: self.created_at,
        }
    }

    /// `year/indicator/unit`: how audit rows and commits name the target.
    pub fn subject(&self) -> String {
        format!("{}/{}/{}", self.year, self.indicator, self.unit)
    }
}
