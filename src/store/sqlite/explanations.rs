//! Explanations of targets on SQLite (migration 0009): appended with their audit row in one
//! write transaction.

use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use super::{audit, from_micros, micros, SqliteStore};
use crate::domain::explanation::{Explanation, ExplanationAction, NewExplanation};
use crate::domain::Code;
use crate::store::{AuditEvent, StoreError, StoreResult};

const COLUMNS: &str = "id, year, indicator, unit, body, actions, author, department, created_at";

fn corrupt(detail: String) -> StoreError {
    StoreError::Corrupt {
        table: "explanations",
        detail,
    }
}

fn explanation_of(row: &SqliteRow) -> StoreResult<Explanation> {
    let code = |column: &str| -> StoreResult<Code> {
        let raw: String = row.try_get(column)?;
        Code::parse(&raw).map_err(corrupt)
    };
    let actions: String = row.try_get("actions")?;
    let actions: Vec<ExplanationAction> =
        serde_json::from_str(&actions).map_err(|e| corrupt(e.to_string()))?;
    Ok(Explanation {
        id: row.try_get("id")?,
        year: row.try_get("year")?,
        indicator: code("indicator")?,
        unit: code("unit")?,
        text: row.try_get("body")?,
        actions,
        author: row.try_get("author")?,
        department: code("department")?,
        created_at: from_micros(row.try_get("created_at")?),
    })
}

impl SqliteStore {
    pub(super) async fn append_explanation(
        &self,
        new: &NewExplanation,
        event: &AuditEvent,
    ) -> StoreResult<Explanation> {
        let actions = serde_json::to_string(&new.actions).map_err(|e| corrupt(e.to_string()))?;
        let mut writer = self.writer().await?;
        let mut tx = writer.begin().await?;
        let row = sqlx::query(&format!(
            "INSERT INTO explanations (year, indicator, unit, body, actions, author, department, \
             created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING {COLUMNS}"
        ))
        .bind(new.year)
        .bind(new.indicator.as_str())
        .bind(new.unit.as_str())
        .bind(&new.text)
        .bind(actions)
        .bind(&new.author)
        .bind(new.department.as_str())
        .bind(micros(new.created_at))
        .fetch_one(&mut *tx)
        .await?;
        let stored = explanation_of(&row)?;
        audit::append(&mut tx, event).await?;
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
            "SELECT {COLUMNS} FROM explanations WHERE year = ? AND indicator = ? AND unit = ? \
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
        // The newest row of each target: no later row (by time, then id) of the same target.
        sqlx::query(&format!(
            "SELECT {COLUMNS} FROM explanations e \
             WHERE (?1 IS NULL OR year = ?1) AND (?2 IS NULL OR created_at <= ?2) \
               AND NOT EXISTS (SELECT 1 FROM explanations n \
                      WHERE n.year = e.year AND n.indicator = e.indicator AND n.unit = e.unit \
                        AND (?2 IS NULL OR n.created_at <= ?2) \
                        AND (n.created_at > e.created_at \
                             OR (n.created_at = e.created_at AND n.id > e.id))) \
             ORDER BY year, indicator, unit"
        ))
        .bind(year)
        .bind(as_of.map(micros))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(explanation_of)
        .collect()
    }
}
