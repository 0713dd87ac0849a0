//! Traces from a Jaeger query API (`GET /api/traces/...`, Jaeger's JSON), so
//! `verify-traces --jaeger URL` can judge what a real Jaeger stored.

use serde::Deserialize;
use serde_json::Value;

use crate::model::{Event, Link, Span, SpanKind, StatusCode};

#[derive(Debug, Deserialize)]
struct Response {
    #[serde(default)]
    data: Vec<Trace>,
}

#[derive(Debug, Deserialize)]
struct Trace {
    #[serde(default)]
    spans: Vec<JSpan>,
    #[serde(default)]
    processes: std::collections::HashMap<String, Process>,
}

#[derive(Debug, Deserialize)]
struct Process {
    #[serde(rename = "serviceName")]
    service_name: String,
    #[serde(default)]
    tags: Vec<Tag>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct JSpan {
    #[serde(rename = "traceID")]
    trace_id: String,
    #[serde(rename = "spanID")]
    span_id: String,
    operation_name: String,
    #[serde(default)]
    references: Vec<Reference>,
    start_time: u64,
    duration: u64,
    #[serde(default)]
    tags: Vec<Tag>,
    #[serde(rename = "processID", default)]
    process_id: String,
    #[serde(default)]
    logs: Vec<Log>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Reference {
    ref_type: String,
    #[serde(rename = "traceID", default)]
    trace_id: String,
    #[serde(rename = "spanID")]
    span_id: String,
}

#[derive(Debug, Deserialize)]
struct Log {
    timestamp: u64,
    #[serde(default)]
    fields: Vec<Tag>,
}

#[derive(Debug, Deserialize)]
struct Tag {
    key: String,
    value: Value,
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Jaeger pads ids inconsistently; OTLP ids are fixed-width lowercase hex.
fn pad(id: &str, width: usize) -> String {
    format!("{:0>width$}", id.to_ascii_lowercase())
}

/// Parses one Jaeger query response into traces.
pub fn parse(body: &[u8]) -> Result<Vec<Vec<Span>>, serde_json::Error> {
    let r: Response = serde_json::from_slice(body)?;
    Ok(r.data
        .into_iter()
        .map(|t| {
            t.spans
                .into_iter()
                .map(|s| {
                    let tag = |k: &str| s.tags.iter().find(|t| t.key == k).map(|t| text(&t.value));
                    let process = t.processes.get(&s.process_id);
                    let kind = match tag("span.kind").as_deref() {
                        Some("server") => SpanKind::Server,
                        Some("client") => SpanKind::Client,
                        Some("producer") => SpanKind::Producer,
                        Some("consumer") => SpanKind::Consumer,
                        Some("internal") => SpanKind::Internal,
                        _ => SpanKind::Unspecified,
                    };
                    let status = match (tag("otel.status_code").as_deref(), tag("error").as_deref())
                    {
                        (Some("ERROR"), _) | (_, Some("true")) => StatusCode::Error,
                        (Some("OK"), _) => StatusCode::Ok,
                        _ => StatusCode::Unset,
                    };
                    let parent = s
                        .references
                        .iter()
                        .find(|r| r.ref_type == "CHILD_OF")
                        .map(|r| pad(&r.span_id, 16))
                        .unwrap_or_default();
                    Span {
                        trace_id: pad(&s.trace_id, 32),
                        span_id: pad(&s.span_id, 16),
                        parent_span_id: parent,
                        name: s.operation_name.clone(),
                        kind,
                        service: process
                            .map(|p| p.service_name.clone())
                            .unwrap_or_else(|| "unknown".into()),
                        start_ns: s.start_time * 1000,
                        end_ns: (s.start_time + s.duration) * 1000,
                        status,
                        status_message: tag("otel.status_description").unwrap_or_default(),
                        attributes: s
                            .tags
                            .iter()
                            .filter(|t| {
                                !matches!(
                                    t.key.as_str(),
                                    "span.kind" | "otel.status_code" | "error"
                                )
                            })
                            .map(|t| (t.key.clone(), text(&t.value)))
                            .collect(),
                        instance: process
                            .and_then(|p| {
                                p.tags
                                    .iter()
                                    .find(|t| t.key == "service.instance.id")
                                    .map(|t| text(&t.value))
                            })
                            .unwrap_or_default(),
                        // Jaeger shows OpenTelemetry's links as FOLLOWS_FROM references,
                        // its events as logs, and its resource as the process's tags.
                        links: s
                            .references
                            .iter()
                            .filter(|r| r.ref_type == "FOLLOWS_FROM")
                            .map(|r| Link {
                                trace_id: pad(&r.trace_id, 32),
                                span_id: pad(&r.span_id, 16),
                                attributes: Vec::new(),
                            })
                            .collect(),
                        events: s
                            .logs
                            .iter()
                            .map(|l| Event {
                                name: l
                                    .fields
                                    .iter()
                                    .find(|f| f.key == "event")
                                    .map(|f| text(&f.value))
                                    .unwrap_or_default(),
                                time_ns: l.timestamp * 1000,
                                attributes: l
                                    .fields
                                    .iter()
                                    .filter(|f| f.key != "event")
                                    .map(|f| (f.key.clone(), text(&f.value)))
                                    .collect(),
                            })
                            .collect(),
                        resource: process
                            .map(|p| {
                                std::iter::once(("service.name".to_owned(), p.service_name.clone()))
                                    .chain(p.tags.iter().map(|t| (t.key.clone(), text(&t.value))))
                                    .collect()
                            })
                            .unwrap_or_default(),
                    }
                })
                .collect()
        })
        .collect())
}

/// The service names a Jaeger `GET /api/services` answer lists.
pub fn services(body: &[u8]) -> Result<Vec<String>, serde_json::Error> {
    #[derive(Deserialize)]
    struct S {
        #[serde(default)]
        data: Vec<String>,
    }
    Ok(serde_json::from_slice::<S>(body)?.data)
}
