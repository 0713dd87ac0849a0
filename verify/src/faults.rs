//! Fault windows: what `socialctl chaos` recorded in the sink (one span of the service
//! `socialctl.chaos` per fault, from its start to its healing), and what the traces did
//! in each window. A learner reads "feed killed 12:00:30–12:00:42: 143 traces began in
//! it, 143 failed, 0 incomplete; outside the windows 0 incomplete" and knows the break
//! is visible, and that it broke nothing it should not have.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::model::{Span, StatusCode};

/// The service name of the fault windows' spans.
pub const CHAOS_SERVICE: &str = "socialctl.chaos";

/// One fault, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultWindow {
    /// `kill`, `pause`, `errors`, …
    pub kind: String,
    /// As given to chaos: `feed`, `feed#2`.
    pub target: String,
    pub start_ns: u64,
    pub end_ns: u64,
    /// `timer`, `interrupt`, `heal`, `done`.
    pub healed_by: String,
}

/// What the traces did during one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowRow {
    pub window: FaultWindow,
    /// Traces whose first span began inside the window.
    pub traces: usize,
    /// Of those, traces with a span in error (a failed request shows there).
    pub failed: usize,
    /// Of those, traces verification found defects in.
    pub incomplete: usize,
    /// Spans marked `chaos.injected=true` (application faults).
    pub injected_spans: usize,
    /// The failed traces by the status their first span got (`503`, or `no answer`):
    /// what the callers saw.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub failed_with: std::collections::BTreeMap<String, usize>,
    /// The incomplete traces by the kinds of defect found in them (a trace counts once
    /// under each kind it has).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub defects: std::collections::BTreeMap<String, usize>,
}

/// Traces outside every window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Outside {
    pub traces: usize,
    pub failed: usize,
    pub incomplete: usize,
}

/// Windows, and the traces outside them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FaultReport {
    pub windows: Vec<WindowRow>,
    pub outside: Outside,
}

/// The service name of the fault proxy's spans (one per toxic and connection it acted
/// on, each a trace of its own: a TCP connection carries no trace context).
pub const PROXY_SERVICE: &str = "chaosproxy";

/// Whether a trace is a record of a fault (a window, or the fault proxy saying which
/// connection a toxic acted on) rather than the system's work.
pub fn is_window(trace: &[Span]) -> bool {
    !trace.is_empty()
        && trace
            .iter()
            .all(|s| s.service == CHAOS_SERVICE || s.service == PROXY_SERVICE)
}

/// The ids of the traces (not fault records) that began inside a fault window: what
/// the fault did, reported per window and not judged with the rest.
pub fn in_windows(traces: &[Vec<Span>]) -> HashSet<String> {
    let w = windows(traces);
    traces
        .iter()
        .filter(|t| !t.is_empty() && !is_window(t))
        .filter(|t| {
            let start = t.iter().map(|s| s.start_ns).min().unwrap_or(0);
            w.iter().any(|w| w.start_ns <= start && start <= w.end_ns)
        })
        .map(|t| t[0].trace_id.clone())
        .collect()
}

/// The fault windows recorded among `traces`, in time order.
pub fn windows(traces: &[Vec<Span>]) -> Vec<FaultWindow> {
    let mut w: Vec<FaultWindow> = traces
        .iter()
        .flatten()
        .filter(|s| s.service == CHAOS_SERVICE)
        .map(|s| FaultWindow {
            kind: s.attr("chaos.kind").unwrap_or("?").to_owned(),
            target: s.attr("chaos.target").unwrap_or("?").to_owned(),
            start_ns: s.start_ns,
            end_ns: s.end_ns.max(s.start_ns),
            healed_by: s.attr("chaos.healed_by").unwrap_or("").to_owned(),
        })
        .collect();
    w.sort_by_key(|w| w.start_ns);
    w
}

/// Accounts every trace (but the windows' own) to the window it began in, or to
/// outside; `incomplete` names the traces verification found defects in, with the
/// kinds of those defects.
pub fn report(
    traces: &[Vec<Span>],
    incomplete: &HashMap<&str, BTreeSet<&str>>,
) -> Option<FaultReport> {
    let windows = windows(traces);
    if windows.is_empty() {
        return None;
    }
    let mut rows: Vec<WindowRow> = windows
        .into_iter()
        .map(|window| WindowRow {
            window,
            traces: 0,
            failed: 0,
            incomplete: 0,
            injected_spans: 0,
            failed_with: Default::default(),
            defects: Default::default(),
        })
        .collect();
    let mut outside = Outside::default();
    for t in traces.iter().filter(|t| !t.is_empty() && !is_window(t)) {
        let start = t.iter().map(|s| s.start_ns).min().unwrap_or(0);
        let failed = t.iter().any(|s| s.status == StatusCode::Error);
        let kinds = incomplete.get(t[0].trace_id.as_str());
        let bad = kinds.is_some();
        let injected = t
            .iter()
            .filter(|s| s.attr("chaos.injected") == Some("true"))
            .count();
        let row = rows
            .iter_mut()
            .find(|r| r.window.start_ns <= start && start <= r.window.end_ns);
        match row {
            Some(r) => {
                r.traces += 1;
                r.failed += usize::from(failed);
                if failed {
                    // The first span is the caller's (a client's, or the first server's).
                    let first = t.iter().min_by_key(|s| s.start_ns);
                    let status = first
                        .and_then(|s| s.attr("http.response.status_code"))
                        .unwrap_or("no answer")
                        .to_owned();
                    *r.failed_with.entry(status).or_default() += 1;
                }
                r.incomplete += usize::from(bad);
                for k in kinds.into_iter().flatten() {
                    *r.defects.entry((*k).to_owned()).or_default() += 1;
                }
                r.injected_spans += injected;
            }
            None => {
                outside.traces += 1;
                outside.failed += usize::from(failed);
                outside.incomplete += usize::from(bad);
            }
        }
    }
    Some(FaultReport {
        windows: rows,
        outside,
    })
}

