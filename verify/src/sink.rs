//! The OTLP sink: gRPC (`:4317`) and HTTP (`:4318`, protobuf or JSON) receivers in
//! front of a [`SpanStore`], plus a small query API on the HTTP port:
//!
//! - `GET /api/traces?service=&operation=&status=error|ok&min_duration_ms=&start_ns=&end_ns=&limit=`
//!   — recent traces (summaries), newest first
//! - `GET /api/traces/{trace_id}` — one trace's spans
//! - `GET /api/stats` — store counters
//! - `POST /api/check` — completeness of given (sent) or recent settled traces, for live views
//! - `GET /api/export` — every stored trace, all spans (for `verify-traces`)
//!
//! Malformed payloads get 400 (HTTP) or `INVALID_ARGUMENT` (gRPC) and the sink keeps
//! serving; bodies over the size limit are refused (413) before they are buffered.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use serde::{Deserialize, Serialize};

use crate::model::Span;
use crate::otlp;
use crate::store::SpanStore;

/// Largest OTLP payload accepted, in bytes.
pub const MAX_PAYLOAD: usize = 16 * 1024 * 1024;

/// HTTP/2 flow-control windows of the gRPC receiver. The protocol's default (64 KiB)
/// makes a sender of 1 MiB batches stop for a window update every 64 KiB.
pub const GRPC_STREAM_WINDOW: u32 = 4 * 1024 * 1024;
pub const GRPC_CONNECTION_WINDOW: u32 = 16 * 1024 * 1024;

/// The HTTP router: OTLP ingest and the query API.
pub fn http_app(store: Arc<SpanStore>) -> Router {
    Router::new()
        .route("/v1/traces", post(ingest))
        .route("/api/traces", get(list))
        .route("/api/traces/{id}", get(one))
        .route("/api/traces/{id}/linked", get(linked))
        .route("/api/stats", get(stats))
        .route("/api/check", post(check))
        .route("/api/export", get(export))
        .route("/healthz", get(|| async { "ok" }))
        .layer(DefaultBodyLimit::max(MAX_PAYLOAD))
        .with_state(store)
}

fn bad_request(store: &SpanStore, msg: String) -> Response {
    store.count_rejected();
    (
        StatusCode::BAD_REQUEST,
        axum::Json(serde_json::json!({"error": "bad_request", "message": msg, "trace_id": ""})),
    )
        .into_response()
}

/// The largest body a gzip payload may inflate to (a compression bomb is refused, not
/// expanded).
pub const MAX_INFLATED: usize = 4 * MAX_PAYLOAD;

/// Inflates a gzip body (OTLP/HTTP clients may send `Content-Encoding: gzip`), refusing
/// one that would grow past [`MAX_INFLATED`].
fn gunzip(body: &[u8]) -> Result<Vec<u8>, String> {
    use std::io::Read as _;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .take(MAX_INFLATED as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("the gzip body does not inflate: {e}"))?;
    if out.len() > MAX_INFLATED {
        return Err(format!(
            "the gzip body inflates past {} MiB",
            MAX_INFLATED >> 20
        ));
    }
    Ok(out)
}

async fn ingest(
    State(store): State<Arc<SpanStore>>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    // A body over the limit is refused before it is read; it is counted like any other
    // refused payload.
    let body = match body {
        Ok(b) => b,
        Err(r) => {
            store.count_rejected();
            return (
                r.status(),
                axum::Json(serde_json::json!({"error": "payload_too_large", "message": r.body_text(), "trace_id": ""})),
            )
                .into_response();
        }
    };
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let body: Bytes = if gzip {
        match gunzip(&body) {
            Ok(b) => b.into(),
            Err(e) => return bad_request(&store, e),
        }
    } else {
        body
    };
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let json = ctype.starts_with("application/json");
    let decoded = if json {
        otlp::decode_json(&body)
    } else {
        otlp::decode_protobuf(&body)
    };
    match decoded {
        Ok(mut spans) => {
            crate::skew::stamp(&mut spans, now_ns());
            store.insert(spans);
            if json {
                (StatusCode::OK, axum::Json(serde_json::json!({}))).into_response()
            } else {
                let bytes = ExportTraceServiceResponse::default().encode_to_vec();
                (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/x-protobuf")],
                    bytes,
                )
                    .into_response()
            }
        }
        Err(e) => bad_request(&store, e.to_string()),
    }
}

