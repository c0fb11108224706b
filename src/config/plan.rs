//! Loads and validates the five-year plans, `config/plan/<start>-<end>.toml`:
//!
//! ```text
//! start_year = 2026
//! end_year = 2030
//! name_vi = "…"
//! name_en = "…"
//! source = "…"                    # the resolution
//! [[target]]
//! indicator = "GRDP_PER_CAPITA"   # a catalogue code
//! unit = "HCM"                    # the city when absent
//! direction = "increase"          # increase | decrease | at_least | at_most
//! baseline_year = 2025
//! baseline = 8944.0
//! baseline_source = "…"           # optional
//! target_year = 2030
//! target = 14000.0
//! source = "…"                    # or illustrative = true
//! ```
//!
//! Every problem names its file and key, and all of them are reported at once, as for the
//! catalogue. A plan is checked against what Open SDG's measure can judge (ARCHITECTURE §4): a
//! baseline and a target of one sign, a target year after the baseline year, and a direction
//! that agrees with the indicator's and with the way from the baseline to the target.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{ConfigError, ConfigProblem};
use crate::domain::five_year_plan::{FiveYearPlan, PlanDirection, PlanTarget};
use crate::domain::{Catalogue, Code, Direction};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanFile {
    start_year: i32,
    end_year: i32,
    name_vi: String,
    name_en: String,
    source: Option<String>,
    #[serde(default)]
    target: Vec<RawPlanTarget>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlanTarget {
    indicator: Code,
    unit: Option<Code>,
    direction: PlanDirection,
    baseline_year: i32,
    baseline: f64,
    baseline_source: Option<String>,
    target_year: i32,
    target: f64,
    source: Option<String>,
    #[serde(default)]
    illustrative: bool,
}

/// Loads every plan under `dir`; a missing directory means no plan.
pub fn load_plans(dir: &Path, catalogue: &Catalogue) -> Result<Vec<FiveYearPlan>, ConfigError> {
    let mut problems = Vec::new();
    let plans = load_into(dir, catalogue, &mut problems);
    if problems.is_empty() {
        Ok(plans)
    } else {
        Err(ConfigError(problems))
    }
}

/// [`load_plans`], adding its problems to the catalogue's.
pub(super) fn load_into(
    dir: &Path,
    catalogue: &Catalogue,
    problems: &mut Vec<ConfigProblem>,
) -> Vec<FiveYearPlan> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(error) => {
            problems.push(problem(dir, "", format!("cannot read directory: {error}")));
            return Vec::new();
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    let mut plans: Vec<FiveYearPlan> = files
        .iter()
        .filter_map(|file| load_file(file, catalogue, problems))
        .collect();
    plans.sort_by_key(|plan| plan.start_year);
    for pair in plans.windows(2) {
        if pair[1].start_year <= pair[0].end_year {
            problems.push(problem(
                &dir.join(format!("{}.toml", pair[1].code)),
                "start_year",
                format!("overlaps the plan {}", pair[0].code),
            ));
        }
    }
    plans
}

fn problem(file: &Path, key: impl Into<String>, message: impl Into<String>) -> ConfigProblem {
    ConfigProblem {
        file: file.to_owned(),
        key: key.into(),
        message: message.into(),
    }
}

fn load_file(
    file: &Path,
    catalogue: &Catalogue,
    problems: &mut Vec<ConfigProblem>,
) -> Option<FiveYearPlan> {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(error) => {
            problems.push(problem(file, "", format!("cannot read: {error}")));
            return None;
        }
    };
    let parsed: PlanFile = match serde_path_to_error::deserialize(toml::Deserializer::new(&text)) {
        Ok(parsed) => parsed,
        Err(error) => {
            let key = error.path().to_string();
            let message = error.into_inner().to_string().replace('\n', " ");
            let key = if key == "." { String::new() } else { key };
            problems.push(problem(file, key, message));
            return None;
        }
    };
    let before = problems.len();
    let code = format!("{}-{}", parsed.start_year, parsed.end_year);
    let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    if !crate::domain::period::YEARS.contains(&parsed.start_year) {
        problems.push(problem(file, "start_year", "not a plausible year"));
    } else if parsed.end_year < parsed.start_year {
        problems.push(problem(file, "end_year", "is before `start_year`"));
    } else if stem != code {
        problems.push(problem(
            file,
            "start_year",
            format!("the file of the plan {code} is named `{code}.toml`"),
        ));
    }
    let root = catalogue.root_unit().map(|unit| unit.code.clone());
    let mut seen = HashSet::new();
    let mut targets = Vec::with_capacity(parsed.target.len());
    for (i, raw) in parsed.target.into_iter().enumerate() {
        let key = format!("target[{i}]");
        let Some(unit) = raw.unit.clone().or_else(|| root.clone()) else {
            problems.push(problem(
                file,
                format!("{key}.unit"),
                "the catalogue has no city unit",
            ));
            continue;
        };
        match check_target(&raw, &unit, parsed.start_year, parsed.end_year, catalogue) {
            Ok(()) => {}
            Err((field, message)) => {
                problems.push(problem(file, format!("{key}.{field}"), message));
                continue;
            }
        }
        if !seen.insert((raw.indicator.clone(), unit.clone())) {
            problems.push(problem(
                file,
                format!("{key}.indicator"),
                format!("second target for `{}` in `{unit}`", raw.indicator),
            ));
            continue;
        }
        targets.push(PlanTarget {
            indicator: raw.indicator,
            unit,
            direction: raw.direction,
            baseline_year: raw.baseline_year,
            baseline: raw.baseline,
            baseline_source: raw.baseline_source,
            target_year: raw.target_year,
            target: raw.target,
            source: raw.source,
            illustrative: raw.illustrative,
        });
    }
    (problems.len() == before).then_some(FiveYearPlan {
        code,
        start_year: parsed.start_year,
        end_year: parsed.end_year,
        name_vi: parsed.name_vi,
        name_en: parsed.name_en,
        source: parsed.source,
        targets,
    })
}

