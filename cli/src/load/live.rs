//! While a run goes on: trace completeness read from the sink, the run's control ticks,
//! and the plain progress lines printed when there is no terminal.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;
use verify::report::SentRequest;
use verify::sink::{CheckRequest, CheckSummary};

use super::Ending;
use super::pace::Control;
use super::record::Stats;
use crate::tui::LiveState;

/// Adds one check's judgement to the running totals.
fn add(st: &mut LiveState, s: &CheckSummary) {
    st.checked += s.checked;
    st.complete += s.complete;
    st.missing += s.missing;
    for (k, v) in &s.defects {
        *st.defects.entry(k.clone()).or_default() += v;
    }
    st.endpoints.clone_from(&s.endpoints);
    st.error = None;
}

#[derive(Debug, Clone)]
pub struct LiveTraces {
    state: Arc<Mutex<LiveState>>,
    url: String,
    client: reqwest::Client,
}

/// Requests are judged once they are this old, so their spans have been exported.
pub const SETTLE: Duration = Duration::from_secs(3);
const EVERY: Duration = Duration::from_secs(2);
const MOST_PER_CHECK: usize = 2000;

impl LiveTraces {
    /// `otlp`: the sink's base URL; `enabled`: whether a sink answered there.
    pub fn new(otlp: &str, enabled: bool) -> Self {
        Self {
            state: Arc::new(Mutex::new(LiveState {
                enabled,
                ..Default::default()
            })),
            url: format!("{}/api/check", otlp.trim_end_matches('/')),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
        }
    }

    pub fn snapshot(&self) -> LiveState {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    async fn check(&self, req: &CheckRequest) -> Result<CheckSummary, String> {
        let r = self
            .client
            .post(&self.url)
            .json(req)
            .send()
            .await
            .map_err(|e| format!("sink unreachable: {e}"))?;
        if !r.status().is_success() {
            return Err(format!("sink answered HTTP {} to {}", r.status(), self.url));
        }
        r.json()
            .await
            .map_err(|e| format!("sink answer unreadable: {e}"))
    }

    /// Judges `sent` now and adds the verdict to the running totals (the simulator's
    /// live view feeds it the requests its phones sent).
    pub async fn check_sent(&self, sent: Vec<SentRequest>) {
        if sent.is_empty() || !self.snapshot().enabled {
            return;
        }
        let req = CheckRequest {
            sent,
            recent: 0,
            settle_ms: 0,
        };
        match self.check(&req).await {
            Ok(s) => add(
                &mut self.state.lock().unwrap_or_else(|e| e.into_inner()),
                &s,
            ),
            Err(e) => self.fail(e),
        }
    }

    fn fail(&self, e: String) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).error = Some(e);
    }

    /// During a load run: judges each recorded request's trace once it has settled
    /// (a sample of at most 2000 per check when the run is faster than that).
    pub fn follow_run(
        &self,
        stats: Arc<Mutex<Stats>>,
        started: tokio::time::Instant,
    ) -> JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            if !me.snapshot().enabled {
                return;
            }
            let mut done_until = Duration::ZERO;
            loop {
                tokio::time::sleep(EVERY).await;
                let upto = started.elapsed().saturating_sub(SETTLE);
                let batch: Vec<SentRequest> = {
                    let st = stats.lock().unwrap_or_else(|e| e.into_inner());
                    let fresh: Vec<_> = st
                        .recent
                        .iter()
                        .filter(|(end, _)| *end > done_until && *end <= upto)
                        .collect();
                    let step = fresh.len().div_ceil(MOST_PER_CHECK).max(1);
                    fresh
                        .into_iter()
                        .step_by(step)
                        .map(|(_, r)| SentRequest {
                            trace_id: r.trace_id.to_string(),
                            parent_span_id: Some(r.span_id.to_string()),
                            endpoint: r.endpoint.name().to_owned(),
                            status: r.status,
                            gateway_only: false,
                        })
                        .collect()
                };
                done_until = upto;
                if batch.is_empty() {
                    continue;
                }
                let req = CheckRequest {
                    sent: batch,
                    recent: 0,
                    settle_ms: 0,
                };
                match me.check(&req).await {
                    Ok(s) => add(&mut me.state.lock().unwrap_or_else(|e| e.into_inner()), &s),
                    Err(e) => me.fail(e),
                }
            }
        })
    }

    /// For `top`: judges the newest settled traces in the sink, every two seconds.
    pub fn follow_recent(&self, n: usize) -> JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                let req = CheckRequest {
                    sent: Vec::new(),
                    recent: n,
                    settle_ms: SETTLE.as_millis() as u64,
                };
                match me.check(&req).await {
                    Ok(s) => {
                        let mut st = me.state.lock().unwrap_or_else(|e| e.into_inner());
                        let mut p99_history = std::mem::take(&mut st.p99_history);
                        let worst = s.endpoints.iter().map(|e| e.p99_ms).fold(0.0, f64::max);
                        p99_history.push(worst as u64);
                        *st = LiveState {
                            enabled: st.enabled,
                            p99_history,
                            ..Default::default()
                        };
                        add(&mut st, &s);
                    }
                    Err(e) => me.fail(e),
                }
                tokio::time::sleep(EVERY).await;
            }
        })
    }
}