/// ` (a×2, b×1)`, or nothing for an empty count.
fn by(counts: &BTreeMap<String, usize>) -> String {
    if counts.is_empty() {
        return String::new();
    }
    let each: Vec<String> = counts.iter().map(|(k, v)| format!("{k}×{v}")).collect();
    format!(" ({})", each.join(", "))
}

/// The human-readable section.
pub fn render(r: &FaultReport) -> String {
    use std::fmt::Write;
    let clock = |ns: u64| {
        chrono::DateTime::from_timestamp_nanos(ns as i64)
            .with_timezone(&chrono::Local)
            .format("%H:%M:%S")
            .to_string()
    };
    let mut s = String::from("\nfault windows (socialctl chaos):\n");
    for w in &r.windows {
        let _ = writeln!(
            s,
            "  {} {} {}–{}: {} traces began in it, {} failed{}, {} incomplete{}{}",
            w.window.kind,
            w.window.target,
            clock(w.window.start_ns),
            clock(w.window.end_ns),
            w.traces,
            w.failed,
            by(&w.failed_with),
            w.incomplete,
            by(&w.defects),
            if w.injected_spans > 0 {
                format!(", {} spans marked chaos.injected", w.injected_spans)
            } else {
                String::new()
            }
        );
        if w.failed > 0 {
            let _ = writeln!(
                s,
                "    expected while the fault acts: these traces end where the call could not go on; they are not counted in the completeness above"
            );
        }
    }
    let _ = writeln!(
        s,
        "  outside the windows: {} traces, {} failed, {} incomplete",
        r.outside.traces, r.outside.failed, r.outside.incomplete
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(trace: &str, service: &str, start: u64, end: u64, error: bool) -> Span {
        Span {
            trace_id: trace.into(),
            span_id: format!("{trace}-{start}"),
            service: service.into(),
            start_ns: start,
            end_ns: end,
            status: if error {
                StatusCode::Error
            } else {
                StatusCode::Unset
            },
            ..Default::default()
        }
    }

    #[test]
    fn traces_are_counted_in_the_window_they_began_in() {
        let mut w = span("w", CHAOS_SERVICE, 100, 200, false);
        w.attributes = vec![
            ("chaos.kind".into(), "kill".into()),
            ("chaos.target".into(), "feed".into()),
            ("chaos.healed_by".into(), "timer".into()),
        ];
        let traces = vec![
            vec![w],
            vec![span("a", "load", 120, 130, true)],
            vec![span("b", "load", 150, 250, false)],
            vec![span("c", "load", 300, 310, false)],
            vec![span("d", "load", 50, 60, true)],
        ];
        let incomplete = HashMap::from([
            ("b", BTreeSet::from(["missing_parent", "ends_after_parent"])),
            ("c", BTreeSet::from(["missing_parent"])),
        ]);
        let r = report(&traces, &incomplete).expect("a window");
        assert_eq!(r.windows.len(), 1);
        let row = &r.windows[0];
        assert_eq!(
            (row.window.kind.as_str(), row.window.target.as_str()),
            ("kill", "feed")
        );
        assert_eq!((row.traces, row.failed, row.incomplete), (2, 1, 1));
        // The defects of the window's incomplete trace (b), not of c, outside it.
        assert_eq!(
            row.defects,
            BTreeMap::from([
                ("ends_after_parent".to_owned(), 1),
                ("missing_parent".to_owned(), 1)
            ])
        );
        assert_eq!(
            r.outside,
            Outside {
                traces: 2,
                failed: 1,
                incomplete: 1
            }
        );
        assert!(render(&r).contains("kill feed"));
        assert!(
            render(&r).contains("1 incomplete (ends_after_parent×1, missing_parent×1)"),
            "{}",
            render(&r)
        );
        assert!(
            report(&traces[1..], &incomplete).is_none(),
            "no window, no report"
        );
    }
}
