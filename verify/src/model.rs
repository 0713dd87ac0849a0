//! The span model the sink stores and the checks read: OTLP's span, flattened, with its
//! service name copied in from the resource.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpanKind {
    Unspecified,
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusCode {
    Unset,
    Ok,
    Error,
}

/// One span as received.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
}
