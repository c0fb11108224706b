//! The tasks (nhiệm vụ) as the screens and the alerts see them: loaded from the store at start,
//! then kept current by the pipeline as tasks change here or on another instance. A task's
//! change goes as a `{"task": …}` delta to `overview`, to its owner's `department:` topic and to
//! the `indicator:` topic of each indicator it is linked to.

use std::collections::BTreeMap;
use std::sync::Mutex;

use chrono::NaiveDate;

use super::Topic;
use crate::domain::task::Task;
use crate::domain::task_view::{self, TaskView};
use crate::domain::Code;

/// Every task, by code.
#[derive(Debug, Default)]
pub struct Tasks {
    all: Mutex<BTreeMap<Code, Task>>,
}

impl Tasks {
    pub fn replace_all(&self, tasks: Vec<Task>) {
        let mut all = self.all.lock().unwrap_or_else(|p| p.into_inner());
        *all = tasks.into_iter().map(|t| (t.def.code.clone(), t)).collect();
    }

    /// Takes `task` as it now stands unless what is known was written later (an instance may
    /// read another's commit after its own later change).
    pub fn put(&self, task: Task) {
        let mut all = self.all.lock().unwrap_or_else(|p| p.into_inner());
        let newer = all
            .get(&task.def.code)
            .is_none_or(|known| task.updated_at >= known.updated_at);
        if newer {
            all.insert(task.def.code.clone(), task);
        }
    }

    pub fn all(&self) -> Vec<Task> {
        let all = self.all.lock().unwrap_or_else(|p| p.into_inner());
        all.values().cloned().collect()
    }

    /// The tasks a topic shows, judged on `today`: every task on `overview`, a department's own
    /// on its topic, those linked to an indicator on its topic.
    pub fn for_topic(&self, topic: &Topic, today: NaiveDate) -> Vec<TaskView> {
        let all = self.all();
        let shown: Vec<Task> = all
            .into_iter()
            .filter(|task| match topic {
                Topic::Overview => true,
                Topic::Department(code) => task.def.owner == *code,
                Topic::Indicator(code) => task.def.indicators.contains(code),
                _ => false,
            })
            .collect();
        task_view::views(&shown, today)
    }
}

/// The topics a task's change goes to.
pub fn topics(task: &Task) -> Vec<Topic> {
    let mut topics = vec![Topic::Overview, Topic::Department(task.def.owner.clone())];
    topics.extend(task.def.indicators.iter().cloned().map(Topic::Indicator));
    topics
}
