//! Explanations of targets on PostgreSQL (migration 0009): appended with their audit row and a
//! commit that other instances follow (ARCHITECTURE §7), in one transaction.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::Row;

use super::{audit, commits, PgStore};
use crate::domain::explanation::{Explanation, ExplanationAction, NewExplanation};
use crate::domain::Code;
use crate::store::{AuditEvent, CommitKind, StoreError, StoreResult};

const COLUMNS: &str = "id, year, indicator, unit, body, actions, author, department, created_at";

fn corrupt(detail: String) -> StoreError {
    StoreError::Corrupt {
        table: "explanations",
        detail,
    }
}

fn explanation_of(row: &PgRow) -> StoreResult<Explanation> {
    let code = |column: &str| -> StoreResult<Code> {
        let raw: String = row.try_get(column)?;
        Code::parse(&raw).map_err(corrupt)
    };
    let actions: serde_json::Value = row.try_get("actions")?;
    let actions: Vec<ExplanationAction> =
        serde_json::from_value(actions).map_err(|e| corrupt(e.to_string()))?;
    Ok(Explanation {
        id: row.try_get("id")?,
        year: row.try_get("year")?,
        indicator: code("indicator")?,
        unit: code("unit")?,
        text: row.try_get("body")?,
        actions,
        author: row.try_get("author")?,
        department: code("department")?,
        created_at: row.try_get("created_at")?,
    })
}

impl PgStore {
    pub(super) async fn append_explanation(
        &self,
        new: &NewExplanation,
        event: &AuditEvent,
    ) -> StoreResult<Explanation> {
        let actions = serde_json::to_value(&new.actions).map_err(|e| corrupt(e.to_string()))?;
        let mut tx = self.pool.begin().await?;
        // The audit lock first, as every audited write takes it, so none waits on another.
        audit::lock(&mut tx).await?;
        let row = sqlx::query(&format!(
            "INSERT INTO explanations (year, indicator, unit, body, actions, author, department, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}"
        ))
        .bind(new.year)
        .bind(new.indicator.as_str())
        .bind(new.unit.as_str())
        .bind(&new.text)
        .bind(actions)
        .bind(&new.author)
        .bind(new.department.as_str())
        .bind(new.created_at)
        .fetch_one(&mut *tx)
        .await?;
        let stored = explanation_of(&row)?;
        audit::append(&mut tx, event).await?;
        let group = commits::next_group(&mut tx).await?;
        commits::record(
            &mut tx,
            &self.instance,
            group,
            CommitKind::Explanation,
            Some(&new.subject()),
            new.created_at,
        )
        .await?;
        tx.commit().await?;
        Ok(stored)
    }

    pub(super) async fn explanations_of(
        &self,
        year: i32,
        indicator: &str,
        unit: &str,
    ) -> StoreResult<Vec<Explanation>> {
        sqlx::query(&format!(
            "SELECT {COLUMNS} FROM explanations WHERE year = $1 AND indicator = $2 AND unit = $3 \
             ORDER BY created_at DESC, id DESC"
        ))
        .bind(year)
        .bind(indicator)
        .bind(unit)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(explanation_of)
        .collect()
    }

    pub(super) async fn explanations_current(
        &self,
        year: Option<i32>,
        as_of: Option<DateTime<Utc>>,
    ) -> StoreResult<Vec<Explanation>> {
        sqlx::query(&format!(
            "SELECT DISTINCT ON (year, indicator, unit) {COLUMNS} FROM explanations \
             WHERE ($1::int4 IS NULL OR year = $1) \
               AND ($2::timestamptz IS NULL OR created_at <= $2) \
             ORDER BY year, indicator, unit, created_at DESC, id DESC"
        ))
        .bind(year)
        .bind(as_of)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(explanation_of)
        .collect()
    }
}
