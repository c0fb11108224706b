//! Approvals of figures (ARCHITECTURE §8): `POST /api/v1/approvals` moves one revision, or the
//! latest revision of every period of a selection, from preliminary to verified or official.
//!
//! A department's approver verifies its own department's figures; the statistics office makes
//! figures official, and so may the owner's approver where `[approval]` says so. A state never
//! goes backwards: a figure already at the state or above stays as it is, and only a new revision
//! starts preliminary again. Every approval is audited and reaches the screens (of every
//! instance) through the pipeline, as an ingest does (ARCHITECTURE §3, §7).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::openapi::{
    BadRequest, Forbidden, NotFound, PayloadTooLarge, Unauthorized, Unavailable, Unprocessable,
    UnsupportedMediaType,
};
use super::targets::CallerIp;
use super::{body, ApiError, AppState, NoQuery};
use crate::auth::{Principal, Role};
use crate::domain::approval::{ApprovalSelection, NewApproval};
use crate::domain::{ApprovalState, Indicator, Period};
use crate::ingest::code::present;
use crate::pipeline::Change;
use crate::store::AuditEvent;

/// Longest note, in characters.
pub const MAX_NOTE_CHARS: usize = 1000;

/// An approval as posted: one revision (`revision` given), or the latest revision of every
/// period within `period` of an indicator (of one unit, or of every unit) or of a department's
/// indicators.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "indicator": "EXPORT_TURNOVER",
    "period": "2026-03",
    "state": "verified",
    "note": "Đã đối chiếu với tờ khai hải quan"
}))]
pub struct ApprovalBody {
    /// The indicator whose figures are approved; or give `department`.
    #[schema(example = "EXPORT_TURNOVER")]
    indicator: Option<String>,
    /// Every indicator of this department; or give `indicator`.
    #[schema(example = json!(null))]
    department: Option<String>,
    /// Only this unit's figures; every unit's when absent (the city's with `revision`).
    #[schema(example = json!(null))]
    unit: Option<String>,
    /// A period (`2026-10`, `2026-Q3`, `2026`, a day): with `revision`, that revision's period;
    /// else every period lying within it.
    #[schema(required = true, example = "2026-03")]
    period: Option<String>,
    /// One revision, which must be its period's latest.
    #[schema(example = json!(null))]
    revision: Option<i32>,
    /// `verified` or `official`.
    #[schema(required = true, value_type = ApprovalState, example = "verified")]
    state: Option<String>,
    /// Why, for the audit log (at most 1000 characters).
    note: Option<String>,
    /// Official as published (`official` only, the statistics office only): each figure known
    /// before the service's first start, history back-filled with the time it was published,
    /// is official from that time, so past official reports show it; any later figure from now.
    #[serde(default)]
    as_published: bool,
}

/// What an approval did.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"state": "verified", "approved": 1, "unchanged": 0,
    "approved_at": "2026-04-08T02:15:00Z"}))]
pub struct ApprovalReceipt {
    pub state: ApprovalState,
    /// Revisions moved up to `state`.
    pub approved: usize,
    /// Revisions named that already stood at `state` or above.
    pub unchanged: usize,
    pub approved_at: DateTime<Utc>,
    /// With `as_published`: of the revisions moved, those official from when they were
    /// published (known before the service's first start).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_published: Option<usize>,
}

fn required<'a>(value: Option<&'a String>, pointer: &str) -> Result<&'a str, ApiError> {
    present(value.map(String::as_str)).ok_or_else(|| ApiError::invalid(pointer, "required"))
}

/// Refuses a token whose role approves nothing before its body is read: the answer must not
/// depend on it.
fn require_approving_role(principal: &Principal) -> Result<(), ApiError> {
    match principal.role {
        Role::Approver | Role::Statistics => Ok(()),
        other => Err(ApiError::Forbidden(format!(
            "{} tokens may not approve figures: approvals are given by a department's approver \
             token or the statistics office's",
            other.as_str()
        ))),
    }
}

