//! The checks every row passes before the store: codes resolved once, the caller's scope
//! judged on the resolved indicators, each row validated on its own (ARCHITECTURE §6, §10).

use std::cell::Cell;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;

use super::activity::{NotedRows, Refusal};
use super::validate::{self, Line, RawRow, Resolved};
use super::IngestError;
use crate::auth::{Principal, Role};
use crate::config::IngestSettings;
use crate::domain::{Catalogue, Indicator, NewObservation};
use crate::store::{AuditEvent, Rejection};

/// Rows naming indicators of departments other than the caller's, which refuse a request whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignRows {
    /// Their indexes in the request.
    pub rows: Vec<usize>,
    /// The indicators they name, each once, in order of first appearance.
    pub indicators: Vec<String>,
    /// Where each of `rows` stands in a body sent as lines of text (CSV); empty otherwise.
    pub lines: Vec<Line>,
}

impl From<ForeignRows> for IngestError {
    fn from(
        ForeignRows {
            rows,
            indicators,
            lines,
        }: ForeignRows,
    ) -> Self {
        Self::ForeignIndicators {
            rows,
            indicators,
            lines,
        }
    }
}

/// Refuses `principal` the rows whose indicator belongs to another department. A row whose code
/// names no indicator is not foreign: validation rejects it on its own (`unknown_indicator`).
fn scope<'c>(
    principal: &Principal,
    indicators: impl IntoIterator<Item = (Option<&'c Indicator>, Option<Line>)>,
) -> Result<(), ForeignRows> {
    if principal.role == Role::Admin {
        return Ok(());
    }
    let mut foreign = ForeignRows {
        rows: Vec::new(),
        indicators: Vec::new(),
        lines: Vec::new(),
    };
    for (index, (indicator, line)) in indicators.into_iter().enumerate() {
        let Some(indicator) = indicator else { continue };
        if principal.may_write_department(&indicator.department) {
            continue;
        }
        foreign.rows.push(index);
        foreign.lines.extend(line);
        if !foreign
            .indicators
            .iter()
            .any(|c| c == indicator.code.as_str())
        {
            foreign.indicators.push(indicator.code.to_string());
        }
    }
    if foreign.rows.is_empty() {
        Ok(())
    } else {
        Err(foreign)
    }
}

/// Who may say a figure became known long ago.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backdate {
    /// As the caller's role allows: admins and the statistics office freely, other
    /// departments `[ingest] reported_at_backdate_days` at most.
    ByRole,
    /// Freely: `ktxh import`, run by an operator on the server, back-fills history.
    Allowed,
}

/// Rows of one request whose `reported_at` lies further back than departments may set it:
/// what the `observations.backdated` audit row records.
#[derive(Debug, Clone, PartialEq)]
pub struct Backdating {
    pub rows: usize,
    pub earliest: DateTime<Utc>,
}

impl Backdating {
    /// The audit row of a request that back-dated these rows, as `actor` at `at`.
    pub fn audit(
        &self,
        actor: impl Into<String>,
        at: DateTime<Utc>,
        detail: serde_json::Value,
    ) -> AuditEvent {
        let actor = actor.into();
        let mut event = AuditEvent::new(at, actor.clone(), "observations.backdated", actor);
        let mut after = serde_json::json!({
            "rows": self.rows,
            "earliest_reported_at": self.earliest,
        });
        if let (Some(after), serde_json::Value::Object(detail)) = (after.as_object_mut(), detail) {
            after.extend(detail);
        }
        event.after = Some(after);
        event
    }
}

/// Checks rows against the catalogue and the caller's scope; shared by the [`Ingestor`] and
/// `ktxh import`, which writes to the store without a running service.
pub struct Validator {
    catalogue: Arc<Catalogue>,
    zone: Tz,
    settings: IngestSettings,
}

impl Validator {
    pub fn new(catalogue: Arc<Catalogue>, zone: Tz, settings: IngestSettings) -> Self {
        for (key, message) in settings.catalogue_problems(&catalogue) {
            // Only admins may then back-date; the service still runs.
            tracing::warn!(
                key,
                message,
                "ingest settings name what the catalogue lacks"
            );
        }
        Self {
            catalogue,
            zone,
            settings,
        }
    }

