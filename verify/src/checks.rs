//! The checks `verify-traces` runs on each trace, each defect named by kind.
//!
//! A trace is *complete* when it has no defect. The checks read only the spans: they do
//! not repair anything (no re-parenting of orphans, no clock correction), so what they
//! report is what a trace backend would show a user.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::model::{Span, SpanKind, StatusCode};
use crate::spec::TraceSpec;

/// Every kind of defect, in report order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DefectKind {
    MissingParent,
    NoRoot,
    SeveralRoots,
    DuplicateSpanId,
    ClientWithoutServer,
    ServerWithoutClient,
    StartsBeforeParent,
    EndsAfterParent,
    NeverEnded,
    ErrorNotPropagated,
    MissingAttribute,
    MissingSpan,
    MissingTrace,
    LinkTargetMissing,
}

impl DefectKind {
    pub const ALL: [DefectKind; 14] = [
        Self::MissingParent,
        Self::NoRoot,
        Self::SeveralRoots,
        Self::DuplicateSpanId,
        Self::ClientWithoutServer,
        Self::ServerWithoutClient,
        Self::StartsBeforeParent,
        Self::EndsAfterParent,
        Self::NeverEnded,
        Self::ErrorNotPropagated,
        Self::MissingAttribute,
        Self::MissingSpan,
        Self::MissingTrace,
        Self::LinkTargetMissing,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::MissingParent => "missing_parent",
            Self::NoRoot => "no_root",
            Self::SeveralRoots => "several_roots",
            Self::DuplicateSpanId => "duplicate_span_id",
            Self::ClientWithoutServer => "client_without_server",
            Self::ServerWithoutClient => "server_without_client",
            Self::StartsBeforeParent => "starts_before_parent",
            Self::EndsAfterParent => "ends_after_parent",
            Self::NeverEnded => "never_ended",
            Self::ErrorNotPropagated => "error_not_propagated",
            Self::MissingAttribute => "missing_attribute",
            Self::MissingSpan => "missing_span",
            Self::MissingTrace => "missing_trace",
            Self::LinkTargetMissing => "link_target_missing",
        }
    }

    /// What the defect means, in one line.
    pub fn explanation(self) -> &'static str {
        match self {
            Self::MissingParent => {
                "a span names a parent that never arrived (an orphan): the trace has a hole"
            }
            Self::NoRoot => "no span starts the trace, and no external caller explains it",
            Self::SeveralRoots => "more than one span claims to start the trace",
            Self::DuplicateSpanId => "two different spans share one span id",
            Self::ClientWithoutServer => {
                "an outgoing HTTP call has no server span on the other side"
            }
            Self::ServerWithoutClient => "a server span's parent is not the caller's client span",
            Self::StartsBeforeParent => {
                "a child starts before its parent, beyond the clock-skew allowance"
            }
            Self::EndsAfterParent => {
                "a child ends after its parent, beyond the clock-skew allowance"
            }
            Self::NeverEnded => "a span was exported without an end time",
            Self::ErrorNotPropagated => {
                "a server answered 5xx but the calling client span does not record an error"
            }
            Self::MissingAttribute => "a required semantic-convention attribute is absent",
            Self::MissingSpan => "a span the endpoint's trace spec requires is absent",
            Self::MissingTrace => "a request was sent but no span of its trace arrived",
            Self::LinkTargetMissing => {
                "a span links to a span (a message's consumer to its producer) that never arrived"
            }
        }
    }

    /// The knob that usually fixes it.
    pub fn usual_fix(self) -> &'static str {
        match self {
            Self::MissingParent => {
                "a span was dropped or a hop forwarded the wrong parent: check OTEL_BSP_MAX_QUEUE_SIZE, graceful shutdown, and the propagation of the service named"
            }
            Self::NoRoot => {
                "the entry span was lost: check that the first service exports and flushes on shutdown"
            }
            Self::SeveralRoots => {
                "a service started a new root instead of continuing the incoming context: extract traceparent before creating the server span"
            }
            Self::DuplicateSpanId => {
                "an id generator is not random per span (a fixed seed, or ids copied between spans)"
            }
            Self::ClientWithoutServer => {
                "the callee did not continue the context (it forgot to extract traceparent) or dropped its spans"
            }
            Self::ServerWithoutClient => {
                "the caller injected a context other than its client span's: inject inside the client span"
            }
            Self::StartsBeforeParent => {
                "host clocks disagree (sync them with NTP) or timestamps are taken from the wrong clock"
            }
            Self::EndsAfterParent => {
                "work outlives its request (spawned without joining) or host clocks disagree"
            }
            Self::NeverEnded => {
                "a span was dropped without end(): end spans on every path, including errors"
            }
            Self::ErrorNotPropagated => {
                "the caller ignores error responses: record the status on the client span"
            }
            Self::MissingAttribute => {
                "the instrumentation misses a key: use the telemetry crate's helpers"
            }
            Self::MissingSpan => "a service or query is not instrumented, or its spans were lost",
            Self::MissingTrace => {
                "every span of the trace was lost: the batch queue overflowed, the exporter failed, or the process was killed before flushing"
            }
            Self::LinkTargetMissing => {
                "the producer's span was lost, or the consumer linked the wrong context: inject the producer span's context into the message, and flush the producer on shutdown"
            }
        }
    }
}

