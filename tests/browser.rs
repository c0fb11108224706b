//! The operations-room screen (`dashboards/ops-room/`) and the API reference (`/api/docs`) in a
//! real browser: Debian's Chromium, driven by `tests/browser/ops-room.mjs` and
//! `tests/browser/api-docs.mjs` (playwright-core) against the real binary.
//!
//! Needs `KTXH_TEST_CHROMIUM` (set by `scripts/test.sh`, which also installs Chromium and the
//! npm packages of `tests/browser/`). Without it the test is skipped, unless
//! `KTXH_TEST_REQUIRE_ALL_BACKENDS` is set, in which case a missing browser is a failure.

// Shared by the test binaries that run `ktxh`, each using its part.
#[allow(dead_code)]
#[path = "support/cli.rs"]
mod cli;
use cli::ktxh;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long the server may take to bind, and the browser script to finish (it bounds itself
/// at 120 s; this is the backstop).
const SERVER_START_TIMEOUT: Duration = Duration::from_secs(60);
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(180);

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The browser to use, or `None` when the test should be skipped.
fn chromium_or_skip() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("KTXH_TEST_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    assert!(
        std::env::var_os("KTXH_TEST_REQUIRE_ALL_BACKENDS").is_none(),
        "KTXH_TEST_REQUIRE_ALL_BACKENDS is set but KTXH_TEST_CHROMIUM is not: \
         run scripts/test.sh (or scripts/test.sh --setup-only) to install Chromium"
    );
    eprintln!(
        "skipped: KTXH_TEST_CHROMIUM is not set (scripts/test.sh installs Debian's chromium \
         and sets it)"
    );
    None
}

/// A token of `role` in the test's database.
fn create_token(database_url: &str, role: &str) -> String {
    cli::create_token(ktxh(database_url), role, &format!("browser-test-{role}"))
}

/// The server, killed when dropped (also when an assertion fails).
struct Server {
    child: Child,
    base_url: String,
    log: mpsc::Receiver<String>,
}

impl Server {
    /// Starts `ktxh serve` on port 0 (the kernel picks a free port, so parallel runs never
    /// collide) without demo data, so the screen's content is deterministic.
    fn start(database_url: &str) -> Self {
        let mut serve = ktxh(database_url);
        serve
            .args(["--log-json", "serve", "--listen", "127.0.0.1:0"])
            // The late row's check needs this year's past months to be owed, as on a service
            // that has run since January; a new database judges lateness from its first start.
            .env("KTXH__RELEASE_CALENDAR__STALENESS_FROM", "2000-01-01");
        Self::launch(serve, SERVER_START_TIMEOUT)
    }

    /// `ktxh serve --demo` on port 0: the demo's history and live feeds, as a newcomer sees
    /// them.
    fn demo(database_url: &str) -> Self {
        let mut serve = ktxh(database_url);
        serve.args(["--log-json", "serve", "--listen", "127.0.0.1:0", "--demo"]);
        // The demo seeds its history before it listens.
        Self::launch(serve, 4 * SERVER_START_TIMEOUT)
    }

    /// Spawns `serve` and waits up to `timeout` for the JSON log line `listening` that gives
    /// the bound address.
    fn launch(mut serve: Command, timeout: Duration) -> Self {
        let mut child = serve
            .env("RUST_LOG", "warn,ktxh::app=info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ktxh serve");
        let stderr = child.stderr.take().expect("piped stderr");
        let (lines, log) = mpsc::channel();
        // Keep draining the log so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = Server {
            child,
            base_url: String::new(),
            log,
        };
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        while server.base_url.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = server.log.recv_timeout(left).unwrap_or_else(|_| {
                panic!(
                    "ktxh serve did not report its address:\n{}",
                    seen.join("\n")
                )
            });
            if let Some(addr) = listening_address(&line) {
                server.base_url = format!("http://{addr}");
            }
            seen.push(line);
        }
        server
    }

    /// What the server logged since it started listening (warnings and errors).
    fn drain_log(&self) -> String {
        self.log.try_iter().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn listening_address(line: &str) -> Option<String> {
    let event: serde_json::Value = serde_json::from_str(line).ok()?;
    let fields = event.get("fields")?;
    if fields.get("message")?.as_str()? != "listening" {
        return None;
    }
    Some(fields.get("addr")?.as_str()?.to_owned())
}

/// Runs `command` to completion or until `timeout`, returning (success, stdout + stderr).
fn run_bounded(mut command: Command, timeout: Duration) -> (bool, String) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn node (is Node.js installed? scripts/test.sh installs it)");
    let readers: Vec<_> = [
        Box::new(child.stdout.take().expect("stdout")) as Box<dyn Read + Send>,
        Box::new(child.stderr.take().expect("stderr")),
    ]
    .into_iter()
    .map(|mut pipe| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    })
    .collect();
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for node") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output: String = readers
        .into_iter()
        .map(|reader| reader.join().unwrap_or_default())
        .collect();
    match status {
        Some(status) => (status.success(), output),
        None => (false, format!("{output}\n(killed after {timeout:?})")),
    }
}

