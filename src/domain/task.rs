//! Directives and tasks (chỉ đạo, nhiệm vụ): a directive of the city (a Kết luận, Chỉ thị,
//! Nghị quyết, Kế hoạch…) assigns tasks, each to an owning department with co-operating units and
//! a due date, optionally tied to indicators of the catalogue. The department records its
//! progress; whether a task is overdue or was done late is not recorded but judged from its due
//! date, its completion date and the clock, passed in as every rule's `now` is.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Code;

/// What kind of text a directive is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum DirectiveKind {
    /// Kết luận (of a conference or of the Party committee).
    KetLuan,
    /// Chỉ thị.
    ChiThi,
    /// Nghị quyết.
    NghiQuyet,
    /// Kế hoạch.
    KeHoach,
    /// Quyết định.
    QuyetDinh,
    /// Công văn.
    CongVan,
    /// Thông báo (a notice of a leader's conclusions).
    ThongBao,
}

impl DirectiveKind {
    pub const ALL: [Self; 7] = [
        Self::KetLuan,
        Self::ChiThi,
        Self::NghiQuyet,
        Self::KeHoach,
        Self::QuyetDinh,
        Self::CongVan,
        Self::ThongBao,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::KetLuan => "ket_luan",
            Self::ChiThi => "chi_thi",
            Self::NghiQuyet => "nghi_quyet",
            Self::KeHoach => "ke_hoach",
            Self::QuyetDinh => "quyet_dinh",
            Self::CongVan => "cong_van",
            Self::ThongBao => "thong_bao",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }

    pub fn name_vi(self) -> &'static str {
        match self {
            Self::KetLuan => "Kết luận",
            Self::ChiThi => "Chỉ thị",
            Self::NghiQuyet => "Nghị quyết",
            Self::KeHoach => "Kế hoạch",
            Self::QuyetDinh => "Quyết định",
            Self::CongVan => "Công văn",
            Self::ThongBao => "Thông báo",
        }
    }

    pub fn name_en(self) -> &'static str {
        match self {
            Self::KetLuan => "Conclusion",
            Self::ChiThi => "Directive",
            Self::NghiQuyet => "Resolution",
            Self::KeHoach => "Plan",
            Self::QuyetDinh => "Decision",
            Self::CongVan => "Official letter",
            Self::ThongBao => "Notice",
        }
    }
}

/// A directive as issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Directive {
    /// Its number as printed, e.g. `45/KL-UBND`.
    #[schema(example = "45/KL-UBND")]
    pub number: String,
    /// When it was issued.
    #[schema(value_type = String, format = Date, example = "2026-02-10")]
    pub date: NaiveDate,
    #[schema(example = "UBND TP.HCM")]
    pub issuer: String,
    pub kind: DirectiveKind,
    pub title_vi: String,
    pub title_en: String,
    /// Where the text is published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// True when no published directive stands behind it (a demonstration).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub illustrative: bool,
}

/// The status a department records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecordedStatus {
    NotStarted,
    InProgress,
    Done,
}

impl RecordedStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotStarted => "not_started",
            Self::InProgress => "in_progress",
            Self::Done => "done",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "not_started" => Some(Self::NotStarted),
            "in_progress" => Some(Self::InProgress),
            "done" => Some(Self::Done),
            _ => None,
        }
    }
}

/// A task's status as shown: the recorded one, with `overdue` and `done_late` judged.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    NotStarted,
    InProgress,
    Done,
    DoneLate,
    Overdue,
}

impl TaskStatus {
    pub const ALL: [Self; 5] = [
        Self::NotStarted,
        Self::InProgress,
        Self::Done,
        Self::DoneLate,
        Self::Overdue,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotStarted => "not_started",
            Self::InProgress => "in_progress",
            Self::Done => "done",
            Self::DoneLate => "done_late",
            Self::Overdue => "overdue",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// Done, on time or late: what "x/y nhiệm vụ hoàn thành" counts.
    pub fn is_done(self) -> bool {
        matches!(self, Self::Done | Self::DoneLate)
    }

    /// A task is due by the end of its due day (in the city): overdue from the next day while
    /// not done, done late when completed after it.
    pub fn judge(
        recorded: RecordedStatus,
        due: NaiveDate,
        completed_on: Option<NaiveDate>,
        today: NaiveDate,
    ) -> Self {
        match (recorded, completed_on) {
            (RecordedStatus::Done, Some(on)) if on > due => Self::DoneLate,
            (RecordedStatus::Done, _) => Self::Done,
            _ if today > due => Self::Overdue,
            (RecordedStatus::InProgress, _) => Self::InProgress,
            (RecordedStatus::NotStarted, _) => Self::NotStarted,
        }
    }

    pub fn name_vi(self) -> &'static str {
        match self {
            Self::NotStarted => "Chưa thực hiện",
            Self::InProgress => "Đang thực hiện",
            Self::Done => "Hoàn thành",
            Self::DoneLate => "Hoàn thành trễ hạn",
            Self::Overdue => "Quá hạn",
        }
    }