/// One defect, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Defect {
    pub kind: DefectKind,
    pub trace_id: String,
    pub span_id: String,
    pub service: String,
    pub detail: String,
}

/// The response header the gateway sets on answers it makes itself, as a client
/// records it (`http.response.header.<name>`).
pub const ANSWERED_BY: &str = "http.response.header.x-answered-by";

/// Knobs of the checks.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Allowed disagreement between a child's and its parent's timestamps.
    pub clock_skew_ns: u64,
    /// Trace shapes by endpoint (entry span name).
    pub specs: Vec<TraceSpec>,
    /// When known (the load generator recorded it), the span id the caller sent as the
    /// parent of the trace's first server span: that parent is external, not missing.
    pub external_parents: HashMap<String, String>,
    /// Judge client spans on their own clocks, without the correction their exports'
    /// send times allow (see `skew`).
    pub raw_clocks: bool,
}

impl Default for CheckOptions {
    fn default() -> Self {
        Self {
            clock_skew_ns: 5_000_000,
            specs: Vec::new(),
            external_parents: HashMap::new(),
            raw_clocks: false,
        }
    }
}

fn is_http_client(s: &Span) -> bool {
    s.kind == SpanKind::Client
        && s.attr("db.system.name").is_none()
        && s.attr("http.request.method").is_some()
}

fn status_code(s: &Span) -> Option<u16> {
    s.attr("http.response.status_code")
        .and_then(|v| v.parse().ok())
}

/// The endpoint a trace answers: the name of its entry SERVER span.
pub fn endpoint(spans: &[Span]) -> String {
    let ids: HashSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    spans
        .iter()
        .filter(|s| {
            s.kind == SpanKind::Server && (s.is_root() || !ids.contains(s.parent_span_id.as_str()))
        })
        .min_by_key(|s| s.start_ns)
        .or_else(|| {
            spans
                .iter()
                .filter(|s| s.is_root())
                .min_by_key(|s| s.start_ns)
        })
        .map(|s| s.name.clone())
        .unwrap_or_else(|| "(unknown)".into())
}

fn required_attributes(s: &Span) -> &'static [&'static str] {
    use opentelemetry_semantic_conventions::attribute as a;
    match s.kind {
        // A WebSocket frame handled in its own trace: no HTTP exchange, a frame type.
        SpanKind::Server if s.attr("network.protocol.name") == Some("websocket") => {
            &["socialnet.ws.frame.type"]
        }
        SpanKind::Server if status_code(s) == Some(404) => {
            &[a::HTTP_REQUEST_METHOD, a::HTTP_RESPONSE_STATUS_CODE]
        }
        // A request whose client went away got no response, so no status code; its
        // `error.type` says so, and it is complete with its error.
        SpanKind::Server if status_code(s).is_none() && s.attr(a::ERROR_TYPE).is_some() => {
            &[a::HTTP_REQUEST_METHOD, a::HTTP_ROUTE, a::ERROR_TYPE]
        }
        SpanKind::Server => &[
            a::HTTP_REQUEST_METHOD,
            a::HTTP_ROUTE,
            a::HTTP_RESPONSE_STATUS_CODE,
        ],
        SpanKind::Client if s.attr(a::DB_SYSTEM_NAME).is_some() => {
            &[a::DB_SYSTEM_NAME, a::DB_OPERATION_NAME, a::SERVER_ADDRESS]
        }
        // An object-store call (the AWS SDK conventions).
        SpanKind::Client if s.attr("rpc.system") == Some("aws-api") => &[
            "rpc.service",
            "rpc.method",
            a::AWS_S3_BUCKET,
            a::SERVER_ADDRESS,
        ],
        // A call that never got an answer has no status code; `error.type` says why.
        SpanKind::Client if is_http_client(s) && s.attr(a::ERROR_TYPE).is_some() => {
            &[a::HTTP_REQUEST_METHOD, a::SERVER_ADDRESS]
        }
        SpanKind::Client if is_http_client(s) => &[
            a::HTTP_REQUEST_METHOD,
            a::SERVER_ADDRESS,
            a::HTTP_RESPONSE_STATUS_CODE,
        ],
        _ => &[],
    }
}

