//! The `ktxh` binary as an operator uses it: config check, tokens, and `serve --demo`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn ktxh() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ktxh"));
    command.env_remove("DATABASE_URL").env("RUST_LOG", "warn");
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
    let history: serde_json::Value = client
        .get(format!("{base}/api/v1/observations?indicator=RETAIL_SALES"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        history["observations"].as_array().unwrap().len() >= 12,
        "{history}"
    );

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
