//! Progress of `img-proxy warm` on stderr: an `indicatif` bar (rate, ETA)
//! for a person at a terminal, plain lines every few seconds for logs and
//! CI, where a redrawn bar would be noise.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// How often a plain line is printed.
const LINE_EVERY: Duration = Duration::from_secs(2);

/// Counts finished URLs and shows it.
pub enum Progress {
    Bar(ProgressBar),
    Lines(Mutex<Lines>),
}

/// State of the plain-line progress.
pub struct Lines {
    total: u64,
    done: u64,
    started: Instant,
    printed: Instant,
}

impl Progress {
    /// A bar when stderr is a terminal, else plain lines.
    pub fn new(total: u64) -> Progress {
        if std::io::stderr().is_terminal() {
            let style = ProgressStyle::with_template(
                "{spinner} {elapsed_precise} [{wide_bar}] {pos}/{len} {per_sec} ETA {eta} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            let bar = ProgressBar::new(total).with_style(style);
            bar.enable_steady_tick(Duration::from_millis(200));
            Progress::Bar(bar)
        } else {
            let now = Instant::now();
            Progress::Lines(Mutex::new(Lines {
                total,
                done: 0,
                started: now,
                printed: now,
            }))
        }
    }

    /// One more URL finished; `failed` so far shown beside.
    pub fn inc(&self, failed: usize) {
        match self {
            Progress::Bar(bar) => {
                bar.inc(1);
                if failed > 0 {
                    bar.set_message(format!("{failed} failed"));
                }
            }
            Progress::Lines(lines) => {
                let mut l = lines.lock().unwrap_or_else(|e| e.into_inner());
                l.done += 1;
                if l.printed.elapsed() >= LINE_EVERY {
                    l.printed = Instant::now();
                    eprintln!("{}", l.line(failed));
                }
            }
        }
    }

    /// Clears the bar, or prints the last plain line, before the summary.
    pub fn finish(&self, failed: usize) {
        match self {
            Progress::Bar(bar) => bar.finish_and_clear(),
            Progress::Lines(lines) => {
                let l = lines.lock().unwrap_or_else(|e| e.into_inner());
                eprintln!("{}", l.line(failed));
            }
        }
    }
}

impl Lines {
    fn line(&self, failed: usize) -> String {
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = self.done as f64 / secs;
        let left = self.total.saturating_sub(self.done);
        let eta = if rate > 0.0 {
            format!("{:.0}s", left as f64 / rate)
        } else {
            "?".to_string()
        };
        let pct = 100.0 * self.done as f64 / self.total.max(1) as f64;
        format!(
            "warm: {}/{} ({pct:.0}%), {rate:.1}/s, ETA {eta}, {failed} failed",
            self.done, self.total
        )
    }
}
