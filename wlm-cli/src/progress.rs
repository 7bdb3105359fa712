//! Training progress on stderr: a redrawn bar on a terminal, plain log lines otherwise.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Where progress goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// A bar redrawn in place (stderr is a terminal).
    Bar,
    /// One log line every few percent or ten seconds (stderr is a file or pipe).
    Lines,
    /// Nothing (`--quiet`).
    Quiet,
}

impl Mode {
    /// The bar on a terminal, lines otherwise, nothing when quiet.
    pub(crate) fn detect(quiet: bool) -> Self {
        if quiet {
            Self::Quiet
        } else if std::io::stderr().is_terminal() {
            Self::Bar
        } else {
            Self::Lines
        }
    }
}

/// Progress of a loop of `total` steps.
pub(crate) struct Progress {
    mode: Mode,
    label: String,
    total: usize,
    start: Instant,
    start_step: usize,
    last_print: Option<Instant>,
    last_line_step: usize,
}

impl Progress {
    /// Progress of steps `first..total` (a resumed run starts past 0).
    pub(crate) fn new(label: &str, first: usize, total: usize, mode: Mode) -> Self {
        Self {
            mode,
            label: label.to_string(),
            total,
            start: Instant::now(),
            start_step: first,
            last_print: None,
            last_line_step: first,
        }
    }

    /// Reports that `step` steps are done, with the latest loss and an optional extra note.
    pub(crate) fn update(&mut self, step: usize, loss: f64, note: &str) {
        let now = Instant::now();
        let elapsed = now.duration_since(self.start).as_secs_f64();
        let done = step.saturating_sub(self.start_step);
        let rate = if elapsed > 0.0 {
            done as f64 / elapsed
        } else {
            0.0
        };
        let left = self.total.saturating_sub(step);
        let eta = if rate > 0.0 {
            left as f64 / rate
        } else {
            f64::NAN
        };
        let note = if note.is_empty() {
            String::new()
        } else {
            format!(" {note}")
        };
        let finished = step >= self.total;
        match self.mode {
            Mode::Quiet => {}
            Mode::Bar => {
                let due = self
                    .last_print
                    .is_none_or(|t| now.duration_since(t) >= Duration::from_millis(100));
                if due || finished {
                    self.last_print = Some(now);
                    let width = 30;
                    let filled = (width * step.min(self.total)) / self.total.max(1);
                    let bar: String = "#".repeat(filled) + &"-".repeat(width - filled);
                    eprint!(
                        "\r{} [{bar}] {step}/{} loss {loss:.4e} {rate:.1} steps/s ETA {}{}\x1b[K",
                        self.label,
                        self.total,
                        format_duration(eta),
                        note
                    );
                    let _ = std::io::stderr().flush();
                }
            }
            Mode::Lines => {
                let every = (self.total / 20).max(1);
                let due_time = self
                    .last_print
                    .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(10));
                if step >= self.last_line_step + every || finished || due_time {
                    self.last_print = Some(now);
                    self.last_line_step = step;
                    eprintln!(
                        "{}: step {step}/{} loss {loss:.4e} {rate:.1} steps/s ETA {}{}",
                        self.label,
                        self.total,
                        format_duration(eta),
                        note
                    );
                }
            }
        }
    }

    /// Ends the bar's line (so later output starts on a fresh line).
    pub(crate) fn finish(&mut self) {
        if self.mode == Mode::Bar && self.last_print.is_some() {
            eprintln!();
        }
    }

    /// Seconds since the progress started.
    pub(crate) fn elapsed(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }
}

/// `m:ss` or `h:mm:ss`, `?` when unknown.
pub(crate) fn format_duration(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "?".into();
    }
    let s = seconds.round() as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_formatted_as_clock_times() {
        assert_eq!(format_duration(0.4), "0:00");
        assert_eq!(format_duration(75.0), "1:15");
        assert_eq!(format_duration(3725.0), "1:02:05");
        assert_eq!(format_duration(f64::NAN), "?");
    }
}
