//! Directives and tasks in the store (migrations 0013, 0016, 0018), shared by both backends: a
//! stored row read back into a [`Task`], and the configured tasks brought into the store at
//! start.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};

use super::{AuditEvent, DynStore, StoreError, StoreResult};
use crate::domain::task::{
    Directive, DirectiveKind, ProgressNote, RecordedStatus, StatusRecord, Task, TaskDef,
    TaskDefinitionRecord, TaskSeed, TaskWrite,
};
use crate::domain::Code;

/// The rows of `sql`, with `code` bound to its one parameter, each read by `read`: every read
/// of tasks on either backend, in the caller's transaction.
pub(crate) async fn each<DB, T>(
    conn: &mut DB::Connection,
    sql: &str,
    code: Option<&str>,
    read: impl Fn(&DB::Row) -> StoreResult<T>,
) -> StoreResult<Vec<T>>
where
    DB: sqlx::Database,
    for<'e> &'e mut DB::Connection: sqlx::Executor<'e, Database = DB>,
    for<'q> Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> DB::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
{
    sqlx::query::<DB>(sql)
        .bind(code)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(read)
        .collect()
}

pub(crate) fn corrupt(detail: String) -> StoreError {
    StoreError::Corrupt {
        table: "tasks",
        detail,
    }
}

/// A task's definition and its directive's row, as both backends read them from a row of
/// `tasks` or of `task_definitions` joined with `directives`: the two tables hold a definition in
/// the same columns, so one reader per backend and one conversion serve the task as it is now and
/// each definition it has had.
pub(crate) struct DefinitionColumns {
    pub title_vi: String,
    pub title_en: String,
    pub owner: String,
    /// A JSON array of codes.
    pub cooperating: String,
    pub group: String,
    /// A JSON array of codes.
    pub indicators: String,
    pub due: NaiveDate,
    pub directive: DirectiveRow,
}

impl DefinitionColumns {
    /// The definition of the task coded `task`, with the directive it names.
    fn into_def(self, task: &str) -> Result<(TaskDef, Directive), String> {
        let def = TaskDef {
            code: code(task)?,
            title_vi: self.title_vi,
            title_en: self.title_en,
            directive: self.directive.number.clone(),
            owner: code(&self.owner)?,
            cooperating: codes(&self.cooperating)?,
            group: code(&self.group)?,
            due: self.due,
            indicators: codes(&self.indicators)?,
        };
        Ok((def, self.directive.into_directive()?))
    }
}

