//! A phone's own telemetry: spans built by hand (thousands of phones, each with its own
//! resource, cannot each own an SDK pipeline), kept in a bounded on-device buffer that
//! drops its oldest span when full and counts the drop, as the mobile SDKs' disk
//! buffers do, and uploaded as OTLP/protobuf when the phone is online.
//!
//! Each upload carries the phone's clock at the moment of sending
//! (`socialnet.device.sent_at_unix_nano` on the resource), so a receiver can measure the
//! clock's offset the way APM servers do (receive time − send time).

use std::collections::VecDeque;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span, Status, span::SpanKind, status::StatusCode,
};
use prost::Message as _;

/// The resource attribute with the phone's clock at upload.
pub use verify::skew::SENT_AT;

/// An attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Int(i64),
    Bool(bool),
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(s)
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Value {
        Value::Int(n)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

pub fn kv(key: &str, v: impl Into<Value>) -> KeyValue {
    let value = match v.into() {
        Value::Str(s) => any_value::Value::StringValue(s),
        Value::Int(n) => any_value::Value::IntValue(n),
        Value::Bool(b) => any_value::Value::BoolValue(b),
    };
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

/// A finished span of the phone, its times on the phone's clock.
#[derive(Debug, Clone)]
pub struct DeviceSpan {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub parent: Option<[u8; 8]>,
    pub name: String,
    pub kind: SpanKind,
    pub start_ns: u64,
    pub end_ns: u64,
    pub attributes: Vec<KeyValue>,
    pub error: Option<String>,
}

impl DeviceSpan {
    fn encode(self) -> Span {
        Span {
            trace_id: self.trace_id.to_vec(),
            span_id: self.span_id.to_vec(),
            parent_span_id: self.parent.map(|p| p.to_vec()).unwrap_or_default(),
            name: self.name,
            kind: self.kind as i32,
            start_time_unix_nano: self.start_ns,
            end_time_unix_nano: self.end_ns,
            attributes: self.attributes,
            status: self.error.map(|m| Status {
                code: StatusCode::Error as i32,
                message: m,
            }),
            ..Default::default()
        }
    }
}

/// The on-device buffer.
#[derive(Debug)]
pub struct Buffer {
    spans: VecDeque<DeviceSpan>,
    capacity: usize,
    /// Spans dropped because the buffer was full, and the traces they belonged to.
    pub dropped: u64,
    pub dropped_traces: Vec<[u8; 16]>,
}

impl Buffer {
    pub fn new(capacity: usize) -> Buffer {
        Buffer {
            spans: VecDeque::new(),
            capacity: capacity.max(1),
            dropped: 0,
            dropped_traces: Vec::new(),
        }
    }

    pub fn push(&mut self, s: DeviceSpan) {
        if self.spans.len() >= self.capacity
            && let Some(old) = self.spans.pop_front()
        {
            self.dropped += 1;
            self.dropped_traces.push(old.trace_id);
        }
        self.spans.push_back(s);
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Everything buffered, in the order it ended.
    pub fn drain(&mut self) -> Vec<DeviceSpan> {
        self.spans.drain(..).collect()
    }

    /// Puts spans back at the front after a failed upload (the oldest may then drop).
    pub fn restore(&mut self, spans: Vec<DeviceSpan>) {
        let later: Vec<DeviceSpan> = self.spans.drain(..).collect();
        for s in spans.into_iter().chain(later) {
            self.push(s);
        }
    }
}

/// One upload: the phone's resource, its clock at sending, and its spans.
pub fn export_body(resource: &[KeyValue], sent_at_ns: u64, spans: Vec<DeviceSpan>) -> Vec<u8> {
    let mut attributes = resource.to_vec();
    attributes.push(kv(SENT_AT, sent_at_ns as i64));
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes,
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: spans.into_iter().map(DeviceSpan::encode).collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(n: u8) -> DeviceSpan {
        DeviceSpan {
            trace_id: [n; 16],
            span_id: [n; 8],
            parent: None,
            name: "open timeline".into(),
            kind: SpanKind::Internal,
            start_ns: 1,
            end_ns: 2,
            attributes: vec![kv("session.id", "abc")],
            error: None,
        }
    }

    #[test]
    fn a_full_buffer_drops_its_oldest_and_counts_them() {
        let mut b = Buffer::new(3);
        for n in 1..=5 {
            b.push(span(n));
        }
        assert_eq!(b.len(), 3);
        assert_eq!(b.dropped, 2);
        assert_eq!(b.dropped_traces, [[1; 16], [2; 16]]);
        let out = b.drain();
        assert_eq!(out[0].trace_id, [3; 16]);
        assert!(b.is_empty());
        // A failed upload puts them back first.
        b.push(span(6));
        b.restore(out);
        let order: Vec<u8> = b.drain().iter().map(|s| s.trace_id[0]).collect();
        assert_eq!(order, [4, 5, 6], "the oldest dropped again");
        let body = export_body(&[kv("service.name", "socialnet-ios")], 42, vec![span(9)]);
        let req = ExportTraceServiceRequest::decode(body.as_slice()).unwrap();
        let res = req.resource_spans[0].resource.as_ref().unwrap();
        assert!(res.attributes.iter().any(|a| a.key == SENT_AT));
        assert_eq!(req.resource_spans[0].scope_spans[0].spans.len(), 1);
    }
}
