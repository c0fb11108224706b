//! Loads `config/directives/*.toml`: the city's directives (`[[directive]]`) and the tasks each
//! assigns (`[[directive.task]]`), checked against the catalogue. Every problem names its file
//! and key, and all of them are reported at once; a missing directory means no tasks.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::Deserialize;

use super::ConfigProblem;
use crate::domain::task::{Directive, DirectiveKind, RecordedStatus, TaskDef, TaskSeed};
use crate::domain::{Catalogue, Code};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DirectivesFile {
    #[serde(default)]
    directive: Vec<RawDirective>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDirective {
    number: String,
    date: String,
    issuer: String,
    kind: String,
    title_vi: String,
    title_en: String,
    source: Option<String>,
    #[serde(default)]
    illustrative: bool,
    #[serde(default)]
    task: Vec<RawTask>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTask {
    code: Code,
    title_vi: String,
    title_en: String,
    owner: Code,
    #[serde(default)]
    cooperating: Vec<Code>,
    due: String,
    #[serde(default)]
    indicators: Vec<Code>,
    group: Option<Code>,
    /// Where the task stands when first stored: `not_started` (default), `in_progress`, `done`.
    status: Option<String>,
    completed_on: Option<String>,
    percent: Option<u8>,
}

/// The sector group a task is counted under when none is given: its first linked indicator's,
/// else the group of the first indicator its owner reports.
pub fn derived_group(catalogue: &Catalogue, owner: &Code, indicators: &[Code]) -> Option<Code> {
    indicators
        .iter()
        .find_map(|code| catalogue.indicator(code.as_str()))
        .or_else(|| catalogue.indicators.iter().find(|i| i.department == *owner))
        .map(|indicator| indicator.group.clone())
}

struct Loader<'a> {
    catalogue: &'a Catalogue,
    problems: Vec<ConfigProblem>,
    numbers: HashMap<String, PathBuf>,
    codes: HashMap<Code, PathBuf>,
}

impl Loader<'_> {
    fn push(&mut self, file: &Path, key: impl Into<String>, message: impl Into<String>) {
        self.problems.push(ConfigProblem {
            file: file.to_owned(),
            key: key.into(),
            message: message.into(),
        });
    }

    fn date(&mut self, file: &Path, key: &str, raw: &str) -> Option<NaiveDate> {
        match NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d") {
            Ok(date) if crate::domain::period::YEARS.contains(&chrono::Datelike::year(&date)) => {
                Some(date)
            }
            _ => {
                self.push(file, key, format!("`{raw}` is not a date as YYYY-MM-DD"));
                None
            }
        }
    }

    fn text(&mut self, file: &Path, key: &str, raw: &str) -> bool {
        if raw.trim().is_empty() {
            self.push(file, key, "must not be empty");
            return false;
        }
        true
    }

    fn directive(&mut self, file: &Path, key: &str, raw: &RawDirective) -> Option<Directive> {
        let mut ok = self.text(file, &format!("{key}.number"), &raw.number);
        ok &= self.text(file, &format!("{key}.issuer"), &raw.issuer);
        ok &= self.text(file, &format!("{key}.title_vi"), &raw.title_vi);
        ok &= self.text(file, &format!("{key}.title_en"), &raw.title_en);
        let date = self.date(file, &format!("{key}.date"), &raw.date);
        let kind = DirectiveKind::parse(&raw.kind);
        if kind.is_none() {
            let known: Vec<&str> = DirectiveKind::ALL.iter().map(|k| k.as_str()).collect();
            self.push(
                file,
                format!("{key}.kind"),
                format!("`{}` is not one of {}", raw.kind, known.join(", ")),
            );
        }
        if raw.source.is_none() && !raw.illustrative {
            self.push(
                file,
                key,
                "cite a `source` or mark the directive `illustrative = true`",
            );
            ok = false;
        }
        if let Some(first) = self.numbers.insert(raw.number.clone(), file.to_owned()) {
            self.push(
                file,
                format!("{key}.number"),
                format!(
                    "directive `{}` is given twice (first in {})",
                    raw.number,
                    first.display()
                ),
            );
            ok = false;
        }
        Some(Directive {
            number: raw.number.trim().to_owned(),
            date: date?,
            issuer: raw.issuer.trim().to_owned(),
            kind: kind?,
            title_vi: raw.title_vi.trim().to_owned(),
            title_en: raw.title_en.trim().to_owned(),
            source: raw.source.clone(),
            illustrative: raw.illustrative,
        })
        .filter(|_| ok)
    }

    fn task(
        &mut self,
        file: &Path,
        key: &str,
        raw: RawTask,
        directive: &Directive,
    ) -> Option<TaskSeed> {
        let catalogue = self.catalogue;
        let mut ok = self.text(file, &format!("{key}.title_vi"), &raw.title_vi);
        ok &= self.text(file, &format!("{key}.title_en"), &raw.title_en);
        if let Some(first) = self.codes.insert(raw.code.clone(), file.to_owned()) {
            self.push(
                file,
                format!("{key}.code"),
                format!(
                    "task `{}` is given twice (first in {})",
                    raw.code,
                    first.display()
                ),
            );
            ok = false;
        }
        if catalogue.department(raw.owner.as_str()).is_none() {
            self.push(
                file,
                format!("{key}.owner"),
                format!("unknown department `{}`", raw.owner),
            );
            ok = false;
        }
        for (i, unit) in raw.cooperating.iter().enumerate() {
            let known = catalogue.department(unit.as_str()).is_some()
                || catalogue.unit(unit.as_str()).is_some();
            if !known {
                self.push(
                    file,
                    format!("{key}.cooperating[{i}]"),
                    format!("`{unit}` is neither a department nor a unit of the catalogue"),
                );
                ok = false;
            }
        }
        for (i, indicator) in raw.indicators.iter().enumerate() {
            if catalogue.indicator(indicator.as_str()).is_none() {
                self.push(
                    file,
                    format!("{key}.indicators[{i}]"),
                    format!("unknown indicator `{indicator}`"),
                );
                ok = false;
            }
        }
        let group = match &raw.group {
            Some(group) if catalogue.group(group.as_str()).is_none() => {
                self.push(
                    file,
                    format!("{key}.group"),
                    format!("unknown group `{group}`"),
                );
                None
            }
            Some(group) => Some(group.clone()),
            None => {
                let derived = derived_group(catalogue, &raw.owner, &raw.indicators);
                if derived.is_none() {
                    self.push(file, key, "no group: link an indicator or give `group`");
                }
                derived
            }
        };
        let due = self.date(file, &format!("{key}.due"), &raw.due);
        if due.is_some_and(|due| due < directive.date) {
            self.push(
                file,
                format!("{key}.due"),
                format!("due before its directive was issued ({})", directive.date),
            );
            ok = false;
        }
        let recorded = match raw.status.as_deref() {
            None => Some(RecordedStatus::NotStarted),
            Some(raw_status) => {
                let parsed = RecordedStatus::parse(raw_status);
                if parsed.is_none() {
                    self.push(
                        file,
                        format!("{key}.status"),
                        format!("`{raw_status}` is not not_started, in_progress or done"),
                    );
                }
                parsed
            }
        };
        let completed_on = match raw.completed_on.as_deref() {
            None => None,
            Some(text) => {
                let parsed = self.date(file, &format!("{key}.completed_on"), text);
                ok &= parsed.is_some();
                parsed
            }
        };
        if (recorded == Some(RecordedStatus::Done)) != completed_on.is_some() {
            self.push(
                file,
                format!("{key}.completed_on"),
                "give `completed_on` when, and only when, `status = \"done\"`",
            );
            ok = false;
        }
        if raw.percent.is_some_and(|p| p > 100) {
            self.push(file, format!("{key}.percent"), "must be 0 to 100");
            ok = false;
        }
        if !ok {
            return None;
        }
        Some(TaskSeed {
            def: TaskDef {
                code: raw.code,
                title_vi: raw.title_vi.trim().to_owned(),
                title_en: raw.title_en.trim().to_owned(),
                directive: directive.number.clone(),
                owner: raw.owner,
                cooperating: raw.cooperating,
                group: group?,
                due: due?,
                indicators: raw.indicators,
            },
            recorded: recorded?,
            completed_on,
            percent: raw.percent,
        })
    }
}

