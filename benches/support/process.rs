//! The `ktxh` binary run as a process under measurement: its data, its tokens, its CPU time
//! and memory read from `/proc`, apart from the client's. Shared by the benchmarks.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _};
use serde_json::Value;

/// The `ktxh` binary and where it keeps its data.
pub struct Service<'a> {
    pub binary: &'a Path,
    pub config: &'a Path,
    pub database: &'a str,
}

impl Service<'_> {
    pub fn command(&self) -> Command {
        let mut command = Command::new(self.binary);
        command
            .arg("--config")
            .arg(self.config)
            .args(["--database-url", self.database, "--log-json"])
            .env_remove("DATABASE_URL")
            // Warnings (not the slow-query notes of loading the history), and the `listening`
            // line that says the server is up.
            .env("RUST_LOG", "warn,sqlx=error,ktxh::app=info")
            .stdin(Stdio::null());
        command
    }

    /// A short `serve --demo`: it writes its history before it listens, then is stopped.
    pub fn seed(&self) -> anyhow::Result<()> {
        let mut command = self.command();
        command.args(["serve", "--demo", "--listen", "127.0.0.1:0"]);
        Server::spawn("ktxh demo", command, ktxh_listening)?.stop();
        Ok(())
    }

    pub fn token(&self, role: &str) -> anyhow::Result<String> {
        let output = self
            .command()
            .args(["token", "create", "--role", role, "--name"])
            .arg(format!("bench-{role}"))
            .output()?;
        ensure!(
            output.status.success(),
            "token create: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        // The token is printed alone on the last line.
        let stdout = String::from_utf8(output.stdout)?;
        let token = stdout.lines().last().unwrap_or_default().trim().to_owned();
        ensure!(
            token.starts_with("ktxh_"),
            "token create printed {stdout:?}"
        );
        Ok(token)
    }

    pub fn serve(&self) -> anyhow::Result<Server> {
        let mut command = self.command();
        command
            .args(["serve", "--listen", "127.0.0.1:0"])
            // The timer re-evaluates every target and publishes what changed: kept out of the
            // measured minutes so that every delta is one of the posted observations.
            .env("KTXH__RULES__EVALUATION_INTERVAL_SECONDS", "3600")
            .env("KTXH__SERVER__SHUTDOWN_GRACE_SECONDS", "2")
            // One client address and one viewer token stand for thousands of screens here: the
            // benchmark measures the fan-out, not the limits that keep one caller from taking it.
            .env("KTXH__LIMITS__TOKEN_PER_SECOND", "1000000")
            .env("KTXH__LIMITS__TOKEN_BURST", "1000000")
            .env("KTXH__LIMITS__IP_PER_SECOND", "1000000")
            .env("KTXH__LIMITS__IP_BURST", "1000000")
            .env("KTXH__LIMITS__MAX_CONNECTIONS", "100000")
            .env("KTXH__LIMITS__MAX_CONNECTIONS_PER_IP", "100000")
            .env("KTXH__LIMITS__MAX_WEBSOCKETS_PER_TOKEN", "100000");
        Server::spawn("ktxh", command, ktxh_listening)
    }
}

/// The address in the service's `listening` log line (JSON).
pub fn ktxh_listening(line: &str) -> Option<SocketAddr> {
    let value: Value = serde_json::from_str(line).ok()?;
    let fields = &value["fields"];
    (fields["message"] == "listening").then(|| fields["addr"].as_str()?.parse().ok())?
}

/// A server process under measurement.
pub struct Server {
    name: &'static str,
    child: Child,
    pub addr: SocketAddr,
}

impl Server {
    /// Starts `command` and waits for the line of its standard error that gives its address;
    /// the rest of that output is passed on, less the service's info lines.
    pub fn spawn(
        name: &'static str,
        mut command: Command,
        listening: fn(&str) -> Option<SocketAddr>,
    ) -> anyhow::Result<Self> {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        let stderr = child.stderr.take().context("stderr")?;
        let (found, addr) = mpsc::channel();
        // Drained until the process ends: a full pipe would block the server.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = listening(&line) {
                    let _ = found.send(addr);
                } else if !line.contains(r#""level":"INFO""#) {
                    eprintln!("[{name}] {line}");
                }
            }
        });
        // Built before the wait, so that a server that never listens is killed on drop.
        let mut server = Self {
            name,
            child,
            addr: ([0, 0, 0, 0], 0).into(),
        };
        match addr.recv_timeout(Duration::from_secs(300)) {
            Ok(addr) => server.addr = addr,
            Err(_) => bail!("{name} did not start listening"),
        }
        Ok(server)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn cpu_seconds(&self) -> anyhow::Result<f64> {
        cpu_seconds(&self.pid().to_string())
    }

    /// Resident memory in KiB.
    pub fn rss_kib(&self) -> anyhow::Result<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        let line = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .context("no VmRSS")?;
        Ok(line.trim().trim_end_matches("kB").trim().parse()?)
    }

    /// SIGTERM (a graceful stop), then SIGKILL if it takes too long.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("[{}] did not stop in time: killed", self.name);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Also on an early return: never leave a server behind.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// User plus system CPU time of a process (`self` for this one), in seconds.
pub fn cpu_seconds(pid: &str) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name may contain spaces: fields are counted after its closing parenthesis,
    // where `state` is field 3, `utime` field 14 and `stime` field 15.
    let rest = &stat[stat.rfind(')').context("malformed stat")? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    Ok(ticks / clock_ticks_per_second())
}

/// CPU time the whole machine spent busy since boot, in seconds: the first line of
/// `/proc/stat` is `cpu user nice system idle iowait irq softirq steal …` in clock ticks.
pub fn machine_busy_seconds() -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let line = stat.lines().next().context("empty /proc/stat")?;
    let ticks: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let busy = ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6] + ticks[7];
    Ok(busy / clock_ticks_per_second())
}

pub fn clock_ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

pub fn open_files_limit() -> anyhow::Result<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits")?;
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .context("no open-files limit")?;
    let soft = line.split_whitespace().nth(3).context("malformed limits")?;
    Ok(soft.parse().unwrap_or(u64::MAX))
}
