//! PRODUCER and CONSUMER spans for messages, named and attributed per the messaging
//! semantic conventions.
//!
//! A message carries its trace context in its envelope ([`crate::propagation::inject_map`]).
//! Two shapes: [`producer`]/[`consumer`] (`publish sessions.revoked`, `process
//! sessions.revoked`), where each consumer continues the producer's trace, for an
//! announcement that is part of the request that made it; and [`send`]/[`process_linked`]
//! (`send messaging.messages`, `process messaging.messages`), where each consumer starts
//! a trace of its own linked to the producer, for a message many processes handle later.

use std::collections::HashMap;

use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::attrs::*;

/// The attributes every messaging span carries.
fn operation(
    span: &Span,
    system: &'static str,
    destination: &'static str,
    kind: &'static str,
    name: &'static str,
) {
    span.set_attribute(MESSAGING_SYSTEM, system);
    span.set_attribute(MESSAGING_DESTINATION_NAME, destination);
    span.set_attribute(MESSAGING_OPERATION_TYPE, kind);
    span.set_attribute(MESSAGING_OPERATION_NAME, name);
}

/// The span of publishing one message to `destination`, and the context to put in its
/// envelope (so consumers continue this trace).
pub fn producer(
    system: &'static str,
    destination: &'static str,
) -> (Span, HashMap<String, String>) {
    let span = tracing::info_span!(
        "messaging.publish",
        otel.name = format!("publish {destination}"),
        otel.kind = "producer"
    );
    operation(&span, system, destination, "send", "publish");
    let envelope = crate::propagation::inject_map(&span.context());
    (span, envelope)
}

/// The span of processing one message from `destination`, continuing the trace named in
/// its envelope (a fresh trace when it names none, or a malformed one).
pub fn consumer(
    system: &'static str,
    destination: &'static str,
    envelope: &HashMap<String, String>,
) -> Span {
    let span = tracing::info_span!(
        "messaging.process",
        otel.name = format!("process {destination}"),
        otel.kind = "consumer"
    );
    let _ = span.set_parent(crate::propagation::extract_map(envelope));
    operation(&span, system, destination, "process", "process");
    span
}

/// The PRODUCER span of sending one message to `destination` (messaging semantic
/// conventions 1.28+: `send <destination>`), and the context for its envelope. Its
/// consumers link to it ([`process_linked`]) rather than continue its trace: one
/// message reaches many processes, each in a trace of its own.
pub fn send(
    system: &'static str,
    destination: &'static str,
    message_id: &str,
) -> (Span, HashMap<String, String>) {
    let span = tracing::info_span!(
        "messaging.send",
        otel.name = format!("send {destination}"),
        otel.kind = "producer"
    );
    operation(&span, system, destination, "send", "send");
    span.set_attribute(MESSAGING_MESSAGE_ID, message_id.to_owned());
    let envelope = crate::propagation::inject_map(&span.context());
    (span, envelope)
}

/// The CONSUMER span of processing one message from `destination` on this process: its
/// parent is this process's own context (a new trace when there is none), and it links
/// to the producer's span named in the envelope, as the conventions ask of a consumer
/// that is not part of the producer's request.
pub fn process_linked(
    system: &'static str,
    destination: &'static str,
    message_id: &str,
    envelope: &HashMap<String, String>,
) -> Span {
    use opentelemetry::trace::TraceContextExt as _;
    let span = tracing::info_span!(
        "messaging.process",
        otel.name = format!("process {destination}"),
        otel.kind = "consumer"
    );
    let producer = crate::propagation::extract_map(envelope);
    crate::add_link(&span, producer.span().span_context());
    operation(&span, system, destination, "process", "process");
    span.set_attribute(MESSAGING_MESSAGE_ID, message_id.to_owned());
    span
}
