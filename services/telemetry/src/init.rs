//! Process start-up for telemetry: exporter, propagators, the tracing subscriber, and the
//! guard that flushes everything on the way out.

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::propagation::TextMapCompositePropagator;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::attrs;
use crate::export::{Counters, CountingExporter, CountingProcessor};

/// The batch queue a service gets unless `OTEL_BSP_MAX_QUEUE_SIZE` says otherwise.
///
/// The SDK default (2,048) overflows within a second at 500 simulated users, because one
/// request makes 5–15 spans; 65,536 holds several seconds of peak load while the exporter
/// catches up, at about 1 KiB a span.
pub const DEFAULT_MAX_QUEUE_SIZE: usize = 65_536;

static COUNTERS: OnceLock<Arc<Counters>> = OnceLock::new();

pub(crate) fn counters() -> Arc<Counters> {
    COUNTERS.get_or_init(Default::default).clone()
}

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error(
        "could not build the OTLP span exporter (check OTEL_EXPORTER_OTLP_ENDPOINT and OTEL_EXPORTER_OTLP_PROTOCOL): {0}"
    )]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    #[error("a tracing subscriber is already installed in this process")]
    AlreadyInstalled,
}

/// What this process did with the spans it made, for drop accounting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportStats {
    /// Spans that ended (and so entered the batch queue).
    pub ended: u64,
    /// Spans the exporter delivered.
    pub exported: u64,
    /// Spans whose export failed after retries.
    pub failed: u64,
}

impl ExportStats {
    /// Spans neither delivered nor failed: still queued, or dropped when the queue was full.
    /// After a flush this is exactly the number dropped.
    pub fn unaccounted(&self) -> u64 {
        self.ended.saturating_sub(self.exported + self.failed)
    }

    /// Prometheus text exposition, served by each service on `/metrics`.
    pub fn to_prometheus(&self) -> String {
        format!(
            "# TYPE otel_spans_ended_total counter\notel_spans_ended_total {}\n\
             # TYPE otel_spans_exported_total counter\notel_spans_exported_total {}\n\
             # TYPE otel_spans_export_failed_total counter\notel_spans_export_failed_total {}\n",
            self.ended, self.exported, self.failed
        )
    }
}

/// The current span counters of this process.
pub fn export_stats() -> ExportStats {
    let c = counters();
    ExportStats {
        ended: c.ended.load(Ordering::Relaxed),
        exported: c.exported.load(Ordering::Relaxed),
        failed: c.failed.load(Ordering::Relaxed),
    }
}

/// Flushes and shuts the tracer provider down when dropped, then logs the span accounting.
#[must_use = "dropping the guard shuts telemetry down"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Exports everything still queued, without shutting down.
    pub fn flush(&self) {
        if let Some(p) = &self.provider
            && let Err(e) = p.force_flush()
        {
            tracing::warn!(error = %e, "span flush failed");
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            if let Err(e) = p.shutdown_with_timeout(Duration::from_secs(10)) {
                eprintln!("telemetry shutdown: {e}");
            }
            let s = export_stats();
            let lost = s.unaccounted();
            tracing::info!(
                spans.ended = s.ended,
                spans.exported = s.exported,
                spans.failed = s.failed,
                spans.dropped = lost,
                "telemetry flushed"
            );
        }
    }
}

fn env_flag(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_ascii_lowercase())
}

/// Whether tracing export is switched off by the standard variables
/// (`OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`).
pub fn tracing_disabled() -> bool {
    env_flag("OTEL_SDK_DISABLED").as_deref() == Some("true")
        || env_flag("OTEL_TRACES_EXPORTER").as_deref() == Some("none")
}

/// The resource every span of this process carries.
///
/// `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` win over the defaults given here.
pub(crate) fn resource(default_service_name: &str, version: &str) -> Resource {
    let mut b = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        b = b.with_service_name(default_service_name.to_owned());
    }
    let from_env = std::env::var("OTEL_RESOURCE_ATTRIBUTES").unwrap_or_default();
    if !from_env.contains(attrs::SERVICE_VERSION) {
        b = b.with_attribute(KeyValue::new(attrs::SERVICE_VERSION, version.to_owned()));
    }
    if !from_env.contains(attrs::SERVICE_INSTANCE_ID) {
        b = b.with_attribute(KeyValue::new(
            attrs::SERVICE_INSTANCE_ID,
            uuid::Uuid::new_v4().to_string(),
        ));
    }
    b.build()
}

pub(crate) fn install_propagators() {
    opentelemetry::global::set_text_map_propagator(TextMapCompositePropagator::new(vec![
        Box::new(TraceContextPropagator::new()),
        Box::new(BaggagePropagator::new()),
    ]));
}

