//! Test helpers: an in-memory span exporter installed once per test binary, and
//! assertions over the spans of one trace.
//!
//! Tests in one binary run in parallel and share the process-wide subscriber, so each
//! test starts its own trace (send [`Traceparent::header`]) and looks only at the spans
//! of that trace id.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use opentelemetry::KeyValue;
pub use opentelemetry::Value;
pub use opentelemetry::trace::SpanKind as Kind;
use opentelemetry::trace::{SpanId, SpanKind, TraceId};
pub use opentelemetry_sdk::trace::SpanData as SpanDataRef;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing_subscriber::EnvFilter;

static EXPORTER: OnceLock<InMemorySpanExporter> = OnceLock::new();

/// Installs (once) a subscriber that exports every span synchronously into memory.
pub fn init() -> InMemorySpanExporter {
    EXPORTER
        .get_or_init(|| {
            crate::init::install_propagators();
            let exporter = InMemorySpanExporter::default();
            let provider = SdkTracerProvider::builder()
                .with_simple_exporter(exporter.clone())
                .with_resource(crate::init::resource("test", "0.0.0"))
                .build();
            let filter =
                EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
            crate::init::install_subscriber(
                &provider,
                filter,
                tracing_subscriber::fmt::TestWriter::new,
            )
            .expect("the test subscriber is installed once per binary");
            exporter
        })
        .clone()
}

/// A fresh remote parent for one test's request.
#[derive(Debug, Clone, Copy)]
pub struct Traceparent {
    pub trace_id: TraceId,
    pub span_id: SpanId,
}

impl Traceparent {
    pub fn random() -> Self {
        let u = uuid::Uuid::new_v4().as_u128();
        Self {
            trace_id: TraceId::from_bytes(u.to_be_bytes()),
            span_id: SpanId::from_bytes((u as u64 | 1).to_be_bytes()),
        }
    }

    /// The `traceparent` header value.
    pub fn header(&self) -> String {
        format!("00-{}-{}-01", self.trace_id, self.span_id)
    }
}

/// The spans of one trace, with lookups for assertions.
#[derive(Debug, Clone)]
pub struct Trace(pub Vec<SpanData>);

impl Trace {
    /// Waits (polling, with a deadline) until `done` holds for the trace's spans.
    /// Panics with the spans seen so far if the deadline passes.
    pub fn wait(trace_id: TraceId, timeout: Duration, done: impl Fn(&Trace) -> bool) -> Trace {
        let exporter = init();
        let deadline = Instant::now() + timeout;
        loop {
            let spans = exporter
                .get_finished_spans()
                .expect("the in-memory exporter is never shut down in tests")
                .into_iter()
                .filter(|s| s.span_context.trace_id() == trace_id)
                .collect();
            let t = Trace(spans);
            if done(&t) {
                return t;
            }
            if Instant::now() > deadline {
                panic!(
                    "trace {trace_id} did not reach the expected shape; spans:\n{}",
                    t.describe()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn names(&self) -> Vec<String> {
        self.0.iter().map(|s| s.name.to_string()).collect()
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|s| s.name == name)
    }

    /// The one span named `name`; panics listing the trace otherwise.
    pub fn one(&self, name: &str) -> &SpanData {
        let found: Vec<_> = self.0.iter().filter(|s| s.name == name).collect();
        assert_eq!(
            found.len(),
            1,
            "expected one span {name:?}; trace:\n{}",
            self.describe()
        );
        found[0]
    }

    pub fn all(&self, name: &str) -> Vec<&SpanData> {
        self.0.iter().filter(|s| s.name == name).collect()
    }

    /// Asserts that `child`'s parent is `parent`.
    pub fn assert_parent(&self, child: &SpanData, parent: &SpanData) {
        assert_eq!(
            child.parent_span_id,
            parent.span_context.span_id(),
            "{} should be a child of {}; trace:\n{}",
            child.name,
            parent.name,
            self.describe()
        );
    }

    /// Whether `span` descends from `ancestor` within this trace.
    pub fn descends(&self, span: &SpanData, ancestor: &SpanData) -> bool {
        let mut cur = span.parent_span_id;
        for _ in 0..64 {
            if cur == ancestor.span_context.span_id() {
                return true;
            }
            match self.0.iter().find(|s| s.span_context.span_id() == cur) {
                Some(p) => cur = p.parent_span_id,
                None => return false,
            }
        }
        false
    }

    pub fn describe(&self) -> String {
        self.0
            .iter()
            .map(|s| {
                format!(
                    "  {} [{:?}] span={} parent={}",
                    s.name,
                    s.span_kind,
                    s.span_context.span_id(),
                    s.parent_span_id
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The value of attribute `key` on `span`.
pub fn attr(span: &SpanData, key: &str) -> Option<Value> {
    span.attributes
        .iter()
        .find(|kv: &&KeyValue| kv.key.as_str() == key)
        .map(|kv| kv.value.clone())
}

/// Asserts `span` is of `kind`.
pub fn assert_kind(span: &SpanData, kind: SpanKind) {
    assert_eq!(
        span.span_kind, kind,
        "span {} has the wrong kind",
        span.name
    );
}
