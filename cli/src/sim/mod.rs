//! The mobile simulator behind `socialctl sim`: a population of phones (`device.rs`),
//! each a task of its own with its own resource, session (`session.rs`), flaky network,
//! clock, and bounded telemetry buffer (`spans.rs`), and a share of deliberately wrong
//! requests (`bad.rs`). This module holds what the phones share: the profile, the HTTP
//! client, the counters the progress lines read, and the figures the report is built
//! from.

pub mod bad;
pub mod device;
pub mod session;
pub mod spans;
pub mod view;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;
use scenarios::sim::Profile;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use bad::BadKind;
use device::{Device, Outcome};

/// Counters the progress lines read while the phones run.
#[derive(Debug, Default)]
pub struct Counters {
    pub started: AtomicU64,
    pub sessions: AtomicU64,
    pub screens: AtomicU64,
    pub spans: AtomicU64,
    pub uploaded: AtomicU64,
    pub dropped: AtomicU64,
    pub not_retried: AtomicU64,
    pub offline_periods: AtomicU64,
    /// Phones without a network right now.
    pub offline_now: std::sync::atomic::AtomicI64,
}

/// A trace or span id as lowercase hex, as OTLP/JSON and `traceparent` write it.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One request that reached the network: what `verify-traces --sent` accounts for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sent {
    pub trace_id: String,
    /// The phone's CLIENT span: the server span's parent.
    pub parent_span_id: String,
    pub endpoint: String,
    pub status: Option<u16>,
    /// The gateway answered, not a service (no `traceparent` came back).
    pub gateway_only: bool,
    pub device: usize,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 2).expect("valid histogram bounds")
}

#[derive(Debug)]
struct Latencies {
    count: u64,
    failures: u64,
    retries: u64,
    server_errors: u64,
    micros: Histogram<u64>,
}

impl Default for Latencies {
    fn default() -> Self {
        Latencies {
            count: 0,
            failures: 0,
            retries: 0,
            server_errors: 0,
            micros: histogram(),
        }
    }
}

impl Latencies {
    fn record(&mut self, d: Duration, ok: bool) {
        self.count += 1;
        self.failures += u64::from(!ok);
        let _ = self.micros.record((d.as_micros() as u64).max(1));
    }

    fn row(&self, name: &str) -> Row {
        let q = |q: f64| self.micros.value_at_quantile(q) as f64 / 1000.0;
        Row {
            name: name.to_owned(),
            count: self.count,
            failures: self.failures,
            retries: self.retries,
            server_errors: self.server_errors,
            p50_ms: q(0.5),
            p90_ms: q(0.9),
            p99_ms: q(0.99),
        }
    }
}

/// Screens that ended in one second of the run.
#[derive(Debug)]
pub struct Second {
    pub screens: u64,
    pub micros: Histogram<u64>,
}

#[derive(Debug, Default)]
struct Stats {
    /// Per second of the run, for the live view.
    seconds: Vec<Second>,
    screens: BTreeMap<String, Latencies>,
    networks: BTreeMap<String, Latencies>,
    bad: BTreeMap<BadKind, BTreeMap<String, u64>>,
    defects: Vec<String>,
}

/// What every phone shares.
pub struct Shared {
    pub profile: Profile,
    /// The gateway's base URL, and its host and port (`server.*` of CLIENT spans).
    pub gateway: String,
    pub server: (String, u16),
    /// The OTLP/HTTP endpoint the phones upload to.
    pub sink: String,
    pub client: reqwest::Client,
    pub seed: u64,
    /// Marks this run's resources and message ids.
    pub run_tag: String,
    pub counters: Counters,
    /// Set when the user quits the live view: phones stop at their next step.
    stop: std::sync::atomic::AtomicBool,
    quit: tokio::sync::Notify,
    /// When the run began (set by [`run`]).
    pub started: Mutex<Option<Instant>>,
    stats: Mutex<Stats>,
    sent: Mutex<Vec<Sent>>,
    /// Spans still on the phones, by trace: what a verification must wait for.
    pending: Mutex<std::collections::HashMap<[u8; 16], u32>>,
    /// Traces that lost a span in a full phone buffer.
    dropped: Mutex<std::collections::HashSet<[u8; 16]>>,
}

