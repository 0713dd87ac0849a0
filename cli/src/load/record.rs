//! Every request's outcome: one thread aggregates them into HDR histograms (per endpoint
//! and per second) and appends each to the JSON-lines file `verify-traces --sent` reads.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use hdrhistogram::Histogram;
use opentelemetry::trace::{SpanId, TraceId};
use scenarios::workload::{Rule, Threshold};
use serde::{Deserialize, Serialize};

/// Declares [`Endpoint`] from one table, so each method and route template is written
/// once and the span name is made from them at compile time.
macro_rules! endpoints {
    ($($variant:ident => $method:literal $route:literal,)*) => {
        /// The requests the workload sends, by route template (low cardinality: span
        /// names and report rows).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Endpoint {
            $($variant,)*
        }

        impl Endpoint {
            pub const ALL: &[Endpoint] = &[$(Endpoint::$variant,)*];

            pub fn method(self) -> &'static str {
                match self {
                    $(Endpoint::$variant => $method,)*
                }
            }

            /// The route template, as the services name their server spans.
            pub fn route(self) -> &'static str {
                match self {
                    $(Endpoint::$variant => $route,)*
                }
            }

            /// `GET /api/feed/timeline`: the span name and the report's row label.
            pub fn name(self) -> &'static str {
                match self {
                    $(Endpoint::$variant => concat!($method, " ", $route),)*
                }
            }
        }
    };
}

endpoints! {
    Register => "POST" "/api/auth/register",
    Login => "POST" "/api/auth/login",
    Refresh => "POST" "/api/auth/refresh",
    Timeline => "GET" "/api/feed/timeline",
    GetPost => "GET" "/api/feed/posts/{id}",
    ListComments => "GET" "/api/feed/posts/{id}/comments",
    Profile => "GET" "/api/profiles/{username}",
    UserPosts => "GET" "/api/feed/users/{username}/posts",
    Search => "GET" "/api/profiles/search",
    Follow => "PUT" "/api/profiles/{username}/follow",
    Unfollow => "DELETE" "/api/profiles/{username}/follow",
    CreatePost => "POST" "/api/feed/posts",
    Like => "PUT" "/api/feed/posts/{id}/like",
    Comment => "POST" "/api/feed/posts/{id}/comments",
    OpenConversation => "POST" "/api/messages/conversations",
    WsTicket => "POST" "/api/messages/ws-ticket",
    Upload => "POST" "/api/media",
    MediaStatus => "GET" "/api/media/{id}",
    // A message sent on the user's socket, answered by its acknowledgement.
    WsSend => "WS" "send",
}

/// One finished request.
#[derive(Debug, Clone)]
pub struct Sample {
    pub endpoint: Endpoint,
    /// HTTP status, or `None` when no response came (connection refused, timeout).
    pub status: Option<u16>,
    /// When it was meant to start, from the run's start.
    pub intended: Duration,
    /// From the intended start to the end of the response body.
    pub latency: Duration,
    /// From sending to the end of the response body (what the server cost).
    pub service: Duration,
    /// Closed model: the user's usual gap between requests, for coordinated-omission
    /// correction; zero in the open model, whose latency already counts from the slot.
    pub interval: Duration,
    pub trace_id: TraceId,
    pub span_id: SpanId,
    /// Sent while establishing the user's session (the sign-in phase, like k6's `setup`
    /// or Locust's `on_start`), not during its day.
    pub setup: bool,
}

impl Sample {
    pub fn failed(&self) -> bool {
        self.status.is_none_or(|s| s >= 400)
    }

    fn status_key(&self) -> String {
        self.status
            .map_or_else(|| "no response".to_owned(), |s| s.to_string())
    }
}

/// The line written per request; `verify-traces --sent` reads the first four fields.
#[derive(Debug, Serialize, Deserialize)]
pub struct SentLine {
    pub trace_id: String,
    pub parent_span_id: Option<String>,
    pub endpoint: String,
    pub status: Option<u16>,
    pub latency_ms: f64,
    pub intended_ms: f64,
}

fn histogram(sigfig: u8) -> Histogram<u64> {
    // 1 µs to 10 minutes.
    Histogram::new_with_bounds(1, 600_000_000, sigfig).expect("valid histogram bounds")
}

#[derive(Debug, Clone)]
pub struct EndpointStats {
    pub requests: u64,
    pub failures: u64,
    pub statuses: BTreeMap<String, u64>,
    /// From the intended start, corrected for coordinated omission (µs).
    pub latency: Histogram<u64>,
    /// From sending (µs), uncorrected.
    pub service: Histogram<u64>,
}

