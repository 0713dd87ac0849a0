//! W3C trace-context and baggage in and out of every carrier the system uses: HTTP
//! headers, and plain string maps (WebSocket frames and pub/sub messages carry one).

use std::collections::HashMap;

use opentelemetry::Context;
use opentelemetry::global;
use opentelemetry_http::{HeaderExtractor, HeaderInjector};

/// The remote context named by a request's `traceparent`/`tracestate`/`baggage` headers.
pub fn extract_http(headers: &http::HeaderMap) -> Context {
    global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)))
}

/// Writes `cx` into outgoing headers.
pub fn inject_http(cx: &Context, headers: &mut http::HeaderMap) {
    global::get_text_map_propagator(|p| p.inject_context(cx, &mut HeaderInjector(headers)));
}

/// Writes `cx` into a string map (a message envelope).
pub fn inject_map(cx: &Context) -> HashMap<String, String> {
    let mut map = HashMap::new();
    global::get_text_map_propagator(|p| p.inject_context(cx, &mut map));
    map
}

/// Reads the remote context from a string map (a message envelope).
pub fn extract_map(map: &HashMap<String, String>) -> Context {
    global::get_text_map_propagator(|p| p.extract(map))
}
