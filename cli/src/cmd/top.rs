//! `socialctl top`: watch a running stack without adding load. Components from the
//! runtime, traffic and trace completeness from the sink (its newest settled traces).

use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::load::live::LiveTraces;
use crate::tui::{DashData, EndpointLine};

#[derive(Debug, Clone, clap::Args)]
pub struct TopArgs {
    #[command(flatten)]
    pub stack: super::StackArgs,
    /// The sink's OTLP/HTTP and query address [default: the running stack's sink, else
    /// http://127.0.0.1:4318].
    #[arg(long)]
    pub sink: Option<String>,
    /// How many of the newest settled traces each completeness check judges.
    #[arg(long, default_value_t = 2000)]
    pub traces: usize,
    /// Print one snapshot and exit (the default without a terminal is a line every 5 s).
    #[arg(long)]
    pub once: bool,
    /// Print each snapshot as a JSON line instead (no full-screen view).
    #[arg(long)]
    pub json: bool,
}

/// Spans per second arriving at the sink, one value per second.
fn follow_span_rate(sink: String) -> (Arc<Mutex<Vec<u64>>>, tokio::task::JoinHandle<()>) {
    let series = Arc::new(Mutex::new(Vec::new()));
    let out = series.clone();
    let task = tokio::spawn(async move {
        let client = reqwest::Client::new();
        let url = format!("{}/api/stats", sink.trim_end_matches('/'));
        let mut last: Option<u64> = None;
        loop {
            let received = async {
                let v: serde_json::Value = client
                    .get(&url)
                    .timeout(Duration::from_secs(1))
                    .send()
                    .await
                    .ok()?
                    .json()
                    .await
                    .ok()?;
                v["received"].as_u64()
            }
            .await;
            if let (Some(now), Some(before)) = (received, last) {
                out.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(now.saturating_sub(before));
            }
            last = received.or(last);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    (series, task)
}

fn data(
    sink: &str,
    live: &LiveTraces,
    rate: &Mutex<Vec<u64>>,
    comps: &Mutex<(Vec<crate::runtime::InstanceStatus>, Option<String>)>,
) -> DashData {
    let t = live.snapshot();
    let rate = rate.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let worst_p99 = t.endpoints.iter().map(|e| e.p99_ms).fold(0.0, f64::max);
    let mid_p50 = {
        let mut v: Vec<f64> = t.endpoints.iter().map(|e| e.p50_ms).collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    };
    let comps = comps.lock().unwrap_or_else(|e| e.into_inner());
    DashData {
        title: "socialctl top".into(),
        subtitle: format!("watching the stack · sink {sink}"),
        rate_label: "spans/s into the sink".into(),
        rate_now: rate.last().copied().unwrap_or(0) as f64,
        rate,
        p99_ms: t.p99_history.clone(),
        p50_now_ms: mid_p50,
        p99_now_ms: worst_p99,
        endpoints: t
            .endpoints
            .iter()
            .map(|e| EndpointLine {
                name: e.endpoint.clone(),
                requests: e.traces as u64,
                failures: e.errors as u64,
                errors: if e.errors > 0 {
                    format!("{} with errors", e.errors)
                } else {
                    String::new()
                },
                p50_ms: e.p50_ms,
                p99_ms: e.p99_ms,
            })
            .collect(),
        components: comps.0.clone(),
        components_note: comps.1.clone(),
        traces: t,
        traces_scope: "newest settled traces".into(),
        paused: false,
        can_pause: false,
    }
}

pub async fn run(a: &TopArgs) -> anyhow::Result<ExitCode> {
    let sink = super::or_recorded(&a.sink, || a.stack.addresses().otlp_http);
    let sink_ok = crate::load::live::sink_answers(&sink).await;
    let live = LiveTraces::new(&sink, sink_ok);
    let _checks = sink_ok.then(|| live.follow_recent(a.traces));
    let (rate, _rate_task) = follow_span_rate(sink.clone());
    let (comps, _status_task) = crate::runtime::follow_status(a.stack.target());
    if std::io::stdout().is_terminal() && !a.once && !a.json {
        let s2 = sink.clone();
        crate::tui::run_top(move || data(&s2, &live, &rate, &comps)).await?;
        return Ok(ExitCode::SUCCESS);
    }
    // No terminal: a summary line every 5 s (or one, with --once) after the first check.
    loop {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let d = data(&sink, &live, &rate, &comps);
        let healthy = d
            .components
            .iter()
            .filter(|c| c.health == "healthy")
            .count();
        let traces = match (d.traces.percent(), &d.traces.error) {
            (_, Some(e)) => e.clone(),
            (Some(p), None) => format!(
                "{p:.3}% of the newest {} settled traces complete",
                d.traces.checked
            ),
            (None, None) if sink_ok => "no settled traces yet".into(),
            (None, None) => format!("no sink answers at {sink}"),
        };
        if a.json {
            println!(
                "{}",
                serde_json::json!({
                    "components": d.components,
                    "healthy": healthy,
                    "spans_per_s": d.rate_now,
                    "root_p99_ms": d.p99_now_ms,
                    "traces_checked": d.traces.checked,
                    "traces_complete": d.traces.complete,
                    "completeness_percent": d.traces.percent(),
                    "sink_error": d.traces.error,
                    "chaos": super::chaos::active(&a.stack.dir()),
                })
            );
        } else {
            let chaos = super::chaos::summary(&a.stack.dir())
                .map(|c| format!(" · chaos: {c}"))
                .unwrap_or_default();
            println!(
                "top: components {healthy}/{} healthy · {:.0} spans/s · root p99 {:.1} ms · {traces}{chaos}",
                d.components.len(),
                d.rate_now,
                d.p99_now_ms
            );
        }
        if a.once {
            return Ok(ExitCode::SUCCESS);
        }
        tokio::time::sleep(Duration::from_millis(2500)).await;
    }
}
