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
        let mut req = request.build()?;
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
        propagation::inject_http(&span.context(), req.headers_mut());
        let result = self.inner.execute(req).instrument(span.clone()).await;
        match &result {
            Ok(res) => {
                let status = res.status();
                span.set_attribute(HTTP_RESPONSE_STATUS_CODE, i64::from(status.as_u16()));
                if status.is_client_error() || status.is_server_error() {
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
