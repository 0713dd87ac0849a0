//! PRODUCER and CONSUMER spans for messages, named and attributed per the messaging
//! semantic conventions (`publish sessions.revoked`, `process sessions.revoked`).
//!
//! A message carries its trace context in its envelope ([`crate::propagation::inject_map`]),
//! so the consumer's span continues the producer's trace: a learner sees one trace
//! from the request that published the message to every process that handled it.

use std::collections::HashMap;

use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::attrs::*;

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
    span.set_attribute(MESSAGING_SYSTEM, system);
    span.set_attribute(MESSAGING_DESTINATION_NAME, destination);
    span.set_attribute(MESSAGING_OPERATION_TYPE, "send");
    span.set_attribute(MESSAGING_OPERATION_NAME, "publish");
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
    span.set_attribute(MESSAGING_SYSTEM, system);
    span.set_attribute(MESSAGING_DESTINATION_NAME, destination);
    span.set_attribute(MESSAGING_OPERATION_TYPE, "process");
    span.set_attribute(MESSAGING_OPERATION_NAME, "process");
    span
}