/// The traces that lost a span in a full phone buffer, over every simulation on this
/// stack (kept until the stack's data goes): `verify-traces` attributes their holes to
/// the phones instead of calling them incomplete.
pub fn dropped_file(state_dir: &std::path::Path) -> std::path::PathBuf {
    state_dir.join("sim-dropped.json")
}

/// The traces recorded in [`dropped_file`].
pub fn read_dropped(state_dir: &std::path::Path) -> std::collections::HashSet<String> {
    std::fs::read_to_string(dropped_file(state_dir))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

/// Writes `ids` to `path` through a temporary file, so a reader never sees half of it.
fn write_ids(path: &std::path::Path, ids: &std::collections::HashSet<String>) {
    if let Ok(json) = serde_json::to_vec(ids) {
        let tmp = path.with_extension("json.tmp");
        if std::fs::write(&tmp, json).is_ok() {
            let _ = std::fs::rename(&tmp, path);
        }
    }
}

/// The file where a running simulation lists the traces whose spans still wait on
/// phones (rewritten every two seconds, removed at the end); `verify-traces` waits for
/// them instead of calling them incomplete.
pub fn pending_file(state_dir: &std::path::Path) -> std::path::PathBuf {
    state_dir.join("sim-pending.json")
}

/// The traces a running simulation still holds on phones; `None` when none runs (no
/// file, or one not rewritten for 10 s: a simulation that died).
pub fn read_pending(state_dir: &std::path::Path) -> Option<std::collections::HashSet<String>> {
    let path = pending_file(state_dir);
    let fresh = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age < Duration::from_secs(10));
    if !fresh {
        return None;
    }
    let text = std::fs::read_to_string(&path).ok()?;
    serde_json::from_str(&text).ok()
}

impl Shared {
    pub fn new(profile: Profile, gateway: &str, sink: &str, seed: u64) -> anyhow::Result<Shared> {
        let url = reqwest::Url::parse(gateway)?;
        Ok(Shared {
            profile,
            gateway: gateway.trim_end_matches('/').to_owned(),
            server: (
                url.host_str().unwrap_or("127.0.0.1").to_owned(),
                url.port_or_known_default().unwrap_or(80),
            ),
            sink: sink.trim_end_matches('/').to_owned(),
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(256)
                .build()?,
            seed,
            run_tag: format!("sim{:x}", seed & 0xff_ffff),
            counters: Counters::default(),
            stop: std::sync::atomic::AtomicBool::new(false),
            quit: tokio::sync::Notify::new(),
            started: Mutex::new(None),
            stats: Mutex::new(Stats::default()),
            sent: Mutex::new(Vec::new()),
            pending: Mutex::new(std::collections::HashMap::new()),
            dropped: Mutex::new(std::collections::HashSet::new()),
        })
    }

    #[cfg(test)]
    pub fn for_tests() -> Shared {
        Shared::new(
            Profile::phones(),
            "http://127.0.0.1:9",
            "http://127.0.0.1:9",
            1,
        )
        .expect("shared state")
    }