/// Every defect of one trace (all spans share one trace id). Links into other traces
/// are not judged here (see [`check_trace_linked`]).
pub fn check_trace(spans: &[Span], opts: &CheckOptions) -> Vec<Defect> {
    check_trace_linked(spans, opts, &|_, _| true)
}

/// Every defect of one trace; `exists(trace_id, span_id)` answers whether a span of
/// another trace arrived, so a link into that trace can be judged.
pub fn check_trace_linked(
    spans: &[Span],
    opts: &CheckOptions,
    exists: &dyn Fn(&str, &str) -> bool,
) -> Vec<Defect> {
    let mut out = Vec::new();
    let Some(first) = spans.first() else {
        return out;
    };
    let trace_id = first.trace_id.clone();
    let mut push = |kind, s: &Span, detail: String| {
        out.push(Defect {
            kind,
            trace_id: trace_id.clone(),
            span_id: s.span_id.clone(),
            service: s.service.clone(),
            detail,
        })
    };

    let mut by_id: HashMap<&str, &Span> = HashMap::new();
    for s in spans {
        if let Some(prev) = by_id.insert(s.span_id.as_str(), s)
            && prev != s
        {
            push(
                DefectKind::DuplicateSpanId,
                s,
                format!(
                    "{} and {} both use span id {}",
                    prev.name, s.name, s.span_id
                ),
            );
        }
    }

    // Roots, external callers and orphans.
    let roots: Vec<&Span> = spans.iter().filter(|s| s.is_root()).collect();
    let dangling: Vec<&Span> = spans
        .iter()
        .filter(|s| !s.is_root() && !by_id.contains_key(s.parent_span_id.as_str()))
        .collect();
    let known_external = opts.external_parents.get(&trace_id);
    let external: Option<&str> = match known_external {
        Some(p) => Some(p.as_str()),
        // Unrecorded: a caller outside the system (curl, a browser) is the parent of the
        // earliest server span when nothing else starts the trace.
        None if roots.is_empty() => dangling
            .iter()
            .filter(|s| s.kind == SpanKind::Server)
            .min_by_key(|s| s.start_ns)
            .map(|s| s.parent_span_id.as_str()),
        None => None,
    };
    for s in &dangling {
        if Some(s.parent_span_id.as_str()) == external {
            continue;
        }
        push(
            DefectKind::MissingParent,
            s,
            format!(
                "{} ({:?}) names parent {} which is not in the trace",
                s.name, s.kind, s.parent_span_id
            ),
        );
    }
    let external_roots = dangling
        .iter()
        .filter(|s| Some(s.parent_span_id.as_str()) == external)
        .count();
    let starts = roots.len() + usize::from(external_roots > 0);
    if starts == 0 {
        if let Some(s) = spans.iter().min_by_key(|s| s.start_ns) {
            push(
                DefectKind::NoRoot,
                s,
                "no root span and no external caller".into(),
            );
        }
    } else if roots.len() > 1 || (!roots.is_empty() && external_roots > 0) {
        for r in roots.iter().skip(usize::from(external_roots == 0)) {
            push(
                DefectKind::SeveralRoots,
                r,
                format!("{} is a second root", r.name),
            );
        }
    }

    // Pairs across process boundaries, timing, ends, errors, attributes.
    let mut children: HashMap<&str, Vec<&Span>> = HashMap::new();
    for s in spans {
        children
            .entry(s.parent_span_id.as_str())
            .or_default()
            .push(s);
    }
    for s in spans {
        if is_http_client(s)
            && s.attr("error.type")
                .is_none_or(|e| e.parse::<u16>().is_ok())
        {
            // The gateway answering itself says so (`X-Answered-By: gateway`, recorded
            // by the client as `http.response.header.x-answered-by`): no server span.
            let answered = status_code(s).is_some() && s.attr(ANSWERED_BY) != Some("gateway");
            let has_server = children
                .get(s.span_id.as_str())
                .is_some_and(|c| c.iter().any(|c| c.kind == SpanKind::Server));
            if answered && !has_server {
                push(
                    DefectKind::ClientWithoutServer,
                    s,
                    format!(
                        "{} to {} has no server span beneath it",
                        s.name,
                        s.attr("server.address").unwrap_or("?")
                    ),
                );
            }
        }
        if s.end_ns == 0 || s.end_ns < s.start_ns {
            push(
                DefectKind::NeverEnded,
                s,
                format!("{} has no valid end time", s.name),
            );
        }
        let Some(parent) = by_id.get(s.parent_span_id.as_str()) else {
            continue;
        };
        if s.kind == SpanKind::Server
            && !(parent.kind == SpanKind::Client && parent.service != s.service)
        {
            push(
                DefectKind::ServerWithoutClient,
                s,
                format!(
                    "{} has parent {} ({:?} in {}), not a client span of its caller",
                    s.name, parent.name, parent.kind, parent.service
                ),
            );
        }
        // A browser continues the trace of the page the server rendered (`<meta
        // name="traceparent">`): its page load began before that server span and its
        // later fetches come after it ended, so time does not nest there; the parentage
        // still must hold (an unknown parent is an orphan above).
        let continues_page = s.from_browser() && !parent.from_browser();
        if !continues_page && s.start_ns + opts.clock_skew_ns < parent.start_ns {
            push(
                DefectKind::StartsBeforeParent,
                s,
                format!(
                    "{} starts {:.3} ms before its parent {}",
                    s.name,
                    (parent.start_ns - s.start_ns) as f64 / 1e6,
                    parent.name
                ),
            );
        }
        // A caller that gave up (a CLIENT span with `error.type` and no answer) stops
        // waiting; the work it asked for may go on after it, and that is no defect.
        let caller_gave_up = parent.kind == SpanKind::Client
            && status_code(parent).is_none()
            && parent.attr("error.type").is_some();
        if parent.end_ns != 0
            && s.end_ns > parent.end_ns + opts.clock_skew_ns
            && !caller_gave_up
            && !continues_page
        {
            push(
                DefectKind::EndsAfterParent,
                s,
                format!(
                    "{} ends {:.3} ms after its parent {}",
                    s.name,
                    (s.end_ns - parent.end_ns) as f64 / 1e6,
                    parent.name
                ),
            );
        }
        let failed = s.kind == SpanKind::Server
            && (status_code(s).is_some_and(|c| c >= 500) || s.status == StatusCode::Error);
        if failed && parent.kind == SpanKind::Client && parent.status != StatusCode::Error {
            push(
                DefectKind::ErrorNotPropagated,
                s,
                format!(
                    "{} failed ({}) but its caller's {} span is not an error",
                    s.name,
                    status_code(s)
                        .map(|c| c.to_string())
                        .unwrap_or_else(|| "error".into()),
                    parent.name
                ),
            );
        }
    }
    for s in spans {
        for l in &s.links {
            let found = if l.trace_id == trace_id {
                by_id.contains_key(l.span_id.as_str())
            } else {
                exists(&l.trace_id, &l.span_id)
            };
            if !found {
                push(
                    DefectKind::LinkTargetMissing,
                    s,
                    format!(
                        "{} links to span {} of trace {}, which never arrived",
                        s.name, l.span_id, l.trace_id
                    ),
                );
            }
        }
        for key in required_attributes(s) {
            if s.attr(key).is_none() {
                push(
                    DefectKind::MissingAttribute,
                    s,
                    format!("{} lacks {key}", s.name),
                );
            }
        }
    }

    // The endpoint's expected shape, for requests that succeeded: an error answer
    // (a refused token, a validation failure) legitimately stops early.
    let ep = endpoint(spans);
    let entry = spans.iter().find(|s| s.name == ep);
    let succeeded = entry.and_then(status_code).is_none_or(|c| c < 400);
    if succeeded && let Some(spec) = opts.specs.iter().find(|sp| sp.endpoint == ep) {
        for req in spec.required() {
            if !spans.iter().any(|s| req.matches(s)) {
                let anchor = entry.unwrap_or(first);
                push(
                    DefectKind::MissingSpan,
                    anchor,
                    format!(
                        "{ep} should contain {req} (spec {}:{})",
                        spec.file, req.line
                    ),
                );
            }
        }
    }
    out
}