    pub fn name_en(self) -> &'static str {
        match self {
            Self::NotStarted => "Not started",
            Self::InProgress => "In progress",
            Self::Done => "Done",
            Self::DoneLate => "Done late",
            Self::Overdue => "Overdue",
        }
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a task is: everything but its progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TaskDef {
    #[schema(value_type = String, example = "KL45_01")]
    pub code: Code,
    pub title_vi: String,
    pub title_en: String,
    /// The directive's number.
    #[schema(example = "45/KL-UBND")]
    pub directive: String,
    /// The owning department's code.
    #[schema(value_type = String, example = "FINANCE")]
    pub owner: Code,
    /// Co-operating departments or units (phối hợp).
    #[schema(value_type = Vec<String>)]
    pub cooperating: Vec<Code>,
    /// The sector group it is counted under.
    #[schema(value_type = String, example = "INVESTMENT")]
    pub group: Code,
    #[schema(value_type = String, format = Date, example = "2026-06-30")]
    pub due: NaiveDate,
    /// Linked indicators of the catalogue.
    #[schema(value_type = Vec<String>)]
    pub indicators: Vec<Code>,
}

/// One definition a task has had, kept forever: in force from `at` until the next one's, as a
/// target's version is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TaskDefinitionRecord {
    pub at: DateTime<Utc>,
    /// Who set it: the token's name, or `config` for the configuration.
    #[schema(example = "admin")]
    pub by: String,
    #[serde(flatten)]
    pub def: TaskDef,
    /// The directive it names, as stored now.
    #[serde(skip)]
    pub directive: Directive,
}

/// A task as configured, with the progress it starts from when first stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskSeed {
    pub def: TaskDef,
    pub recorded: RecordedStatus,
    pub completed_on: Option<NaiveDate>,
    pub percent: Option<u8>,
}

/// One progress note of the owning department.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProgressNote {
    pub at: DateTime<Utc>,
    /// The token's name that wrote it.
    #[schema(example = "so-tai-chinh")]
    pub by: String,
    pub note: String,
    /// How far the task is, 0 to 100, as the department estimates.
    #[serde(default)]
    pub percent: Option<u8>,
    /// The status recorded with the note, when it set one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<RecordedStatus>,
}

/// One change of the recorded status, kept forever.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StatusRecord {
    pub at: DateTime<Utc>,
    pub by: String,
    pub status: RecordedStatus,
    #[schema(value_type = Option<String>, format = Date)]
    pub completed_on: Option<NaiveDate>,
}

/// A task as stored: its definition, its directive and what has been recorded of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub def: TaskDef,
    pub directive: Directive,
    pub recorded: RecordedStatus,
    pub completed_on: Option<NaiveDate>,
    pub percent: Option<u8>,
    /// The percent it was stored with, before any note set one.
    pub start_percent: Option<u8>,
    /// `config` (from `config/directives/`) or `api`.
    pub origin: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
    /// Oldest first.
    pub progress: Vec<ProgressNote>,
    /// Oldest first.
    pub history: Vec<StatusRecord>,
    /// Every definition it has had, oldest first, the last being `def` (migration 0018); none
    /// only for a task not read from the store, whose past is then read with `def`.
    pub definitions: Vec<TaskDefinitionRecord>,
}

impl Task {
    /// Its status on `today` (a date in the city).
    pub fn status(&self, today: NaiveDate) -> TaskStatus {
        TaskStatus::judge(self.recorded, self.def.due, self.completed_on, today)
    }

