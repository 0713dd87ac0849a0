//! A CLIENT span for every Redis command.
//!
//! The span is named after the command (`GET`, `LRANGE`, `PIPELINE`); keys stay out of
//! the name to keep it low-cardinality.

use std::fmt::Display;
use std::future::Future;

use tracing::{Instrument, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::attrs::*;

/// Connection facts every Redis span of one client carries.
#[derive(Debug, Clone)]
pub struct RedisSpans {
    server_address: String,
    server_port: u16,
    database: String,
}

impl RedisSpans {
    /// Reads host, port and database index from a `redis://` URL.
    pub fn from_url(url: &str) -> Self {
        let parsed = reqwest::Url::parse(url).ok();
        Self {
            server_address: parsed
                .as_ref()
                .and_then(|u| u.host_str().map(str::to_owned))
                .unwrap_or_else(|| "unknown".into()),
            server_port: parsed.as_ref().and_then(|u| u.port()).unwrap_or(6379),
            database: parsed
                .as_ref()
                .map(|u| u.path().trim_start_matches('/').to_owned())
                .filter(|d| !d.is_empty())
                .unwrap_or_else(|| "0".into()),
        }
    }

    /// A span for one command (or `PIPELINE` for a batch).
    pub fn span(&self, command: &'static str) -> Span {
        let span = tracing::info_span!("cache.command", otel.name = command, otel.kind = "client");
        span.set_attribute(DB_SYSTEM_NAME, "redis");
        span.set_attribute(DB_SYSTEM, "redis");
        span.set_attribute(DB_OPERATION_NAME, command);
        span.set_attribute(DB_NAMESPACE, self.database.clone());
        span.set_attribute(SERVER_ADDRESS, self.server_address.clone());
        span.set_attribute(SERVER_PORT, i64::from(self.server_port));
        span
    }

    /// Runs one command future inside its span and records a failure on it.
    pub async fn run<T, E, F>(&self, command: &'static str, fut: F) -> Result<T, E>
    where
        E: Display,
        F: Future<Output = Result<T, E>>,
    {
        let span = self.span(command);
        let result = fut.instrument(span.clone()).await;
        if let Err(e) = &result {
            crate::record_error(&span, "cache.error", e.to_string());
        }
        result
    }
}