/// Refuses a caller who may not give `state` to `indicator`'s figures.
fn require_may_give(
    state: &AppState,
    principal: &Principal,
    target: ApprovalState,
    indicator: &Indicator,
) -> Result<(), ApiError> {
    match (principal.role, target) {
        (Role::Statistics, ApprovalState::Official) => Ok(()),
        (Role::Statistics, _) => Err(ApiError::Forbidden(format!(
            "`{}` is verified by its owning department's approver, not the statistics office",
            indicator.code
        ))),
        (Role::Approver, _) if principal.department.as_ref() != Some(&indicator.department) => {
            Err(ApiError::Forbidden(format!(
                "`{}` belongs to department `{}`: its own approver approves it",
                indicator.code, indicator.department
            )))
        }
        (Role::Approver, ApprovalState::Verified) => Ok(()),
        (Role::Approver, _) if state.settings.approval.owner_makes_official(indicator) => Ok(()),
        (Role::Approver, _) => Err(ApiError::Forbidden(format!(
            "`{}` is made official by the statistics office",
            indicator.code
        ))),
        _ => require_approving_role(principal),
    }
}

/// Moves figures to `verified` or `official`. **A department's approver (its own figures) or
/// the statistics office (official).**
///
/// With `revision`, that one revision of `indicator`, `unit` (the city when absent) and `period`,
/// which must be the period's latest. Without, the latest revision of every period lying within
/// `period` of `indicator` (of `unit`, or of every unit) or of every indicator of `department`.
/// Figures already at `state` or above are left as they are (`unchanged`): a state never goes
/// backwards, and only a new revision starts preliminary again. Audited as
/// `observations.approve`; the screens mark the new state at once.
#[utoipa::path(
    post,
    path = "/approvals",
    operation_id = "approvals_post",
    tag = "observations",
    security(("bearer" = [])),
    request_body(content = ApprovalBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Đã phê duyệt / What the approval did", body = ApprovalReceipt),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable),
        (status = 503, response = Unavailable),
    )
)]
pub async fn post(
    _: NoQuery,
    State(state): State<AppState>,
    Caller(principal): Caller,
    CallerIp(client_ip): CallerIp,
    headers: HeaderMap,
    payload: Result<Bytes, BytesRejection>,
) -> Result<Json<ApprovalReceipt>, ApiError> {
    require_approving_role(&principal)?;
    body::require_json(&headers)?;
    let bytes = body::bytes(payload, state.settings.server.body_limit_bytes)?;
    let request: ApprovalBody = body::json(&bytes)?;
    let zone = state.settings.zone();
    let catalogue = &state.catalogue;

    let target = match ApprovalState::parse(required(request.state.as_ref(), "/state")?) {
        Some(ApprovalState::Preliminary) => {
            return Err(ApiError::invalid(
                "/state",
                "figures are preliminary until approved; approve them `verified` or `official`",
            ))
        }
        Some(target) => target,
        None => return Err(ApiError::invalid("/state", "use verified or official")),
    };
    let period_text = required(request.period.as_ref(), "/period")?;
    let period = Period::parse(period_text)
        .map_err(|e: crate::domain::PeriodError| ApiError::invalid("/period", e.to_string()))?;
    let note = match present(request.note.as_deref()) {
        Some(note) if note.chars().count() > MAX_NOTE_CHARS => {
            return Err(ApiError::invalid(
                "/note",
                format!("at most {MAX_NOTE_CHARS} characters"),
            ))
        }
        Some(note) => {
            body::storable(note, "/note")?;
            Some(note.to_owned())
        }
        None => None,
    };
    let unit = match present(request.unit.as_deref()) {
        Some(code) => Some(
            catalogue
                .unit(code)
                .ok_or_else(|| ApiError::invalid("/unit", format!("unknown unit `{code}`")))?,
        ),
        None => None,
    };
    let indicators: Vec<&Indicator> = match (
        present(request.indicator.as_deref()),
        present(request.department.as_deref()),
    ) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "/department",
                "give `indicator` or `department`, not both",
            ))
        }
        (Some(code), None) => vec![catalogue.indicator(code).ok_or_else(|| {
            ApiError::invalid("/indicator", format!("unknown indicator `{code}`"))
        })?],
        (None, Some(code)) => {
            let department = catalogue.department(code).ok_or_else(|| {
                ApiError::invalid("/department", format!("unknown department `{code}`"))
            })?;
            if request.revision.is_some() {
                return Err(ApiError::invalid(
                    "/revision",
                    "one revision is named by its indicator, not its department",
                ));
            }
            catalogue
                .indicators
                .iter()
                .filter(|i| i.department == department.code)
                .collect()
        }
        (None, None) => return Err(ApiError::invalid("/indicator", "required, or `department`")),
    };
    if request.revision.is_some_and(|r| r < 1) {
        return Err(ApiError::invalid(
            "/revision",
            "a revision number: 1 or more",
        ));
    }
    let by_department = present(request.department.as_deref());
    let refusals: Vec<ApiError> = indicators
        .iter()
        .filter_map(|indicator| require_may_give(&state, &principal, target, indicator).err())
        .collect();
    let refused_all = refusals.len() == indicators.len();
    if let Some(error) = refusals.into_iter().next() {
        // Asked for a whole department, the caller never named the indicator refused.
        return Err(match (by_department, error) {
            (Some(department), ApiError::Forbidden(why)) if refused_all => ApiError::Forbidden(
                format!("this token may approve none of `{department}`'s indicators: {why}"),
            ),
            (Some(department), ApiError::Forbidden(why)) => ApiError::Forbidden(format!(
                "not every indicator of `{department}` may be approved by this token: {why}; \
                 approve the ones it may, each by `indicator`"
            )),
            (_, error) => error,
        });
    }

    let now = Utc::now();
    let published_before = if request.as_published {
        if target != ApprovalState::Official || principal.role != Role::Statistics {
            return Err(ApiError::invalid(
                "/as_published",
                "only the statistics office makes figures official as published",
            ));
        }
        Some(state.store.first_start(now).await?)
    } else {
        None
    };
    let (selection, subject) = match request.revision {
        Some(revision) => {
            let indicator = indicators[0];
            let unit = match unit {
                Some(unit) => unit,
                None => catalogue
                    .root_unit()
                    .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("no root unit")))?,
            };
            let revisions = state
                .store
                .revisions(
                    indicator.code.as_str(),
                    unit.code.as_str(),
                    &period.to_string(),
                )
                .await?;
            let Some(latest) = revisions.last() else {
                return Err(ApiError::NotFound(format!(
                    "no figure of `{}` for `{}` in {period}",
                    indicator.code, unit.code
                )));
            };
            if !revisions.iter().any(|r| r.revision == revision) {
                return Err(ApiError::NotFound(format!(
                    "`{}` for `{}` in {period} has no revision {revision}",
                    indicator.code, unit.code
                )));
            }
            if latest.revision != revision {
                return Err(ApiError::invalid(
                    "/revision",
                    format!(
                        "revision {revision} is superseded by revision {}; approve the latest",
                        latest.revision
                    ),
                ));
            }
            if latest.state > target {
                return Err(ApiError::invalid(
                    "/state",
                    format!(
                        "revision {revision} is already {}: a state never goes backwards, \
                         only a new revision starts preliminary again",
                        latest.state.as_str()
                    ),
                ));
            }
            (
                ApprovalSelection::One {
                    indicator: indicator.code.to_string(),
                    unit: unit.code.to_string(),
                    period_start: period.start(zone),
                    period_end: period.end(zone),
                    revision,
                },
                format!("{}/{}/{period}#{revision}", indicator.code, unit.code),
            )
        }
        None => {
            let what = match present(request.department.as_deref()) {
                Some(department) => format!("department:{department}"),
                None => indicators[0].code.to_string(),
            };
            let unit_text = unit.map_or("*".to_owned(), |u| u.code.to_string());
            (
                ApprovalSelection::Latest {
                    indicators: indicators.iter().map(|i| i.code.to_string()).collect(),
                    unit: unit.map(|u| u.code.to_string()),
                    from: period.start(zone),
                    to: period.end(zone),
                },
                format!("{what}/{unit_text}/{period}"),
            )
        }
    };
    let approval = NewApproval {
        selection,
        state: target,
        approved_at: now,
        approved_by: principal.label(),
        note: note.clone(),
        published_before,
    };
    let mut event = AuditEvent::new(now, principal.label(), "observations.approve", subject);
    event.reason = note;
    event.client_ip = client_ip;
    let outcome = state.store.approve(&approval, &event).await?;
    let receipt = ApprovalReceipt {
        state: target,
        approved: outcome.approved.len(),
        unchanged: outcome.unchanged,
        approved_at: now,
        as_published: published_before.map(|_| {
            outcome
                .approved
                .iter()
                .filter(|r| r.approved_at < now)
                .count()
        }),
    };
    if !outcome.approved.is_empty() {
        // On the screens at once, not at the next tick.
        state
            .pipeline
            .apply(Change::Approved(outcome.approved))
            .await;
    }
    tracing::info!(
        actor = %event.actor,
        subject = %event.subject,
        state = target.as_str(),
        approved = receipt.approved,
        unchanged = receipt.unchanged,
        "figures approved"
    );
    Ok(Json(receipt))
}
