//! OTLP trace payloads (protobuf or JSON) into [`Span`]s.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
use prost::Message;

use crate::model::{Event, Link, Span, SpanKind, StatusCode};

/// Why a payload could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("not a valid OTLP protobuf ExportTraceServiceRequest: {0}")]
    Protobuf(#[from] prost::DecodeError),
    #[error("not a valid OTLP JSON ExportTraceServiceRequest: {0}")]
    Json(#[from] serde_json::Error),
    #[error("invalid {field}: expected {expected} bytes, got {got}")]
    IdLength {
        field: &'static str,
        expected: usize,
        got: usize,
    },
}

pub fn decode_protobuf(body: &[u8]) -> Result<Vec<Span>, DecodeError> {
    flatten(ExportTraceServiceRequest::decode(body)?)
}

pub fn decode_json(body: &[u8]) -> Result<Vec<Span>, DecodeError> {
    flatten(serde_json::from_slice::<ExportTraceServiceRequest>(body)?)
}

/// A file written by the OpenTelemetry Collector's file exporter: one JSON
/// `ExportTraceServiceRequest` per line. Returns the spans and the number of the first
/// line that did not parse, if any.
pub fn decode_json_lines(text: &str) -> Result<Vec<Span>, (usize, DecodeError)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        out.extend(decode_json(line.as_bytes()).map_err(|e| (i + 1, e))?);
    }
    Ok(out)
}

/// Groups spans by trace id, keeping arrival order within a trace.
pub fn group(spans: Vec<Span>) -> Vec<Vec<Span>> {
    let mut order: Vec<String> = Vec::new();
    let mut by: std::collections::HashMap<String, Vec<Span>> = std::collections::HashMap::new();
    for s in spans {
        if !by.contains_key(&s.trace_id) {
            order.push(s.trace_id.clone());
        }
        by.entry(s.trace_id.clone()).or_default().push(s);
    }
    order.into_iter().filter_map(|id| by.remove(&id)).collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn id(
    field: &'static str,
    bytes: &[u8],
    expected: usize,
    allow_empty: bool,
) -> Result<String, DecodeError> {
    if bytes.len() == expected || (allow_empty && bytes.is_empty()) {
        Ok(hex(bytes))
    } else {
        Err(DecodeError::IdLength {
            field,
            expected,
            got: bytes.len(),
        })
    }
}

pub(crate) fn render(v: &Option<AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::BytesValue(b)) => hex(b),
        Some(any_value::Value::ArrayValue(a)) => {
            let items: Vec<String> = a.values.iter().map(|v| render(&Some(v.clone()))).collect();
            format!("[{}]", items.join(","))
        }
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

/// A string attribute, as OTLP carries it (for those who build spans by hand: the
/// benchmarks' payloads, chaos's fault windows).
pub fn string_kv(
    key: &str,
    value: impl Into<String>,
) -> opentelemetry_proto::tonic::common::v1::KeyValue {
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn attributes(kvs: &[opentelemetry_proto::tonic::common::v1::KeyValue]) -> Vec<(String, String)> {
    kvs.iter()
        .map(|kv| (kv.key.clone(), render(&kv.value)))
        .collect()
}

/// Flattens resource → scope → span nesting, copying `service.name` onto each span.
pub fn flatten(req: ExportTraceServiceRequest) -> Result<Vec<Span>, DecodeError> {
    let mut out = Vec::new();
    for rs in req.resource_spans {
        let mut service = "unknown".to_owned();
        let mut instance = String::new();
        let mut resource = Vec::new();
        if let Some(r) = &rs.resource {
            for kv in &r.attributes {
                match kv.key.as_str() {
                    "service.name" => service = render(&kv.value),
                    "service.instance.id" => instance = render(&kv.value),
                    _ => {}
                }
                resource.push((kv.key.clone(), render(&kv.value)));
            }
        }
        let resource: std::sync::Arc<[(String, String)]> = resource.into();
        for ss in rs.scope_spans {
            for s in ss.spans {
                let (status, status_message) = match &s.status {
                    Some(st) if st.code == 2 => (StatusCode::Error, st.message.clone()),
                    Some(st) if st.code == 1 => (StatusCode::Ok, st.message.clone()),
                    _ => (StatusCode::Unset, String::new()),
                };
                out.push(Span {
                    trace_id: id("trace_id", &s.trace_id, 16, false)?,
                    span_id: id("span_id", &s.span_id, 8, false)?,
                    parent_span_id: id("parent_span_id", &s.parent_span_id, 8, true)?,
                    name: s.name,
                    kind: match s.kind {
                        1 => SpanKind::Internal,
                        2 => SpanKind::Server,
                        3 => SpanKind::Client,
                        4 => SpanKind::Producer,
                        5 => SpanKind::Consumer,
                        _ => SpanKind::Unspecified,
                    },
                    service: service.clone(),
                    start_ns: s.start_time_unix_nano,
                    end_ns: s.end_time_unix_nano,
                    status,
                    status_message,
                    attributes: attributes(&s.attributes),
                    instance: instance.clone(),
                    links: s
                        .links
                        .iter()
                        .map(|l| {
                            Ok(Link {
                                trace_id: id("link trace_id", &l.trace_id, 16, false)?,
                                span_id: id("link span_id", &l.span_id, 8, false)?,
                                attributes: attributes(&l.attributes),
                            })
                        })
                        .collect::<Result<_, DecodeError>>()?,
                    events: s
                        .events
                        .iter()
                        .map(|e| Event {
                            name: e.name.clone(),
                            time_ns: e.time_unix_nano,
                            attributes: attributes(&e.attributes),
                        })
                        .collect(),
                    resource: resource.clone(),
                });
            }
        }
    }
    Ok(out)
}