/// A task's row joined with its directive's, as both backends read it.
pub(crate) struct TaskRow {
    pub code: String,
    pub def: DefinitionColumns,
    pub status: String,
    pub completed_on: Option<NaiveDate>,
    pub percent: Option<i64>,
    /// The percent it was stored with (migration 0016).
    pub start_percent: Option<i64>,
    pub origin: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

/// A directive's row, as both backends read it beside a task's definition.
pub(crate) struct DirectiveRow {
    pub number: String,
    pub issued_on: NaiveDate,
    pub issuer: String,
    pub kind: String,
    pub title_vi: String,
    pub title_en: String,
    pub source: Option<String>,
    pub illustrative: bool,
}

impl DirectiveRow {
    fn into_directive(self) -> Result<Directive, String> {
        Ok(Directive {
            kind: DirectiveKind::parse(&self.kind)
                .ok_or_else(|| format!("directive kind {}", self.kind))?,
            number: self.number,
            date: self.issued_on,
            issuer: self.issuer,
            title_vi: self.title_vi,
            title_en: self.title_en,
            source: self.source,
            illustrative: self.illustrative,
        })
    }
}

/// One of a task's definitions (migration 0018) with its directive's row.
pub(crate) struct DefinitionRow {
    pub task: String,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub def: DefinitionColumns,
}

impl DefinitionRow {
    fn into_record(self) -> Result<TaskDefinitionRecord, String> {
        let (def, directive) = self.def.into_def(&self.task)?;
        Ok(TaskDefinitionRecord {
            at: self.at,
            by: self.actor,
            def,
            directive,
        })
    }
}

/// A progress note's row: task, at, author, note, percent, status.
pub(crate) type NoteRow = (
    String,
    DateTime<Utc>,
    String,
    String,
    Option<i64>,
    Option<String>,
);
/// A status record's row: task, at, actor, status, completed_on.
pub(crate) type HistoryRow = (String, DateTime<Utc>, String, String, Option<NaiveDate>);

fn code(raw: &str) -> Result<Code, String> {
    Code::parse(raw)
}

fn codes(json: &str) -> Result<Vec<Code>, String> {
    let raw: Vec<String> = serde_json::from_str(json).map_err(|e| e.to_string())?;
    raw.iter().map(|c| code(c)).collect()
}

fn percent(raw: Option<i64>) -> Result<Option<u8>, String> {
    raw.map(|p| u8::try_from(p).map_err(|_| format!("percent {p}")))
        .transpose()
}

fn recorded(raw: &str) -> Result<RecordedStatus, String> {
    RecordedStatus::parse(raw).ok_or_else(|| format!("status {raw}"))
}

/// The tasks of `rows`, each with its notes, status records and definitions (all given oldest
/// first).
pub(crate) fn assemble(
    rows: Vec<TaskRow>,
    notes: Vec<NoteRow>,
    history: Vec<HistoryRow>,
    definitions: Vec<DefinitionRow>,
) -> Result<Vec<Task>, String> {
    let mut notes_of: HashMap<String, Vec<ProgressNote>> = HashMap::new();
    for (task, at, by, note, pct, status) in notes {
        notes_of.entry(task).or_default().push(ProgressNote {
            at,
            by,
            note,
            percent: percent(pct)?,
            status: status.as_deref().map(recorded).transpose()?,
        });
    }
    let mut history_of: HashMap<String, Vec<StatusRecord>> = HashMap::new();
    for (task, at, by, status, completed_on) in history {
        history_of.entry(task).or_default().push(StatusRecord {
            at,
            by,
            status: recorded(&status)?,
            completed_on,
        });
    }
    let mut definitions_of: HashMap<String, Vec<TaskDefinitionRecord>> = HashMap::new();
    for row in definitions {
        definitions_of
            .entry(row.task.clone())
            .or_default()
            .push(row.into_record()?);
    }
    rows.into_iter()
        .map(|row| {
            let (def, directive) = row.def.into_def(&row.code)?;
            Ok(Task {
                def,
                directive,
                recorded: recorded(&row.status)?,
                completed_on: row.completed_on,
                percent: percent(row.percent)?,
                start_percent: percent(row.start_percent)?,
                origin: row.origin,
                created_at: row.created_at,
                updated_at: row.updated_at,
                updated_by: row.updated_by,
                progress: notes_of.remove(&row.code).unwrap_or_default(),
                history: history_of.remove(&row.code).unwrap_or_default(),
                definitions: definitions_of.remove(&row.code).unwrap_or_default(),
            })
        })
        .collect()
}

/// Brings the configured tasks into the store: a task not stored yet is written as configured
/// (with its starting progress); one stored from the configuration whose definition or
/// directive changed there is redefined, its progress kept; one an admin created or changed
/// through the API is left alone. The writes are one `tasks.seed` audit row naming the tasks
/// stored and redefined, as the targets' seed is one `targets.seed` row.
///
/// A task written from the configuration for the first time is in force from its directive's
/// date (not from the first start of this database), and its configured status from the day
/// it records it was completed, else from that date too: a report cut off between the
/// directive and the first start reads the task as the configuration says it stood then.
pub async fn seed(
    store: &DynStore,
    directives: &[Directive],
    seeds: &[TaskSeed],
    at: DateTime<Utc>,
    zone: chrono_tz::Tz,
) -> StoreResult<usize> {
    let midnight = |day: chrono::NaiveDate| crate::domain::Period::Day(day).start(zone).min(at);
    let stored: HashMap<Code, Task> = store
        .tasks(None)
        .await?
        .into_iter()
        .map(|t| (t.def.code.clone(), t))
        .collect();
    let by_number: HashMap<&str, &Directive> =
        directives.iter().map(|d| (d.number.as_str(), d)).collect();
    let mut writes = Vec::new();
    let (mut added, mut redefined) = (Vec::new(), Vec::new());
    for seed in seeds {
        let Some(directive) = by_number.get(seed.def.directive.as_str()) else {
            continue;
        };
        let write = match stored.get(&seed.def.code) {
            None => {
                added.push(seed.def.code.to_string());
                let in_force = midnight(directive.date);
                let recorded_at = seed
                    .completed_on
                    .map_or(in_force, |day| midnight(day).max(in_force));
                TaskWrite {
                    def: seed.def.clone(),
                    directive: (*directive).clone(),
                    recorded: seed.recorded,
                    completed_on: seed.completed_on,
                    percent: seed.percent,
                    origin: "config".into(),
                    at: in_force,
                    by: "config".into(),
                    create: true,
                    note: None,
                    history: (seed.recorded != RecordedStatus::NotStarted).then(|| StatusRecord {
                        at: recorded_at,
                        by: "config".into(),
                        status: seed.recorded,
                        completed_on: seed.completed_on,
                    }),
                }
            }
            Some(task)
                if task.origin == "config"
                    && (task.def != seed.def || task.directive != **directive) =>
            {
                redefined.push(seed.def.code.to_string());
                TaskWrite {
                    def: seed.def.clone(),
                    directive: (*directive).clone(),
                    recorded: task.recorded,
                    completed_on: task.completed_on,
                    percent: task.percent,
                    origin: "config".into(),
                    at,
                    by: "config".into(),
                    create: false,
                    note: None,
                    history: None,
                }
            }
            Some(_) => continue,
        };
        writes.push(write);
    }
    if writes.is_empty() {
        return Ok(0);
    }
    let mut event = AuditEvent::new(at, "config", "tasks.seed", "config/directives");
    event.after = Some(serde_json::json!({ "added": added, "redefined": redefined }));
    // Another instance starting at the same moment may have stored some first: nothing lost.
    let written = store.write_tasks(&writes, &event).await?;
    Ok(written.iter().filter(|t| t.is_some()).count())
}