impl Default for EndpointStats {
    fn default() -> Self {
        Self {
            requests: 0,
            failures: 0,
            statuses: BTreeMap::new(),
            latency: histogram(3),
            service: histogram(3),
        }
    }
}

/// One second of the run, for the live charts.
#[derive(Debug, Clone)]
pub struct Second {
    pub requests: u64,
    pub failures: u64,
    pub latency: Histogram<u64>,
}

/// Everything recorded so far. Shared with the live view behind a mutex.
#[derive(Debug, Default)]
pub struct Stats {
    /// The measured day, per endpoint (token refreshes and later sign-ins included).
    pub per_endpoint: BTreeMap<Endpoint, EndpointStats>,
    /// The sign-in phase: every request of a user who had no session yet. Reported as
    /// its own row, outside the day's totals and thresholds.
    pub sign_in: EndpointStats,
    /// Counted separately from the endpoints, as a cross-check of the report's totals.
    pub recorded: u64,
    pub seconds: Vec<Second>,
    /// Recent finished requests, newest last, for the live completeness check.
    pub recent: std::collections::VecDeque<(Duration, SentLineLite)>,
    pub users_signed_in: u64,
    pub write_error: Option<String>,
    /// Messages from one user's socket to another's: send to arrival (µs).
    pub delivery: Option<Histogram<u64>>,
}

/// What the live completeness check needs of a request.
#[derive(Debug, Clone)]
pub struct SentLineLite {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub endpoint: Endpoint,
    pub status: Option<u16>,
}

/// Enough for the live check to find settled requests at 20k requests/s.
const RECENT_KEPT: usize = 100_000;

impl Stats {
    fn add(&mut self, s: &Sample, end: Duration) {
        let e = if s.setup {
            &mut self.sign_in
        } else {
            self.recorded += 1;
            self.per_endpoint.entry(s.endpoint).or_default()
        };
        e.requests += 1;
        let failed = s.failed();
        e.failures += u64::from(failed);
        *e.statuses.entry(s.status_key()).or_default() += 1;
        let us = (s.latency.as_micros() as u64).max(1);
        let interval = s.interval.as_micros() as u64;
        // record_correct adds the requests a stalled closed-loop user did not send.
        let _ = if interval > 0 {
            e.latency.record_correct(us, interval)
        } else {
            e.latency.record(us)
        };
        let _ = e.service.record((s.service.as_micros() as u64).max(1));
        let sec = end.as_secs() as usize;
        while self.seconds.len() <= sec {
            self.seconds.push(Second {
                requests: 0,
                failures: 0,
                latency: histogram(2),
            });
        }
        let b = &mut self.seconds[sec];
        b.requests += 1;
        b.failures += u64::from(failed);
        let _ = b.latency.record(us);
        self.recent.push_back((
            end,
            SentLineLite {
                trace_id: s.trace_id,
                span_id: s.span_id,
                endpoint: s.endpoint,
                status: s.status,
            },
        ));
        if self.recent.len() > RECENT_KEPT {
            self.recent.pop_front();
        }
    }
}

enum Msg {
    Sample(Sample),
    SignedIn,
    Delivered(Duration),
}

/// Where users drop outcomes; the recorder thread empties it every few milliseconds.
/// A mutex-guarded vector, not a channel: a channel wakes the thread (a futex call) on
/// every request, which cost more CPU than the rest of the recording together.
#[derive(Default)]
struct Inbox {
    queue: Mutex<Vec<Msg>>,
    finished: AtomicBool,
}

/// Cheap to clone; every virtual user holds one.
#[derive(Clone)]
pub struct RecorderHandle {
    inbox: Arc<Inbox>,
}

impl RecorderHandle {
    fn push(&self, m: Msg) {
        self.inbox
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(m);
    }

    pub fn record(&self, s: Sample) {
        self.push(Msg::Sample(s));
    }

    pub fn signed_in(&self) {
        self.push(Msg::SignedIn);
    }

    /// A message arrived on a user's socket, this long after another user sent it.
    pub fn delivered(&self, d: Duration) {
        self.push(Msg::Delivered(d));
    }
}

/// How often the recorder thread empties the inbox.
const DRAIN_EVERY: Duration = Duration::from_millis(20);

pub struct Recorder {
    pub stats: Arc<Mutex<Stats>>,
    pub path: PathBuf,
    handle: RecorderHandle,
    thread: std::thread::JoinHandle<()>,
}

