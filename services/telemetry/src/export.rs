//! Span accounting around the SDK's batch processor.
//!
//! The batch processor drops spans silently when its queue is full (it logs once and
//! reports a total only at shutdown). Verification needs to explain every loss, so each
//! process counts the spans it ended, the spans its exporter delivered and the spans whose
//! export failed; whatever is left after a flush was dropped in the queue.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter, SpanProcessor};

/// Process-wide span counters, readable at any time (exposed on `/metrics`).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub ended: AtomicU64,
    pub exported: AtomicU64,
    pub failed: AtomicU64,
}

/// Counts every span that ends, then hands it to the real processor.
#[derive(Debug)]
pub(crate) struct CountingProcessor<P> {
    pub inner: P,
    pub counters: Arc<Counters>,
}

impl<P: SpanProcessor> SpanProcessor for CountingProcessor<P> {
    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        self.counters.ended.fetch_add(1, Ordering::Relaxed);
        self.inner.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }
}

/// Counts what the exporter delivered and what it failed to deliver.
#[derive(Debug)]
pub(crate) struct CountingExporter<E> {
    pub inner: E,
    pub counters: Arc<Counters>,
}

impl<E: SpanExporter> SpanExporter for CountingExporter<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let n = batch.len() as u64;
        let result = self.inner.export(batch).await;
        match &result {
            Ok(()) => self.counters.exported.fetch_add(n, Ordering::Relaxed),
            Err(e) => {
                tracing::warn!(spans = n, error = %e, "span export failed; these spans are lost");
                self.counters.failed.fetch_add(n, Ordering::Relaxed)
            }
        };
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.inner.set_resource(resource);
    }
}