/// Filters of `GET /api/traces`; all optional, combined with AND.
#[derive(Debug, Default, Deserialize)]
pub struct ListParams {
    /// Traces touching this service.
    pub service: Option<String>,
    /// Traces with a span of this name (e.g. `GET /api/feed/timeline`).
    pub operation: Option<String>,
    /// `error`: traces with an error span; `ok`: traces without.
    pub status: Option<String>,
    /// Traces at least this long, in milliseconds.
    pub min_duration_ms: Option<f64>,
    /// Traces that started at or after this time (Unix nanoseconds).
    pub start_ns: Option<u64>,
    /// Traces that started before this time (Unix nanoseconds).
    pub end_ns: Option<u64>,
    pub limit: Option<usize>,
}

impl ListParams {
    /// Whether a trace passes every filter.
    pub fn keep(&self, t: &[Span]) -> bool {
        let start = t.iter().map(|s| s.start_ns).min().unwrap_or(0);
        let end = t.iter().map(|s| s.end_ns).max().unwrap_or(0);
        let errors = t.iter().any(|s| s.status == crate::StatusCode::Error);
        self.service
            .as_ref()
            .is_none_or(|svc| t.iter().any(|s| &s.service == svc))
            && self
                .operation
                .as_ref()
                .is_none_or(|op| t.iter().any(|s| &s.name == op))
            && match self.status.as_deref() {
                Some("error") => errors,
                Some("ok") => !errors,
                _ => true,
            }
            && self
                .min_duration_ms
                .is_none_or(|ms| end.saturating_sub(start) as f64 / 1e6 >= ms)
            && self.start_ns.is_none_or(|from| start >= from)
            && self.end_ns.is_none_or(|to| start < to)
    }
}

/// One line per trace in listings.
#[derive(Debug, Serialize, Deserialize)]
pub struct TraceSummary {
    pub trace_id: String,
    pub root: String,
    pub services: Vec<String>,
    pub spans: usize,
    pub duration_ms: f64,
    pub errors: usize,
}

pub fn summarize(spans: &[Span]) -> TraceSummary {
    let ids: std::collections::HashSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    let root = spans
        .iter()
        .find(|s| s.is_root() || !ids.contains(s.parent_span_id.as_str()))
        .map(|s| format!("{} {}", s.service, s.name))
        .unwrap_or_default();
    let mut services: Vec<String> = spans.iter().map(|s| s.service.clone()).collect();
    services.sort();
    services.dedup();
    let start = spans.iter().map(|s| s.start_ns).min().unwrap_or(0);
    let end = spans.iter().map(|s| s.end_ns).max().unwrap_or(0);
    TraceSummary {
        trace_id: spans
            .first()
            .map(|s| s.trace_id.clone())
            .unwrap_or_default(),
        root,
        services,
        spans: spans.len(),
        duration_ms: end.saturating_sub(start) as f64 / 1e6,
        errors: spans
            .iter()
            .filter(|s| s.status == crate::StatusCode::Error)
            .count(),
    }
}

async fn list(
    State(store): State<Arc<SpanStore>>,
    Query(p): Query<ListParams>,
) -> axum::Json<Vec<TraceSummary>> {
    let limit = p.limit.unwrap_or(20).min(1000);
    let traces = store.recent(limit, |t| p.keep(t));
    axum::Json(traces.iter().map(|t| summarize(t)).collect())
}

async fn one(State(store): State<Arc<SpanStore>>, Path(id): Path<String>) -> Response {
    match store.trace(&id) {
        Some(spans) => axum::Json(spans).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(serde_json::json!({"error": "not_found", "message": format!("no trace {id} in the sink"), "trace_id": id})),
        )
            .into_response(),
    }
}

/// The spans of other traces that link into trace `id` (empty when none do).
async fn linked(
    State(store): State<Arc<SpanStore>>,
    Path(id): Path<String>,
) -> axum::Json<Vec<Span>> {
    axum::Json(store.linking_to(&id))
}

/// Every stored trace with all its spans (what `verify-traces` reads).
async fn export(State(store): State<Arc<SpanStore>>) -> axum::Json<Vec<Vec<Span>>> {
    axum::Json(store.all())
}

async fn stats(State(store): State<Arc<SpanStore>>) -> axum::Json<crate::StoreStats> {
    axum::Json(store.stats())
}

/// Body of `POST /api/check`: judge these sent requests' traces, or else the newest
/// `recent` traces that have been quiet for `settle_ms`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct CheckRequest {
    #[serde(default)]
    pub sent: Vec<crate::report::SentRequest>,
    #[serde(default)]
    pub recent: usize,
    #[serde(default = "default_settle_ms")]
    pub settle_ms: u64,
}

