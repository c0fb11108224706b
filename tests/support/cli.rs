//! Running the `ktxh` binary from tests, shared by the test binaries that start it.

use std::path::Path;
use std::process::Command;

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