/// Starts telemetry for one process. Call once, inside the Tokio runtime (the gRPC
/// exporter needs it), and keep the guard until the process exits.
///
/// Reads `OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_PROTOCOL` (`grpc` or
/// `http/protobuf`, the default), `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
/// `OTEL_TRACES_SAMPLER(_ARG)`, `OTEL_BSP_*`, `OTEL_SDK_DISABLED`, `OTEL_TRACES_EXPORTER`
/// and `RUST_LOG`.
pub fn init(default_service_name: &str, version: &str) -> Result<TelemetryGuard, TelemetryError> {
    install_propagators();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    if tracing_disabled() {
        tracing_subscriber::registry()
            .with(filter)
            .with(crate::logs::json_layer(std::io::stdout))
            .try_init()
            .map_err(|_| TelemetryError::AlreadyInstalled)?;
        tracing::info!("tracing export disabled by OTEL_SDK_DISABLED / OTEL_TRACES_EXPORTER");
        return Ok(TelemetryGuard { provider: None });
    }
    let mut batch = BatchConfigBuilder::default();
    if std::env::var_os("OTEL_BSP_MAX_QUEUE_SIZE").is_none() {
        batch = batch.with_max_queue_size(DEFAULT_MAX_QUEUE_SIZE);
    }
    let provider = counted_provider(
        opentelemetry_otlp::SpanExporter::builder().build()?,
        batch,
        resource(default_service_name, version),
    );
    install_subscriber(&provider, filter, std::io::stdout)?;
    Ok(TelemetryGuard {
        provider: Some(provider),
    })
}

/// A tracer provider for a process that makes its spans by hand rather than through
/// `tracing` (socialctl's load generator): OTLP/HTTP to `traces_endpoint` (used verbatim,
/// e.g. `http://127.0.0.1:4318/v1/traces`), counted like a service's spans
/// ([`export_stats`]), no subscriber and no global state installed. The caller shuts it
/// down (which flushes) when done.
pub fn standalone_provider(
    default_service_name: &str,
    version: &str,
    traces_endpoint: &str,
) -> Result<SdkTracerProvider, TelemetryError> {
    use opentelemetry_otlp::WithExportConfig as _;
    Ok(counted_provider(
        opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(traces_endpoint)
            .build()?,
        BatchConfigBuilder::default()
            .with_max_queue_size(DEFAULT_MAX_QUEUE_SIZE)
            .with_scheduled_delay(Duration::from_millis(500))
            .with_max_export_batch_size(2048),
        resource(default_service_name, version),
    ))
}

/// A provider whose spans are counted (ended, exported, failed) for [`export_stats`],
/// batching into `exporter`.
fn counted_provider(
    exporter: opentelemetry_otlp::SpanExporter,
    batch: BatchConfigBuilder,
    resource: Resource,
) -> SdkTracerProvider {
    let counters = counters();
    let processor = BatchSpanProcessor::builder(CountingExporter {
        inner: exporter,
        counters: counters.clone(),
    })
    .with_batch_config(batch.build())
    .build();
    SdkTracerProvider::builder()
        .with_span_processor(CountingProcessor {
            inner: processor,
            counters,
        })
        .with_sampler(crate::sdk_faults::Sampling::from_env())
        .with_resource(resource)
        .build()
}

pub(crate) fn install_subscriber<W>(
    provider: &SdkTracerProvider,
    filter: EnvFilter,
    writer: W,
) -> Result<(), TelemetryError>
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    opentelemetry::global::set_tracer_provider(provider.clone());
    subscriber(provider, filter, writer)
        .try_init()
        .map_err(|_| TelemetryError::AlreadyInstalled)
}

/// The layers every process runs: spans to OpenTelemetry, logs as JSON lines.
///
/// `RUST_LOG` (`filter`) chooses what is *logged* only. Spans have their own, fixed
/// level (INFO, the level every span of this project is made at): a quieter log must
/// never silently drop traces, as `RUST_LOG=warn` once did.
pub(crate) fn subscriber<W>(
    provider: &SdkTracerProvider,
    filter: EnvFilter,
    writer: W,
) -> impl tracing::Subscriber + Send + Sync + 'static
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    use tracing_subscriber::Layer as _;
    let otel = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("socialnet"))
        .with_location(false)
        .with_threads(false)
        .with_target(false)
        .with_tracked_inactivity(false)
        // Nothing here reads OpenTelemetry's current Context: propagation takes each
        // span's context from the tracing span itself. Attaching it on every poll of
        // every instrumented future cost feed ~3 % of its CPU under the timeline bench.
        .with_context_activation(false)
        .with_filter(tracing_subscriber::filter::LevelFilter::INFO);
    tracing_subscriber::registry()
        .with(otel)
        .with(crate::logs::json_layer(writer).with_filter(filter))
}

/// Resolves when the process is asked to stop (Ctrl-C or SIGTERM), for graceful shutdown.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received; draining requests");
}

#[cfg(test)]
mod tests {
    use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
    use tracing_subscriber::EnvFilter;

    /// `RUST_LOG=warn` quiets the log; every span is still exported.
    #[test]
    fn a_quieter_log_level_drops_no_span() {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let sub = super::subscriber(&provider, EnvFilter::new("warn"), std::io::sink);
        tracing::subscriber::with_default(sub, || {
            tracing::info_span!("GET /api/feed/timeline").in_scope(|| {
                tracing::info_span!("SELECT posts").in_scope(|| {});
            });
        });
        let names: Vec<String> = exporter
            .get_finished_spans()
            .expect("in-memory spans")
            .iter()
            .map(|s| s.name.to_string())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }
}