impl Recorder {
    /// Starts the aggregating thread, writing request lines to `path` (created, with its
    /// directory; an existing file is replaced).
    pub fn start(path: &Path, started: tokio::time::Instant) -> anyhow::Result<Recorder> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("could not create {}", dir.display()))?;
        }
        let file = std::fs::File::create(path)
            .with_context(|| format!("could not create the request record {}", path.display()))?;
        let stats = Arc::new(Mutex::new(Stats::default()));
        let inbox = Arc::new(Inbox::default());
        let (shared, theirs) = (stats.clone(), inbox.clone());
        let thread = std::thread::Builder::new()
            .name("load-recorder".into())
            .spawn(move || aggregate(&theirs, shared, file, started))
            .context("could not start the recorder thread")?;
        Ok(Recorder {
            stats,
            path: path.to_owned(),
            handle: RecorderHandle { inbox },
            thread,
        })
    }

    pub fn handle(&self) -> RecorderHandle {
        self.handle.clone()
    }

    /// Records everything already sent, flushes the file and stops the thread.
    pub fn finish(self) -> anyhow::Result<Arc<Mutex<Stats>>> {
        self.handle.inbox.finished.store(true, Ordering::Release);
        self.thread
            .join()
            .map_err(|_| anyhow::anyhow!("the recorder thread panicked"))?;
        let err = self
            .stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .write_error
            .clone();
        if let Some(e) = err {
            anyhow::bail!("writing {} failed: {e}", self.path.display());
        }
        Ok(self.stats)
    }
}

fn aggregate(
    inbox: &Inbox,
    stats: Arc<Mutex<Stats>>,
    file: std::fs::File,
    started: tokio::time::Instant,
) {
    let mut out = std::io::BufWriter::with_capacity(1 << 16, file);
    let mut batch = Vec::with_capacity(4096);
    let mut write_error = None;
    loop {
        // Read the flag first: whatever was pushed before finish() is in this drain.
        let finish = inbox.finished.load(Ordering::Acquire);
        std::mem::swap(
            &mut batch,
            &mut *inbox.queue.lock().unwrap_or_else(|e| e.into_inner()),
        );
        let end = started.elapsed();
        for m in &batch {
            if let Msg::Sample(s) = m
                && write_error.is_none()
            {
                let line = SentLine {
                    trace_id: s.trace_id.to_string(),
                    parent_span_id: Some(s.span_id.to_string()),
                    endpoint: s.endpoint.name().to_owned(),
                    status: s.status,
                    latency_ms: s.latency.as_secs_f64() * 1000.0,
                    intended_ms: s.intended.as_secs_f64() * 1000.0,
                };
                let r = serde_json::to_writer(&mut out, &line)
                    .map_err(std::io::Error::other)
                    .and_then(|()| out.write_all(b"\n"));
                if let Err(e) = r {
                    write_error = Some(e.to_string());
                }
            }
        }
        {
            let mut st = stats.lock().unwrap_or_else(|e| e.into_inner());
            for m in batch.drain(..) {
                match m {
                    Msg::Sample(s) => st.add(&s, end),
                    Msg::SignedIn => st.users_signed_in += 1,
                    Msg::Delivered(d) => {
                        let _ = st
                            .delivery
                            .get_or_insert_with(|| histogram(3))
                            .record((d.as_micros() as u64).max(1));
                    }
                }
            }
            if st.write_error.is_none() {
                st.write_error.clone_from(&write_error);
            }
        }
        if finish {
            break;
        }
        std::thread::sleep(DRAIN_EVERY);
    }
    if let Err(e) = out.flush() {
        stats.lock().unwrap_or_else(|e| e.into_inner()).write_error = Some(e.to_string());
    }
}

/// One row of the end-of-run table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    pub endpoint: String,
    pub requests: u64,
    pub failures: u64,
    /// Status → count; `no response` for transport failures.
    pub statuses: BTreeMap<String, u64>,
    pub rps: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// p99 from sending, without the coordinated-omission correction.
    pub service_p99_ms: f64,
}

