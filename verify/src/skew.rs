//! Wrong clocks on the client side (phones), measured and corrected the way APM servers
//! do it: the client puts its own clock's reading at the moment of sending on the
//! export (`socialnet.device.sent_at_unix_nano` on the resource), the sink stamps its
//! own clock on arrival (`socialnet.sink.received_at_unix_nano`), and the difference —
//! receive time minus send time, the upload's own travel time included — is the
//! client's offset. Verification shifts that client's spans by it before judging
//! timing, and reports each client's offset, so a learner sees both timelines.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::model::Span;

/// The client's clock at sending, on the export's resource.
pub const SENT_AT: &str = "socialnet.device.sent_at_unix_nano";
/// The sink's clock at arrival, added to that resource by the sink.
pub const RECEIVED_AT: &str = "socialnet.sink.received_at_unix_nano";

/// Offsets under this are the upload's travel time, not a wrong clock.
const NOTABLE_NS: i64 = 250_000_000;

/// A resource, shared by the spans of one export.
type Resource = Arc<[(String, String)]>;

/// Adds the arrival time to every resource of `spans` that carries a send time.
pub fn stamp(spans: &mut [Span], now_ns: u64) {
    // Each resource stamped once: (the original, its stamped copy). This runs on every
    // export the sink takes, so a resource without a send time (every service's) is
    // looked at once, not once per span: the spans of one export share it.
    let mut done: Vec<(*const [(String, String)], Resource)> = Vec::new();
    let mut plain: Option<*const [(String, String)]> = None;
    for s in spans.iter_mut() {
        let key = Arc::as_ptr(&s.resource);
        if plain.is_some_and(|p| std::ptr::addr_eq(p, key)) {
            continue;
        }
        if !s.resource.iter().any(|(k, _)| k == SENT_AT)
            || s.resource.iter().any(|(k, _)| k == RECEIVED_AT)
        {
            plain = Some(key);
            continue;
        }
        let stamped = match done.iter().find(|(k, _)| std::ptr::addr_eq(*k, key)) {
            Some((_, r)) => r.clone(),
            None => {
                let mut v = s.resource.to_vec();
                v.push((RECEIVED_AT.to_owned(), now_ns.to_string()));
                let r: Resource = v.into();
                done.push((key, r.clone()));
                r
            }
        };
        s.resource = stamped;
    }
}

/// One client's clock, as measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientClock {
    pub service: String,
    pub instance: String,
    /// How far its clock was behind (positive) or ahead (negative) of the sink's; the
    /// correction added to its spans.
    pub correction_ms: f64,
    pub spans: usize,
}

fn offset(s: &Span) -> Option<i64> {
    let get = |key: &str| {
        s.resource
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.parse::<i64>().ok())
    };
    Some(get(RECEIVED_AT)? - get(SENT_AT)?)
}

/// The traces with every client span shifted by its export's offset, and each client
/// whose offset is notable (larger than an upload's travel time).
pub fn correct(traces: &[Vec<Span>]) -> (Vec<Vec<Span>>, Vec<ClientClock>) {
    let mut clocks: BTreeMap<(String, String), (i64, usize)> = BTreeMap::new();
    let out = traces
        .iter()
        .map(|t| {
            t.iter()
                // Under the notable offset it is the upload's own travel time: left as is.
                .map(|s| match offset(s).filter(|o| o.abs() >= NOTABLE_NS) {
                    Some(o) => {
                        let e = clocks
                            .entry((s.service.clone(), s.instance.clone()))
                            .or_insert((o, 0));
                        e.1 += 1;
                        let mut c = s.clone();
                        let shift = |t: u64| (t as i64).saturating_add(o).max(0) as u64;
                        c.start_ns = shift(s.start_ns);
                        if s.end_ns != 0 {
                            c.end_ns = shift(s.end_ns);
                        }
                        c
                    }
                    None => s.clone(),
                })
                .collect()
        })
        .collect();
    let clocks = clocks
        .into_iter()
        .filter(|(_, (o, _))| o.abs() >= NOTABLE_NS)
        .map(|((service, instance), (o, spans))| ClientClock {
            service,
            instance,
            correction_ms: o as f64 / 1e6,
            spans,
        })
        .collect();
    (out, clocks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{SpanKind, StatusCode};

    fn span(resource: Arc<[(String, String)]>, start: u64) -> Span {
        Span {
            trace_id: "t".into(),
            span_id: "s".into(),
            parent_span_id: String::new(),
            name: "open timeline".into(),
            kind: SpanKind::Internal,
            service: "socialnet-ios".into(),
            start_ns: start,
            end_ns: start + 10,
            status: StatusCode::Unset,
            status_message: String::new(),
            attributes: Vec::new(),
            instance: "device-7".into(),
            links: Vec::new(),
            events: Vec::new(),
            resource,
        }
    }

    #[test]
    fn a_fast_clock_is_measured_and_its_spans_moved_back() {
        // The phone's clock reads 120 s ahead: it sent at 1_120 s of its time, the sink
        // received at 1_000 s of its own.
        let r: Arc<[(String, String)]> =
            vec![(SENT_AT.to_owned(), "1120000000000".to_owned())].into();
        let mut spans = vec![
            span(r.clone(), 1_119_000_000_000),
            span(r, 1_119_500_000_000),
        ];
        stamp(&mut spans, 1_000_000_000_000);
        assert!(
            Arc::ptr_eq(&spans[0].resource, &spans[1].resource),
            "stamped once"
        );
        let (fixed, clocks) = correct(&[spans]);
        assert_eq!(fixed[0][0].start_ns, 999_000_000_000);
        assert_eq!(fixed[0][0].end_ns, 999_000_000_010);
        assert_eq!(clocks.len(), 1);
        assert_eq!(clocks[0].correction_ms, -120_000.0);
        assert_eq!(clocks[0].spans, 2);
        // A right clock is left alone and not reported.
        let r: Arc<[(String, String)]> = vec![(SENT_AT.to_owned(), "5000".to_owned())].into();
        let mut ok = vec![span(r, 4000)];
        stamp(&mut ok, 5_010);
        let (fixed, clocks) = correct(&[ok]);
        assert_eq!(
            fixed[0][0].start_ns, 4000,
            "travel time is not a wrong clock"
        );
        assert!(clocks.is_empty());
    }
}
