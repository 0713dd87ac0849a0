//! The simulator's live view: the same screen as `socialctl load`'s (drawing is
//! `tui`'s), fed from the phones: screens per second and their latency, client-observed
//! latency per network type, phones online and offline, spans waiting on phones, the
//! stack's components, and the completeness of the traces of the requests sent.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use verify::report::SentRequest;

use super::Shared;
use crate::load::live::LiveTraces;
use crate::runtime::InstanceStatus;
use crate::tui::{DashData, EndpointLine, KeyAction, screen_thread};

/// One frame's data, now.
pub fn sim_data(
    shared: &Shared,
    devices: usize,
    duration: Duration,
    components: &(Vec<InstanceStatus>, Option<String>),
    traces: &LiveTraces,
) -> DashData {
    let c = &shared.counters;
    let seconds = shared.per_second();
    let last = seconds.last().copied().unwrap_or_default();
    let (screens, networks) = shared.rows();
    let spans = c.spans.load(Relaxed);
    let waiting = spans.saturating_sub(c.uploaded.load(Relaxed) + c.dropped.load(Relaxed));
    let line = |r: &super::Row, prefix: &str| EndpointLine {
        name: format!("{prefix}{}", r.name),
        requests: r.count,
        failures: r.failures,
        errors: [
            (r.server_errors > 0).then(|| format!("5xx×{}", r.server_errors)),
            (r.retries > 0).then(|| format!("retried×{}", r.retries)),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" "),
        p50_ms: r.p50_ms,
        p99_ms: r.p99_ms,
    };
    let mut endpoints: Vec<EndpointLine> = networks.iter().map(|r| line(r, "network ")).collect();
    endpoints.extend(screens.iter().map(|r| line(r, "")));
    let offline = c.offline_now.load(Relaxed).max(0) as u64;
    let started = c.started.load(Relaxed);
    DashData {
        title: "socialctl sim".into(),
        subtitle: format!(
            "{}s / {}s · phones {started}/{devices} · {} online, {offline} offline · {} sessions · {waiting} spans waiting on phones, {} dropped",
            shared.elapsed().as_secs().min(duration.as_secs()),
            duration.as_secs(),
            started.saturating_sub(offline),
            c.sessions.load(Relaxed),
            c.dropped.load(Relaxed),
        ),
        rate_label: "screens/s".into(),
        rate: seconds.iter().map(|s| s.0).collect(),
        p99_ms: seconds.iter().map(|s| s.2 as u64).collect(),
        rate_now: last.0 as f64,
        p50_now_ms: last.1,
        p99_now_ms: last.2,
        endpoints,
        components: components.0.clone(),
        components_note: components.1.clone(),
        traces: traces.snapshot(),
        traces_scope: "requests checked (server side)".into(),
        paused: false,
        can_pause: false,
    }
}

/// Feeds the requests the phones send to the sink's check, a round late so their
/// server spans have arrived. (The phones' own spans arrive later still; each request
/// records its CLIENT span as the server span's parent, so the server side is judged.)
pub fn follow_traces(shared: Arc<Shared>, traces: LiveTraces) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut checked: usize = 0;
        let mut settled: usize = 0;
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let (batch, len) = shared.sent_since(checked);
            let take = settled.saturating_sub(checked);
            let sent: Vec<SentRequest> = batch
                .into_iter()
                .take(take.min(verify::sink::MAX_CHECK))
                .map(|s| SentRequest {
                    trace_id: s.trace_id,
                    parent_span_id: Some(s.parent_span_id),
                    endpoint: s.endpoint,
                    status: s.status,
                    gateway_only: s.gateway_only,
                })
                .collect();
            checked += sent.len();
            settled = len;
            traces.check_sent(sent).await;
        }
    })
}

/// Draws the live view until `done`; `q` stops the phones.
pub fn show(
    shared: Arc<Shared>,
    devices: usize,
    duration: Duration,
    target: crate::runtime::Target,
    traces: LiveTraces,
    done: Arc<AtomicBool>,
) -> (
    std::thread::JoinHandle<std::io::Result<()>>,
    Vec<tokio::task::JoinHandle<()>>,
) {
    let (components, status_task) = crate::runtime::follow_status(target);
    let follower = follow_traces(shared.clone(), traces.clone());
    let frame_shared = shared.clone();
    let screen = screen_thread(
        done,
        move || {
            sim_data(
                &frame_shared,
                devices,
                duration,
                &components.lock().unwrap_or_else(|e| e.into_inner()),
                &traces,
            )
        },
        move |a| {
            if a == KeyAction::Quit {
                shared.quit();
            }
            false
        },
    );
    (screen, vec![status_task, follower])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::device::Outcome;

    #[test]
    fn the_frame_shows_networks_screens_and_phones() {
        let shared = Shared::for_tests();
        shared.counters.started.store(40, Relaxed);
        shared.counters.offline_now.store(3, Relaxed);
        shared.counters.spans.store(100, Relaxed);
        shared.counters.uploaded.store(60, Relaxed);
        shared.screen("open timeline", 0, 12_000_000, true);
        let slow = Outcome {
            status: Some(503),
            json: serde_json::Value::Null,
            failure: None,
            gateway_only: true,
        };
        shared.observe_call("cell:lte", Duration::from_millis(80), &slow, true);
        let traces = LiveTraces::new("http://127.0.0.1:9", false);
        let d = sim_data(
            &shared,
            50,
            Duration::from_secs(30),
            &(Vec::new(), None),
            &traces,
        );
        assert!(d.subtitle.contains("phones 40/50"), "{}", d.subtitle);
        assert!(
            d.subtitle.contains("37 online, 3 offline"),
            "{}",
            d.subtitle
        );
        assert!(
            d.subtitle.contains("40 spans waiting on phones"),
            "{}",
            d.subtitle
        );
        let lte = d
            .endpoints
            .iter()
            .find(|e| e.name == "network cell:lte")
            .expect("a line per network");
        assert_eq!((lte.requests, lte.failures), (1, 1));
        assert!(
            lte.errors.contains("5xx×1") && lte.errors.contains("retried×1"),
            "{}",
            lte.errors
        );
        assert!(d.endpoints.iter().any(|e| e.name == "open timeline"));
        assert_eq!(d.rate_label, "screens/s");
    }
}
