//! Reports as their readers get them: fetched with a viewer's token, and workbooks read back by
//! openpyxl (`tests/support/*.py`), as a spreadsheet program would open them.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::helpers::TestApp;

/// `GET path` with the viewer's token: the status, the content type and the body.
pub async fn get(app: &TestApp, path: &str) -> (u16, String, Vec<u8>) {
    let response = app
        .client
        .get(app.url(path))
        .bearer_auth(&app.viewer)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    let content_type = crate::helpers::content_type(response.headers());
    let body = response.bytes().await.expect("body").to_vec();
    (status, content_type, body)
}

/// The body of `GET path` with the viewer's token, which must answer `200`.
pub async fn fetch(app: &TestApp, path: &str) -> Vec<u8> {
    let (status, _, body) = get(app, path).await;
    assert_eq!(status, 200, "{path}");
    body
}

/// What a script of `tests/support` prints about a workbook, read by openpyxl, as JSON; `None`
/// when no Python has it (and not every backend is required).
fn openpyxl<T: serde::de::DeserializeOwned>(script: &str, args: &[&OsStr]) -> Option<T> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let python = std::env::var_os("KTXH_TEST_PYTHON")
        .map_or_else(|| root.join("target/test-venv/bin/python"), PathBuf::from);
    let output = Command::new(&python)
        .arg(root.join("tests/support").join(script))
        .args(args)
        .output();
    match output {
        Ok(output) if output.status.success() => {
            Some(serde_json::from_slice(&output.stdout).expect("JSON from the script"))
        }
        Ok(output) => panic!(
            "openpyxl could not read the report: {}",
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(e) if std::env::var("KTXH_TEST_REQUIRE_ALL_BACKENDS").is_ok_and(|v| v == "1") => {
            panic!("{} cannot run: {e}", python.display())
        }
        Err(_) => {
            eprintln!("skipped: no Python with openpyxl (scripts/test.sh installs it)");
            None
        }
    }
}

/// One sheet of a workbook as openpyxl reads it.
pub fn xlsx_sheet(path: &Path, sheet: &str) -> Option<Vec<Vec<Value>>> {
    openpyxl("xlsx_sheet.py", &[path.as_os_str(), sheet.as_ref()])
}

/// Every number cell of a workbook with its number format.
pub fn xlsx_formats(path: &Path) -> Option<Vec<Value>> {
    openpyxl("xlsx_formats.py", &[path.as_os_str()])
}
