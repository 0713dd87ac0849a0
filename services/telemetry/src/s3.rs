//! A CLIENT span for every object-store call, with the AWS SDK semantic conventions:
//! named `S3.<Operation>` (`S3.PutObject`), with `rpc.system=aws-api`, `rpc.service=S3`,
//! `rpc.method`, `aws.s3.bucket` and `aws.s3.key`. The key is an attribute, never part of
//! the name.

use std::fmt::Display;
use std::future::Future;

use tracing::{Instrument, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::attrs::*;

/// Where the object store is, for every span of one client.
#[derive(Debug, Clone)]
pub struct S3Spans {
    server_address: String,
    server_port: u16,
}

impl S3Spans {
    /// Reads host and port from the store's endpoint URL.
    pub fn from_url(url: &str) -> Self {
        let parsed = reqwest::Url::parse(url).ok();
        Self {
            server_address: parsed
                .as_ref()
                .and_then(|u| u.host_str().map(str::to_owned))
                .unwrap_or_else(|| "unknown".into()),
            server_port: parsed
                .as_ref()
                .and_then(|u| u.port_or_known_default())
                .unwrap_or(443),
        }
    }

    /// A span for one operation (`PutObject`, `GetObject`, `HeadObject`, …) on one key.
    pub fn span(&self, operation: &'static str, bucket: &str, key: &str) -> Span {
        let span = tracing::info_span!(
            "s3.call",
            otel.name = format!("S3.{operation}"),
            otel.kind = "client"
        );
        span.set_attribute(RPC_SYSTEM, "aws-api");
        span.set_attribute(RPC_SERVICE, "S3");
        span.set_attribute(RPC_METHOD, operation);
        span.set_attribute(AWS_S3_BUCKET, bucket.to_owned());
        span.set_attribute(AWS_S3_KEY, key.to_owned());
        span.set_attribute(SERVER_ADDRESS, self.server_address.clone());
        span.set_attribute(SERVER_PORT, i64::from(self.server_port));
        span
    }

    /// Runs one call inside its span and records a failure on it: `classify` names it
    /// (`error.type`, such as `unavailable`), or says it is the expected "no such
    /// object" of an existence check (`None`: recorded as `socialnet.s3.found=false`, not
    /// as a failure).
    pub async fn run<T, E, F>(
        &self,
        operation: &'static str,
        bucket: &str,
        key: &str,
        classify: impl Fn(&E) -> Option<&'static str>,
        fut: F,
    ) -> Result<T, E>
    where
        E: Display,
        F: Future<Output = Result<T, E>>,
    {
        let span = self.span(operation, bucket, key);
        let result = fut.instrument(span.clone()).await;
        if let Err(e) = &result {
            match classify(e) {
                Some(kind) => crate::record_error(&span, kind, e.to_string()),
                None => span.set_attribute(S3_FOUND, false),
            }
        }
        result
    }
}
