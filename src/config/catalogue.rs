//! Loads and validates the catalogue files:
//!
//! ```text
//! config/catalogue/groups.toml        [[group]]
//! config/catalogue/departments.toml   [[department]]
//! config/catalogue/units.toml         [[unit]]  (a tree of any depth)
//! config/catalogue/indicators/*.toml  [[indicator]]
//! config/targets/*.toml               year = …, [[target]]
//! config/directives/*.toml            [[directive]], [[directive.task]] (`super::directives`)
//! config/plan/<start>-<end>.toml      the five-year plans (`config::plan`)
//! ```
//!
//! Every problem names its file and key, and all of them are reported at once.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::{ConfigError, ConfigProblem};
use crate::domain::calendar::IndicatorRelease;
use crate::domain::{
    Catalogue, Code, Department, Direction, Group, Indicator, Kind, OrgUnit, Periodicity,
    PlanSource, Rollup, Target, TargetValue,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupsFile {
    group: Vec<RawGroup>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    code: Code,
    order: u32,
    name_vi: String,
    name_en: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DepartmentsFile {
    department: Vec<RawDepartment>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDepartment {
    code: Code,
    name_vi: String,
    name_en: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnitsFile {
    unit: Vec<RawUnit>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUnit {
    code: Code,
    parent: Option<Code>,
    name_vi: String,
    name_en: String,
    level: String,
    population: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IndicatorsFile {
    #[serde(default)]
    indicator: Vec<RawIndicator>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIndicator {
    code: Code,
    group: Code,
    name_vi: String,
    name_en: String,
    /// Short names for the wall mode; the full names when absent.
    #[serde(default)]
    short_vi: Option<String>,
    #[serde(default)]
    short_en: Option<String>,
    measure_vi: String,
    measure_en: String,
    periodicity: Periodicity,
    kind: Kind,
    direction: Direction,
    rollup: Rollup,
    department: Code,
    tolerance: f64,
    /// Counted in whole units: a figure with a fraction is refused.
    #[serde(default)]
    whole: bool,
    range: [f64; 2],
    source: Option<String>,
    #[serde(default)]
    plan: Option<PlanSource>,
    /// Read as it stands and checked with the indicator (`IndicatorRelease`), so that every
    /// problem in it names the indicator.
    #[serde(default)]
    release: Option<toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetsFile {
    year: i32,
    #[serde(default)]
    target: Vec<RawTarget>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    indicator: Code,
    unit: Option<Code>,
    value: Option<f64>,
    lo: Option<f64>,
    hi: Option<f64>,
    tolerance: Option<f64>,
    source: Option<String>,
    #[serde(default)]
    illustrative: bool,
}

/// Collects problems while loading, so a single check reports all of them.
#[derive(Default)]
struct Problems(Vec<ConfigProblem>);

impl Problems {
    fn push(&mut self, file: &Path, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigProblem {
            file: file.to_owned(),
            key: key.into(),
            message: message.into(),
        });
    }

    fn read<T: DeserializeOwned>(&mut self, file: &Path) -> Option<T> {
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(e) => {
                self.push(file, "", format!("cannot read: {e}"));
                return None;
            }
        };
        let deserializer = toml::Deserializer::new(&text);
        match serde_path_to_error::deserialize(deserializer) {
            Ok(value) => Some(value),
            Err(e) => {
                let key = e.path().to_string();
                let message = e.into_inner().to_string().replace('\n', " ");
                self.push(file, if key == "." { String::new() } else { key }, message);
                None
            }
        }
    }
}

fn toml_files_in(dir: &Path, problems: &mut Problems) -> Vec<PathBuf> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            problems.push(dir, "", format!("cannot read directory: {e}"));
            return Vec::new();
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    files
}

/// Loads the catalogue under `dir` (the configuration directory).
pub fn load_catalogue(dir: &Path) -> Result<Catalogue, ConfigError> {
    let mut problems = Problems::default();
    let catalogue_dir = dir.join("catalogue");

    let groups = load_groups(&catalogue_dir.join("groups.toml"), &mut problems);
    let departments = load_departments(&catalogue_dir.join("departments.toml"), &mut problems);
    let units = load_units(&catalogue_dir.join("units.toml"), &mut problems);
    let indicators = load_indicators(
        &catalogue_dir.join("indicators"),
        &groups,
        &departments,
        &mut problems,
    );
    let partial = Catalogue::new(groups, departments, units, indicators, Vec::new());
    let targets = load_targets(&dir.join("targets"), &partial, &mut problems);
    let plans = super::plan::load_into(&dir.join("plan"), &partial, &mut problems.0);
    let (directives, tasks) = super::directives::load_directives(&dir.join("directives"), &partial)
        .unwrap_or_else(|found| {
            problems.0.extend(found);
            Default::default()
        });

    if !problems.0.is_empty() {
        return Err(ConfigError(problems.0));
    }
    let Catalogue {
        groups,
        departments,
        units,
        indicators,
        ..
    } = partial;
    Ok(
        Catalogue::new(groups, departments, units, indicators, targets)
            .with_plans(plans)
            .with_tasks(directives, tasks),
    )
}

fn load_groups(file: &Path, problems: &mut Problems) -> Vec<Group> {
    let Some(parsed) = problems.read::<GroupsFile>(file) else {
        return Vec::new();
    };
    let mut seen_codes = HashSet::new();
    let mut seen_orders = HashSet::new();
    let mut groups = Vec::new();
    for (i, raw) in parsed.group.into_iter().enumerate() {
        let key = format!("group[{i}]");
        if !seen_codes.insert(raw.code.clone()) {
            problems.push(
                file,
                format!("{key}.code"),
                format!("duplicate group code `{}`", raw.code),
            );
            continue;
        }
        if !seen_orders.insert(raw.order) {
            problems.push(
                file,
                format!("{key}.order"),
                format!("order {} is used twice", raw.order),
            );
        }
        groups.push(Group {
            code: raw.code,
            order: raw.order,
            name_vi: raw.name_vi,
            name_en: raw.name_en,
        });
    }
    groups.sort_by_key(|g| g.order);
    groups
}

fn load_departments(file: &Path, problems: &mut Problems) -> Vec<Department> {
    let Some(parsed) = problems.read::<DepartmentsFile>(file) else {
        return Vec::new();
    };
    let mut seen = HashSet::new();
    let mut departments = Vec::new();
    for (i, raw) in parsed.department.into_iter().enumerate() {
        if !seen.insert(raw.code.clone()) {
            problems.push(
                file,
                format!("department[{i}].code"),
                format!("duplicate department code `{}`", raw.code),
            );
            continue;
        }
        departments.push(Department {
            code: raw.code,
            name_vi: raw.name_vi,
            name_en: raw.name_en,
        });
    }
    departments
}

fn load_units(file: &Path, problems: &mut Problems) -> Vec<OrgUnit> {
    let Some(parsed) = problems.read::<UnitsFile>(file) else {
        return Vec::new();
    };
    let mut units: Vec<OrgUnit> = Vec::new();
    let mut seen = HashSet::new();
    for (i, raw) in parsed.unit.into_iter().enumerate() {
        if !seen.insert(raw.code.clone()) {
            problems.push(
                file,
                format!("unit[{i}].code"),
                format!("duplicate unit code `{}`", raw.code),
            );
            continue;
        }
        units.push(OrgUnit {
            code: raw.code,
            parent: raw.parent,
            name_vi: raw.name_vi,
            name_en: raw.name_en,
            level: raw.level,
            population: raw.population,
        });
    }
    let roots = units.iter().filter(|u| u.parent.is_none()).count();
    if roots != 1 {
        problems.push(
            file,
            "unit",
            format!("the tree needs exactly one root (a unit without parent), found {roots}"),
        );
    }
    let parents: HashMap<&Code, Option<&Code>> =
        units.iter().map(|u| (&u.code, u.parent.as_ref())).collect();
    for (i, unit) in units.iter().enumerate() {
        let Some(parent) = &unit.parent else { continue };
        if !parents.contains_key(parent) {
            problems.push(
                file,
                format!("unit[{i}].parent"),
                format!("unknown unit `{parent}`"),
            );
            continue;
        }
        // Walk up at most `len` steps: a longer walk means a cycle.
        let mut cursor = Some(parent);
        let mut steps = 0;
        while let Some(code) = cursor {
            steps += 1;
            if code == &unit.code || steps > units.len() {
                problems.push(
                    file,
                    format!("unit[{i}].parent"),
                    format!("`{}` is its own ancestor", unit.code),
                );
                break;
            }
            cursor = parents.get(code).copied().flatten();
        }
    }
    units
}

fn load_indicators(
    dir: &Path,
    groups: &[Group],
    departments: &[Department],
    problems: &mut Problems,
) -> Vec<Indicator> {
    let group_codes: HashSet<&Code> = groups.iter().map(|g| &g.code).collect();
    let department_codes: HashSet<&Code> = departments.iter().map(|d| &d.code).collect();
    let mut defined_in: HashMap<Code, PathBuf> = HashMap::new();
    let mut indicators = Vec::new();
    for file in toml_files_in(dir, problems) {
        let Some(parsed) = problems.read::<IndicatorsFile>(&file) else {
            continue;
        };
        for (i, raw) in parsed.indicator.into_iter().enumerate() {
            let key = format!("indicator[{i}]");
            if let Some(first) = defined_in.get(&raw.code) {
                problems.push(
                    &file,
                    format!("{key}.code"),
                    format!(
                        "duplicate indicator code `{}` (first defined in {})",
                        raw.code,
                        first.display()
                    ),
                );
                continue;
            }
            defined_in.insert(raw.code.clone(), file.clone());
            if !group_codes.contains(&raw.group) {
                problems.push(
                    &file,
                    format!("{key}.group"),
                    format!("unknown group `{}`", raw.group),
                );
            }
            if !department_codes.contains(&raw.department) {
                problems.push(
                    &file,
                    format!("{key}.department"),
                    format!("unknown department `{}`", raw.department),
                );
            }
            if !(raw.tolerance > 0.0 && raw.tolerance < 1.0) {
                problems.push(
                    &file,
                    format!("{key}.tolerance"),
                    "must be a fraction between 0 and 1 (0.05 = 5 %)",
                );
            }
            if let Some(PlanSource::Monthly(shares)) = &raw.plan {
                let total: f64 = shares.iter().sum();
                if shares.iter().any(|s| !s.is_finite() || *s < 0.0) || (total - 1.0).abs() > 1e-6 {
                    problems.push(
                        &file,
                        format!("{key}.plan"),
                        "twelve non-negative monthly shares summing to 1",
                    );
                }
            }
            let [min, max] = raw.range;
            if !(min.is_finite() && max.is_finite() && min < max) {
                problems.push(
                    &file,
                    format!("{key}.range"),
                    "must be [min, max] with finite min < max",
                );
            }
            let release = raw.release.and_then(|value| {
                release(value, &raw.code, raw.periodicity, &file, &key, problems)
            });
            let short_vi = short_name(
                raw.short_vi,
                &raw.name_vi,
                &file,
                &key,
                "short_vi",
                problems,
            );
            let short_en = short_name(
                raw.short_en,
                &raw.name_en,
                &file,
                &key,
                "short_en",
                problems,
            );
            indicators.push(Indicator {
                code: raw.code,
                group: raw.group,
                name_vi: raw.name_vi,
                name_en: raw.name_en,
                short_vi,
                short_en,
                measure_vi: raw.measure_vi,
                measure_en: raw.measure_en,
                periodicity: raw.periodicity,
                kind: raw.kind,
                direction: raw.direction,
                rollup: raw.rollup,
                department: raw.department,
                tolerance: raw.tolerance,
                whole: raw.whole,
                range: (min, max),
                source: raw.source,
                plan: raw.plan.unwrap_or_default(),
                release,
            });
        }
    }
    check_short_names(&indicators, dir, problems);
    indicators
}

/// A short name as given (trimmed), or the full name when there is none; an empty one is a
/// problem, since the wall would show a blank row.
fn short_name(
    given: Option<String>,
    full: &str,
    file: &Path,
    key: &str,
    field: &str,
    problems: &mut Problems,
) -> String {
    match given.map(|s| s.trim().to_owned()) {
        Some(short) if short.is_empty() => {
            problems.push(file, format!("{key}.{field}"), "must not be empty");
            full.to_owned()
        }
        Some(short) => short,
        None => full.to_owned(),
    }
}

/// Two indicators of one group with the same short name would read alike on the wall, which
/// shows a group's targets together by their short names.
fn check_short_names(indicators: &[Indicator], dir: &Path, problems: &mut Problems) {
    for (field, short) in [
        (
            "short_vi",
            (|i: &Indicator| &i.short_vi) as fn(&Indicator) -> &String,
        ),
        ("short_en", |i: &Indicator| &i.short_en),
    ] {
        let mut seen: HashMap<(&Code, String), &Code> = HashMap::new();
        for indicator in indicators {
            let name = short(indicator).to_lowercase();
            if let Some(first) = seen.insert((&indicator.group, name), &indicator.code) {
                problems.push(
                    dir,
                    format!("indicator `{}`.{field}", indicator.code),
                    format!(
                        "`{}` is also the short name of `{first}` in group `{}`: give one a `{field}` of its own",
                        short(indicator),
                        indicator.group
                    ),
                );
            }
        }
    }
}

/// An indicator's own release calendar (`release = { … }`), or the problem with it, naming
/// the indicator and the key.
fn release(
    value: toml::Value,
    code: &Code,
    periodicity: Periodicity,
    file: &Path,
    key: &str,
    problems: &mut Problems,
) -> Option<IndicatorRelease> {
    let parsed: Result<IndicatorRelease, _> = serde_path_to_error::deserialize(value);
    let release = match parsed {
        Ok(release) => release,
        Err(e) => {
            let path = e.path().to_string();
            let at = if path == "." {
                format!("{key}.release")
            } else {
                format!("{key}.release.{path}")
            };
            let message = e.into_inner().to_string().replace('\n', " ");
            problems.push(file, at, format!("`{code}`: release calendar: {message}"));
            return None;
        }
    };
    match release.check(periodicity) {
        Ok(()) => Some(release),
        Err((field, message)) => {
            problems.push(
                file,
                format!("{key}.release.{field}"),
                format!("`{code}`: release calendar: {message}"),
            );
            None
        }
    }
}

fn load_targets(dir: &Path, catalogue: &Catalogue, problems: &mut Problems) -> Vec<Target> {
    let mut targets = Vec::new();
    let mut seen: HashMap<(i32, Code, Code), PathBuf> = HashMap::new();
    let Some(root) = catalogue.root_unit().map(|u| u.code.clone()) else {
        return targets;
    };
    for file in toml_files_in(dir, problems) {
        let Some(parsed) = problems.read::<TargetsFile>(&file) else {
            continue;
        };
        let year = parsed.year;
        if !crate::domain::period::YEARS.contains(&year) {
            problems.push(&file, "year", format!("{year} is not a plausible year"));
            continue;
        }
        for (i, raw) in parsed.target.into_iter().enumerate() {
            let key = format!("target[{i}]");
            let unit = raw.unit.clone().unwrap_or_else(|| root.clone());
            let Some(indicator) = catalogue.indicator(raw.indicator.as_str()) else {
                problems.push(
                    &file,
                    format!("{key}.indicator"),
                    format!("unknown indicator `{}`", raw.indicator),
                );
                continue;
            };
            if catalogue.unit(unit.as_str()).is_none() {
                problems.push(
                    &file,
                    format!("{key}.unit"),
                    format!("unknown unit `{unit}`"),
                );
                continue;
            }
            let value = match target_value(&raw, indicator) {
                Ok(value) => value,
                Err((field, message)) => {
                    problems.push(&file, format!("{key}.{field}"), message);
                    continue;
                }
            };
            if let Some(tol) = raw.tolerance {
                if !(tol > 0.0 && tol < 1.0) {
                    problems.push(
                        &file,
                        format!("{key}.tolerance"),
                        "must be a fraction between 0 and 1",
                    );
                }
            }
            if raw.source.is_none() && !raw.illustrative {
                problems.push(
                    &file,
                    key.clone(),
                    "cite a `source` or mark the target `illustrative = true`",
                );
            }
            let natural_key = (year, raw.indicator.clone(), unit.clone());
            if let Some(first) = seen.insert(natural_key, file.clone()) {
                problems.push(
                    &file,
                    format!("{key}.indicator"),
                    format!(
                        "second {year} target for `{}` in unit `{unit}` (first in {})",
                        raw.indicator,
                        first.display()
                    ),
                );
                continue;
            }
            targets.push(Target {
                year,
                indicator: raw.indicator,
                unit,
                value,
                tolerance: raw.tolerance,
                source: raw.source,
                illustrative: raw.illustrative,
            });
        }
    }
    targets
}

/// A `within` indicator takes a band (`lo`, `hi`); the others take one `value`.
fn target_value(
    raw: &RawTarget,
    indicator: &Indicator,
) -> Result<TargetValue, (&'static str, String)> {
    let finite = |v: f64| v.is_finite();
    match (indicator.direction, raw.value, raw.lo, raw.hi) {
        (Direction::Within, None, Some(lo), Some(hi)) if finite(lo) && finite(hi) && lo <= hi => {
            Ok(TargetValue::Band { lo, hi })
        }
        (Direction::Within, ..) => Err((
            "lo",
            format!(
                "`{}` is judged within a band: give finite `lo` <= `hi` and no `value`",
                indicator.code
            ),
        )),
        (_, Some(value), None, None) if finite(value) => Ok(TargetValue::Point { value }),
        _ => Err((
            "value",
            format!(
                "`{}` needs one finite `value` (bands are for `within` indicators)",
                indicator.code
            ),
        )),
    }
}

#[cfg(test)]
#[path = "catalogue_short_tests.rs"]
mod short_name_tests;
