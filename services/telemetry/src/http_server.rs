//! One SERVER span per HTTP request, for axum routers.
//!
//! Add it with `router.layer(axum::middleware::from_fn(telemetry::http_server::trace_requests))`
//! so that it runs after routing and sees the route template (`MatchedPath`). The span is
//! named `METHOD /route/{param}`, continues the caller's `traceparent`, carries the HTTP
//! semantic-convention attributes, and the response gets a `traceparent` header naming it,
//! so any client can find the trace of its request.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, MatchedPath, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use opentelemetry::trace::TraceContextExt as _;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::attrs::*;
use crate::propagation;

/// Attached to a response by a service's error type; the middleware records it on the
/// server span and logs it once, inside the span, so the log line carries the trace id.
#[derive(Debug, Clone)]
pub struct ErrorDetail {
    /// Low-cardinality error class, e.g. `database` or `validation`.
    pub error_type: &'static str,
    /// Full detail for the log and the span status; never sent to the client for 5xx.
    pub message: String,
}

fn client_address(req: &Request) -> Option<String> {
    let h = req.headers();
    if let Some(xff) = h.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        return xff.split(',').next().map(|s| s.trim().to_owned());
    }
    if let Some(ip) = h.get("x-real-ip").and_then(|v| v.to_str().ok()) {
        return Some(ip.to_owned());
    }
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
}

/// The request span's name: low-cardinality, from the route template when one matched.
pub fn span_name(method: &http::Method, route: Option<&str>) -> String {
    match route {
        Some(r) => format!("{method} {r}"),
        None => method.to_string(),
    }
}

/// Probe endpoints, polled every few hundred milliseconds by orchestrators: tracing them
/// would bury real traffic, so they get no span.
pub const UNTRACED_PATHS: &[&str] = &["/healthz", "/readyz", "/metrics", FAULTS_PATH];

/// The operations endpoint of run-time application faults (`socialctl chaos`).
pub const FAULTS_PATH: &str = "/chaos/faults";

/// The operations endpoint of the teaching faults (`socialctl fault`): `GET` lists
/// them, `PUT`/`DELETE` on `/chaos/teaching/{name}` switch one, `DELETE` all.
pub const TEACHING_PATH: &str = "/chaos/teaching";

/// The `error.type` of a server span whose client went away before the response.
pub const CANCELLED: &str = "cancelled";

/// Marks the request span as cancelled when dropped before [`Unanswered::answered`]:
/// per the HTTP semantic conventions, no status code (none was sent) and `error.type`.
struct Unanswered(Option<tracing::Span>);

impl Unanswered {
    fn answered(mut self) {
        self.0 = None;
    }
}

impl Drop for Unanswered {
    fn drop(&mut self) {
        if let Some(span) = self.0.take() {
            crate::record_error(
                &span,
                CANCELLED,
                "the client went away before the response was sent",
            );
        }
    }
}

/// axum middleware: see the module docs.
pub async fn trace_requests(req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if UNTRACED_PATHS.contains(&path) || path.starts_with(TEACHING_PATH) {
        return next.run(req).await;
    }
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let method = req.method().clone();
    let span = tracing::info_span!(
        "http.server",
        otel.name = %span_name(&method, route.as_deref()),
        otel.kind = "server",
    );
    if let Err(e) = span.set_parent(propagation::extract_http(req.headers())) {
        tracing::debug!(error = %e, "incoming trace context not attached");
    }
    span.set_attribute(HTTP_REQUEST_METHOD, method.to_string());
    span.set_attribute(URL_PATH, req.uri().path().to_owned());
    span.set_attribute(URL_SCHEME, "http");
    if let Some(r) = &route {
        span.set_attribute(HTTP_ROUTE, r.clone());
    }
    let h = req.headers();
    if let Some(host) = h.get(http::header::HOST).and_then(|v| v.to_str().ok()) {
        let host = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
        span.set_attribute(SERVER_ADDRESS, host.to_owned());
    }
    if let Some(ua) = h
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
    {
        span.set_attribute(USER_AGENT_ORIGINAL, ua.to_owned());
    }
    if let Some(id) = h.get("x-request-id").and_then(|v| v.to_str().ok()) {
        span.set_attribute(HTTP_REQUEST_ID, id.to_owned());
    }
    if let Some(addr) = client_address(&req) {
        span.set_attribute(CLIENT_ADDRESS, addr);
    }
    let version = match req.version() {
        http::Version::HTTP_10 => "1.0",
        http::Version::HTTP_2 => "2",
        _ => "1.1",
    };
    span.set_attribute(NETWORK_PROTOCOL_VERSION, version);

    // If the client goes away first, the server drops this future: the guard then ends
    // the span honestly, as a request that got no response, instead of a span that just
    // lacks its status code.
    let guard = Unanswered(Some(span.clone()));
    let injected = route.as_deref().and_then(|r| {
        crate::faults::for_request(r, || {
            u128::from_be_bytes(span.context().span().span_context().trace_id().to_bytes())
        })
    });
    let mut response = match injected {
        None => next.run(req).instrument(span.clone()).await,
        Some((latency_ms, fail)) => {
            if latency_ms > 0 {
                crate::faults::mark(&span, "latency", format!("{latency_ms} ms added"));
                tokio::time::sleep(std::time::Duration::from_millis(latency_ms)).await;
            }
            if fail {
                crate::faults::mark(
                    &span,
                    "error_rate",
                    "answered 500 instead of handled".into(),
                );
                injected_error(&span)
            } else {
                next.run(req).instrument(span.clone()).await
            }
        }
    };
    guard.answered();

    let status = response.status();
    span.set_attribute(HTTP_RESPONSE_STATUS_CODE, i64::from(status.as_u16()));
    let detail = response.extensions_mut().remove::<ErrorDetail>();
    {
        let _entered = span.enter();
        if status.is_server_error() {
            let (kind, msg) = detail
                .as_ref()
                .map(|d| (d.error_type, d.message.as_str()))
                .unwrap_or(("http.server", status.as_str()));
            crate::record_error(&span, kind, msg.to_owned());
            tracing::error!(status = status.as_u16(), error.type = kind, error = msg, "request failed");
        } else if let Some(d) = &detail {
            // Client mistakes are not server errors: the span stays unset, per semantic
            // conventions, but the log says what was wrong.
            tracing::info!(status = status.as_u16(), error.type = d.error_type, error = %d.message, "request refused");
        }
    }
    propagation::inject_http(&span.context(), response.headers_mut());
    response
}

/// The answer of a request chaos fails: a 500 with the services' JSON error shape.
fn injected_error(span: &tracing::Span) -> Response {
    let trace_id = span.context().span().span_context().trace_id().to_string();
    let mut r = (
        http::StatusCode::INTERNAL_SERVER_ERROR,
        axum::Json(serde_json::json!({
            "error": "injected_fault",
            "message": "this request was failed on purpose by socialctl chaos (an error-rate fault)",
            "trace_id": trace_id,
        })),
    )
        .into_response();
    r.extensions_mut().insert(ErrorDetail {
        error_type: "injected_fault",
        message: "failed on purpose by socialctl chaos".into(),
    });
    r
}
