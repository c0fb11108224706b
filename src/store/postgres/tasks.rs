//! Directives and tasks on PostgreSQL (migrations 0013, 0018): a task's change is written with
//! its progress note, its status record, its definition when that changed, its audit row and a
//! commit that other instances follow (ARCHITECTURE §7), in one transaction.

use sqlx::postgres::PgRow;
use sqlx::Postgres;
use sqlx::Row;

use super::{audit, commits, PgStore};
use crate::domain::task::{Task, TaskWrite};
use crate::store::tasks::{
    assemble, corrupt, each, DefinitionColumns, DefinitionRow, DirectiveRow, TaskRow,
};
use crate::store::{AuditEvent, CommitKind, StoreResult};

/// A definition's columns and its directive's, as [`definition_columns()`] reads them, from a
/// table `t` joined with `directives d`: the same in [`SELECT`] and [`DEFINITIONS`].
macro_rules! definition_sql {
    () => {
        "t.directive, t.title_vi, t.title_en, t.owner, t.cooperating::text AS cooperating, \
         t.group_code, t.indicators::text AS indicators, t.due, d.issued_on, d.issuer, d.kind, \
         d.title_vi AS d_title_vi, d.title_en AS d_title_en, d.source, d.illustrative"
    };
}

const SELECT: &str = concat!(
    "SELECT t.code, t.status, t.completed_on, t.percent, t.start_percent, t.origin, \
     t.created_at, t.updated_at, t.updated_by, ",
    definition_sql!(),
    " FROM tasks t JOIN directives d ON d.number = t.directive"
);

/// The definition's columns of a row of [`SELECT`] or of [`DEFINITIONS`], which name them alike.
fn definition_columns(row: &PgRow) -> StoreResult<DefinitionColumns> {
    Ok(DefinitionColumns {
        title_vi: row.try_get("title_vi")?,
        title_en: row.try_get("title_en")?,
        owner: row.try_get("owner")?,
        cooperating: row.try_get("cooperating")?,
        group: row.try_get("group_code")?,
        indicators: row.try_get("indicators")?,
        due: row.try_get("due")?,
        directive: DirectiveRow {
            number: row.try_get("directive")?,
            issued_on: row.try_get("issued_on")?,
            issuer: row.try_get("issuer")?,
            kind: row.try_get("kind")?,
            title_vi: row.try_get("d_title_vi")?,
            title_en: row.try_get("d_title_en")?,
            source: row.try_get("source")?,
            illustrative: row.try_get("illustrative")?,
        },
    })
}

fn task_row(row: &PgRow) -> StoreResult<TaskRow> {
    let percent: Option<i16> = row.try_get("percent")?;
    let start_percent: Option<i16> = row.try_get("start_percent")?;
    Ok(TaskRow {
        code: row.try_get("code")?,
        def: definition_columns(row)?,
        status: row.try_get("status")?,
        completed_on: row.try_get("completed_on")?,
        percent: percent.map(i64::from),
        start_percent: start_percent.map(i64::from),
        origin: row.try_get("origin")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        updated_by: row.try_get("updated_by")?,
    })
}

const DEFINITIONS: &str = concat!(
    "SELECT t.task, t.at, t.actor, ",
    definition_sql!(),
    " FROM task_definitions t JOIN directives d ON d.number = t.directive"
);

fn definition_row(row: &PgRow) -> StoreResult<DefinitionRow> {
    Ok(DefinitionRow {
        task: row.try_get("task")?,
        at: row.try_get("at")?,
        actor: row.try_get("actor")?,
        def: definition_columns(row)?,
    })
}

fn json_list(codes: &[crate::domain::Code]) -> serde_json::Value {
    serde_json::Value::Array(
        codes
            .iter()
            .map(|c| serde_json::Value::String(c.to_string()))
            .collect(),
    )
}

impl PgStore {
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

