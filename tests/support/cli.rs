//! Running the `ktxh` binary from tests, shared by the test binaries that start it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `ktxh --config config/ --database-url URL`: the binary on the shipped configuration, quiet
/// but for warnings, whatever `DATABASE_URL` the environment holds.
pub fn ktxh(database_url: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ktxh"));
    command
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn")
        .arg("--config")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("config"))
        .args(["--database-url", database_url]);
    command
}

/// `ktxh … token create --role ROLE --name NAME` with `ktxh` already pointed at its config and
/// database; the token is the last line of its output.
pub fn create_token(mut ktxh: Command, role: &str, name: &str) -> String {
    let output = ktxh
        .args(["token", "create", "--role", role, "--name", name])
        .output()
        .expect("run ktxh token create");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "token create --role {role} failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token = stdout.lines().last().unwrap_or_default().trim().to_owned();
    assert!(token.starts_with("ktxh_"), "no token in: {stdout}");
    token
}

/// Copies a directory tree, such as the shipped configuration.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create the directory");
    for entry in std::fs::read_dir(from).expect("read the directory") {
        let entry = entry.expect("a directory entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("its file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy a file");
        }
    }
}

/// A copy of the shipped configuration in `dir/config` with `alerting` as its
/// `alerting.toml`, and this machine's receivers allowed as an operator allows a host of their
/// own.
pub fn config_with_alerting(dir: &Path, alerting: &str) -> PathBuf {
    let config = dir.join("config");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("config"),
        &config,
    );
    std::fs::write(config.join("alerting.toml"), alerting).expect("write alerting.toml");
    let settings = config.join("ktxh.toml");
    let shipped = std::fs::read_to_string(&settings).expect("read ktxh.toml");
    assert!(
        shipped.contains("\nallow_cidrs = []\n"),
        "ktxh.toml has [outbound]"
    );
    let local = shipped.replace(
        "\nallow_cidrs = []\n",
        "\nallow_cidrs = [\"127.0.0.1/32\"]\n",
    );
    std::fs::write(&settings, local).expect("write ktxh.toml");
    config
}

/// The address in ktxh's JSON log line `{"fields":{"message":"listening","addr":…}}`.
pub fn listening_addr(log: &str) -> Option<SocketAddr> {
    log.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|entry| entry["fields"]["message"] == "listening")
        .and_then(|entry| entry["fields"]["addr"].as_str()?.parse().ok())
}

/// Starts `command` (a `ktxh … --log-json serve`) with its output in `log`, and waits until it
/// logs the address it listens on; panics with the log if it exits or takes longer than
/// `patience`.
pub async fn serve_until_listening(
    mut command: Command,
    log: &Path,
    name: &str,
    patience: Duration,
) -> (Child, SocketAddr) {
    let out = std::fs::File::create(log).expect("create log file");
    let err = out.try_clone().expect("clone log file");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("start ktxh serve");
    let deadline = Instant::now() + patience;
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(addr) = listening_addr(&text) {
            return (child, addr);
        }
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("ktxh serve {name} exited ({status}):\n{text}");
        }
        assert!(
            Instant::now() < deadline,
            "ktxh serve {name} did not log `listening`:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The last 30 lines of a process's log, headed by its name.
pub fn log_tail(name: &str, log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(30);
    format!("--- {name} ---\n{}", lines[from..].join("\n"))
}
