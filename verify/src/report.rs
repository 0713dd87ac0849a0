//! Verification over many traces: per-endpoint completeness, every defect, and the
//! accounting of requests a load generator says it sent.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::checks::{self, CheckOptions, Defect, DefectKind};
use crate::model::Span;

/// One request a load generator sent, as it recorded it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SentRequest {
    pub trace_id: String,
    /// The span id it sent as the parent (its own CLIENT span), if it did not export it.
    #[serde(default)]
    pub parent_span_id: Option<String>,
    /// e.g. `GET /api/feed/timeline`.
    pub endpoint: String,
    #[serde(default)]
    pub status: Option<u16>,
    /// The answer came from the gateway, not a service (no `traceparent` came back: a
    /// body over the limit, no replica up): no server span exists, as expected.
    #[serde(default)]
    pub gateway_only: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EndpointRow {
    pub endpoint: String,
    pub sent: Option<usize>,
    pub found: usize,
    pub complete: usize,
    pub completeness: f64,
    pub defects: BTreeMap<String, usize>,
    pub examples: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KindRow {
    pub kind: DefectKind,
    pub count: usize,
    pub traces: usize,
    pub explanation: String,
    pub usual_fix: String,
    pub example_trace: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// Traces judged (with `--sent`: requests sent).
    pub traces: usize,
    pub complete: usize,
    /// `complete / traces`, 0–1 (1 when there is nothing to judge).
    pub completeness: f64,
    pub endpoints: Vec<EndpointRow>,
    pub kinds: Vec<KindRow>,
    pub defects: Vec<Defect>,
    /// The fault windows `socialctl chaos` recorded, and what the traces did in each.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faults: Option<crate::faults::FaultReport>,
    /// Clients (phones) whose clocks were off, and the correction applied to their spans.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub client_clocks: Vec<crate::skew::ClientClock>,
    /// Traces left out because their client (a simulated phone) still holds spans of
    /// them, to upload later.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub waiting_on_devices: usize,
    /// Traces left out because a span of theirs was dropped from a client's full
    /// buffer (the client said so).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dropped_on_devices: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Checks every trace (or, with `sent`, every sent request's trace) and aggregates. A
/// link into another trace is judged against `traces`.
pub fn verify(traces: &[Vec<Span>], sent: Option<&[SentRequest]>, opts: &CheckOptions) -> Report {
    let known: HashSet<(&str, &str)> = traces
        .iter()
        .flatten()
        .map(|s| (s.trace_id.as_str(), s.span_id.as_str()))
        .collect();
    verify_linked(traces, sent, opts, &|t, s| known.contains(&(t, s)))
}

/// [`verify`], with `exists(trace_id, span_id)` answering for links into traces that
/// are not in `traces` (the sink asks its whole store).
pub fn verify_linked(
    traces: &[Vec<Span>],
    sent: Option<&[SentRequest]>,
    opts: &CheckOptions,
    exists: &dyn Fn(&str, &str) -> bool,
) -> Report {
    let mut opts = opts.clone();
    // Client spans on the sink's clock, when their exports say how far theirs was off.
    let (corrected, client_clocks) = if opts.raw_clocks {
        (traces.to_vec(), Vec::new())
    } else {
        crate::skew::correct(traces)
    };
    let traces = corrected.as_slice();
    let by_id: HashMap<&str, &Vec<Span>> = traces
        .iter()
        .filter_map(|t| t.first().map(|s| (s.trace_id.as_str(), t)))
        .collect();
    // (endpoint, trace id, defects) per judged trace.
    let mut judged: Vec<(String, String, Vec<Defect>, bool)> = Vec::new();
    match sent {
        Some(sent) => {
            for r in sent {
                if let Some(p) = &r.parent_span_id {
                    opts.external_parents.insert(r.trace_id.clone(), p.clone());
                }
            }
            let mut seen = HashSet::new();
            for r in sent {
                if !seen.insert(r.trace_id.as_str()) {
                    continue;
                }
                match by_id.get(r.trace_id.as_str()) {
                    Some(t) => {
                        let mut ds = checks::check_trace_linked(t, &opts, exists);
                        if r.gateway_only {
                            ds.retain(|d| d.kind != DefectKind::ClientWithoutServer);
                        }
                        judged.push((r.endpoint.clone(), r.trace_id.clone(), ds, true))
                    }
                    None => judged.push((
                        r.endpoint.clone(),
                        r.trace_id.clone(),
                        vec![Defect {
                            kind: DefectKind::MissingTrace,
                            trace_id: r.trace_id.clone(),
                            span_id: r.parent_span_id.clone().unwrap_or_default(),
                            service: "-".into(),
                            detail: format!(
                                "{} was sent (status {}) but no span of its trace arrived",
                                r.endpoint,
                                r.status
                                    .map(|s| s.to_string())
                                    .unwrap_or_else(|| "?".into())
                            ),
                        }],
                        false,
                    )),
                }
            }
        }
        None => {
            // A fault window's record is not the system's work.
            for t in traces
                .iter()
                .filter(|t| !t.is_empty() && !crate::faults::is_window(t))
            {
                judged.push((
                    checks::endpoint(t),
                    t[0].trace_id.clone(),
                    checks::check_trace_linked(t, &opts, exists),
                    true,
                ));
            }
        }
    }

    let incomplete: HashMap<&str, BTreeSet<&str>> = judged
        .iter()
        .filter(|(_, _, ds, _)| !ds.is_empty())
        .map(|(_, id, ds, _)| (id.as_str(), ds.iter().map(|d| d.kind.name()).collect()))
        .collect();
    let faults = crate::faults::report(traces, &incomplete);
    // Traces that began while a fault acted are what the fault did: counted in its
    // window's row, not in the completeness of the system.
    let during = crate::faults::in_windows(traces);
    let judged: Vec<_> = judged
        .iter()
        .filter(|(_, id, _, _)| !during.contains(id))
        .collect();
    let mut endpoints: BTreeMap<String, EndpointRow> = BTreeMap::new();
    let mut kinds: BTreeMap<DefectKind, (usize, HashSet<String>, String)> = BTreeMap::new();
    let mut defects = Vec::new();
    let mut complete = 0;
    for (ep, trace_id, ds, found) in judged.iter().copied() {
        let row = endpoints.entry(ep.clone()).or_insert_with(|| EndpointRow {
            endpoint: ep.clone(),
            sent: sent.map(|_| 0),
            found: 0,
            complete: 0,
            completeness: 0.0,
            defects: BTreeMap::new(),
            examples: Vec::new(),
        });
        if let Some(n) = row.sent.as_mut() {
            *n += 1;
        }
        if *found {
            row.found += 1;
        }
        if ds.is_empty() {
            row.complete += 1;
            complete += 1;
        } else if row.examples.len() < 3 {
            row.examples.push(trace_id.clone());
        }
        for d in ds {
            *row.defects.entry(d.kind.name().to_owned()).or_default() += 1;
            let k = kinds
                .entry(d.kind)
                .or_insert_with(|| (0, HashSet::new(), trace_id.clone()));
            k.0 += 1;
            k.1.insert(trace_id.clone());
        }
        defects.extend(ds.iter().cloned());
    }
    let ratio = |c: usize, n: usize| if n == 0 { 1.0 } else { c as f64 / n as f64 };
    let endpoints = endpoints
        .into_values()
        .map(|mut r| {
            r.completeness = ratio(r.complete, r.sent.unwrap_or(r.found));
            r
        })
        .collect();
    let kinds = kinds
        .into_iter()
        .map(|(kind, (count, traces, example))| KindRow {
            kind,
            count,
            traces: traces.len(),
            explanation: kind.explanation().into(),
            usual_fix: kind.usual_fix().into(),
            example_trace: example,
        })
        .collect();
    Report {
        traces: judged.len(),
        complete,
        completeness: ratio(complete, judged.len()),
        endpoints,
        kinds,
        defects,
        faults,
        client_clocks,
        waiting_on_devices: 0,
        dropped_on_devices: 0,
    }
}

/// The human-readable report.
pub fn render(r: &Report) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let with_sent = r.endpoints.iter().any(|e| e.sent.is_some());
    let _ = writeln!(
        s,
        "{:<42} {:>6} {:>6} {:>9}  defects",
        "endpoint",
        if with_sent { "sent" } else { "" },
        "found",
        "complete"
    );
    for e in &r.endpoints {
        let defects = if e.defects.is_empty() {
            "-".to_owned()
        } else {
            e.defects
                .iter()
                .map(|(k, n)| format!("{k}={n}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let _ = writeln!(
            s,
            "{:<42} {:>6} {:>6} {:>8.3}%  {}",
            e.endpoint,
            e.sent.map(|n| n.to_string()).unwrap_or_default(),
            e.found,
            100.0 * e.completeness,
            defects
        );
        if !e.examples.is_empty() {
            let _ = writeln!(s, "{:<42} e.g. {}", "", e.examples.join(" "));
        }
    }
    let _ = writeln!(
        s,
        "\n{} of {} traces complete: {:.3}%{}",
        r.complete,
        r.traces,
        100.0 * r.completeness,
        if r.faults.is_some() {
            " (outside the fault windows; those that began in one are counted under it)"
        } else {
            ""
        }
    );
    for k in &r.kinds {
        let _ = writeln!(
            s,
            "\n{} ({} in {} traces, e.g. {})",
            k.kind.name(),
            k.count,
            k.traces,
            k.example_trace
        );
        let _ = writeln!(s, "  what:  {}", k.explanation);
        let _ = writeln!(s, "  fix:   {}", k.usual_fix);
        if let Some(d) = r.defects.iter().find(|d| d.kind == k.kind) {
            let _ = writeln!(s, "  first: [{}] {}", d.service, d.detail);
        }
    }
    if let Some(f) = &r.faults {
        s.push_str(&crate::faults::render(f));
    }
    if r.waiting_on_devices > 0 {
        let _ = writeln!(
            s,
            "\n{} traces not judged: their spans still wait on phones for an upload (a simulation is running); run verify-traces again once it ends",
            r.waiting_on_devices
        );
    }
    if r.dropped_on_devices > 0 {
        let _ = writeln!(
            s,
            "{} traces not judged: a phone dropped one of their spans from its full buffer (socialctl sim counts the drops per phone)",
            r.dropped_on_devices
        );
    }
    if !r.client_clocks.is_empty() {
        let _ = writeln!(
            s,
            "\nclient clocks off (corrected by receive time − send time before judging; --raw-clocks judges them as sent):"
        );
        for c in &r.client_clocks {
            let _ = writeln!(
                s,
                "  {:<20} {:<12} {:>+12.1} ms  ({} spans)",
                c.service, c.instance, -c.correction_ms, c.spans
            );
        }
    }
    s
}
