//! The `ktxh` binary as an operator uses it: config check, tokens, and `serve --demo`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn ktxh() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ktxh"));
    // `USER` names whoever the caller says: the audit log names the account the process runs as.
    command
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn")
        .env("USER", "someone-else")
        .env("LOGNAME", "someone-else");
    command
}

fn repo_config() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config")
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

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn check(config: &Path) -> Output {
    ktxh()
        .args(["--config"])
        .arg(config)
        .args(["config", "check"])
        .output()
        .unwrap()
}

#[test]
fn the_shipped_configuration_passes_config_check() {
    let output = check(&repo_config());
    assert!(output.status.success(), "{}", text(&output));
    let out = text(&output);
    assert!(out.contains("20 groups, 110 indicators"), "{out}");
}

/// Copies the shipped configuration, lets `edit` break it, and returns `config check`'s output.
fn broken(edit: impl FnOnce(&Path)) -> String {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo_config(), dir.path());
    edit(dir.path());
    let output = check(dir.path());
    assert!(
        !output.status.success(),
        "a broken catalogue must fail: {}",
        text(&output)
    );
    text(&output)
}

fn replace_in(file: &Path, from: &str, to: &str) {
    let content = std::fs::read_to_string(file).unwrap();
    assert!(content.contains(from), "{from} not in {}", file.display());
    std::fs::write(file, content.replacen(from, to, 1)).unwrap();
}

#[test]
fn a_duplicate_indicator_code_is_named_with_both_files() {
    let out = broken(|dir| {
        let budget = dir.join("catalogue/indicators/02-budget.toml");
        let economy =
            std::fs::read_to_string(dir.join("catalogue/indicators/01-economy.toml")).unwrap();
        let first = economy.split("[[indicator]]").nth(1).unwrap();
        let mut content = std::fs::read_to_string(&budget).unwrap();
        content.push_str("\n[[indicator]]");
        content.push_str(first);
        std::fs::write(budget, content).unwrap();
    });
    assert!(out.contains("02-budget.toml"), "{out}");
    assert!(out.contains(".code"), "{out}");
    assert!(
        out.contains("duplicate indicator code `GRDP_GROWTH`"),
        "{out}"
    );
    assert!(out.contains("01-economy.toml"), "{out}");
}

#[test]
fn an_unknown_group_is_named_with_file_and_key() {
    let out = broken(|dir| {
        replace_in(
            &dir.join("catalogue/indicators/01-economy.toml"),
            "group = \"ECONOMY\"",
            "group = \"ECONOMYX\"",
        );
    });
    assert!(
        out.contains("01-economy.toml: indicator[0].group: unknown group `ECONOMYX`"),
        "{out}"
    );
}

#[test]
fn an_unknown_unit_in_a_target_is_named_with_file_and_key() {
    let out = broken(|dir| {
        let file = dir.join("targets/2026.toml");
        let mut content = std::fs::read_to_string(&file).unwrap();
        content.push_str("\n[[target]]\nindicator = \"GRDP_GROWTH\"\nunit = \"NOWHERE\"\nvalue = 8.0\nillustrative = true\n");
        std::fs::write(file, content).unwrap();
    });
    assert!(out.contains("2026.toml: target["), "{out}");
    assert!(out.contains("].unit: unknown unit `NOWHERE`"), "{out}");
}

#[test]
fn a_bad_periodicity_is_named_with_file_and_key() {
    let out = broken(|dir| {
        replace_in(
            &dir.join("catalogue/indicators/01-economy.toml"),
            "periodicity = \"quarterly\"",
            "periodicity = \"weekly\"",
        );
    });
    assert!(
        out.contains("01-economy.toml: indicator[0].periodicity"),
        "{out}"
    );
    assert!(out.contains("weekly"), "{out}");
}

#[test]
fn an_unknown_unit_parent_and_a_second_root_are_refused() {
    let out = broken(|dir| {
        let file = dir.join("catalogue/units.toml");
        let mut content = std::fs::read_to_string(&file).unwrap();
        content.push_str("\n[[unit]]\ncode = \"ORPHAN\"\nparent = \"NOWHERE\"\nname_vi = \"x\"\nname_en = \"x\"\nlevel = \"ward\"\n");
        content.push_str("\n[[unit]]\ncode = \"SECOND_ROOT\"\nname_vi = \"x\"\nname_en = \"x\"\nlevel = \"city\"\n");
        std::fs::write(file, content).unwrap();
    });
    assert!(out.contains("units.toml: unit["), "{out}");
    assert!(out.contains("unknown unit `NOWHERE`"), "{out}");
    assert!(out.contains("exactly one root"), "{out}");
}

