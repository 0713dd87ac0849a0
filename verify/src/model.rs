//! The span model the sink stores and the checks read: OTLP's span, flattened, with its
//! service name copied in from the resource.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpanKind {
    #[default]
    Unspecified,
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusCode {
    #[default]
    Unset,
    Ok,
    Error,
}

/// A span link: a reference to a span, usually in another trace (a message's consumer
/// links to its producer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub trace_id: String,
    pub span_id: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<(String, String)>,
}

/// A span event: a timestamped, named moment inside a span (an exception, a retry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub name: String,
    /// Unix nanoseconds.
    pub time_ns: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<(String, String)>,
}

/// One span as received.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Span {
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// 16 lowercase hex digits.
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    pub name: String,
    pub kind: SpanKind,
    pub service: String,
    /// Unix nanoseconds; `end` is 0 for a span that never ended.
    pub start_ns: u64,
    pub end_ns: u64,
    pub status: StatusCode,
    pub status_message: String,
    /// Span attributes, values rendered as strings (numbers and booleans too).
    pub attributes: Vec<(String, String)>,
    /// `service.instance.id` from the resource.
    pub instance: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Event>,
    /// Every attribute of the process's resource, shared by the spans of one export.
    #[serde(
        default,
        skip_serializing_if = "resource::is_empty",
        serialize_with = "resource::serialize",
        deserialize_with = "resource::deserialize"
    )]
    pub resource: Arc<[(String, String)]>,
}

/// serde for the shared resource (serde's own `Arc` support is a feature the workspace
/// leaves off: it would rebuild every crate).
mod resource {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serializer};

    type Shared = Arc<[(String, String)]>;

    pub fn is_empty(r: &Shared) -> bool {
        r.is_empty()
    }

    pub fn serialize<S: Serializer>(r: &Shared, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(r.iter())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Shared, D::Error> {
        Ok(Vec::<(String, String)>::deserialize(d)?.into())
    }
}

impl Span {
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn is_root(&self) -> bool {
        self.parent_span_id.is_empty()
    }

    pub fn duration_ns(&self) -> u64 {
        self.end_ns.saturating_sub(self.start_ns)
    }

    /// Made in a browser: its resource says `telemetry.sdk.language=webjs`, as the
    /// OpenTelemetry JS web SDK's and the site's own tracer's do.
    pub fn from_browser(&self) -> bool {
        self.resource
            .iter()
            .any(|(k, v)| k == "telemetry.sdk.language" && v == "webjs")
    }
}
