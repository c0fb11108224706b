//! `GET /api/v1/departments/{code}/activity`: everything a department keeps of what it sent
//! lately (its pushes and refused rows, newest first), and its rows accepted and refused per
//! feed over the last minutes with the most frequent reasons ([`crate::store::activity`]).
//!
//! `{code}` may also be `unassigned`: refused rows of admins' pushes whose indicator names no
//! department. A department token reads its own department only; `unassigned` is read by those
//! who read every department.

use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::departments::own_or_unscoped;
use super::openapi::{BadRequest, Forbidden, NotFound, Unauthorized, Unavailable, Unprocessable};
use super::{ApiError, ApiQuery, AppState};
use crate::ingest::activity::{
    limits, ActivityCount, PushRecord, ReasonCount, RejectionRecord, UNASSIGNED,
};

/// The longest span the counts are asked over: a week.
const MAX_MINUTES: i64 = 7 * 24 * 60;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ActivityQuery {
    /// The span the counts and reasons cover, in minutes back from now; 60 when absent. Counts
    /// go back `[ingest] activity_counts_hours` at most.
    #[param(minimum = 1, maximum = 10080, example = 60)]
    minutes: Option<i64>,
}

/// A department's kept activity and its recent rates.
#[derive(Serialize, ToSchema)]
pub struct Activity {
    /// The department's code, or `unassigned`.
    department: String,
    /// When this view was taken.
    at: DateTime<Utc>,
    /// The start of the span `counts` and `reasons` cover (its first whole minute).
    since: DateTime<Utc>,
    /// Every push it keeps, newest first.
    pushes: Vec<PushRecord>,
    /// Every refused row it keeps, newest first.
    rejections: Vec<RejectionRecord>,
    /// Rows per feed since `since`: every push counts, whatever is kept above.
    counts: Vec<ActivityCount>,
    /// How often each reason refused its rows since `since`, among the refused rows kept.
    reasons: Vec<ReasonCount>,
}

/// A department's pushes and refused rows as kept, and its rows accepted and refused per feed
/// over the last `minutes` with the top reasons. **A department token reads its own
/// department only**; `unassigned` is for callers bound to no department.
#[utoipa::path(
    get,
    path = "/departments/{code}/activity",
    operation_id = "departments_activity",
    tag = "departments",
    security(("bearer" = [])),
    params(
        ("code" = String, Path, description = "Mã sở, ngành, hoặc `unassigned` / The department's code, or `unassigned`", example = "FINANCE"),
        ActivityQuery,
    ),
    responses(
        (status = 200, description = "Số liệu gửi gần đây của sở, ngành / The department's recent pushes", body = Activity),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 422, response = Unprocessable),
        (status = 503, response = Unavailable),
    )
)]
pub async fn activity(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(code): Path<String>,
    ApiQuery(query): ApiQuery<ActivityQuery>,
) -> Result<Json<Activity>, ApiError> {
    let department = if code == UNASSIGNED {
        if principal.department.is_some() {
            return Err(ApiError::Forbidden(
                "rows of no department are read by callers bound to no department".into(),
            ));
        }
        UNASSIGNED.to_owned()
    } else {
        let department = state
            .catalogue
            .department(&code)
            .ok_or_else(|| ApiError::NotFound(format!("unknown department `{code}`")))?;
        if !own_or_unscoped(&principal, &department.code) {
            return Err(ApiError::Forbidden(
                "a department's token (feed or approver) reads its own department's activity only"
                    .into(),
            ));
        }
        department.code.to_string()
    };
    let minutes = match query.minutes {
        None => 60,
        Some(m) if (1..=MAX_MINUTES).contains(&m) => m,
        Some(_) => {
            return Err(ApiError::invalid(
                "minutes",
                format!("use a number of minutes between 1 and {MAX_MINUTES}"),
            ))
        }
    };
    let now = Utc::now();
    let since = whole_minute(now - Duration::minutes(minutes));
    let kept = limits(&state.settings.ingest);
    let kept_rows = state
        .store
        .department_activity(&department, kept.pushes as i64, kept.rejections as i64)
        .await?;
    let counts = state
        .store
        .activity_counts(Some(&department), None, since)
        .await?;
    let reasons = state
        .store
        .refusal_reasons(&department, None, since)
        .await?;
    Ok(Json(Activity {
        department,
        at: now,
        since,
        pushes: kept_rows.pushes,
        rejections: kept_rows.rejections,
        counts,
        reasons,
    }))
}

/// The start of the minute holding `at`: counts are kept per whole minute.
fn whole_minute(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(at.timestamp().div_euclid(60) * 60, 0).unwrap_or(at)
}