fn row(name: &str, e: &EndpointStats, secs: f64) -> Row {
    let q = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    Row {
        endpoint: name.to_owned(),
        requests: e.requests,
        failures: e.failures,
        statuses: e.statuses.clone(),
        rps: e.requests as f64 / secs.max(1e-9),
        p50_ms: q(&e.latency, 0.50),
        p90_ms: q(&e.latency, 0.90),
        p99_ms: q(&e.latency, 0.99),
        max_ms: e.latency.max() as f64 / 1000.0,
        service_p99_ms: q(&e.service, 0.99),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ThresholdResult {
    pub rule: String,
    pub actual: String,
    pub passed: bool,
}

/// The end-of-run report (`--json` prints it as is).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub mode: String,
    /// The address requests went to, and by which path (loopback, a container address,
    /// the published ports).
    #[serde(default)]
    pub target: String,
    pub users: usize,
    pub seconds: f64,
    pub stopped_by: String,
    /// The sign-in phase (requests of users establishing their session), apart from
    /// the measured day.
    #[serde(default)]
    pub sign_in: Option<Row>,
    /// How long the sign-in phase lasted before the day began.
    #[serde(default)]
    pub sign_in_seconds: f64,
    pub endpoints: Vec<Row>,
    pub total: Row,
    /// Messages from one user's socket to another's, send to arrival (not requests: not
    /// in the total).
    #[serde(default)]
    pub delivery: Option<Row>,
    pub thresholds: Vec<ThresholdResult>,
    /// Open model: slots that fell due but were never sent (users all busy at the end).
    pub unsent: Option<u64>,
    pub client_spans: ClientSpans,
    pub record: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ClientSpans {
    pub ended: u64,
    pub exported: u64,
    pub failed: u64,
}

/// The row label of socket-to-socket message delivery.
pub const DELIVERY_ROW: &str = "delivery (socket to socket)";

/// The row label of the sign-in phase.
pub const SIGN_IN_ROW: &str = "sign-in phase (setup)";

impl Report {
    /// The row of messages delivered socket to socket, when there were any.
    pub fn delivery_row(stats: &Stats, seconds: f64) -> Option<Row> {
        let h = stats.delivery.as_ref().filter(|h| !h.is_empty())?;
        let e = EndpointStats {
            requests: h.len(),
            latency: h.clone(),
            service: h.clone(),
            ..EndpointStats::default()
        };
        Some(row(DELIVERY_ROW, &e, seconds))
    }

    /// The sign-in phase's row, when users signed in through the generator.
    pub fn sign_in_row(stats: &Stats, seconds: f64) -> Option<Row> {
        (stats.sign_in.requests > 0).then(|| row(SIGN_IN_ROW, &stats.sign_in, seconds))
    }

    pub fn build(
        stats: &Stats,
        seconds: f64,
        thresholds: &[Threshold],
    ) -> (Vec<Row>, Row, Vec<ThresholdResult>) {
        let mut total = EndpointStats::default();
        let mut rows = Vec::new();
        for (ep, e) in &stats.per_endpoint {
            rows.push(row(ep.name(), e, seconds));
            total.failures += e.failures;
            for (k, v) in &e.statuses {
                *total.statuses.entry(k.clone()).or_default() += v;
            }
            let _ = total.latency.add(&e.latency);
            let _ = total.service.add(&e.service);
        }
        total.requests = stats.recorded;
        let total = row("total", &total, seconds);
        let judged = thresholds
            .iter()
            .map(|t| {
                let chosen: Vec<&EndpointStats> = stats
                    .per_endpoint
                    .iter()
                    .filter(|(ep, _)| t.endpoint.as_deref().is_none_or(|want| ep.name() == want))
                    .map(|(_, e)| e)
                    .collect();
                let requests: u64 = chosen.iter().map(|e| e.requests).sum();
                let failures: u64 = chosen.iter().map(|e| e.failures).sum();
                if requests == 0 && t.endpoint.is_some() {
                    // Asked about an endpoint the run never called: nothing proves it.
                    return ThresholdResult {
                        rule: t.to_string(),
                        actual: "no requests".into(),
                        passed: false,
                    };
                }
                match t.rule {
                    Rule::ErrorRate(max) => {
                        let rate = if requests == 0 {
                            0.0
                        } else {
                            failures as f64 / requests as f64
                        };
                        ThresholdResult {
                            rule: t.to_string(),
                            actual: format!("{:.3}%", rate * 100.0),
                            passed: rate < max || (max == 0.0 && rate == 0.0),
                        }
                    }
                    Rule::Latency { percentile, max } => {
                        let mut h = histogram(3);
                        for e in &chosen {
                            let _ = h.add(&e.latency);
                        }
                        let v = if percentile >= 100.0 {
                            h.max()
                        } else {
                            h.value_at_percentile(percentile)
                        };
                        ThresholdResult {
                            rule: t.to_string(),
                            actual: format!("{:.1}ms", v as f64 / 1000.0),
                            passed: (v as u128) < max.as_micros(),
                        }
                    }
                }
            })
            .collect();
        (rows, total, judged)
    }

    pub fn passed(&self) -> bool {
        self.thresholds.iter().all(|t| t.passed)
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let statuses = |m: &BTreeMap<String, u64>| {
            m.iter()
                .map(|(k, v)| format!("{k}×{v}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        out.push_str(&format!(
            "{:<40} {:>9} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8}  statuses\n",
            "endpoint", "requests", "fail", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms"
        ));
        let rows = self
            .sign_in
            .iter()
            .chain(&self.endpoints)
            .chain(std::iter::once(&self.total))
            .chain(&self.delivery);
        for r in rows {
            out.push_str(&format!(
                "{:<40} {:>9} {:>6} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1}  {}\n",
                r.endpoint,
                r.requests,
                r.failures,
                r.rps,
                r.p50_ms,
                r.p90_ms,
                r.p99_ms,
                r.max_ms,
                statuses(&r.statuses)
            ));
        }
        out.push_str(&format!("\nsent to {}.", self.target));
        out.push_str(&format!(
            "\n{}, {} users, {:.1} s, ended by {}. Latency counts from each request's intended start \
             (coordinated omission corrected); p99 from sending alone: {:.1} ms.\n",
            self.mode, self.users, self.seconds, self.stopped_by, self.total.service_p99_ms
        ));
        if self.sign_in_seconds > 0.0 {
            out.push_str(&format!(
                "The day began after a sign-in phase of {:.1} s (every user's first sign-in: the {} row, \
                 outside the day's total and thresholds); sign-ins during the day count in it.\n",
                self.sign_in_seconds, SIGN_IN_ROW
            ));
        }
        if let Some(n) = self.unsent.filter(|n| *n > 0) {
            out.push_str(&format!(
                "{n} arrivals fell due but were never sent: every user was busy. Add --users to keep up with --rate.\n"
            ));
        }
        let c = &self.client_spans;
        out.push_str(&format!(
            "client spans: {} ended, {} exported, {} failed, {} lost\n",
            c.ended,
            c.exported,
            c.failed,
            c.ended.saturating_sub(c.exported + c.failed)
        ));
        for t in &self.thresholds {
            out.push_str(&format!(
                "threshold {:<20} {:<10} {}\n",
                t.rule,
                t.actual,
                if t.passed { "ok" } else { "FAILED" }
            ));
        }
        out.push_str(&format!(
            "requests recorded in {}\ncheck their traces: socialctl verify-traces --sent {}\n",
            self.record, self.record
        ));
        out
    }

    pub fn csv(&self) -> String {
        let mut out = String::from(
            "endpoint,requests,failures,rps,p50_ms,p90_ms,p99_ms,max_ms,service_p99_ms,statuses\n",
        );
        let rows = self
            .sign_in
            .iter()
            .chain(&self.endpoints)
            .chain(std::iter::once(&self.total))
            .chain(&self.delivery);
        for r in rows {
            let statuses: Vec<String> =
                r.statuses.iter().map(|(k, v)| format!("{k}:{v}")).collect();
            out.push_str(&format!(
                "\"{}\",{},{},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},\"{}\"\n",
                r.endpoint,
                r.requests,
                r.failures,
                r.rps,
                r.p50_ms,
                r.p90_ms,
                r.p99_ms,
                r.max_ms,
                r.service_p99_ms,
                statuses.join(" ")
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(endpoint: Endpoint, status: Option<u16>, ms: u64, interval_ms: u64) -> Sample {
        Sample {
            endpoint,
            status,
            intended: Duration::ZERO,
            latency: Duration::from_millis(ms),
            service: Duration::from_millis(ms),
            interval: Duration::from_millis(interval_ms),
            trace_id: TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap(),
            span_id: SpanId::from_hex("b7ad6b7169203331").unwrap(),
            setup: false,
        }
    }

    #[test]
    fn the_sign_in_phase_is_its_own_row_outside_the_days_totals_and_thresholds() {
        let mut st = Stats::default();
        for _ in 0..10 {
            let mut s = sample(Endpoint::Login, Some(200), 2000, 0);
            s.setup = true;
            st.add(&s, Duration::ZERO);
        }
        // A token refresh or a sign-in during the day stays in the day.
        st.add(&sample(Endpoint::Login, Some(200), 20, 0), Duration::ZERO);
        st.add(&sample(Endpoint::Timeline, Some(200), 5, 0), Duration::ZERO);
        let rules: Vec<Threshold> = ["p99<100ms"].iter().map(|s| s.parse().unwrap()).collect();
        let (rows, total, judged) = Report::build(&st, 1.0, &rules);
        assert_eq!(total.requests, 2);
        assert_eq!(rows.iter().map(|r| r.requests).sum::<u64>(), 2);
        assert!(judged[0].passed, "{judged:?}");
        let sign_in = Report::sign_in_row(&st, 1.0).expect("a sign-in row");
        assert_eq!(
            (sign_in.requests, sign_in.endpoint.as_str()),
            (10, SIGN_IN_ROW)
        );
        assert!(sign_in.p99_ms >= 1999.0);
    }

    #[test]
    fn a_stall_in_the_closed_model_is_backfilled() {
        let mut st = Stats::default();
        for _ in 0..99 {
            st.add(
                &sample(Endpoint::Timeline, Some(200), 1, 100),
                Duration::ZERO,
            );
        }
        // One request stalled for a second: a user pacing every 100 ms would have sent
        // nine more in that time, each waiting part of the stall.
        st.add(
            &sample(Endpoint::Timeline, Some(200), 1000, 100),
            Duration::ZERO,
        );
        let e = &st.per_endpoint[&Endpoint::Timeline];
        assert_eq!(e.requests, 100);
        assert_eq!(e.latency.len(), 109);
        assert_eq!(e.service.len(), 100);
        assert!(e.latency.value_at_quantile(0.95) >= 400_000);
        assert!(e.service.value_at_quantile(0.95) < 2_000);
    }

    #[test]
    fn totals_thresholds_and_statuses() {
        let mut st = Stats::default();
        for i in 0..90 {
            st.add(
                &sample(Endpoint::Timeline, Some(200), 10 + i, 0),
                Duration::from_millis(i * 20),
            );
        }
        for _ in 0..8 {
            st.add(
                &sample(Endpoint::CreatePost, Some(201), 30, 0),
                Duration::from_secs(1),
            );
        }
        st.add(
            &sample(Endpoint::Like, Some(503), 5, 0),
            Duration::from_secs(1),
        );
        st.add(
            &sample(Endpoint::Like, None, 5000, 0),
            Duration::from_secs(2),
        );
        let rules: Vec<Threshold> = [
            "error-rate<1%",
            "error-rate<5%",
            "p50<60ms",
            "max<1s",
            "error-rate<1% GET /api/feed/timeline",
            "max<100ms GET /api/feed/timeline",
            "p99<1s GET /api/profiles/search",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        let (rows, total, judged) = Report::build(&st, 2.0, &rules);
        assert_eq!(total.requests, 100);
        assert_eq!(rows.iter().map(|r| r.requests).sum::<u64>(), total.requests);
        assert_eq!(total.failures, 2);
        assert_eq!(total.statuses["no response"], 1);
        assert_eq!(total.statuses["503"], 1);
        assert_eq!(total.rps, 50.0);
        let passed: Vec<bool> = judged.iter().map(|t| t.passed).collect();
        // Per endpoint: the timeline never failed and stayed under 100 ms; nobody searched.
        assert_eq!(passed, [false, true, true, false, true, true, false]);
        assert_eq!(judged[6].actual, "no requests");
        assert_eq!(judged[0].actual, "2.000%");
        assert_eq!(st.seconds.len(), 3);
        assert_eq!(st.seconds[1].failures, 1);
    }

    #[test]
    fn csv_has_a_row_per_endpoint_and_a_total() {
        let mut st = Stats::default();
        st.add(&sample(Endpoint::Search, Some(200), 3, 0), Duration::ZERO);
        let (endpoints, total, thresholds) = Report::build(&st, 1.0, &[]);
        let r = Report {
            mode: "closed".into(),
            users: 1,
            seconds: 1.0,
            stopped_by: "duration".into(),
            target: String::new(),
            sign_in: None,
            sign_in_seconds: 0.0,
            endpoints,
            total,
            delivery: None,
            thresholds,
            unsent: None,
            client_spans: ClientSpans::default(),
            record: "x.jsonl".into(),
        };
        let csv = r.csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[1].starts_with("\"GET /api/profiles/search\",1,0,1.000,3.0"));
        assert!(lines[2].starts_with("\"total\",1,0"));
        assert!(r.render().contains("GET /api/profiles/search"));
    }
}
