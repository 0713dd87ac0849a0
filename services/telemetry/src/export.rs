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

/// Counts every span that ends (and moves its clock when `clock_offset` is on), then
/// hands it to the real processor.
#[derive(Debug)]
pub(crate) struct CountingProcessor<P> {
    pub inner: P,
    pub counters: Arc<Counters>,
}

impl<P: SpanProcessor> SpanProcessor for CountingProcessor<P> {
    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, mut span: SpanData) {
        self.counters.ended.fetch_add(1, Ordering::Relaxed);
        if crate::teaching::on(crate::teaching::CLOCK_OFFSET) {
            crate::sdk_faults::clock_offset(&mut span);
        }
        self.inner.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.inner.set_resource(resource);
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    use opentelemetry::trace::{Tracer, TracerProvider as _};
    use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
    use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracerProvider, SpanData, SpanExporter};

    use super::*;

    /// An exporter whose receiver is always down.
    #[derive(Debug)]
    struct Down;

    impl SpanExporter for Down {
        async fn export(&self, _: Vec<SpanData>) -> OTelSdkResult {
            Err(OTelSdkError::InternalFailure("receiver down".into()))
        }
    }

    fn provider<E: SpanExporter + 'static>(
        exporter: E,
        counters: &Arc<Counters>,
    ) -> SdkTracerProvider {
        let exporter = CountingExporter {
            inner: exporter,
            counters: counters.clone(),
        };
        let processor = BatchSpanProcessor::builder(exporter).build();
        SdkTracerProvider::builder()
            .with_span_processor(CountingProcessor {
                inner: processor,
                counters: counters.clone(),
            })
            .build()
    }

    #[test]
    fn every_span_is_accounted_for_delivered_or_failed() {
        let ok = Arc::new(Counters::default());
        let memory = opentelemetry_sdk::trace::InMemorySpanExporter::default();
        let p = provider(memory.clone(), &ok);
        let tracer = p.tracer("t");
        for _ in 0..10 {
            tracer.in_span("s", |_| {});
        }
        p.force_flush().expect("flush");
        assert_eq!(memory.get_finished_spans().expect("spans").len(), 10);
        p.shutdown().expect("shutdown");
        assert_eq!(ok.ended.load(Ordering::Relaxed), 10);
        assert_eq!(ok.exported.load(Ordering::Relaxed), 10);

        let down = Arc::new(Counters::default());
        let p = provider(Down, &down);
        let tracer = p.tracer("t");
        for _ in 0..7 {
            tracer.in_span("s", |_| {});
        }
        let _ = p.shutdown();
        assert_eq!(down.ended.load(Ordering::Relaxed), 7);
        assert_eq!(down.exported.load(Ordering::Relaxed), 0);
        assert_eq!(down.failed.load(Ordering::Relaxed), 7);
    }
}