    /// The task as it had been recorded by the instant `at` (whose day in the city is `day`),
    /// from its appended notes and status records, so that what is recorded later (a
    /// completion, even one dated earlier) does not change how it stood then; `None` when it
    /// was stored after `at`. Its definition (due date, owner, group…) and directive are the
    /// ones in force at `at`, the last set by then: a deadline extended later does not undo
    /// its being overdue then, nor does a new owner take over its past.
    ///
    /// A task from the configuration is in force from its directive's date, and its configured
    /// status from the day it states (its completion, else the directive's date), whenever a
    /// database first stored them: an installation started in June reads its first quarter's
    /// shipped tasks as the configuration says they stood, with the definition it was first
    /// stored with.
    pub fn as_at(&self, at: DateTime<Utc>, day: NaiveDate) -> Option<Task> {
        let configured = self.origin == "config";
        // Those set by then, and at least the first.
        let definitions = match self.definitions.iter().rposition(|d| d.at <= at) {
            Some(last) => &self.definitions[..=last],
            None => &self.definitions[..self.definitions.len().min(1)],
        };
        let (def, directive) = definitions
            .last()
            .map_or((&self.def, &self.directive), |d| (&d.def, &d.directive));
        if self.created_at > at && !(configured && directive.date <= day) {
            return None;
        }
        let known = |r: &StatusRecord| {
            r.at <= at
                || (configured
                    && r.by == "config"
                    && r.completed_on.unwrap_or(self.directive.date) <= day)
        };
        let progress: Vec<ProgressNote> = self
            .progress
            .iter()
            .filter(|n| n.at <= at)
            .cloned()
            .collect();
        let history: Vec<StatusRecord> =
            self.history.iter().filter(|r| known(r)).cloned().collect();
        // Every change of the recorded status is appended, the configured start included; a
        // task without a record by then had not been started.
        let (recorded, completed_on) = history
            .last()
            .map_or((RecordedStatus::NotStarted, None), |r| {
                (r.status, r.completed_on)
            });
        // A note without a percent leaves the last one standing, as the API does.
        let percent = progress
            .iter()
            .rev()
            .find_map(|n| n.percent)
            .or(self.start_percent);
        Some(Task {
            def: def.clone(),
            directive: directive.clone(),
            recorded,
            completed_on,
            percent,
            progress,
            history,
            definitions: definitions.to_vec(),
            ..self.clone()
        })
    }

    /// The task as it was known at `at` (whose day in the city is `day`), as every reading of a
    /// past instant shows it (a report's cut-off, the task list's `as_of`): [`Task::as_at`],
    /// with a completion dated after `day` not yet counted as one (a configured completion is
    /// written ahead of time; one recorded through the API never is).
    pub fn as_known_at(&self, at: DateTime<Utc>, day: NaiveDate) -> Option<Task> {
        let mut seen = self.as_at(at, day)?;
        if seen.recorded == RecordedStatus::Done && seen.completed_on.is_none_or(|on| on > day) {
            seen.recorded = RecordedStatus::InProgress;
            seen.completed_on = None;
        }
        Some(seen)
    }
}

/// A task to write: created, redefined or moved on by a progress note, in one transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskWrite {
    pub def: TaskDef,
    /// Written when no directive of its number is stored; a stored one is updated from it.
    pub directive: Directive,
    pub recorded: RecordedStatus,
    pub completed_on: Option<NaiveDate>,
    pub percent: Option<u8>,
    pub origin: String,
    pub at: DateTime<Utc>,
    pub by: String,
    /// A new task (refused when its code is taken) or an existing one (refused when absent).
    pub create: bool,
    pub note: Option<ProgressNote>,
    /// Appended when the recorded status or completion date changes.
    pub history: Option<StatusRecord>,
}

