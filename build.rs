//! Embeds the operations-room screen (`dashboards/ops-room/`) in the binary, so the service
//! serves it with no build step of its own and no files beside the executable.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::{env, fs};

const SCREEN_DIR: &str = "dashboards/ops-room";

fn files(dir: &Path, prefix: &str, out: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            files(&path, &format!("{prefix}{name}/"), out);
        } else {
            out.push((format!("{prefix}{name}"), path));
        }
    }
}

fn main() {
    println!("cargo:rerun-if-changed={SCREEN_DIR}");
    // `sqlx::migrate!` embeds the migrations at compile time, but cargo does not know it reads
    // them: once this script names what it watches, a migration added to a built tree would
    // otherwise be left out of the next build.
    println!("cargo:rerun-if-changed=migrations");
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let mut found = Vec::new();
    files(&root.join(SCREEN_DIR), "", &mut found);
    let mut code = String::from("/// The screen's files: path below the root, contents.\npub static ASSETS: &[(&str, &[u8])] = &[\n");
    for (name, path) in &found {
        println!("cargo:rerun-if-changed={}", path.display());
        writeln!(
            code,
            "    ({name:?}, include_bytes!({:?})),",
            path.display().to_string()
        )
        .expect("writing to a String");
    }
    code.push_str("];\n");
    let out = PathBuf::from(env::var("OUT_DIR").expect("set by cargo")).join("screen_assets.rs");
    fs::write(out, code).expect("OUT_DIR is writable");
}
