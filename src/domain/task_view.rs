//! What the API, the screens and the report show of tasks: each task judged on a day, and the
//! counts by status overall, per owning department and per sector group. Pure: the day is
//! passed in.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::task::{Directive, ProgressNote, Task, TaskStatus};
use super::{Catalogue, Code};

/// The latest progress note, as the list shows it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct LastProgress {
    pub at: DateTime<Utc>,
    #[schema(example = "so-tai-chinh")]
    pub by: String,
    pub note: String,
    pub percent: Option<u8>,
}

/// One task as judged on a day.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TaskView {
    #[schema(value_type = String, example = "KL45_01")]
    pub code: Code,
    pub title_vi: String,
    pub title_en: String,
    pub directive: Directive,
    /// The owning department's code.
    #[schema(value_type = String, example = "FINANCE")]
    pub owner: Code,
    /// Co-operating departments or units.
    #[schema(value_type = Vec<String>)]
    pub cooperating: Vec<Code>,
    /// The sector group it is counted under.
    #[schema(value_type = String, example = "INVESTMENT")]
    pub group: Code,
    #[schema(value_type = String, format = Date, example = "2026-06-30")]
    pub due: NaiveDate,
    pub status: TaskStatus,
    #[schema(value_type = Option<String>, format = Date)]
    pub completed_on: Option<NaiveDate>,
    /// How far it is, 0 to 100, as last recorded.
    pub percent: Option<u8>,
    /// Linked indicators of the catalogue.
    #[schema(value_type = Vec<String>)]
    pub indicators: Vec<Code>,
    pub last_progress: Option<LastProgress>,
}

impl TaskView {
    pub fn of(task: &Task, today: NaiveDate) -> Self {
        let def = &task.def;
        Self {
            code: def.code.clone(),
            title_vi: def.title_vi.clone(),
            title_en: def.title_en.clone(),
            directive: task.directive.clone(),
            owner: def.owner.clone(),
            cooperating: def.cooperating.clone(),
            group: def.group.clone(),
            due: def.due,
            status: task.status(today),
            completed_on: task.completed_on,
            percent: task.percent,
            indicators: def.indicators.clone(),
            last_progress: task.progress.last().map(|n: &ProgressNote| LastProgress {
                at: n.at,
                by: n.by.clone(),
                note: n.note.clone(),
                percent: n.percent,
            }),
        }
    }
}

/// The views of `tasks` on `today`, overdue first, then by due date and code.
pub fn views(tasks: &[Task], today: NaiveDate) -> Vec<TaskView> {
    let mut views: Vec<TaskView> = tasks.iter().map(|t| TaskView::of(t, today)).collect();
    views.sort_by(|a, b| {
        (a.status != TaskStatus::Overdue, a.due, &a.code).cmp(&(
            b.status != TaskStatus::Overdue,
            b.due,
            &b.code,
        ))
    });
    views
}

/// How many tasks have which status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct TaskCounts {
    pub total: usize,
    pub done: usize,
    pub done_late: usize,
    pub in_progress: usize,
    pub not_started: usize,
    pub overdue: usize,
}

impl TaskCounts {
    pub fn add(&mut self, status: TaskStatus) {
        self.total += 1;
        match status {
            TaskStatus::Done => self.done += 1,
            TaskStatus::DoneLate => self.done_late += 1,
            TaskStatus::InProgress => self.in_progress += 1,
            TaskStatus::NotStarted => self.not_started += 1,
            TaskStatus::Overdue => self.overdue += 1,
        }
    }

    /// Done on time or late: the x of "x/y nhiệm vụ hoàn thành".
    pub fn completed(&self) -> usize {
        self.done + self.done_late
    }

    /// `completed / total`; `None` for no task.
    pub fn share(&self) -> Option<f64> {
        (self.total > 0).then(|| self.completed() as f64 / self.total as f64)
    }
}

/// The counts of one department's tasks.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DepartmentCounts {
    #[schema(value_type = String)]
    pub department: Code,
    pub name_vi: String,
    pub name_en: String,
    #[serde(flatten)]
    pub counts: TaskCounts,
}

/// The counts of one sector group's tasks.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct GroupCounts {
    #[schema(value_type = String)]
    pub group: Code,
    pub name_vi: String,
    pub name_en: String,
    #[serde(flatten)]
    pub counts: TaskCounts,
}

/// The counts overall, by department (in the catalogue's order) and by group (in the groups'
/// order); only departments and groups with a task are listed.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TaskSummary {
    #[serde(flatten)]
    pub counts: TaskCounts,
    pub by_department: Vec<DepartmentCounts>,
    pub by_group: Vec<GroupCounts>,
}

pub fn summarize(views: &[TaskView], catalogue: &Catalogue) -> TaskSummary {
    let mut counts = TaskCounts::default();
    let mut by_department: BTreeMap<&Code, TaskCounts> = BTreeMap::new();
    let mut by_group: BTreeMap<&Code, TaskCounts> = BTreeMap::new();
    for view in views {
        counts.add(view.status);
        by_department
            .entry(&view.owner)
            .or_default()
            .add(view.status);
        by_group.entry(&view.group).or_default().add(view.status);
    }
    let mut departments: Vec<DepartmentCounts> = by_department
        .into_iter()
        .map(|(code, counts)| {
            let found = catalogue.department(code.as_str());
            DepartmentCounts {
                department: code.clone(),
                name_vi: found.map_or_else(|| code.to_string(), |d| d.name_vi.clone()),
                name_en: found.map_or_else(|| code.to_string(), |d| d.name_en.clone()),
                counts,
            }
        })
        .collect();
    let department_order = |code: &Code| {
        catalogue
            .departments
            .iter()
            .position(|d| d.code == *code)
            .unwrap_or(usize::MAX)
    };
    departments.sort_by_key(|d| department_order(&d.department));
    let mut groups: Vec<GroupCounts> = by_group
        .into_iter()
        .map(|(code, counts)| {
            let found = catalogue.group(code.as_str());
            GroupCounts {
                group: code.clone(),
                name_vi: found.map_or_else(|| code.to_string(), |g| g.name_vi.clone()),
                name_en: found.map_or_else(|| code.to_string(), |g| g.name_en.clone()),
                counts,
            }
        })
        .collect();
    groups.sort_by_key(|g| {
        catalogue
            .group(g.group.as_str())
            .map_or(u32::MAX, |g| g.order)
    });
    TaskSummary {
        counts,
        by_department: departments,
        by_group: groups,
    }
}
