//! Shared instrumentation for every socialnet service.
//!
//! Everything a service needs to be traced goes through this crate, so that every
//! process emits the same span names, attributes and log shape:
//!
//! - [`init`] reads the standard `OTEL_*` variables, builds the OTLP exporter (gRPC or
//!   HTTP/protobuf), installs the W3C propagators and the JSON log format, and returns a
//!   [`TelemetryGuard`] that flushes on drop.
//! - [`http_server::layer`] gives an axum router one SERVER span per request, named
//!   `METHOD /route/{param}`, continuing any incoming `traceparent`.
//! - [`HttpClient`] sends outbound requests inside CLIENT spans and injects context.
//! - [`db::SqlSpans`] and [`cache::RedisSpans`] wrap every query and cache command in a
//!   CLIENT span with database semantic-convention attributes.
//! - [`attrs`] holds the attribute keys shared with `verify`, which checks them.
//!
//! Only this crate knows exporter and propagator types (an architecture invariant).

pub mod attrs;
pub mod cache;
pub mod db;
mod export;
pub mod faults;
pub mod http_client;
pub mod http_server;
mod init;
mod logs;
pub mod messaging;
pub mod propagation;
pub mod s3;
mod sdk_faults;
pub mod teaching;
#[cfg(feature = "testing")]
pub mod testing;

pub use http_client::HttpClient;
pub use init::{
    DEFAULT_MAX_QUEUE_SIZE, ExportStats, TelemetryError, TelemetryGuard, export_stats, init,
    shutdown_signal, standalone_provider, tracing_disabled,
};
pub use opentelemetry::trace::SpanContext;

use opentelemetry::trace::TraceContextExt;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The trace id of the current span as 32 hex digits, or an empty string outside a trace.
///
/// Error bodies carry it so a user can paste it into the trace UI.
pub fn current_trace_id() -> String {
    let cx = tracing::Span::current().context();
    let span = cx.span();
    let sc = span.span_context();
    if sc.is_valid() {
        sc.trace_id().to_string()
    } else {
        String::new()
    }
}

/// The current span's context, to link to from spans that outlive it (work it started
/// that goes on after it ends).
pub fn current_span_context() -> opentelemetry::trace::SpanContext {
    tracing::Span::current()
        .context()
        .span()
        .span_context()
        .clone()
}

/// Links `span` to `to` (when `to` is a real span): "caused by, but not a child of".
pub fn add_link(span: &tracing::Span, to: &opentelemetry::trace::SpanContext) {
    if to.is_valid() {
        span.add_link(to.clone());
    }
}

/// Marks the current span as failed with a short, low-cardinality error type.
pub fn record_error(span: &tracing::Span, error_type: &str, message: impl Into<String>) {
    span.set_attribute(attrs::ERROR_TYPE, error_type.to_owned());
    span.set_status(opentelemetry::trace::Status::error(message.into()));
}

/// Sets an attribute on the current span (e.g. the authenticated user on the server span).
pub fn set_current_attribute(key: &'static str, value: impl Into<opentelemetry::Value>) {
    tracing::Span::current().set_attribute(key, value);
}