#[test]
fn the_ops_room_screen_renders_updates_live_and_speaks_english_in_chromium() {
    on_a_fresh_server("ops-room.mjs", |_| Vec::new());
}

#[test]
fn an_explanation_posted_through_the_api_shows_on_the_wall_within_a_second_in_chromium() {
    on_a_fresh_server("explanations.mjs", |database_url| {
        vec![("HEALTH_TOKEN", department_token(database_url, "HEALTH"))]
    });
}

#[test]
fn a_city_figure_rolled_up_from_its_wards_shows_their_coverage_in_chromium() {
    on_a_fresh_server("coverage.mjs", |_| Vec::new());
}

#[test]
fn the_api_reference_renders_every_operation_filters_and_speaks_english_in_chromium() {
    let Some(chromium) = chromium_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let database_url = format!("sqlite://{}", dir.path().join("browser.db").display());
    let server = Server::start(&database_url);
    run_script(&chromium, &server, "api-docs.mjs", &[]);
}

/// Runs `tests/browser/<script>` in Chromium against a server on a fresh SQLite database, with
/// an admin's token (`ADMIN_TOKEN`), a viewer's (`VIEWER_TOKEN`) and what `more` adds from that
/// database before the server starts.
fn on_a_fresh_server(script: &str, more: impl FnOnce(&str) -> Vec<(&'static str, String)>) {
    let Some(chromium) = chromium_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let database_url = format!("sqlite://{}", dir.path().join("browser.db").display());
    let mut env = vec![
        ("ADMIN_TOKEN", create_token(&database_url, "admin")),
        ("VIEWER_TOKEN", create_token(&database_url, "viewer")),
    ];
    env.extend(more(&database_url));
    let server = Server::start(&database_url);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    run_script(&chromium, &server, script, &env);
}

/// Runs `tests/browser/<script>` against `server`; fails the test with the script's output and
/// the server's log unless every check of the script passed.
fn run_script(chromium: &Path, server: &Server, script: &str, env: &[(&str, &str)]) {
    let browser_dir = manifest_dir().join("tests/browser");
    assert!(
        browser_dir.join("node_modules/playwright-core").is_dir(),
        "tests/browser/node_modules/playwright-core is missing: run scripts/test.sh --setup-only"
    );
    let artefacts = manifest_dir().join("target/test-artefacts");
    std::fs::create_dir_all(&artefacts).expect("create target/test-artefacts");
    let mut node = Command::new("node");
    node.arg(browser_dir.join(script))
        .current_dir(&browser_dir)
        .env("BASE_URL", &server.base_url)
        .env("CHROMIUM", chromium)
        .env("ARTEFACT_DIR", &artefacts)
        .envs(env.iter().copied());
    let (passed, output) = run_bounded(node, SCRIPT_TIMEOUT);

    println!("{output}");
    let server_log = server.drain_log();
    assert!(
        passed,
        "the browser checks of {script} failed (screenshots in {}):\n{output}\nserver log:\n{server_log}",
        artefacts.display()
    );
}

#[test]
fn a_departments_page_lists_its_indicators_takes_a_value_and_explains_a_refusal_in_chromium() {
    let Some(chromium) = chromium_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let database_url = format!("sqlite://{}", dir.path().join("browser.db").display());
    let finance = department_token(&database_url, "FINANCE");
    let server = Server::start(&database_url);
    run_script(
        &chromium,
        &server,
        "department.mjs",
        &[("DEPARTMENT_TOKEN", &finance)],
    );
}

/// A token of `department`'s data officer in the test's database.
fn department_token(database_url: &str, department: &str) -> String {
    let output = ktxh(database_url)
        .args([
            "token",
            "create",
            "--role",
            "department",
            "--department",
            department,
        ])
        .args(["--name", "browser-test-department"])
        .output()
        .expect("run ktxh token create");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "token create --department {department} failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token = stdout.lines().last().unwrap_or_default().trim().to_owned();
    assert!(token.starts_with("ktxh_"), "no token in: {stdout}");
    token
}

#[test]
fn the_tasks_view_counts_as_the_api_and_a_departments_progress_note_shows_live_in_chromium() {
    // A department that owns tasks in the shipped config/directives/.
    let department = "FINANCE";
    on_a_fresh_server("tasks.mjs", |database_url| {
        vec![
            ("DEPARTMENT", department.to_owned()),
            (
                "DEPARTMENT_TOKEN",
                department_token(database_url, department),
            ),
        ]
    });
}

#[test]
fn the_five_year_plan_shows_its_categories_and_a_pushed_figure_moves_a_target_in_chromium() {
    on_a_fresh_server("plan.mjs", |_| Vec::new());
}

#[test]
fn a_wards_board_is_reached_by_the_picker_and_changes_live_when_the_ward_reports_in_chromium() {
    on_a_fresh_server("ward-board.mjs", |_| Vec::new());
}

#[test]
fn an_excel_workbook_uploaded_on_a_departments_page_is_previewed_then_stored_in_chromium() {
    use chrono::Datelike as _;
    let Some(chromium) = chromium_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let database_url = format!("sqlite://{}", dir.path().join("browser.db").display());
    let finance = department_token(&database_url, "FINANCE");
    // A yearly index, its year typed as a number as people do; the second row's period is a
    // month, which the yearly index refuses.
    let year = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Ho_Chi_Minh)
        .year()
        - 3;
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (column, name) in ["indicator", "unit", "period", "value"].iter().enumerate() {
        sheet.write_string(0, column as u16, *name).expect("header");
    }
    sheet.write_string(1, 0, "PCI_SCORE").expect("cell");
    sheet.write_string(1, 1, "HCM").expect("cell");
    sheet.write_number(1, 2, f64::from(year)).expect("cell");
    sheet.write_number(1, 3, 63.4).expect("cell");
    sheet.write_string(2, 0, "PCI_SCORE").expect("cell");
    sheet.write_string(2, 1, "HCM").expect("cell");
    sheet
        .write_string(2, 2, format!("{year}-03"))
        .expect("cell");
    sheet.write_number(2, 3, 60.0).expect("cell");
    let file = dir.path().join("pci.xlsx");
    book.save(&file).expect("save the workbook");
    let server = Server::start(&database_url);
    run_script(
        &chromium,
        &server,
        "xlsx-upload.mjs",
        &[
            ("DEPARTMENT_TOKEN", &finance),
            ("XLSX_FILE", &file.display().to_string()),
            ("XLSX_PERIOD", &year.to_string()),
        ],
    );
}