    fn stats(&self) -> std::sync::MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A span of `trace` is on a phone (`+1`) or has left it, uploaded or dropped (`-1`).
    pub fn pending(&self, trace: [u8; 16], delta: i32) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let n = p.entry(trace).or_default();
        *n = n.saturating_add_signed(delta);
        if *n == 0 {
            p.remove(&trace);
        }
    }

    /// A span of `trace` was dropped from a full phone buffer.
    pub fn dropped(&self, trace: [u8; 16]) {
        self.dropped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(trace);
    }

    /// Writes the traces still on phones (`sim-pending.json`) and those that lost a
    /// span (`sim-dropped.json`, added to what earlier runs left) to `state_dir`.
    pub fn write_lists(&self, state_dir: &std::path::Path) {
        let pending: std::collections::HashSet<String> =
            self.pending_traces().into_iter().collect();
        write_ids(&pending_file(state_dir), &pending);
        let mine = self.dropped_traces();
        if !mine.is_empty() {
            let mut all = read_dropped(state_dir);
            let before = all.len();
            all.extend(mine);
            if all.len() != before {
                write_ids(&dropped_file(state_dir), &all);
            }
        }
    }

    /// The traces with spans still on phones, as hex ids.
    pub fn pending_traces(&self) -> Vec<String> {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .map(|t| hex(t))
            .collect()
    }

    /// The traces that lost a span in a full phone buffer, as hex ids.
    pub fn dropped_traces(&self) -> std::collections::HashSet<String> {
        self.dropped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|t| hex(t))
            .collect()
    }

    pub fn sent(&self, s: Sent) {
        self.sent.lock().unwrap_or_else(|e| e.into_inner()).push(s);
    }

    /// The requests sent so far, from index `from` on, and the count.
    pub fn sent_since(&self, from: usize) -> (Vec<Sent>, usize) {
        let all = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        (
            all.get(from..).map(<[Sent]>::to_vec).unwrap_or_default(),
            all.len(),
        )
    }

    /// Seconds since the run began.
    pub fn elapsed(&self) -> Duration {
        self.started
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map_or(Duration::ZERO, |t| t.elapsed())
    }

    /// Whether the phones should stop (the live view was quit).
    pub fn stopping(&self) -> bool {
        self.stop.load(Relaxed)
    }

    /// Stops the run: every phone ends at its next step, sleeping ones at once.
    pub fn quit(&self) {
        self.stop.store(true, Relaxed);
        self.quit.notify_waiters();
    }

    /// Sleeps until `until`, or until the run is stopped.
    pub async fn nap(&self, until: Instant) {
        if self.stopping() {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep_until(until) => {}
            () = self.quit.notified() => {}
        }
    }

    /// A screen ended (times on the phone's clock, in nanoseconds).
    pub fn screen(&self, name: &str, start_ns: u64, end_ns: u64, ok: bool) {
        self.counters.screens.fetch_add(1, Relaxed);
        let took = Duration::from_nanos(end_ns.saturating_sub(start_ns));
        let second = self.elapsed().as_secs() as usize;
        let mut st = self.stats();
        st.screens
            .entry(name.to_owned())
            .or_default()
            .record(took, ok);
        while st.seconds.len() <= second {
            st.seconds.push(Second {
                screens: 0,
                micros: histogram(),
            });
        }
        let s = &mut st.seconds[second];
        s.screens += 1;
        let _ = s.micros.record((took.as_micros() as u64).max(1));
    }

    /// Per whole second so far: screens, and their p50 and p99 in ms.
    pub fn per_second(&self) -> Vec<(u64, f64, f64)> {
        let now = self.elapsed().as_secs() as usize;
        let st = self.stats();
        st.seconds
            .iter()
            .take(now)
            .map(|s| {
                (
                    s.screens,
                    s.micros.value_at_quantile(0.5) as f64 / 1000.0,
                    s.micros.value_at_quantile(0.99) as f64 / 1000.0,
                )
            })
            .collect()
    }

    /// The report's rows now: per screen and per network.
    pub fn rows(&self) -> (Vec<Row>, Vec<Row>) {
        let st = self.stats();
        (
            st.screens.iter().map(|(k, v)| v.row(k)).collect(),
            st.networks.iter().map(|(k, v)| v.row(k)).collect(),
        )
    }

    /// One attempt of a call ended, as the phone saw it.
    pub fn observe_call(&self, network: &str, took: Duration, o: &Outcome, retry: bool) {
        let mut st = self.stats();
        let n = st.networks.entry(network.to_owned()).or_default();
        n.record(
            took,
            o.failure.is_none() && o.status.is_some_and(|s| s < 500),
        );
        n.retries += u64::from(retry);
        n.server_errors += u64::from(o.status.is_some_and(|s| s >= 500));
    }

    /// A bad request's answer: a 4xx with the JSON error body, or a defect.
    pub fn bad(&self, kind: BadKind, o: &Outcome, took: Duration, trace_id: String) {
        let status = o.status.map_or("no answer".to_owned(), |s| s.to_string());
        let mut st = self.stats();
        *st.bad
            .entry(kind)
            .or_default()
            .entry(status.clone())
            .or_default() += 1;
        let body_ok = ["error", "message", "trace_id"]
            .iter()
            .all(|k| o.json[k].is_string());
        let defect = match o.status {
            None => Some(format!("no answer in {:.1} s", took.as_secs_f64())),
            Some(s) if s >= 500 => Some(format!("HTTP {s}")),
            Some(s) if !(400..500).contains(&s) => Some(format!("HTTP {s}, not a 4xx")),
            Some(s) if !body_ok => Some(format!("HTTP {s} without the JSON error body")),
            _ => None,
        };
        if let Some(d) = defect
            && st.defects.len() < 50
        {
            st.defects
                .push(format!("{}: {d} (trace {trace_id})", kind.name()));
        }
    }
}

