//! W3C trace-context and baggage in and out of every carrier the system uses: HTTP
//! headers, and plain string maps (WebSocket frames and pub/sub messages carry one).
//!
//! An incoming `traceparent` is checked against the W3C Trace Context grammar first: a
//! malformed one (a 30-digit trace id, upper-case hex, an all-zero id, version `ff`) is
//! ignored together with its `tracestate`, so the request starts a fresh trace, as the
//! specification requires, instead of being padded into an id nobody sent.

use std::collections::HashMap;

use opentelemetry::Context;
use opentelemetry::global;
use opentelemetry::propagation::Extractor;
use opentelemetry_http::{HeaderExtractor, HeaderInjector};

/// Whether `value` is a `traceparent` W3C Trace Context accepts: `version-traceid-
/// parentid-flags` in lower-case hex (2-32-16-2 digits), version not `ff`, ids not all
/// zero; version `00` has nothing after the flags, later versions may add `-…` fields.
pub fn valid_traceparent(value: &str) -> bool {
    let b = value.as_bytes();
    let hex = |r: std::ops::Range<usize>| {
        b.get(r).is_some_and(|s| {
            s.iter()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
        })
    };
    let nonzero = |r: std::ops::Range<usize>| b[r].iter().any(|c| *c != b'0');
    let shape = b.len() >= 55
        && hex(0..2)
        && b[2] == b'-'
        && hex(3..35)
        && b[35] == b'-'
        && hex(36..52)
        && b[52] == b'-'
        && hex(53..55);
    if !shape || &value[..2] == "ff" || !nonzero(3..35) || !nonzero(36..52) {
        return false;
    }
    match &value[..2] {
        "00" => b.len() == 55,
        _ => b.len() == 55 || b[55] == b'-',
    }
}

/// A carrier that hides an invalid `traceparent` (and the `tracestate` that belongs to
/// it), so the propagator sees no remote parent; baggage still passes.
struct Checked<'a, E: Extractor>(&'a E);

impl<E: Extractor> Extractor for Checked<'_, E> {
    fn get(&self, key: &str) -> Option<&str> {
        let key_l = key.to_ascii_lowercase();
        if (key_l == "traceparent" || key_l == "tracestate")
            && !self.0.get("traceparent").is_some_and(valid_traceparent)
        {
            return None;
        }
        self.0.get(key)
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys()
    }
}

/// The remote context named by a request's `traceparent`/`tracestate`/`baggage` headers
/// (none when the `traceparent` is malformed).
pub fn extract_http(headers: &http::HeaderMap) -> Context {
    global::get_text_map_propagator(|p| p.extract(&Checked(&HeaderExtractor(headers))))
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

/// Reads the remote context from a string map (a message envelope); a malformed
/// `traceparent` is ignored.
pub fn extract_map(map: &HashMap<String, String>) -> Context {
    global::get_text_map_propagator(|p| p.extract(&Checked(map)))
}

#[cfg(test)]
mod tests {
    use super::valid_traceparent;

    fn check(tp: &str, expected: bool) {
        assert_eq!(valid_traceparent(tp), expected, "{tp}");
    }

    #[test]
    fn traceparents_follow_the_w3c_grammar() {
        let tid = "4bf92f3577b34da6a3ce929d0e0e4736";
        let sid = "00f067aa0ba902b7";
        check(&format!("00-{tid}-{sid}-01"), true);
        check(&format!("00-{tid}-{sid}-00"), true);
        // A 30-digit trace id is not padded into a new one: it is invalid.
        check(&format!("00-{}-{sid}-01", &tid[2..]), false);
        check(&format!("00-{}-{sid}-01", tid.to_uppercase()), false);
        check(&format!("00-{}-{sid}-01", "0".repeat(32)), false);
        check(&format!("00-{tid}-{}-01", "0".repeat(16)), false);
        check(&format!("ff-{tid}-{sid}-01"), false);
        check(&format!("00-{tid}-{sid}-01-extra"), false);
        // Later versions may carry more fields after a dash.
        check(&format!("01-{tid}-{sid}-01-extra"), true);
        check(&format!("01-{tid}-{sid}-01extra"), false);
        check(&format!("00_{tid}-{sid}-01"), false);
        check("", false);
        check(&format!("00-{tid}-{sid}-0g"), false);
    }
}
