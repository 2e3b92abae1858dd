//! Progress of a long import on standard error: a bar on a terminal (`indicatif`), and on anything
//! else (a log file, CI) a plain line every tenth of the way, so logs stay readable.
//!
//! Progress never carries a value from the data, only counts and phase names.

use std::io::IsTerminal as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// One phase's progress (reading, portals, users, lines).
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
    plain: Mutex<Plain>,
}

#[derive(Debug)]
struct Plain {
    phase: String,
    len: u64,
    pos: u64,
    next_report: u64,
    started: Instant,
    quiet: bool,
}

impl Progress {
    /// Progress on stderr: a bar when stderr is a terminal, plain lines otherwise.
    pub fn stderr() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{msg:>10} [{bar:40}] {pos}/{len} ({per_sec}, {eta} left)",
            )
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar
        });
        Self::with(bar, false)
    }

    /// No output at all (tests, and `--json` callers that want a clean stderr do not need this: the
    /// report goes to stdout either way).
    pub fn hidden() -> Self {
        Self::with(None, true)
    }

    fn with(bar: Option<ProgressBar>, quiet: bool) -> Self {
        Self {
            bar,
            plain: Mutex::new(Plain {
                phase: String::new(),
                len: 0,
                pos: 0,
                next_report: 0,
                started: Instant::now(),
                quiet,
            }),
        }
    }

    /// Starts a phase of `len` steps (0 when unknown).
    pub fn phase(&self, name: &str, len: u64) {
        if let Some(bar) = &self.bar {
            bar.reset();
            bar.set_length(len);
            bar.set_position(0);
            bar.set_message(name.to_owned());
            if len == 0 {
                bar.enable_steady_tick(Duration::from_millis(200));
            }
            return;
        }
        if let Ok(mut p) = self.plain.lock() {
            p.phase = name.to_owned();
            p.len = len;
            p.pos = 0;
            p.next_report = (len / 10).max(1);
            p.started = Instant::now();
            if !p.quiet {
                if len == 0 {
                    eprintln!("import: {name}");
                } else {
                    eprintln!("import: {name}: {len} to do");
                }
            }
        }
    }

    /// Advances by `n` steps.
    pub fn inc(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
            return;
        }
        if let Ok(mut p) = self.plain.lock() {
            p.pos += n;
            if p.pos >= p.next_report {
                let step = (p.len / 10).max(1);
                while p.next_report <= p.pos {
                    p.next_report += step;
                }
                if !p.quiet {
                    let secs = p.started.elapsed().as_secs_f64().max(0.001);
                    #[allow(clippy::cast_precision_loss)]
                    let rate = p.pos as f64 / secs;
                    eprintln!("import: {}: {}/{} ({rate:.0}/s)", p.phase, p.pos, p.len);
                }
            }
        }
    }

    /// Ends the current phase.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
