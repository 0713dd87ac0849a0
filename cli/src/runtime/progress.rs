//! One progress line per component during `up`: a live spinner with the state and the
//! elapsed time on a terminal, plain lines when output goes to a pipe or a CI log.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

static TO_STDERR: AtomicBool = AtomicBool::new(false);

/// Sends what runtimes report while they work to stderr (a command printing JSON on
/// stdout calls this first, so its output stays one parseable document).
pub fn to_stderr() {
    TO_STDERR.store(true, Ordering::Relaxed);
}

/// Writes a report line (or part of one, without `newline`) where [`to_stderr`] says.
pub fn emit(args: std::fmt::Arguments<'_>, newline: bool) {
    let text = if newline {
        format!("{args}\n")
    } else {
        args.to_string()
    };
    if TO_STDERR.load(Ordering::Relaxed) {
        let mut e = std::io::stderr().lock();
        let _ = e.write_all(text.as_bytes());
        let _ = e.flush();
    } else {
        let mut o = std::io::stdout().lock();
        let _ = o.write_all(text.as_bytes());
        let _ = o.flush();
    }
}

/// `println!` for what a runtime reports while it works.
#[macro_export]
macro_rules! say {
    ($($t:tt)*) => { $crate::runtime::progress::emit(format_args!($($t)*), true) };
}

/// `print!` for what a runtime reports while it works.
#[macro_export]
macro_rules! say_inline {
    ($($t:tt)*) => { $crate::runtime::progress::emit(format_args!($($t)*), false) };
}

pub struct Line {
    bar: Option<ProgressBar>,
    name: String,
    t0: Instant,
}

impl Line {
    /// Starts the line for `name` in state `state` (e.g. "starting").
    pub fn start(name: &str, state: &str) -> Self {
        let terminal = if TO_STDERR.load(Ordering::Relaxed) {
            std::io::stderr().is_terminal()
        } else {
            std::io::stdout().is_terminal()
        };
        let bar = terminal.then(|| {
            let b = ProgressBar::new_spinner();
            b.set_style(
                ProgressStyle::with_template("  {prefix:<12} {spinner} {msg} ({elapsed})")
                    .expect("a valid progress template"),
            );
            b.set_prefix(name.to_owned());
            b.set_message(state.to_owned());
            b.enable_steady_tick(Duration::from_millis(100));
            b
        });
        if bar.is_none() {
            crate::say_inline!("  {name:<12} {state} … ");
        }
        Self {
            bar,
            name: name.to_owned(),
            t0: Instant::now(),
        }
    }

    /// Moves to another state, e.g. "waiting for health".
    pub fn set(&self, state: &str) {
        if let Some(b) = &self.bar {
            b.set_message(state.to_owned());
        }
    }

    /// Ends the line with `outcome` and the elapsed time.
    pub fn finish(self, outcome: &str) {
        let text = format!("{outcome} ({:.1} s)", self.t0.elapsed().as_secs_f64());
        match self.bar {
            Some(b) => {
                b.finish_and_clear();
                crate::say!("  {:<12} {text}", self.name);
            }
            None => crate::say!("{text}"),
        }
    }

    /// Ends the line as failed (the error is printed by the caller).
    pub fn fail(self, outcome: &str) {
        match self.bar {
            Some(b) => {
                b.finish_and_clear();
                crate::say!("  {:<12} {outcome}", self.name);
            }
            None => crate::say!("{outcome}"),
        }
    }
}