    /// The catalogue rows are checked against.
    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }

    /// Splits `rows` into observations to store and rejections numbered by row index, once
    /// `principal` may write every indicator they name.
    ///
    /// A request holding a row of another department's indicator is refused whole: it comes
    /// from a misconfigured or misused token, and accepting part of it would hide that. The
    /// scope is judged on the indicators validation then reads, each row resolved once.
    pub fn validate(
        &self,
        principal: &Principal,
        rows: Vec<RawRow>,
        now: DateTime<Utc>,
    ) -> Result<(Vec<NewObservation>, Vec<Rejection>), ForeignRows> {
        self.validate_backdating(principal, rows, now, Backdate::ByRole)
    }

    /// [`Self::validate`], with `backdate` saying how far back `reported_at` may go.
    pub fn validate_backdating(
        &self,
        principal: &Principal,
        rows: Vec<RawRow>,
        now: DateTime<Utc>,
        backdate: Backdate,
    ) -> Result<(Vec<NewObservation>, Vec<Rejection>), ForeignRows> {
        self.validate_rows(principal, rows, now, backdate, None)
    }

    /// [`Self::validate`], with what each refused row's reason is about, in the order of the
    /// rejections: what the department's page shows of it ([`super::activity`]).
    pub fn validate_noted(
        &self,
        principal: &Principal,
        rows: Vec<RawRow>,
        now: DateTime<Utc>,
    ) -> Result<NotedRows, ForeignRows> {
        let mut refusals = Vec::new();
        let (valid, rejected) =
            self.validate_rows(principal, rows, now, Backdate::ByRole, Some(&mut refusals))?;
        Ok((valid, rejected, refusals))
    }

    fn validate_rows(
        &self,
        principal: &Principal,
        rows: Vec<RawRow>,
        now: DateTime<Utc>,
        backdate: Backdate,
        mut refusals: Option<&mut Vec<Refusal>>,
    ) -> Result<(Vec<NewObservation>, Vec<Rejection>), ForeignRows> {
        let free = backdate == Backdate::Allowed || self.may_backdate(principal);
        let lines: Vec<Option<Line>> = rows.iter().map(|row| row.line).collect();
        let resolved: Vec<Resolved> = rows
            .into_iter()
            .map(|row| Resolved::new(&self.catalogue, row))
            .collect();
        scope(
            principal,
            resolved
                .iter()
                .map(Resolved::indicator)
                .zip(lines.iter().copied()),
        )?;
        let context = validate::Context {
            catalogue: &self.catalogue,
            zone: self.zone,
            latest_allowed: now + Duration::seconds(self.settings.future_skew_seconds),
            earliest_reported_at: (!free).then(|| self.backdate_limit(now)),
            backdate_days: self.settings.reported_at_backdate_days,
            last_bounds: Cell::new(None),
        };
        let mut valid = Vec::with_capacity(resolved.len());
        let mut rejected: Vec<Rejection> = Vec::new();
        for (index, row) in resolved.into_iter().enumerate() {
            let indicator = row.indicator();
            match validate::validate(&context, row) {
                Ok(observation) => valid.push(observation),
                Err(reason) => {
                    if let Some(refusals) = refusals.as_deref_mut() {
                        refusals.push(Refusal::of(indicator, &reason));
                    }
                    // A CSV's sender looks for the line, not for the row's index.
                    let (message, message_vi) = match lines[index] {
                        Some(line) => (
                            format!("{line}: {reason}"),
                            format!("{}: {}", line.vietnamese(), reason.vietnamese()),
                        ),
                        None => (reason.to_string(), reason.vietnamese()),
                    };
                    rejected.push(Rejection {
                        index,
                        code: reason.code().to_owned(),
                        message,
                        message_vi: Some(message_vi),
                    });
                }
            }
        }
        Ok((valid, rejected))
    }

    /// Whether `principal` may set `reported_at` further back than departments may: admins
    /// and the statistics office, whose figures are the official record of when a figure
    /// was published.
    pub fn may_backdate(&self, principal: &Principal) -> bool {
        principal.role == Role::Admin
            || principal.role == Role::Department
                && principal.department.as_ref().is_some_and(|department| {
                    self.settings.statistics_office.as_deref() == Some(department.as_str())
                })
    }

    /// The earliest `reported_at` a department may give at `now`.
    pub fn backdate_limit(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - Duration::days(self.settings.reported_at_backdate_days)
    }

    /// The rows of `valid` that only an admin or the statistics office could have sent, if
    /// any: those known before [`Self::backdate_limit`].
    pub fn backdating(&self, valid: &[NewObservation], now: DateTime<Utc>) -> Option<Backdating> {
        let limit = self.backdate_limit(now);
        let mut found: Option<Backdating> = None;
        for at in valid.iter().filter_map(|row| row.reported_at) {
            if at >= limit {
                continue;
            }
            let entry = found.get_or_insert(Backdating {
                rows: 0,
                earliest: at,
            });
            entry.rows += 1;
            entry.earliest = entry.earliest.min(at);
        }
        found
    }

    /// The scope check of [`Self::validate`] alone, for callers that must refuse a body whole
    /// before validating it in parts (a pulled body split into batches, a file imported in
    /// chunks). It resolves codes by the same lookup, so it refuses what validation would.
    pub fn check_scope(&self, principal: &Principal, rows: &[RawRow]) -> Result<(), ForeignRows> {
        scope(
            principal,
            rows.iter().map(|row| {
                let indicator =
                    validate::resolve_indicator(&self.catalogue, row.indicator.as_deref()).ok();
                (indicator, row.line)
            }),
        )
    }
}