/// The first problem of one target, as `(field, message)`.
fn check_target(
    raw: &RawPlanTarget,
    unit: &Code,
    start_year: i32,
    end_year: i32,
    catalogue: &Catalogue,
) -> Result<(), (&'static str, String)> {
    let Some(indicator) = catalogue.indicator(raw.indicator.as_str()) else {
        return Err((
            "indicator",
            format!("unknown indicator `{}`", raw.indicator),
        ));
    };
    if catalogue.unit(unit.as_str()).is_none() {
        return Err(("unit", format!("unknown unit `{unit}`")));
    }
    let wanted = raw.direction.measure();
    if indicator.direction != Direction::Within && indicator.direction != wanted {
        return Err((
            "direction",
            format!(
                "`{}` is {} in the catalogue; `{}` goes the other way",
                indicator.code,
                match indicator.direction {
                    Direction::HigherIsBetter => "higher_is_better",
                    _ => "lower_is_better",
                },
                raw.direction.as_str()
            ),
        ));
    }
    if !raw.baseline.is_finite() {
        return Err(("baseline", "must be a finite number".into()));
    }
    if !raw.target.is_finite() {
        return Err(("target", "must be a finite number".into()));
    }
    if !(start_year - 5..=end_year).contains(&raw.baseline_year) {
        return Err((
            "baseline_year",
            format!("must be between {} and {end_year}", start_year - 5),
        ));
    }
    if raw.target_year <= raw.baseline_year {
        return Err((
            "target_year",
            format!(
                "{} is not after the baseline year {}",
                raw.target_year, raw.baseline_year
            ),
        ));
    }
    if !(start_year..=end_year).contains(&raw.target_year) {
        return Err((
            "target_year",
            format!("must be within the plan's years {start_year}–{end_year}"),
        ));
    }
    // The measure compares growth rates, which need one sign from the baseline to the target
    // (Open SDG cannot assess the other case either).
    if raw.baseline != 0.0 && raw.target != 0.0 && raw.baseline.signum() != raw.target.signum() {
        return Err((
            "target",
            "has the other sign than the baseline: the growth to it is undefined".into(),
        ));
    }
    let moves_the_wrong_way = match raw.direction {
        PlanDirection::Increase => raw.target <= raw.baseline,
        PlanDirection::Decrease => raw.target >= raw.baseline,
        // A level to keep may equal the baseline; it may not lie behind it.
        PlanDirection::AtLeast => raw.target < raw.baseline,
        PlanDirection::AtMost => raw.target > raw.baseline,
    };
    if moves_the_wrong_way {
        return Err((
            "target",
            format!(
                "`{}` from {} to {} is not the way the direction goes",
                raw.direction.as_str(),
                raw.baseline,
                raw.target
            ),
        ));
    }
    if raw.source.is_none() && !raw.illustrative {
        return Err((
            "source",
            "cite a `source` or mark the target `illustrative = true`".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalogue() -> Catalogue {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config");
        crate::config::load_catalogue(&dir).expect("the shipped catalogue is valid")
    }

    const HEADER: &str =
        "start_year = 2026\nend_year = 2030\nname_vi = \"Kế hoạch\"\nname_en = \"Plan\"\n";

    fn target(fields: &str) -> String {
        format!("[[target]]\n{fields}\n")
    }

    const GOOD: &str = "indicator = \"GRDP_PER_CAPITA\"\ndirection = \"increase\"\nbaseline_year = 2025\nbaseline = 8944.0\ntarget_year = 2030\ntarget = 14000.0\nsource = \"NQ\"";

    fn load(name: &str, text: &str) -> Result<Vec<FiveYearPlan>, ConfigError> {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join(name), text).expect("write");
        load_plans(dir.path(), &catalogue())
    }

    fn refused(name: &str, text: &str) -> ConfigProblem {
        let error = load(name, text).expect_err("refused");
        assert_eq!(error.0.len(), 1, "{error}");
        error.0[0].clone()
    }

    #[test]
    fn the_shipped_plan_loads_with_every_target_in_the_city() {
        let catalogue = catalogue();
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/plan");
        let plans = load_plans(&dir, &catalogue).expect("the shipped plan is valid");
        let plan = plans
            .iter()
            .find(|p| p.code == "2026-2030")
            .expect("2026-2030");
        assert!(plan.targets.len() >= 10);
        assert!(plan.targets.iter().all(|t| t.unit.as_str() == "HCM"));
        assert!(plan.targets.iter().any(|t| !t.illustrative));
        assert_eq!(catalogue.plans, plans, "load_catalogue reads config/plan");
    }

    #[test]
    fn a_good_target_loads_for_the_city() {
        let plans = load("2026-2030.toml", &format!("{HEADER}{}", target(GOOD))).expect("loads");
        assert_eq!(plans[0].targets[0].unit.as_str(), "HCM");
        assert_eq!(plans[0].targets[0].direction, PlanDirection::Increase);
    }

    #[test]
    fn a_bad_target_is_refused_naming_the_file_and_the_key() {
        let cases: [(&str, &str, &str); 9] = [
            (
                "GRDP_PER_CAPITA",
                "NO_SUCH_INDICATOR",
                "target[0].indicator",
            ),
            (
                "target_year = 2030",
                "target_year = 2025",
                "target[0].target_year",
            ),
            (
                "target_year = 2030",
                "target_year = 2032",
                "target[0].target_year",
            ),
            ("\"increase\"", "\"decrease\"", "target[0].direction"),
            ("target = 14000.0", "target = 8000.0", "target[0].target"),
            ("target = 14000.0", "target = -14000.0", "target[0].target"),
            ("source = \"NQ\"", "", "target[0].source"),
            ("\"increase\"", "\"upwards\"", "target[0].direction"),
            (
                "baseline_year = 2025",
                "baseline_year = 2012",
                "target[0].baseline_year",
            ),
        ];
        for (from, to, key) in cases {
            let text = format!("{HEADER}{}", target(&GOOD.replace(from, to)));
            let problem = refused("2026-2030.toml", &text);
            assert!(problem.file.ends_with("2026-2030.toml"), "{problem}");
            assert!(problem.key.starts_with(key), "{from} → {to}: {problem}");
            assert!(problem.to_string().contains("2026-2030.toml"), "{problem}");
        }
    }

    #[test]
    fn a_file_named_for_other_years_and_a_second_target_are_refused() {
        let problem = refused("2026-2031.toml", &format!("{HEADER}{}", target(GOOD)));
        assert_eq!(problem.key, "start_year");
        let twice = format!("{HEADER}{}{}", target(GOOD), target(GOOD));
        let problem = refused("2026-2030.toml", &twice);
        assert_eq!(problem.key, "target[1].indicator");
    }

    #[test]
    fn an_unknown_key_is_refused() {
        let text = format!("{HEADER}{}", target(&format!("{GOOD}\nbase = 1.0")));
        let problem = refused("2026-2030.toml", &text);
        assert!(problem.key.starts_with("target"), "{problem}");
        assert!(problem.message.contains("base"), "{problem}");
    }

    #[test]
    fn no_plan_directory_means_no_plan() {
        let dir = tempfile::tempdir().expect("temp dir");
        let plans = load_plans(&dir.path().join("plan"), &catalogue()).expect("no plans");
        assert!(plans.is_empty());
    }
}
