//! Outbound HTTP with a CLIENT span per request and the W3C context injected.
//!
//! `reqwest-tracing` lags OpenTelemetry releases, so this small wrapper does the two
//! things we need: a span named after the method (low cardinality, per semantic
//! conventions) and the `traceparent` of that span on the wire, so the callee's SERVER
//! span becomes its child.

use std::time::Duration;

use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::attrs::*;
use crate::propagation;

/// TCP port 9 (discard) on loopback: nothing listens there, so a connection is refused
/// at once. Where chaos sends calls it fails.
const DEAD_PORT: u16 = 9;

/// A `reqwest::Client` whose every request is traced.
#[derive(Debug, Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
}

impl HttpClient {
    /// A client with a total per-request timeout, so a stuck dependency cannot hold a
    /// request (and its span) open forever.
    pub fn new(timeout: Duration) -> Self {
        let inner = reqwest::Client::builder()
            .timeout(timeout)
            .pool_max_idle_per_host(64)
            .build()
            .expect("a reqwest client with only a timeout set always builds");
        Self { inner }
    }

    /// The underlying client, to start building a request.
    pub fn reqwest(&self) -> &reqwest::Client {
        &self.inner
    }

    /// Sends `request` inside a CLIENT span, child of the current span.
    pub async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, reqwest::Error> {
        let req = request.build()?;
        if crate::teaching::on(crate::teaching::RETRY_STORM) {
            return self.retry_storm(req).await;
        }
        self.send_once(req).await
    }

    /// The `retry_storm` teaching fault: a call that failed (a transport error or a 5xx)
    /// is sent again at once, [`RETRY_STORM_RETRIES`](crate::teaching::RETRY_STORM_RETRIES)
    /// more times, with no backoff and no budget, whatever its method.
    ///
    /// Symptom in the trace: six CLIENT spans of the same call side by side under one
    /// parent, each with its own failed SERVER span at the callee, when the callee fails;
    /// a struggling dependency gets six times the load.
    async fn retry_storm(
        &self,
        mut req: reqwest::Request,
    ) -> Result<reqwest::Response, reqwest::Error> {
        let mut retries = 0;
        loop {
            let again = req.try_clone();
            let result = self.send_once(req).await;
            let failed = result
                .as_ref()
                .map_or(true, |r| r.status().is_server_error());
            match again {
                Some(next) if failed && retries < crate::teaching::RETRY_STORM_RETRIES => {
                    retries += 1;
                    req = next;
                }
                _ => return result,
            }
        }
    }

    async fn send_once(
        &self,
        mut req: reqwest::Request,
    ) -> Result<reqwest::Response, reqwest::Error> {
        let span =
            tracing::info_span!("http.client", otel.name = %req.method(), otel.kind = "client");
        span.set_attribute(HTTP_REQUEST_METHOD, req.method().to_string());
        let url = req.url();
        let mut shown = url.clone();
        shown.set_query(None);
        span.set_attribute(URL_FULL, shown.to_string());
        if let Some(host) = url.host_str() {
            span.set_attribute(SERVER_ADDRESS, host.to_owned());
        }
        if let Some(port) = url.port_or_known_default() {
            span.set_attribute(SERVER_PORT, i64::from(port));
        }
        // chaos: a call to a dependency switched to failing goes to a port nothing
        // listens on, and fails there as a real unreachable dependency does.
        if let Some(target) = crate::faults::failing_call(req.url()) {
            crate::faults::mark(&span, "failing_call", format!("calls to {target} fail"));
            let url = req.url_mut();
            let _ = url.set_host(Some("127.0.0.1"));
            let _ = url.set_port(Some(DEAD_PORT));
        }
        if crate::faults::on(crate::faults::BROKEN_PROPAGATION) {
            inject_broken_context(&span, req.headers_mut());
        } else {
            propagation::inject_http(&span.context(), req.headers_mut());
        }
        let result = self.inner.execute(req).instrument(span.clone()).await;
        match &result {
            Ok(res) => {
                let status = res.status();
                span.set_attribute(HTTP_RESPONSE_STATUS_CODE, i64::from(status.as_u16()));
                if (status.is_client_error() || status.is_server_error()) && !swallowed() {
                    crate::record_error(&span, status.as_str(), format!("HTTP {status}"));
                }
            }
            Err(e) => {
                let kind = if e.is_timeout() {
                    "timeout"
                } else if e.is_connect() {
                    "connect"
                } else {
                    "transport"
                };
                crate::record_error(&span, kind, e.to_string());
            }
        }
        result
    }
}

/// The `swallowed_error` teaching fault: an error answer is not recorded on the CLIENT
/// span that got it (the status code still is, as many hand-written clients do).
///
/// Symptom in the trace: `verify-traces` reports `error_not_propagated` (the callee's
/// SERVER span is a 5xx, the caller's CLIENT span is not an error), and an error search
/// for the caller finds nothing.
fn swallowed() -> bool {
    crate::teaching::on(crate::teaching::SWALLOWED_ERROR)
}

/// The `broken_propagation` teaching fault: the right trace id, a parent that does not exist.
fn inject_broken_context(span: &tracing::Span, headers: &mut http::HeaderMap) {
    use opentelemetry::trace::TraceContextExt;
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    let made_up = opentelemetry::trace::SpanId::from_bytes(
        uuid::Uuid::new_v4().as_u64_pair().0.to_be_bytes(),
    );
    let value = format!(
        "00-{}-{}-{:02x}",
        sc.trace_id(),
        made_up,
        sc.trace_flags().to_u8()
    );
    if let Ok(v) = http::HeaderValue::from_str(&value) {
        headers.insert("traceparent", v);
    }
}
