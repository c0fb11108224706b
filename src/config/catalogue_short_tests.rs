//! The short names of the shipped catalogue: the wall mode shows a group's targets by these, so
//! two alike within a group would be the wall's old problem again (names cut to the same start).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::load_catalogue;

/// The widest short name, in characters, that still fits one row of the wall at 28 px beside
/// its status word and figures (dashboards/ops-room/wall.css).
const LONGEST_SHORT_NAME: usize = 34;

fn shipped_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config")
}

#[test]
fn every_short_name_is_unique_within_its_group_in_both_languages() {
    let catalogue = load_catalogue(&shipped_config()).expect("the shipped catalogue loads");
    assert!(catalogue.indicators.len() >= 100, "the whole catalogue");
    let mut vi: HashMap<(String, String), String> = HashMap::new();
    let mut en: HashMap<(String, String), String> = HashMap::new();
    for indicator in &catalogue.indicators {
        let group = indicator.group.to_string();
        for (seen, short) in [
            (&mut vi, &indicator.short_vi),
            (&mut en, &indicator.short_en),
        ] {
            let first = seen.insert(
                (group.clone(), short.to_lowercase()),
                indicator.code.to_string(),
            );
            assert!(
                first.is_none(),
                "`{short}` names both `{}` and `{}` in {group}",
                first.unwrap_or_default(),
                indicator.code
            );
        }
    }
}

#[test]
fn every_short_name_fits_a_wall_row_and_differs_from_a_long_name_only_by_being_shorter() {
    let catalogue = load_catalogue(&shipped_config()).expect("the shipped catalogue loads");
    for indicator in &catalogue.indicators {
        for (short, full) in [
            (&indicator.short_vi, &indicator.name_vi),
            (&indicator.short_en, &indicator.name_en),
        ] {
            let length = short.chars().count();
            assert!(
                length <= LONGEST_SHORT_NAME,
                "`{}`: short name `{short}` has {length} characters (at most {LONGEST_SHORT_NAME})",
                indicator.code
            );
            assert!(
                length <= full.chars().count(),
                "`{}`: `{short}` is longer than its full name `{full}`",
                indicator.code
            );
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn a_short_name_used_twice_in_a_group_or_left_empty_is_refused_naming_the_indicator() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&shipped_config(), dir.path());
    let file = dir.path().join("catalogue/indicators/01-economy.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    // GRDP per capita takes the growth rate's Vietnamese short name; the nominal GRDP an empty one.
    let text = text
        .replacen(
            "name_en = \"GRDP per capita\"\n",
            "name_en = \"GRDP per capita\"\nshort_vi = \"Tăng trưởng GRDP\"\n",
            1,
        )
        .replacen("short_en = \"Nominal GRDP (YTD)\"", "short_en = \" \"", 1);
    std::fs::write(&file, text).unwrap();
    let err = load_catalogue(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("GRDP_PER_CAPITA") && err.contains("short_vi"),
        "{err}"
    );
    assert!(err.contains("GRDP_GROWTH"), "{err}");
    assert!(err.contains("indicator[1].short_en"), "{err}");
}
