//! Directives and tasks on SQLite (migrations 0013, 0018): a task's change is written with its
//! progress note, its status record, its definition when that changed and its audit row in one
//! write transaction. Dates are stored as `YYYY-MM-DD` text.

use chrono::NaiveDate;
use sqlx::sqlite::SqliteRow;
use sqlx::Row;
use sqlx::Sqlite;

use super::{audit, from_micros, micros, SqliteStore};
use crate::domain::task::{Task, TaskWrite};
use crate::store::tasks::{
    assemble, corrupt, each, DefinitionColumns, DefinitionRow, DirectiveRow, TaskRow,
};
use crate::store::{AuditEvent, StoreError, StoreResult};

/// A definition's columns and its directive's, as [`definition_columns()`] reads them, from a
/// table `t` joined with `directives d`: the same in [`SELECT`] and [`DEFINITIONS`].
macro_rules! definition_sql {
    () => {
        "t.directive, t.title_vi, t.title_en, t.owner, t.cooperating, t.group_code, \
         t.indicators, t.due, d.issued_on, d.issuer, d.kind, d.title_vi AS d_title_vi, \
         d.title_en AS d_title_en, d.source, d.illustrative"
    };
}

const SELECT: &str = concat!(
    "SELECT t.code, t.status, t.completed_on, t.percent, t.start_percent, t.origin, \
     t.created_at, t.updated_at, t.updated_by, ",
    definition_sql!(),
    " FROM tasks t JOIN directives d ON d.number = t.directive"
);

fn date(raw: &str) -> StoreResult<NaiveDate> {
    raw.parse().map_err(|_| corrupt(format!("date {raw}")))
}

fn optional_date(raw: Option<String>) -> StoreResult<Option<NaiveDate>> {
    raw.as_deref().map(date).transpose()
}

/// The definition's columns of a row of [`SELECT`] or of [`DEFINITIONS`], which name them alike.
fn definition_columns(row: &SqliteRow) -> StoreResult<DefinitionColumns> {
    Ok(DefinitionColumns {
        title_vi: row.try_get("title_vi")?,
        title_en: row.try_get("title_en")?,
        owner: row.try_get("owner")?,
        cooperating: row.try_get("cooperating")?,
        group: row.try_get("group_code")?,
        indicators: row.try_get("indicators")?,
        due: date(&row.try_get::<String, _>("due")?)?,
        directive: DirectiveRow {
            number: row.try_get("directive")?,
            issued_on: date(&row.try_get::<String, _>("issued_on")?)?,
            issuer: row.try_get("issuer")?,
            kind: row.try_get("kind")?,
            title_vi: row.try_get("d_title_vi")?,
            title_en: row.try_get("d_title_en")?,
            source: row.try_get("source")?,
            illustrative: row.try_get("illustrative")?,
        },
    })
}

fn task_row(row: &SqliteRow) -> StoreResult<TaskRow> {
    Ok(TaskRow {
        code: row.try_get("code")?,
        def: definition_columns(row)?,
        status: row.try_get("status")?,
        completed_on: optional_date(row.try_get("completed_on")?)?,
        percent: row.try_get("percent")?,
        start_percent: row.try_get("start_percent")?,
        origin: row.try_get("origin")?,
        created_at: from_micros(row.try_get("created_at")?),
        updated_at: from_micros(row.try_get("updated_at")?),
        updated_by: row.try_get("updated_by")?,
    })
}

const DEFINITIONS: &str = concat!(
    "SELECT t.task, t.at, t.actor, ",
    definition_sql!(),
    " FROM task_definitions t JOIN directives d ON d.number = t.directive"
);

fn definition_row(row: &SqliteRow) -> StoreResult<DefinitionRow> {
    Ok(DefinitionRow {
        task: row.try_get("task")?,
        at: from_micros(row.try_get("at")?),
        actor: row.try_get("actor")?,
        def: definition_columns(row)?,
    })
}