#[test]
fn a_collector_of_an_unknown_department_is_refused() {
    let out = broken(|dir| {
        let file = dir.join("feeds.toml");
        let mut content = std::fs::read_to_string(&file).unwrap();
        content.push_str(
            "\n[[pull]]\nname = \"trade\"\nurl = \"http://127.0.0.1:9/trade.csv\"\n\
             format = \"csv\"\ndepartment = \"NOWHERE\"\nevery = \"15m\"\n",
        );
        std::fs::write(file, content).unwrap();
    });
    assert!(
        out.contains("feed `trade` belongs to `NOWHERE`, which is not a department"),
        "{out}"
    );
}

/// Appends `entry` to the copy's `file`.
fn append_to(dir: &Path, file: &str, entry: &str) {
    let path = dir.join(file);
    let mut content = std::fs::read_to_string(&path).unwrap();
    content.push_str(entry);
    std::fs::write(path, content).unwrap();
}

#[test]
fn a_pull_url_to_loopback_or_the_metadata_service_is_refused_naming_the_key() {
    for (host, class) in [
        ("127.0.0.1:9", "loopback"),
        ("169.254.169.254", "link-local"),
        ("[::ffff:169.254.169.254]", "link-local"),
    ] {
        let out = broken(|dir| {
            append_to(
                dir,
                "feeds.toml",
                &format!(
                    "\n[[pull]]\nname = \"trade\"\nurl = \"http://{host}/latest/meta-data\"\n\
                     format = \"csv\"\ndepartment = \"CUSTOMS\"\nevery = \"15m\"\n"
                ),
            );
            // Any public name is allowed; special addresses still are not.
            replace_in(
                &dir.join("ktxh.toml"),
                "allow_hosts = []",
                "allow_hosts = [\"*\"]",
            );
        });
        assert!(
            out.contains("config/feeds.toml: pull[0].url: feed `trade`:"),
            "{host}: {out}"
        );
        assert!(
            out.contains(&format!("is a {class} address")),
            "{host}: {out}"
        );
    }
}

#[test]
fn a_receiver_url_to_loopback_or_the_metadata_service_is_refused_naming_the_receiver() {
    for url in ["http://127.0.0.1:9093", "http://169.254.169.254/hook"] {
        let out = broken(|dir| {
            append_to(
                dir,
                "alerting.toml",
                &format!(
                    "\n[[receiver]]\nname = \"ops\"\ntype = \"alertmanager\"\nurl = \"{url}\"\n"
                ),
            );
        });
        assert!(out.contains("receiver `ops`: `url`:"), "{url}: {out}");
        assert!(out.contains("outbound.allow_cidrs"), "{url}: {out}");
    }
    // Listed, the same receiver passes: the refusal is the allow-list's, not the URL's.
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo_config(), dir.path());
    append_to(
        dir.path(),
        "alerting.toml",
        "\n[[receiver]]\nname = \"ops\"\ntype = \"alertmanager\"\nurl = \"http://127.0.0.1:9093\"\n",
    );
    replace_in(
        &dir.path().join("ktxh.toml"),
        "allow_cidrs = []",
        "allow_cidrs = [\"127.0.0.1/32\"]",
    );
    let output = check(dir.path());
    assert!(output.status.success(), "{}", text(&output));
}

#[test]
fn an_mqtt_password_in_clear_is_refused_naming_the_feed() {
    let out = broken(|dir| {
        append_to(
            dir,
            "feeds.toml",
            "\n[[mqtt]]\nname = \"customs-live\"\nurl = \"mqtt://broker.example.vn\"\n\
             topics = [{ filter = \"hcm/customs/#\" }]\nformat = \"json\"\ndepartment = \"CUSTOMS\"\n\
             username = \"ktxh\"\npassword_env = \"KTXH_MQTT_PASSWORD\"\n",
        );
    });
    assert!(out.contains("feed `customs-live`"), "{out}");
    assert!(out.contains("in clear"), "{out}");
}