#[test]
fn the_walls_alert_count_is_the_leaderships_and_agrees_with_the_header_on_the_demo_in_chromium() {
    let Some(chromium) = chromium_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let database_url = format!("sqlite://{}", dir.path().join("browser.db").display());
    let viewer = create_token(&database_url, "viewer");
    let server = Server::demo(&database_url);
    run_script(
        &chromium,
        &server,
        "alert-wall.mjs",
        &[("VIEWER_TOKEN", &viewer)],
    );
}

#[test]
fn twelve_ward_alerts_of_one_indicator_show_as_one_line_with_the_count_in_chromium() {
    on_a_fresh_server("alert-groups.mjs", |database_url| {
        vec![(
            "DEPARTMENT_TOKEN",
            department_token(database_url, "FINANCE"),
        )]
    });
}

#[test]
fn the_indicator_chart_draws_the_apis_figures_without_overlapping_labels_in_chromium() {
    // Screenshots at 1080p and 4K, kept as CI artefacts (docs/development.md).
    on_a_fresh_server("drawn.mjs", |_| {
        vec![("SCREENSHOT_DIR", browser_artifacts().display().to_string())]
    });
}

/// Where the browser tests keep screenshots meant to be looked at (CI keeps the folder as an
/// artefact): the wall mode at 1366×768, 1920×1080 and 3840×2160.
fn browser_artifacts() -> PathBuf {
    let dir = manifest_dir().join("target/browser-artifacts");
    std::fs::create_dir_all(&dir).expect("create target/browser-artifacts");
    dir
}

#[test]
fn the_wall_mode_reads_from_across_the_room_at_768p_1080p_and_4k_on_the_demo_in_chromium() {
    let Some(chromium) = chromium_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let database_url = format!("sqlite://{}", dir.path().join("browser.db").display());
    let viewer = create_token(&database_url, "viewer");
    // The admin sets a target out of reach, so that an alert fires while the wall is open.
    let admin = create_token(&database_url, "admin");
    let screenshots = browser_artifacts();
    let server = Server::demo(&database_url);
    run_script(
        &chromium,
        &server,
        "wall-mode.mjs",
        &[
            ("VIEWER_TOKEN", &viewer),
            ("ADMIN_TOKEN", &admin),
            ("SCREENSHOT_DIR", &screenshots.display().to_string()),
        ],
    );
}

#[test]
fn every_figure_on_the_screens_is_written_in_the_chosen_languages_notation_in_chromium() {
    // The figures are the Department of Finance's: its page shows the entry's preview and receipt.
    on_a_fresh_server("notation.mjs", |database_url| {
        vec![(
            "DEPARTMENT_TOKEN",
            department_token(database_url, "FINANCE"),
        )]
    });
}