/// Whether socialctl's sink answers at `base` (its query API), within two seconds.
pub async fn sink_answers(base: &str) -> bool {
    reqwest::Client::new()
        .get(format!("{}/api/stats", base.trim_end_matches('/')))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

/// What a live view of a load run reads.
#[derive(Clone)]
pub struct RunView {
    pub mode: String,
    pub users: usize,
    pub duration: Duration,
    pub stats: Arc<Mutex<Stats>>,
    pub control: Arc<Control>,
    pub live: LiveTraces,
    pub target: crate::runtime::Target,
}

impl RunView {
    /// Turns a reached deadline or goose's Ctrl-C handler into a stop; call often.
    pub fn tick(&self, ending: &mut Option<Ending>) {
        if goose::is_killswitch_triggered() && !self.control.is_stopped() {
            ending.get_or_insert(Ending::Interrupted);
            self.control.stop();
        }
        if tokio::time::Instant::now() >= self.control.deadline() && ending.is_none() {
            *ending = Some(Ending::Duration);
            self.control.stop();
            goose::trigger_killswitch("socialctl load: duration reached");
        }
    }

    pub fn quit(&self, ending: &mut Option<Ending>) {
        ending.get_or_insert(Ending::Quit);
        self.control.stop();
        goose::trigger_killswitch("socialctl load: quit");
    }

    /// Where the run is: the sign-in phase so far, or the day's seconds of its length.
    pub fn clock(&self) -> String {
        if self.control.day_has_begun() {
            format!(
                "{:>4}s/{}s",
                self.control.day_elapsed().min(self.duration).as_secs(),
                self.duration.as_secs()
            )
        } else {
            format!(
                "signing in {}s (the {}s day starts after)",
                self.control.sign_in_phase().as_secs(),
                self.duration.as_secs()
            )
        }
    }

    /// One progress line: elapsed, users, rate and latency of the last 5 s, errors, traces.
    pub fn progress_line(&self) -> String {
        let st = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        let now = self.control.elapsed().as_secs() as usize;
        let from = now.saturating_sub(5);
        let mut h = hdrhistogram::Histogram::<u64>::new(2).expect("valid histogram");
        let (mut n, mut failed) = (0, 0);
        for s in st.seconds.iter().skip(from).take(now - from) {
            n += s.requests;
            failed += s.failures;
            let _ = h.add(&s.latency);
        }
        let secs = (now - from).max(1) as f64;
        let live = self.live.snapshot();
        let traces = match (live.percent(), &live.error) {
            (_, Some(e)) => format!("traces: {e}"),
            (Some(p), None) => format!("traces {p:.3}% complete of {} checked", live.checked),
            (None, None) if live.enabled => "traces: none settled yet".into(),
            (None, None) => "traces: no sink".into(),
        };
        format!(
            "load: {}  users {}/{}  {:>7.1} req/s  p50 {:.1} ms  p99 {:.1} ms  errors {}  total {}  {}{}",
            self.clock(),
            st.users_signed_in,
            self.users,
            n as f64 / secs,
            h.value_at_quantile(0.5) as f64 / 1000.0,
            h.value_at_quantile(0.99) as f64 / 1000.0,
            failed,
            st.recorded,
            traces,
            if self.control.is_paused() {
                "  [paused]"
            } else {
                ""
            }
        )
    }
}

/// Without a terminal: a progress line every five seconds until goose has stopped.
pub async fn plain_progress(v: &RunView, mut attack: AttackHandle) -> (Ending, AttackResult) {
    let follower = v.live.follow_run(v.stats.clone(), v.control.started());
    let mut ending = None;
    let mut last_line = tokio::time::Instant::now();
    eprintln!(
        "load: {} with {} users for {} s against the stack; Ctrl-C stops and still reports",
        v.mode,
        v.users,
        v.duration.as_secs()
    );
    let result = loop {
        tokio::select! {
            r = &mut attack => break r,
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
        v.tick(&mut ending);
        if last_line.elapsed() >= Duration::from_secs(5) {
            last_line = tokio::time::Instant::now();
            eprintln!("{}", v.progress_line());
        }
    };
    follower.abort();
    (ending.unwrap_or(Ending::Duration), result)
}

/// goose's run, spawned.
pub type AttackHandle = JoinHandle<Result<goose::metrics::GooseMetrics, goose::GooseError>>;
pub type AttackResult =
    Result<Result<goose::metrics::GooseMetrics, goose::GooseError>, tokio::task::JoinError>;