fn json_list(codes: &[crate::domain::Code]) -> StoreResult<String> {
    let raw: Vec<&str> = codes.iter().map(|c| c.as_str()).collect();
    serde_json::to_string(&raw).map_err(|e| StoreError::Corrupt {
        table: "tasks",
        detail: e.to_string(),
    })
}

impl SqliteStore {
    pub(super) async fn write_task_tx(
        &self,
        write: &TaskWrite,
        event: &AuditEvent,
    ) -> StoreResult<Option<Task>> {
        Ok(self
            .write_tasks_tx(std::slice::from_ref(write), event)
            .await?
            .pop()
            .flatten())
    }

    /// Writes every one of `writes` with one audit row, in one transaction; a write that finds
    /// its code taken (or absent) is left out, and nothing is written when every one is.
    pub(super) async fn write_tasks_tx(
        &self,
        writes: &[TaskWrite],
        event: &AuditEvent,
    ) -> StoreResult<Vec<Option<Task>>> {
        let mut writer = self.writer().await?;
        let mut tx = writer.begin().await?;
        let mut written_codes = Vec::with_capacity(writes.len());
        for write in writes {
            let def = &write.def;
            let directive = &write.directive;
            let cooperating = json_list(&def.cooperating)?;
            let indicators = json_list(&def.indicators)?;
            sqlx::query(
            "INSERT INTO directives (number, issued_on, issuer, kind, title_vi, title_en, source, \
             illustrative) VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (number) DO UPDATE SET issued_on = excluded.issued_on, \
             issuer = excluded.issuer, kind = excluded.kind, title_vi = excluded.title_vi, \
             title_en = excluded.title_en, source = excluded.source, \
             illustrative = excluded.illustrative",
        )
        .bind(&directive.number)
        .bind(directive.date.to_string())
        .bind(&directive.issuer)
        .bind(directive.kind.as_str())
        .bind(&directive.title_vi)
        .bind(&directive.title_en)
        .bind(&directive.source)
        .bind(directive.illustrative)
        .execute(&mut *tx)
        .await?;
            let sql = if write.create {
                "INSERT INTO tasks (code, directive, title_vi, title_en, owner, cooperating, \
             group_code, indicators, due, status, completed_on, percent, origin, created_at, \
             updated_at, updated_by, start_percent) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, \
             ?10, ?11, ?12, ?13, ?14, ?14, ?15, ?12) ON CONFLICT (code) DO NOTHING"
            } else {
                "UPDATE tasks SET directive = ?2, title_vi = ?3, title_en = ?4, owner = ?5, \
             cooperating = ?6, group_code = ?7, indicators = ?8, due = ?9, status = ?10, \
             completed_on = ?11, percent = ?12, origin = ?13, updated_at = ?14, \
             updated_by = ?15 WHERE code = ?1"
            };
            let written = sqlx::query(sql)
                .bind(def.code.as_str())
                .bind(&def.directive)
                .bind(&def.title_vi)
                .bind(&def.title_en)
                .bind(def.owner.as_str())
                .bind(&cooperating)
                .bind(def.group.as_str())
                .bind(&indicators)
                .bind(def.due.to_string())
                .bind(write.recorded.as_str())
                .bind(write.completed_on.map(|d| d.to_string()))
                .bind(write.percent.map(i64::from))
                .bind(&write.origin)
                .bind(micros(write.at))
                .bind(&write.by)
                .execute(&mut *tx)
                .await?;
            if written.rows_affected() == 0 {
                written_codes.push(None);
                continue;
            }
            written_codes.push(Some(def.code.clone()));
            // A new task's definition, or a redefinition that changes it; a progress note
            // leaves it as it is.
            sqlx::query(
                "INSERT INTO task_definitions (task, at, actor, directive, title_vi, title_en, \
                 owner, cooperating, group_code, indicators, due) \
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11 WHERE NOT EXISTS ( \
                 SELECT 1 FROM (SELECT * FROM task_definitions WHERE task = ?1 \
                 ORDER BY at DESC, id DESC LIMIT 1) d \
                 WHERE d.directive = ?4 AND d.title_vi = ?5 AND d.title_en = ?6 \
                 AND d.owner = ?7 AND d.cooperating = ?8 AND d.group_code = ?9 \
                 AND d.indicators = ?10 AND d.due = ?11)",
            )
            .bind(def.code.as_str())
            .bind(micros(write.at))
            .bind(&write.by)
            .bind(&def.directive)
            .bind(&def.title_vi)
            .bind(&def.title_en)
            .bind(def.owner.as_str())
            .bind(&cooperating)
            .bind(def.group.as_str())
            .bind(&indicators)
            .bind(def.due.to_string())
            .execute(&mut *tx)
            .await?;
            if let Some(note) = &write.note {
                sqlx::query(
                    "INSERT INTO task_progress (task, at, author, note, percent, status) \
                 VALUES (?, ?, ?, ?, ?, ?)",
                )
                .bind(def.code.as_str())
                .bind(micros(note.at))
                .bind(&note.by)
                .bind(&note.note)
                .bind(note.percent.map(i64::from))
                .bind(note.status.map(|s| s.as_str()))
                .execute(&mut *tx)
                .await?;
            }
            if let Some(record) = &write.history {
                sqlx::query(
                    "INSERT INTO task_status_history (task, at, actor, status, completed_on) \
                 VALUES (?, ?, ?, ?, ?)",
                )
                .bind(def.code.as_str())
                .bind(micros(record.at))
                .bind(&record.by)
                .bind(record.status.as_str())
                .bind(record.completed_on.map(|d| d.to_string()))
                .execute(&mut *tx)
                .await?;
            }
        }
        if written_codes.iter().all(Option::is_none) {
            tx.rollback().await?;
            return Ok(written_codes.into_iter().map(|_| None).collect());
        }
        audit::append(&mut tx, event).await?;
        tx.commit().await?;
        drop(writer);
        let mut stored = Vec::with_capacity(written_codes.len());
        for code in written_codes {
            stored.push(match code {
                Some(code) => self.read_tasks(Some(code.as_str())).await?.pop(),
                None => None,
            });
        }
        Ok(stored)
    }

