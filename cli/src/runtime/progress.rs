//! One progress line per component during `up`: a live spinner with the state and the
//! elapsed time on a terminal, plain lines when output goes to a pipe or a CI log.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

pub struct Line {
    bar: Option<ProgressBar>,
    name: String,
    t0: Instant,
}

impl Line {
    /// Starts the line for `name` in state `state` (e.g. "starting").
    pub fn start(name: &str, state: &str) -> Self {
        let bar = std::io::stdout().is_terminal().then(|| {
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
            print!("  {name:<12} {state} … ");
            let _ = std::io::stdout().flush();
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
                println!("  {:<12} {text}", self.name);
            }
            None => println!("{text}"),
        }
    }

    /// Ends the line as failed (the error is printed by the caller).
    pub fn fail(self, outcome: &str) {
        match self.bar {
            Some(b) => {
                b.finish_and_clear();
                println!("  {:<12} {outcome}", self.name);
            }
            None => println!("{outcome}"),
        }
    }
}