#[test]
fn a_feed_mapping_to_a_code_the_catalogue_lacks_is_refused() {
    let out = broken(|dir| {
        let file = dir.join("feeds.toml");
        let content = std::fs::read_to_string(&file).unwrap();
        let (before, after) = content.split_once("[[dhis2.data_elements]]").unwrap();
        let entry_end = after.find("indicator = \"").unwrap();
        let rest = &after[entry_end + "indicator = \"".len()..];
        let code_end = rest.find('"').unwrap();
        std::fs::write(
            file,
            format!(
                "{before}[[dhis2.data_elements]]{}indicator = \"NO_SUCH_INDICATOR{}",
                &after[..entry_end],
                &rest[code_end..]
            ),
        )
        .unwrap();
    });
    assert!(
        out.contains("dhis2.data_elements[0].indicator: unknown indicator `NO_SUCH_INDICATOR`"),
        "{out}"
    );
}

#[test]
fn tokens_are_created_listed_and_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let run = |args: &[&str]| {
        ktxh()
            .args(["--config"])
            .arg(repo_config())
            .args(["--database-url", &url])
            .args(args)
            .output()
            .unwrap()
    };

    let created = run(&[
        "token",
        "create",
        "--role",
        "department",
        "--department",
        "CUSTOMS",
        "--name",
        "customs-feed",
    ]);
    assert!(created.status.success(), "{}", text(&created));
    let stdout = String::from_utf8(created.stdout).unwrap();
    let token = stdout.lines().last().unwrap();
    assert!(
        token.starts_with("ktxh_") && token.len() == 5 + 16 + 1 + 64,
        "{stdout}"
    );
    let id = &token[5..21];

    let listed = run(&["token", "list"]);
    let listing = String::from_utf8(listed.stdout).unwrap();
    assert!(
        listing.contains(id) && listing.contains("active") && listing.contains("CUSTOMS"),
        "{listing}"
    );
    assert!(
        !listing.contains(&token[22..]),
        "the secret is never listed"
    );
    // Each token's expiry is listed beside its creation, for planning its rotation.
    let line = listing
        .lines()
        .find(|line| line.contains(id))
        .expect("the token's line");
    assert!(
        listing.contains("EXPIRES") && line.matches(" UTC").count() == 2,
        "{listing}"
    );

    // A reader that has gone (`ktxh token list | head`, the pipe closed before the list is
    // written) ends the command quietly, with no panic.
    let mut closed = ktxh()
        .args(["--config"])
        .arg(repo_config())
        .args(["--database-url", &url, "token", "list"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(closed.stdout.take());
    let gone = closed.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&gone.stderr);
    assert!(
        gone.status.success() && !stderr.contains("panicked"),
        "{stderr}"
    );

    let revoked = run(&["token", "revoke", id]);
    assert!(revoked.status.success(), "{}", text(&revoked));
    let listing = String::from_utf8(run(&["token", "list"]).stdout).unwrap();
    assert!(listing.contains("revoked"), "{listing}");
    assert!(
        !run(&["token", "revoke", id]).status.success(),
        "revoking twice fails"
    );

    let no_department = run(&["token", "create", "--role", "department"]);
    assert!(!no_department.status.success());
    let unknown = run(&[
        "token",
        "create",
        "--role",
        "department",
        "--department",
        "NOPE",
    ]);
    assert!(!unknown.status.success());
    assert!(
        text(&unknown).contains("unknown department"),
        "{}",
        text(&unknown)
    );
    let nameless = run(&["token", "create", "--role", "viewer", "--name", " "]);
    assert!(!nameless.status.success(), "{}", text(&nameless));
    assert!(
        text(&nameless).contains("--name must not be empty"),
        "{}",
        text(&nameless)
    );
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn metric_sum(metrics: &str, name: &str, label: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn serve_demo_seeds_history_keeps_feeding_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("demo.db").display());
    let mut child = ktxh()
        .args(["--config"])
        .arg(repo_config())
        .args([
            "--database-url",
            &url,
            "serve",
            "--demo",
            "--listen",
            "127.0.0.1:0",
        ])
        .env("KTXH__DEMO__FEED_INTERVAL_MS", "100")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut server = Server(child);
    let (mut base, mut viewer) = (String::new(), String::new());
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("KT-XH Live demo is running at ") {
            base = rest.trim().to_owned();
        }
        if let Some(rest) = line.trim().strip_prefix("viewer token: ") {
            viewer = rest.to_owned();
        }
        if !base.is_empty() && !viewer.is_empty() {
            break;
        }
    }
    // Keep draining stdout as an operator's terminal would.
    std::thread::spawn(move || lines.for_each(drop));
    assert!(
        base.starts_with("http://127.0.0.1:") && viewer.starts_with("ktxh_"),
        "{base} {viewer}"
    );

    let client = reqwest::Client::new();
    let read = |path: &str| {
        client
            .get(format!("{base}{path}"))
            .bearer_auth(&viewer)
            .send()
    };
    let history: serde_json::Value = read("/api/v1/observations?indicator=RETAIL_SALES")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        history["observations"].as_array().unwrap().len() >= 12,
        "{history}"
    );
    // The published history is official, so the reports (official figures by default) read it.
    let official = history["observations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["state"] == "official" && o["official_at"].is_string())
        .count();
    assert!(official >= 12, "{history}");

    let fed = |metrics: &str| metric_sum(metrics, "ktxh_ingest_rows_total", "format=\"json\"");
    let started = Instant::now();
    let mut first = None;
    loop {
        let metrics = client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let now = fed(&metrics);
        match first {
            None => first = Some(now),
            Some(before) if now > before => break,
            Some(_) => {}
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the demo feeds stopped producing data"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The feeds send periods that have ended: a figure of the period in progress would be
    // judged as the whole period, the year complete weeks early.
    let statuses: serde_json::Value = read("/api/v1/status").await.unwrap().json().await.unwrap();
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let ahead: Vec<_> = statuses["statuses"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| {
            t["reported_through"]
                .as_str()
                .is_some_and(|at| at > now.as_str())
        })
        .map(|t| format!("{} {}", t["indicator"], t["reported_through"]))
        .collect();
    assert!(ahead.is_empty(), "figures of periods not ended: {ahead:?}");
    // Dossiers received online, a daily flow summed from every ward: its year is judged on the
    // year's figures, not on the last weeks' (which read as far behind the plan to date).
    let dossiers = statuses["statuses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["indicator"] == "ONLINE_DOSSIERS_RECEIVED" && t["unit"] == "HCM")
        .cloned()
        .expect("the city's dossiers target");
    let pace = dossiers["actual"].as_f64().unwrap_or(0.0)
        / dossiers["expected"].as_f64().unwrap_or(f64::INFINITY);
    assert!(pace > 0.8, "{dossiers}");

    let pid = server.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            assert!(status.success(), "graceful shutdown exits 0, got {status}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `ktxh … --database-url URL ARGS` on the shipped configuration.
fn ktxh_on(url: &str, args: &[&str]) -> Output {
    ktxh()
        .args(["--config"])
        .arg(repo_config())
        .args(["--database-url", url])
        .args(args)
        .output()
        .unwrap()
}

/// Creates a token and returns it with what `token create` said.
fn created_token(url: &str, args: &[&str]) -> (String, String) {
    let mut all = vec!["token", "create"];
    all.extend_from_slice(args);
    let output = ktxh_on(url, &all);
    assert!(output.status.success(), "{}", text(&output));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let token = stdout.lines().last().unwrap().trim().to_owned();
    assert!(token.starts_with("ktxh_"), "{stdout}");
    (token, stdout)
}

/// Days from now to the `expires …` line of `token create`'s output.
fn days_to_expiry(stdout: &str) -> i64 {
    let line = stdout
        .lines()
        .find_map(|line| line.strip_prefix("expires "))
        .unwrap_or_else(|| panic!("no expiry in {stdout}"));
    let expires = chrono::DateTime::parse_from_rfc3339(line.trim()).unwrap();
    let left = expires.with_timezone(&chrono::Utc) - chrono::Utc::now();
    (left.num_hours() as f64 / 24.0).round() as i64
}

/// `ktxh serve` on a free port: the address it logged, and the process.
fn serve(url: &str, env: &[(&str, &str)]) -> (String, Server) {
    let mut command = ktxh();
    command
        .args(["--config"])
        .arg(repo_config())
        .args(["--log-json", "--database-url", url])
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let server = Server(child);
    let mut lines = BufReader::new(stderr).lines();
    let mut addr = String::new();
    for line in lines.by_ref() {
        let Ok(event) = serde_json::from_str::<serde_json::Value>(&line.unwrap()) else {
            continue;
        };
        if event["fields"]["message"] == "listening" {
            addr = event["fields"]["addr"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            break;
        }
    }
    assert!(addr.starts_with("127.0.0.1:"), "no address logged");
    std::thread::spawn(move || lines.for_each(drop));
    (format!("http://{addr}"), server)
}

/// Audit rows as `ktxh audit list` prints them, newest first.
fn audit_list(url: &str) -> Vec<serde_json::Value> {
    let output = ktxh_on(url, &["audit", "list", "--limit", "1000"]);
    assert!(output.status.success(), "{}", text(&output));
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[test]
fn tokens_expire_by_default_and_a_token_without_expiry_must_be_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let (_, admin) = created_token(&url, &["--role", "admin"]);
    assert_eq!(days_to_expiry(&admin), 90, "{admin}");
    let (_, department) = created_token(&url, &["--role", "department", "--department", "HEALTH"]);
    assert_eq!(days_to_expiry(&department), 365, "{department}");
    let (_, viewer) = created_token(&url, &["--role", "viewer"]);
    assert_eq!(days_to_expiry(&viewer), 365, "{viewer}");
    let (_, short) = created_token(&url, &["--role", "viewer", "--expires-in-days", "7"]);
    assert_eq!(days_to_expiry(&short), 7, "{short}");
    let (token, forever) = created_token(&url, &["--role", "viewer", "--no-expiry"]);
    assert!(forever.contains("never expires"), "{forever}");
    let both = ktxh_on(
        &url,
        &[
            "token",
            "create",
            "--role",
            "viewer",
            "--no-expiry",
            "--expires-in-days",
            "3",
        ],
    );
    assert!(
        !both.status.success(),
        "--no-expiry and a lifetime conflict"
    );

    let rows = audit_list(&url);
    let creates: Vec<_> = rows
        .iter()
        .filter(|row| row["action"] == "token.create")
        .collect();
    assert_eq!(creates.len(), 5);
    let id = &token[5..21];
    let unlimited = creates
        .iter()
        .find(|row| row["subject"] == id)
        .expect("the token without expiry is audited");
    assert!(unlimited["new"]["expires_at"].is_null(), "{unlimited}");
    assert_eq!(unlimited["new"]["role"], "viewer");
    assert!(
        unlimited["reason"]
            .as_str()
            .unwrap()
            .contains("--no-expiry"),
        "{unlimited}"
    );
    let actor = unlimited["actor"].as_str().unwrap();
    assert!(
        actor.starts_with("cli:") && !actor.contains("someone-else") && actor.ends_with(')'),
        "the account, by its id: {actor}"
    );
    assert!(
        !rows
            .iter()
            .any(|row| row.to_string().contains(&token[22..])),
        "the secret is never in the audit log"
    );
    let ktxh_toml = dir.path().join("config");
    copy_dir(&repo_config(), &ktxh_toml);
    replace_in(
        &ktxh_toml.join("ktxh.toml"),
        "admin_expiry_days = 90",
        "admin_expiry_days = 0",
    );
    let out = text(&check(&ktxh_toml));
    assert!(out.contains("tokens.admin_expiry_days"), "{out}");
}

#[tokio::test]
async fn audit_verify_passes_on_a_real_history_and_names_an_edited_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let url = format!("sqlite://{}", path.display());
    let (admin, _) = created_token(&url, &["--role", "admin", "--name", "ops"]);
    let (health, _) = created_token(
        &url,
        &[
            "--role",
            "department",
            "--department",
            "HEALTH",
            "--name",
            "health",
        ],
    );
    let (viewer, _) = created_token(&url, &["--role", "viewer", "--no-expiry"]);

    // Real acts through a running service: a target set, an acknowledgement, a silence
    // created and lifted.
    let (base, mut server) = serve(&url, &[("KTXH__RULES__FOR_EVALUATIONS", "1")]);
    let client = reqwest::Client::new();
    let set = client
        .put(format!("{base}/api/v1/targets/2026/EXPORT_TURNOVER"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"value": 240000, "reason": "Nghị quyết điều chỉnh"}))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 200);
    let year =
        chrono::Datelike::year(&chrono::Utc::now().with_timezone(&chrono_tz::Asia::Ho_Chi_Minh));
    let targets: serde_json::Value = client
        .get(format!("{base}/api/v1/targets?year={year}"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let target = targets["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["indicator"] == "HOSPITAL_BEDS_PER_10K" && t["unit"] == "HCM")
        .and_then(|t| t["value"].as_f64())
        .unwrap();
    let posted = client
        .post(format!("{base}/api/v1/observations"))
        .bearer_auth(&health)
        .json(&serde_json::json!({"observations": [{"indicator": "HOSPITAL_BEDS_PER_10K", "unit": "HCM", "period": year.to_string(), "value": (target * 0.5).round()}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 200);
    let alerts: serde_json::Value = client
        .get(format!("{base}/api/v1/alerts"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let fingerprint = alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["labels"]["indicator"] == "HOSPITAL_BEDS_PER_10K" && a["rule"] == "slippage")
        .and_then(|a| a["fingerprint"].as_str())
        .expect("the slipping target alerts")
        .to_owned();
    let ack = client
        .post(format!("{base}/api/v1/alerts/{fingerprint}/ack"))
        .bearer_auth(&health)
        .json(&serde_json::json!({"comment": "Sở Y tế đang xử lý"}))
        .send()
        .await
        .unwrap();
    assert_eq!(ack.status(), 200);
    let silence: serde_json::Value = client
        .post(format!("{base}/api/v1/silences"))
        .bearer_auth(&health)
        .json(&serde_json::json!({"matchers": {"department": "HEALTH"}, "duration_minutes": 60, "comment": "bảo trì"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = silence["id"].as_str().expect("a silence");
    let lifted = client
        .delete(format!("{base}/api/v1/silences/{id}"))
        .bearer_auth(&health)
        .send()
        .await
        .unwrap();
    assert_eq!(lifted.status(), 204);
    let _ = server.0.kill();
    let _ = server.0.wait();

    let revoked = ktxh_on(
        &url,
        &[
            "token",
            "revoke",
            &viewer[5..21],
            "--reason",
            "screen retired",
        ],
    );
    assert!(revoked.status.success(), "{}", text(&revoked));

    // A start refused by its configuration checks is recorded too.
    let broken = dir.path().join("broken");
    copy_dir(&repo_config(), &broken);
    replace_in(
        &broken.join("ktxh.toml"),
        "max_topics = 64",
        "max_topics = 0",
    );
    let refused = ktxh()
        .args(["--config"])
        .arg(&broken)
        .args(["--database-url", &url, "serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!refused.status.success(), "{}", text(&refused));

    let rows = audit_list(&url);
    let actions: Vec<&str> = rows.iter().filter_map(|r| r["action"].as_str()).collect();
    for action in [
        "targets.seed",
        "token.create",
        "target.set",
        "alert.ack",
        "silence.create",
        "silence.expire",
        "token.revoke",
        "config.check_failed",
    ] {
        assert!(
            actions.contains(&action),
            "{action} missing from {actions:?}"
        );
    }
    let failed = rows
        .iter()
        .find(|r| r["action"] == "config.check_failed")
        .unwrap();
    assert!(
        failed["reason"]
            .as_str()
            .unwrap()
            .contains("live.max_topics"),
        "{failed}"
    );
    let verified = ktxh_on(&url, &["audit", "verify"]);
    assert!(verified.status.success(), "{}", text(&verified));
    let said = text(&verified);
    assert!(
        said.contains(&format!("audit log intact: {} rows", rows.len())),
        "{said}"
    );

    // Someone with the file drops the trigger and edits who set the target.
    let set_row = rows
        .iter()
        .find(|r| r["action"] == "target.set")
        .and_then(|r| r["id"].as_i64())
        .unwrap();
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let refused = sqlx::query("UPDATE audit_log SET actor = 'admin:intruder' WHERE id = ?")
        .bind(set_row)
        .execute(&pool)
        .await;
    assert!(refused.is_err(), "the trigger refuses the edit");
    sqlx::query("DROP TRIGGER audit_log_no_update")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_log SET actor = 'admin:intruder' WHERE id = ?")
        .bind(set_row)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let verified = ktxh_on(&url, &["audit", "verify"]);
    assert!(!verified.status.success(), "{}", text(&verified));
    let said = text(&verified);
    assert!(
        said.contains(&format!("audit row {set_row} is broken")),
        "{said}"
    );
}

#[tokio::test]
async fn a_second_serve_on_one_sqlite_file_is_refused_while_report_still_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("one.db");
    let url = format!("sqlite://{}", path.display());
    let (base, first) = serve(&url, &[]);

    let mut second = ktxh()
        .args(["--config"])
        .arg(repo_config())
        .args(["--database-url", &url, "serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while second.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = second.kill();
            panic!("a second serve on {} started", path.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let refused = second.wait_with_output().unwrap();
    assert!(!refused.status.success(), "{}", text(&refused));
    let expected = format!(
        "another ktxh instance is using {} (pid {}); SQLite serves one instance — use PostgreSQL for several",
        path.display(),
        first.0.id()
    );
    assert!(text(&refused).contains(&expected), "{}", text(&refused));

    // Reading commands do not take the lock.
    let report = ktxh_on(&url, &["report", "--period", "2026", "--format", "csv"]);
    assert!(report.status.success(), "{}", text(&report));
    assert!(!report.stdout.is_empty());

    // The first server was left alone.
    let alive = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(alive.status(), 200);
}
