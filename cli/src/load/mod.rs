//! The load generator behind `socialctl load`: a social network's day, with goose
//! embedded as a library.
//!
//! - [`user`]: what one virtual user does (the workload file decides the mix);
//! - [`conn`]: each user's own HTTP/1.1 keep-alive connection to the gateway;
//! - [`socket`]: a user's messaging socket (acknowledgements, delivery latency);
//! - [`pace`]: run control (deadline, pause, stop) and the open-model pacer;
//! - [`record`]: per-request outcomes → HDR histograms, the report, the JSON-lines record;
//! - [`live`]: trace completeness read from the sink while the run goes on;
//! - [`view`]: the live view's frame data and screen loop.
//!
//! goose runs the users (ramp, scheduling) on one thread of their own; each sends on its
//! own connection (`conn`), not through goose's client; socialctl measures:
//! goose's own metrics are off, because latency here counts from each request's intended
//! start and every request carries a trace. The verb itself is `cmd/load.rs`.

pub mod conn;
pub mod live;
pub mod pace;
pub mod png;
pub mod record;
pub mod socket;
pub mod user;
pub mod view;

use std::time::Duration;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Duration,
    Interrupted,
    Quit,
}

impl Ending {
    pub fn describe(self) -> &'static str {
        match self {
            Ending::Duration => "its duration",
            Ending::Interrupted => "Ctrl-C",
            Ending::Quit => "q (quit)",
        }
    }
}

/// A logger for the `log` records goose (and reqwest) emit, installed before goose's
/// own, which would print to stdout over the report or the full-screen view. Warnings
/// and errors are kept for the view and printed after the run.
struct KeptLog;

static KEPT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

impl log::Log for KeptLog {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Warn
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            let mut k = KEPT.lock().unwrap_or_else(|e| e.into_inner());
            if k.len() < 100 {
                k.push(format!("{} {}: {}", r.level(), r.target(), r.args()));
            }
        }
    }
    fn flush(&self) {}
}

pub fn install_logger() {
    if log::set_logger(&KeptLog).is_ok() {
        log::set_max_level(log::LevelFilter::Warn);
    }
}

/// Messages goose or its HTTP client logged at warning level or above.
pub fn kept_warnings() -> Vec<String> {
    KEPT.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// goose's launch rate, users per second, so that every user is running after `ramp`.
///
/// A users-and-rate launch rather than a `--test-plan`: with a test plan goose prints
/// "N users launched." to stdout, over the live view and into `--json`.
pub fn increase_rate(users: usize, ramp: Duration) -> String {
    let secs = ramp.as_secs_f64().max(0.001);
    format!("{:.3}", users as f64 / secs)
}