/// A row of the report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    pub name: String,
    pub count: u64,
    pub failures: u64,
    pub retries: u64,
    pub server_errors: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BadRow {
    pub kind: String,
    /// Status (or `no answer`) → count.
    pub answers: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceRow {
    pub device: String,
    pub model: String,
    pub network: String,
    /// Its clock's error (positive: fast).
    pub clock_offset_ms: f64,
    pub spans_dropped: u64,
}

/// The end-of-run report (`--json` prints it as is).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub devices: usize,
    pub seconds: f64,
    pub screens: Vec<Row>,
    /// Each call attempt, by the phone's network.
    pub networks: Vec<Row>,
    pub bad_requests: Vec<BadRow>,
    /// Bad requests answered with a 5xx, no 4xx, no JSON error body, or nothing.
    pub defects: Vec<String>,
    pub sessions: u64,
    pub session_rotations: u64,
    pub offline_periods: u64,
    /// Non-idempotent calls that failed and were not sent again (no idempotency key).
    pub not_retried: u64,
    pub spans: u64,
    pub spans_uploaded: u64,
    pub spans_dropped_on_devices: u64,
    /// Traces that lost a span in a full device buffer.
    pub traces_with_dropped_spans: usize,
    /// Phones with a wrong clock, or whose buffer overflowed.
    pub notable_devices: Vec<DeviceRow>,
    pub record: String,
}

impl Report {
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let table = |s: &mut String, title: &str, rows: &[Row]| {
            let _ = writeln!(
                s,
                "{title:<32} {:>8} {:>7} {:>7} {:>6} {:>9} {:>9} {:>9}",
                "count", "failed", "retries", "5xx", "p50 ms", "p90 ms", "p99 ms"
            );
            for r in rows {
                let _ = writeln!(
                    s,
                    "{:<32} {:>8} {:>7} {:>7} {:>6} {:>9.1} {:>9.1} {:>9.1}",
                    r.name,
                    r.count,
                    r.failures,
                    r.retries,
                    r.server_errors,
                    r.p50_ms,
                    r.p90_ms,
                    r.p99_ms
                );
            }
            s.push('\n');
        };
        table(&mut s, "screen (as the phone saw it)", &self.screens);
        table(&mut s, "network (each call attempt)", &self.networks);
        let _ = writeln!(s, "{:<32} answers", "bad request");
        for b in &self.bad_requests {
            let answers: Vec<String> = b.answers.iter().map(|(k, v)| format!("{k}×{v}")).collect();
            let _ = writeln!(s, "{:<32} {}", b.kind, answers.join(", "));
        }
        let _ = writeln!(
            s,
            "\n{} devices for {:.0} s: {} sessions ({} rotated), {} offline periods, {} failed non-idempotent calls not retried (no idempotency key)",
            self.devices,
            self.seconds,
            self.sessions,
            self.session_rotations,
            self.offline_periods,
            self.not_retried
        );
        let _ = writeln!(
            s,
            "telemetry: {} spans made on the phones, {} uploaded, {} dropped from full device buffers ({} traces lost a span that way)",
            self.spans,
            self.spans_uploaded,
            self.spans_dropped_on_devices,
            self.traces_with_dropped_spans
        );
        if !self.notable_devices.is_empty() {
            let _ = writeln!(
                s,
                "\n{:<12} {:<16} {:<10} {:>14} {:>8}",
                "device", "model", "network", "clock offset", "dropped"
            );
            for d in &self.notable_devices {
                let _ = writeln!(
                    s,
                    "{:<12} {:<16} {:<10} {:>11.0} ms {:>8}",
                    d.device, d.model, d.network, d.clock_offset_ms, d.spans_dropped
                );
            }
        }
        if self.defects.is_empty() {
            let _ = writeln!(s, "\nevery bad request got a 4xx with the JSON error body");
        } else {
            let _ = writeln!(s, "\nDEFECTS of the system under test:");
            for d in &self.defects {
                let _ = writeln!(s, "  {d}");
            }
        }
        let _ = writeln!(s, "requests recorded in {}", self.record);
        s
    }
}

