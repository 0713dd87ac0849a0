//! JSON log lines that carry the trace and span ids of the span they were written in.
//!
//! One line per event: `timestamp`, `level`, `target`, `message`, the event's own fields,
//! and `trace_id`/`span_id` whenever the event happened inside a traced span, so a log
//! line can be joined to its trace in any backend.

use std::fmt;

use opentelemetry::trace::TraceContextExt;
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

/// The fmt layer used by every process: JSON events with trace ids.
pub(crate) fn json_layer<S, W>(writer: W) -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    TraceIdLayer.and_then(
        tracing_subscriber::fmt::layer()
            .event_format(TraceJson)
            .with_writer(writer),
    )
}

/// The OTel ids of a span, stored in its extensions on first entry.
struct TraceIds {
    trace_id: String,
    span_id: String,
}

/// Records each span's OTel ids where the formatter can read them.
///
/// The formatter cannot ask the OTel layer itself: events are formatted inside the
/// dispatcher's `get_default`, which is not re-entrant, so a lookup from there sees no
/// subscriber. Entering a span is not such a call, so the ids are fetched then, once.
struct TraceIdLayer;

impl<S> Layer<S> for TraceIdLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_enter(&self, id: &tracing::span::Id, ctx: tracing_subscriber::layer::Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        if span.extensions().get::<TraceIds>().is_some() {
            return;
        }
        let cx =
            tracing::dispatcher::get_default(|d| tracing_opentelemetry::get_otel_context(id, d));
        if let Some(cx) = cx {
            let s = cx.span();
            let sc = s.span_context();
            if sc.is_valid() {
                span.extensions_mut().insert(TraceIds {
                    trace_id: sc.trace_id().to_string(),
                    span_id: sc.span_id().to_string(),
                });
            }
        }
    }
}

struct TraceJson;

#[derive(Default)]
struct Fields(Map<String, Value>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0
            .insert(field.name().to_owned(), Value::from(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), Value::from(format!("{value:?}")));
    }
}

impl<S, N> FormatEvent<S, N> for TraceJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut line = Map::new();
        line.insert(
            "timestamp".into(),
            Value::from(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs_f64())
                    .unwrap_or_default(),
            ),
        );
        line.insert("level".into(), Value::from(meta.level().as_str()));
        line.insert("target".into(), Value::from(meta.target()));
        if let Some(msg) = fields.0.remove("message") {
            line.insert("message".into(), msg);
        }
        if let Some(span) = ctx.lookup_current() {
            if let Some(ids) = span.extensions().get::<TraceIds>() {
                line.insert("trace_id".into(), Value::from(ids.trace_id.clone()));
                line.insert("span_id".into(), Value::from(ids.span_id.clone()));
            }
            line.insert("span".into(), Value::from(span.name()));
        }
        line.extend(fields.0);
        let text = serde_json::to_string(&line).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
    use tracing_subscriber::layer::SubscriberExt;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("buffer lock").extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn events_inside_a_span_carry_its_trace_and_span_ids() {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let buf = Buf::default();
        let writer = buf.clone();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("t")))
            .with(super::json_layer(move || writer.clone()));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(outside = true, "before any span");
            let span = tracing::info_span!("work", otel.name = "work");
            let _g = span.enter();
            tracing::warn!(user_id = 7, "inside");
        });
        let spans = exporter.get_finished_spans().expect("spans");
        drop(provider);
        let text = String::from_utf8(buf.0.lock().expect("buffer lock").clone()).expect("utf8");
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].get("trace_id").is_none());
        assert_eq!(lines[1]["message"], "inside");
        assert_eq!(lines[1]["level"], "WARN");
        assert_eq!(lines[1]["user_id"], 7);
        assert_eq!(
            lines[1]["trace_id"],
            spans[0].span_context.trace_id().to_string()
        );
        assert_eq!(
            lines[1]["span_id"],
            spans[0].span_context.span_id().to_string()
        );
    }
}
