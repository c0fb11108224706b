//! Progress of an import on stderr: an indicatif bar on a terminal, and a plain line every few
//! seconds otherwise, so logs (and tests) see how far it got.

use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::reader::Position;
use super::summary::{grouped, rate, seconds, Tally};

/// How often a plain progress line is printed when stderr is not a terminal.
const PLAIN_INTERVAL: Duration = Duration::from_secs(2);

/// Short enough for an 80-column terminal; the message is cut to the width left.
const TEMPLATE: &str =
    "{spinner:.green} [{bar:20.cyan/blue}] {bytes}/{total_bytes} ETA {eta} {wide_msg}";

pub struct Progress {
    bar: Option<ProgressBar>,
    total_bytes: u64,
    /// Where this run started, to tell its own rate from the file's.
    start: Position,
    started: Instant,
    last_line: Instant,
}

impl Progress {
    /// A bar when stderr is a terminal, plain lines otherwise.
    pub fn new(total_bytes: u64, start: Position) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let style = ProgressStyle::with_template(TEMPLATE)
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            let bar = ProgressBar::with_draw_target(
                Some(total_bytes),
                ProgressDrawTarget::stderr_with_hz(4),
            )
            .with_style(style)
            .with_position(start.offset);
            // Bytes read by earlier runs would otherwise count as this run's speed.
            bar.reset_eta();
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        });
        let now = Instant::now();
        Self {
            bar,
            total_bytes,
            start,
            started: now,
            last_line: now,
        }
    }

    /// Shows the position reached and the counts so far.
    pub fn update(&mut self, position: Position, tally: &Tally) {
        let rows_this_run = position.rows.saturating_sub(self.start.rows);
        let elapsed = self.started.elapsed().as_secs_f64();
        let row_rate = rate(rows_this_run, elapsed);
        match &self.bar {
            Some(bar) => {
                bar.set_position(position.offset);
                bar.set_message(format!(
                    "{} rows, {}/s, {} rejected",
                    grouped(position.rows),
                    grouped(row_rate),
                    grouped(tally.rejected)
                ));
            }
            None if self.last_line.elapsed() >= PLAIN_INTERVAL => {
                self.last_line = Instant::now();
                eprintln!("{}", self.plain_line(position, tally, row_rate, elapsed));
            }
            None => {}
        }
    }

    fn plain_line(&self, position: Position, tally: &Tally, row_rate: u64, elapsed: f64) -> String {
        let percent = if self.total_bytes == 0 {
            100.0
        } else {
            position.offset as f64 * 100.0 / self.total_bytes as f64
        };
        let bytes_this_run = position.offset.saturating_sub(self.start.offset);
        let eta = if bytes_this_run == 0 {
            "unknown".to_owned()
        } else {
            let remaining = self.total_bytes.saturating_sub(position.offset) as f64;
            seconds(remaining * elapsed / bytes_this_run as f64)
        };
        format!(
            "import: {} rows ({percent:.1} % of {} MiB), {} accepted, {} duplicates, {} rejected, \
             {} rows/s, ETA {eta}",
            grouped(position.rows),
            grouped(self.total_bytes.div_ceil(1024 * 1024)),
            grouped(tally.accepted),
            grouped(tally.duplicates),
            grouped(tally.rejected),
            grouped(row_rate),
        )
    }

    /// Removes the bar before the summary is printed.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