/// The directive the unit tests' tasks come under, issued on `date`.
#[cfg(test)]
pub(crate) fn test_directive(date: NaiveDate) -> Directive {
    Directive {
        number: "1/CT-UBND".into(),
        date,
        issuer: "UBND".into(),
        kind: DirectiveKind::ChiThi,
        title_vi: "Chỉ thị".into(),
        title_en: "Directive".into(),
        source: None,
        illustrative: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(raw: &str) -> NaiveDate {
        raw.parse().expect("a date")
    }

    #[test]
    fn a_task_is_judged_by_its_due_date_its_completion_and_today() {
        use RecordedStatus as R;
        use TaskStatus as S;
        let due = day("2026-06-30");
        let cases = [
            // (recorded, completed_on, today, expected)
            (R::NotStarted, None, "2026-06-01", S::NotStarted),
            (R::InProgress, None, "2026-06-30", S::InProgress),
            (R::InProgress, None, "2026-07-01", S::Overdue),
            (R::NotStarted, None, "2026-07-01", S::Overdue),
            (R::Done, Some("2026-06-30"), "2026-12-01", S::Done),
            (R::Done, Some("2026-05-01"), "2026-05-02", S::Done),
            (R::Done, Some("2026-07-01"), "2026-07-01", S::DoneLate),
        ];
        for (recorded, completed, today, expected) in cases {
            let judged = TaskStatus::judge(recorded, due, completed.map(day), day(today));
            assert_eq!(judged, expected, "{recorded:?} {completed:?} {today}");
        }
    }

    /// 00:00 on `raw` in the city.
    fn midnight(raw: &str) -> DateTime<Utc> {
        day(raw)
            .and_hms_opt(0, 0, 0)
            .expect("a time")
            .and_utc()
            .checked_sub_signed(chrono::Duration::hours(7))
            .expect("an instant")
    }

    fn definition(code: &str, owner: &str, due: &str, directive: &Directive) -> TaskDef {
        TaskDef {
            code: Code::parse(code).expect("a code"),
            title_vi: format!("Nhiệm vụ {code} của {owner}"),
            title_en: format!("Task {code} of {owner}"),
            directive: directive.number.clone(),
            owner: Code::parse(owner).expect("a code"),
            cooperating: Vec::new(),
            group: Code::parse("SECURITY").expect("a code"),
            due: day(due),
            indicators: Vec::new(),
        }
    }

    /// A task of `origin` not started, stored with the first of `definitions` (each set at a
    /// local day's start, by an owner, due on a day) and redefined with each of the others.
    fn redefined(origin: &str, definitions: &[(&str, &str, &str)]) -> Task {
        let directive = test_directive(day("2026-01-05"));
        let definitions: Vec<TaskDefinitionRecord> = definitions
            .iter()
            .map(|(at, owner, due)| TaskDefinitionRecord {
                at: midnight(at),
                by: "admin".into(),
                def: definition("T1", owner, due, &directive),
                directive: directive.clone(),
            })
            .collect();
        let (first, last) = (&definitions[0], &definitions[definitions.len() - 1]);
        Task {
            def: last.def.clone(),
            directive: directive.clone(),
            recorded: RecordedStatus::NotStarted,
            completed_on: None,
            percent: None,
            start_percent: None,
            origin: origin.into(),
            created_at: first.at,
            updated_at: last.at,
            updated_by: "admin".into(),
            progress: Vec::new(),
            history: Vec::new(),
            definitions,
        }
    }

    #[test]
    fn a_task_as_at_an_instant_has_the_definition_in_force_then() {
        let task = redefined(
            "api",
            &[
                ("2026-01-10", "POLICE", "2026-03-31"),
                ("2026-05-04", "CUSTOMS", "2026-04-30"),
                ("2026-08-01", "CUSTOMS", "2026-12-31"),
            ],
        );
        let seen = |on: &str| task.as_at(midnight(on), day(on)).expect("stored by then");

        // Past its deadline of then, the police's: overdue, though due later as defined now.
        let april = seen("2026-04-10");
        assert_eq!(april.def.due, day("2026-03-31"));
        assert_eq!(april.def.owner.as_str(), "POLICE");
        assert_eq!(april.def.title_en, "Task T1 of POLICE");
        assert_eq!(april.status(day("2026-04-10")), TaskStatus::Overdue);
        assert_eq!(april.definitions, task.definitions[..1]);
        assert_eq!(
            task.status(day("2026-04-10")),
            TaskStatus::NotStarted,
            "as defined now"
        );

        // From the instant a redefinition took effect.
        let redefined_on = seen("2026-05-04");
        assert_eq!(redefined_on.def.owner.as_str(), "CUSTOMS");
        assert_eq!(redefined_on.def.due, day("2026-04-30"));
        assert_eq!(redefined_on.definitions.len(), 2);
        let june = seen("2026-06-01");
        assert_eq!(june.def, task.definitions[1].def);
        assert_eq!(june.status(day("2026-06-01")), TaskStatus::Overdue);
        assert_eq!(seen("2026-09-01").def, task.def);
        assert!(task
            .as_at(midnight("2026-01-09"), day("2026-01-09"))
            .is_none());
    }

    /// A configured task is in force from its directive's date, before it was first stored: with
    /// the definition it was first stored with.
    #[test]
    fn a_configured_task_before_it_was_stored_has_its_first_definition() {
        let task = redefined(
            "config",
            &[
                ("2026-06-01", "POLICE", "2026-03-31"),
                ("2026-07-01", "CUSTOMS", "2026-09-30"),
            ],
        );
        let april = task
            .as_at(midnight("2026-04-10"), day("2026-04-10"))
            .expect("in force from its directive's date");
        assert_eq!(april.def, task.definitions[0].def);
        assert_eq!(april.definitions, task.definitions[..1]);
        assert_eq!(april.status(day("2026-04-10")), TaskStatus::Overdue);
    }

    #[test]
    fn only_done_and_done_late_count_as_done() {
        let done: Vec<_> = TaskStatus::ALL
            .into_iter()
            .filter(|s| s.is_done())
            .collect();
        assert_eq!(done, [TaskStatus::Done, TaskStatus::DoneLate]);
    }

    #[test]
    fn kinds_and_statuses_read_back_what_they_write() {
        for kind in DirectiveKind::ALL {
            assert_eq!(DirectiveKind::parse(kind.as_str()), Some(kind));
        }
        for status in TaskStatus::ALL {
            assert_eq!(TaskStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(RecordedStatus::parse("overdue"), None);
    }
}