    pub(super) async fn read_tasks(&self, code: Option<&str>) -> StoreResult<Vec<Task>> {
        // One read transaction, one snapshot: a write between these reads is seen whole or
        // not at all.
        let mut tx = self.pool.begin().await?;
        let rows = each::<Sqlite, _>(
            &mut tx,
            &format!("{SELECT} WHERE (?1 IS NULL OR t.code = ?1) ORDER BY t.due, t.code"),
            code,
            task_row,
        )
        .await?;
        let notes = each::<Sqlite, _>(
            &mut tx,
            "SELECT task, at, author, note, percent, status FROM task_progress \
             WHERE (?1 IS NULL OR task = ?1) ORDER BY task, at, id",
            code,
            |row| {
                Ok((
                    row.try_get::<String, _>("task")?,
                    from_micros(row.try_get("at")?),
                    row.try_get::<String, _>("author")?,
                    row.try_get::<String, _>("note")?,
                    row.try_get::<Option<i64>, _>("percent")?,
                    row.try_get::<Option<String>, _>("status")?,
                ))
            },
        )
        .await?;
        let history = each::<Sqlite, _>(
            &mut tx,
            "SELECT task, at, actor, status, completed_on FROM task_status_history \
             WHERE (?1 IS NULL OR task = ?1) ORDER BY task, at, id",
            code,
            |row| {
                Ok((
                    row.try_get::<String, _>("task")?,
                    from_micros(row.try_get("at")?),
                    row.try_get::<String, _>("actor")?,
                    row.try_get::<String, _>("status")?,
                    optional_date(row.try_get("completed_on")?)?,
                ))
            },
        )
        .await?;
        let definitions = each::<Sqlite, _>(
            &mut tx,
            &format!("{DEFINITIONS} WHERE (?1 IS NULL OR t.task = ?1) ORDER BY t.task, t.at, t.id"),
            code,
            definition_row,
        )
        .await?;
        tx.commit().await?;
        assemble(rows, notes, history, definitions).map_err(corrupt)
    }
}