/// Runs `devices` phones for `duration` (starting them over `ramp`), prints a progress
/// line every `every`, and returns the phones (flushed) and what they sent.
pub async fn run(
    shared: Arc<Shared>,
    devices: usize,
    duration: Duration,
    ramp: Duration,
    progress: impl Fn(&Counters, Duration),
) -> (Vec<Device>, Vec<Sent>, f64) {
    let t0 = Instant::now();
    *shared.started.lock().unwrap_or_else(|e| e.into_inner()) = Some(t0);
    let until = t0 + duration;
    let mut tasks = Vec::with_capacity(devices);
    for i in 0..devices {
        let d = Device::new(i, &shared);
        let at = t0 + ramp.mul_f64(i as f64 / devices.max(1) as f64);
        tasks.push(tokio::spawn(d.live(shared.clone(), at, until)));
    }
    let ticker = {
        let shared = shared.clone();
        async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            tick.tick().await;
            loop {
                tick.tick().await;
                progress(&shared.counters, t0.elapsed());
            }
        }
    };
    let mut done = Vec::with_capacity(devices);
    let joined = async {
        for t in tasks {
            if let Ok(d) = t.await {
                done.push(d);
            }
        }
    };
    tokio::select! {
        _ = joined => {}
        _ = ticker => {}
    }
    let seconds = t0.elapsed().as_secs_f64().min(duration.as_secs_f64());
    shared.counters.offline_now.store(0, Relaxed);
    // Every phone is back online at the end and uploads what it kept.
    let flushes = done.into_iter().map(|mut d| {
        let shared = shared.clone();
        tokio::spawn(async move {
            d.flush(&shared).await;
            d
        })
    });
    let mut out = Vec::with_capacity(devices);
    for f in flushes.collect::<Vec<_>>() {
        if let Ok(d) = f.await {
            out.push(d);
        }
    }
    let sent = std::mem::take(&mut *shared.sent.lock().unwrap_or_else(|e| e.into_inner()));
    (out, sent, seconds)
}

/// The report of a finished run.
pub fn report(
    shared: &Shared,
    devices: &[Device],
    seconds: f64,
    dropped_traces: usize,
    record: String,
) -> Report {
    let st = shared.stats();
    let c = &shared.counters;
    let mut notable: Vec<DeviceRow> = devices
        .iter()
        .filter(|d| d.skew_ns != 0 || d.buffer.dropped > 0)
        .map(|d| DeviceRow {
            device: format!("device-{}", d.index),
            model: d.model.name.clone(),
            network: d.network.label(),
            clock_offset_ms: d.skew_ns as f64 / 1e6,
            spans_dropped: d.buffer.dropped,
        })
        .collect();
    notable.sort_by(|a, b| {
        b.spans_dropped
            .cmp(&a.spans_dropped)
            .then(a.device.cmp(&b.device))
    });
    Report {
        devices: devices.len(),
        seconds,
        screens: st.screens.iter().map(|(k, v)| v.row(k)).collect(),
        networks: st.networks.iter().map(|(k, v)| v.row(k)).collect(),
        bad_requests: st
            .bad
            .iter()
            .map(|(k, v)| BadRow {
                kind: k.name().to_owned(),
                answers: v.clone(),
            })
            .collect(),
        defects: st.defects.clone(),
        sessions: c.sessions.load(Relaxed),
        session_rotations: devices.iter().map(|d| d.session.rotations).sum(),
        offline_periods: c.offline_periods.load(Relaxed),
        not_retried: c.not_retried.load(Relaxed),
        spans: c.spans.load(Relaxed),
        spans_uploaded: c.uploaded.load(Relaxed),
        spans_dropped_on_devices: c.dropped.load(Relaxed),
        traces_with_dropped_spans: dropped_traces,
        notable_devices: notable,
        record,
    }
}