    /// Writes every one of `writes` with one audit row and a commit each, in one transaction;
    /// a write that finds its code taken (or absent) is left out, and nothing is written when
    /// every one is.
    pub(super) async fn write_tasks_tx(
        &self,
        writes: &[TaskWrite],
        event: &AuditEvent,
    ) -> StoreResult<Vec<Option<Task>>> {
        let mut tx = self.pool.begin().await?;
        // The audit lock first, as every audited write takes it, so none waits on another.
        audit::lock(&mut tx).await?;
        let mut written_codes = Vec::with_capacity(writes.len());
        for write in writes {
            let def = &write.def;
            let directive = &write.directive;
            sqlx::query(
            "INSERT INTO directives (number, issued_on, issuer, kind, title_vi, title_en, source, \
             illustrative) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (number) DO UPDATE SET issued_on = EXCLUDED.issued_on, \
             issuer = EXCLUDED.issuer, kind = EXCLUDED.kind, title_vi = EXCLUDED.title_vi, \
             title_en = EXCLUDED.title_en, source = EXCLUDED.source, \
             illustrative = EXCLUDED.illustrative",
        )
        .bind(&directive.number)
        .bind(directive.date)
        .bind(&directive.issuer)
        .bind(directive.kind.as_str())
        .bind(&directive.title_vi)
        .bind(&directive.title_en)
        .bind(&directive.source)
        .bind(directive.illustrative)
        .execute(&mut *tx)
        .await?;
            let percent = write.percent.map(i16::from);
            let written = if write.create {
                sqlx::query(
                    "INSERT INTO tasks (code, directive, title_vi, title_en, owner, cooperating, \
                 group_code, indicators, due, status, completed_on, percent, origin, created_at, \
                 updated_at, updated_by, start_percent) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, \
                 $9, $10, $11, $12, $13, $14, $14, $15, $12) ON CONFLICT (code) DO NOTHING",
                )
                .bind(def.code.as_str())
                .bind(&def.directive)
                .bind(&def.title_vi)
                .bind(&def.title_en)
                .bind(def.owner.as_str())
                .bind(json_list(&def.cooperating))
                .bind(def.group.as_str())
                .bind(json_list(&def.indicators))
                .bind(def.due)
                .bind(write.recorded.as_str())
                .bind(write.completed_on)
                .bind(percent)
                .bind(&write.origin)
                .bind(write.at)
                .bind(&write.by)
                .execute(&mut *tx)
                .await?
            } else {
                sqlx::query(
                    "UPDATE tasks SET directive = $2, title_vi = $3, title_en = $4, owner = $5, \
                 cooperating = $6, group_code = $7, indicators = $8, due = $9, status = $10, \
                 completed_on = $11, percent = $12, origin = $13, updated_at = $14, \
                 updated_by = $15 WHERE code = $1",
                )
                .bind(def.code.as_str())
                .bind(&def.directive)
                .bind(&def.title_vi)
                .bind(&def.title_en)
                .bind(def.owner.as_str())
                .bind(json_list(&def.cooperating))
                .bind(def.group.as_str())
                .bind(json_list(&def.indicators))
                .bind(def.due)
                .bind(write.recorded.as_str())
                .bind(write.completed_on)
                .bind(percent)
                .bind(&write.origin)
                .bind(write.at)
                .bind(&write.by)
                .execute(&mut *tx)
                .await?
            };
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
                 SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 WHERE NOT EXISTS ( \
                 SELECT 1 FROM (SELECT * FROM task_definitions WHERE task = $1 \
                 ORDER BY at DESC, id DESC LIMIT 1) d \
                 WHERE d.directive = $4 AND d.title_vi = $5 AND d.title_en = $6 \
                 AND d.owner = $7 AND d.cooperating = $8 AND d.group_code = $9 \
                 AND d.indicators = $10 AND d.due = $11)",
            )
            .bind(def.code.as_str())
            .bind(write.at)
            .bind(&write.by)
            .bind(&def.directive)
            .bind(&def.title_vi)
            .bind(&def.title_en)
            .bind(def.owner.as_str())
            .bind(json_list(&def.cooperating))
            .bind(def.group.as_str())
            .bind(json_list(&def.indicators))
            .bind(def.due)
            .execute(&mut *tx)
            .await?;
            if let Some(note) = &write.note {
                sqlx::query(
                    "INSERT INTO task_progress (task, at, author, note, percent, status) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(def.code.as_str())
                .bind(note.at)
                .bind(&note.by)
                .bind(&note.note)
                .bind(note.percent.map(i16::from))
                .bind(note.status.map(|s| s.as_str()))
                .execute(&mut *tx)
                .await?;
            }
            if let Some(record) = &write.history {
                sqlx::query(
                    "INSERT INTO task_status_history (task, at, actor, status, completed_on) \
                 VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(def.code.as_str())
                .bind(record.at)
                .bind(&record.by)
                .bind(record.status.as_str())
                .bind(record.completed_on)
                .execute(&mut *tx)
                .await?;
            }
            let group = commits::next_group(&mut tx).await?;
            commits::record(
                &mut tx,
                &self.instance,
                group,
                CommitKind::Task,
                Some(def.code.as_str()),
                write.at,
            )
            .await?;
        }
        if written_codes.iter().all(Option::is_none) {
            tx.rollback().await?;
            return Ok(written_codes.into_iter().map(|_| None).collect());
        }
        audit::append(&mut tx, event).await?;
        tx.commit().await?;
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
        // One snapshot for the tasks and what is appended to them, so that a write between
        // these reads is seen whole or not at all.
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await?;
        let rows = each::<Postgres, _>(
            &mut tx,
            &format!("{SELECT} WHERE ($1::text IS NULL OR t.code = $1) ORDER BY t.due, t.code"),
            code,
            task_row,
        )
        .await?;
        let notes = each::<Postgres, _>(
            &mut tx,
            "SELECT task, at, author, note, percent, status FROM task_progress \
             WHERE ($1::text IS NULL OR task = $1) ORDER BY task, at, id",
            code,
            |row| {
                let percent: Option<i16> = row.try_get("percent")?;
                Ok((
                    row.try_get::<String, _>("task")?,
                    row.try_get("at")?,
                    row.try_get::<String, _>("author")?,
                    row.try_get::<String, _>("note")?,
                    percent.map(i64::from),
                    row.try_get::<Option<String>, _>("status")?,
                ))
            },
        )
        .await?;
        let history = each::<Postgres, _>(
            &mut tx,
            "SELECT task, at, actor, status, completed_on FROM task_status_history \
             WHERE ($1::text IS NULL OR task = $1) ORDER BY task, at, id",
            code,
            |row| {
                Ok((
                    row.try_get::<String, _>("task")?,
                    row.try_get("at")?,
                    row.try_get::<String, _>("actor")?,
                    row.try_get::<String, _>("status")?,
                    row.try_get("completed_on")?,
                ))
            },
        )
        .await?;
        let definitions = each::<Postgres, _>(
            &mut tx,
            &format!(
                "{DEFINITIONS} WHERE ($1::text IS NULL OR t.task = $1) ORDER BY t.task, t.at, t.id"
            ),
            code,
            definition_row,
        )
        .await?;
        tx.commit().await?;
        assemble(rows, notes, history, definitions).map_err(corrupt)
    }
}