fn default_settle_ms() -> u64 {
    2000
}

/// Most sent requests or recent traces one check judges.
pub const MAX_CHECK: usize = 20_000;

/// Answer of `POST /api/check` (structural checks only; trace specs are `verify-traces`').
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CheckSummary {
    pub checked: usize,
    pub complete: usize,
    /// Sent requests with no span in the sink.
    pub missing: usize,
    /// Defect name → count.
    pub defects: std::collections::BTreeMap<String, usize>,
    /// Per root endpoint of the judged traces that arrived: count, errors, root duration.
    pub endpoints: Vec<EndpointTraffic>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct EndpointTraffic {
    pub endpoint: String,
    pub traces: usize,
    pub errors: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// Judges traces for a live view (see [`CheckRequest`]).
pub fn check_summary(store: &SpanStore, req: &CheckRequest) -> CheckSummary {
    let opts = crate::checks::CheckOptions::default();
    let (traces, report) = if req.sent.is_empty() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let quiet_since = now.saturating_sub(req.settle_ms.saturating_mul(1_000_000));
        let traces = store.recent(req.recent.min(MAX_CHECK), |t| {
            t.iter().map(|s| s.end_ns).max().unwrap_or(0) < quiet_since
        });
        let report =
            crate::report::verify_linked(&traces, None, &opts, &|t, s| store.has_span(t, s));
        (traces, report)
    } else {
        let sent = &req.sent[..req.sent.len().min(MAX_CHECK)];
        let traces: Vec<Vec<Span>> = sent
            .iter()
            .filter_map(|r| store.trace(&r.trace_id))
            .collect();
        let report =
            crate::report::verify_linked(&traces, Some(sent), &opts, &|t, s| store.has_span(t, s));
        (traces, report)
    };
    let mut by_endpoint: std::collections::BTreeMap<String, (usize, Vec<f64>)> = Default::default();
    for t in &traces {
        let s = summarize(t);
        let e = by_endpoint.entry(crate::checks::endpoint(t)).or_default();
        e.0 += usize::from(s.errors > 0);
        e.1.push(s.duration_ms);
    }
    let pct = |v: &[f64], q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    CheckSummary {
        checked: report.traces,
        complete: report.complete,
        missing: report
            .kinds
            .iter()
            .filter(|k| k.kind == crate::checks::DefectKind::MissingTrace)
            .map(|k| k.traces)
            .sum(),
        defects: report
            .kinds
            .iter()
            .map(|k| (k.kind.name().to_owned(), k.traces))
            .collect(),
        endpoints: by_endpoint
            .into_iter()
            .map(|(endpoint, (errors, mut d))| {
                d.sort_by(f64::total_cmp);
                EndpointTraffic {
                    endpoint,
                    traces: d.len(),
                    errors,
                    p50_ms: pct(&d, 0.5),
                    p99_ms: pct(&d, 0.99),
                }
            })
            .collect(),
    }
}

async fn check(State(store): State<Arc<SpanStore>>, body: Bytes) -> Response {
    match serde_json::from_slice::<CheckRequest>(&body) {
        Ok(req) => axum::Json(check_summary(&store, &req)).into_response(),
        Err(e) => bad_request(
            &store,
            format!("POST /api/check wants {{sent: [...]}} or {{recent: N}}: {e}"),
        ),
    }
}

/// Serves both receivers until `shutdown` resolves.
pub async fn serve(
    store: Arc<SpanStore>,
    grpc_addr: SocketAddr,
    http_addr: SocketAddr,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let http_listener = tokio::net::TcpListener::bind(http_addr).await?;
    let grpc_listener = tokio::net::TcpListener::bind(grpc_addr).await?;
    let (tx, rx) = tokio::sync::watch::channel(false);
    let grpc = tonic::transport::Server::builder()
        .initial_stream_window_size(Some(GRPC_STREAM_WINDOW))
        .initial_connection_window_size(Some(GRPC_CONNECTION_WINDOW))
        .add_service(crate::grpc::Receiver::new(store.clone(), MAX_PAYLOAD))
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(grpc_listener),
            wait(rx.clone()),
        );
    let http = axum::serve(http_listener, http_app(store)).with_graceful_shutdown(wait(rx));
    tokio::spawn(async move {
        shutdown.await;
        let _ = tx.send(true);
    });
    let (g, h) = tokio::join!(grpc, http);
    g.map_err(std::io::Error::other)?;
    h
}

async fn wait(mut rx: tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await;
}

/// The sink's clock, in Unix nanoseconds (a client's export is stamped with it).
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default()
}
