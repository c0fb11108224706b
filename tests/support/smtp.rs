//! A real SMTP server for tests: aiosmtpd on a free loopback port, run by the test venv's
//! Python, writing each message it receives, decoded, as JSON (`tests/support/smtp_sink.py`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub struct SmtpSink {
    child: Child,
    pub port: u16,
    mail_dir: PathBuf,
    /// What aiosmtpd wrote, for a failing test to show.
    pub log: PathBuf,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// True when something on the port sends an SMTP greeting.
async fn greets(port: u16) -> bool {
    use tokio::io::AsyncReadExt;
    let Ok(Ok(mut stream)) = tokio::time::timeout(
        Duration::from_secs(1),
        tokio::net::TcpStream::connect(("127.0.0.1", port)),
    )
    .await
    else {
        return false;
    };
    let mut buf = [0u8; 3];
    matches!(
        tokio::time::timeout(Duration::from_secs(2), stream.read_exact(&mut buf)).await,
        Ok(Ok(_)) if &buf == b"220"
    )
}

impl SmtpSink {
    /// Starts the sink with `python` (one that can import aiosmtpd), keeping mail under `dir`.
    pub async fn start(python: &Path, dir: &Path) -> Self {
        let support = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support");
        let mail_dir = dir.join("mail");
        for attempt in 1..=3 {
            let port = free_port();
            let log = dir.join(format!("smtp-{attempt}.log"));
            let output = std::fs::File::create(&log).expect("the SMTP log file");
            let errors = output.try_clone().expect("the SMTP log file");
            let mut child = Command::new(python)
                .args(["-m", "aiosmtpd", "-n", "-l"])
                .arg(format!("127.0.0.1:{port}"))
                .args(["-c", "smtp_sink.Sink"])
                .arg(&mail_dir)
                .env("PYTHONPATH", &support)
                .env("PYTHONUNBUFFERED", "1")
                .stdin(Stdio::null())
                .stdout(output)
                .stderr(errors)
                .spawn()
                .unwrap_or_else(|e| panic!("{} cannot run: {e}", python.display()));
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                // Exited first: a greeting on the port would then be another test's sink.
                if let Some(status) = child.try_wait().ok().flatten() {
                    // Most likely the port was taken in the meantime: try another one.
                    eprintln!(
                        "aiosmtpd exited ({status}) on port {port}:\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                    break;
                }
                // A sink that lost the port to another exits at once on start: a moment after
                // the greeting tells the two apart.
                if greets(port).await && {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    child.try_wait().ok().flatten().is_none()
                } {
                    return Self {
                        child,
                        port,
                        mail_dir,
                        log,
                    };
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("aiosmtpd could not be started");
    }

    /// The messages received so far, in order of arrival.
    pub fn messages(&self) -> Vec<Value> {
        let Ok(entries) = std::fs::read_dir(&self.mail_dir) else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        files
            .iter()
            .filter_map(|f| std::fs::read_to_string(f).ok())
            .filter_map(|text| serde_json::from_str(&text).ok())
            .collect()
    }
}