/// The directives and tasks under `dir`, or every problem found in them.
pub fn load_directives(
    dir: &Path,
    catalogue: &Catalogue,
) -> Result<(Vec<Directive>, Vec<TaskSeed>), Vec<ConfigProblem>> {
    let mut loader = Loader {
        catalogue,
        problems: Vec::new(),
        numbers: HashMap::new(),
        codes: HashMap::new(),
    };
    let mut directives = Vec::new();
    let mut tasks = Vec::new();
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            loader.push(dir, "", format!("cannot read directory: {e}"));
            Vec::new()
        }
    };
    files.sort();
    for file in files {
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(e) => {
                loader.push(&file, "", format!("cannot read: {e}"));
                continue;
            }
        };
        let parsed: DirectivesFile =
            match serde_path_to_error::deserialize(toml::Deserializer::new(&text)) {
                Ok(parsed) => parsed,
                Err(e) => {
                    let key = e.path().to_string();
                    let message = e.into_inner().to_string().replace('\n', " ");
                    loader.push(&file, if key == "." { String::new() } else { key }, message);
                    continue;
                }
            };
        for (i, raw) in parsed.directive.into_iter().enumerate() {
            let key = format!("directive[{i}]");
            let Some(directive) = loader.directive(&file, &key, &raw) else {
                continue;
            };
            for (j, task) in raw.task.into_iter().enumerate() {
                let task_key = format!("{key}.task[{j}]");
                if let Some(task) = loader.task(&file, &task_key, task, &directive) {
                    tasks.push(task);
                }
            }
            directives.push(directive);
        }
    }
    if loader.problems.is_empty() {
        Ok((directives, tasks))
    } else {
        Err(loader.problems)
    }
}
