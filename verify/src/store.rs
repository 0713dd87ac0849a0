//! A bounded, trace-indexed span store that expects spans out of order.
//!
//! Spans arrive in batches from many processes: children usually before parents (a
//! child ends first), and a retried export can deliver a batch twice. The store keys
//! spans by trace, drops exact re-deliveries (counted), keeps distinct spans that reuse
//! an id (a defect `verify` reports), and, past its span budget, evicts whole traces,
//! oldest first, counting what it evicted so no loss goes unexplained.
//!
//! Each trace indexes its spans by span id, so a new span is compared only with spans
//! that share its id: ingest stays linear however large one trace grows. One trace
//! holds at most `max_per_trace` spans (the rest are counted, not stored), and a batch
//! is inserted a slice at a time, so one large or hostile payload never holds the lock
//! long enough to stall the query API.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::model::Span;

/// One trace's spans and, per span id, where they are in `spans`.
#[derive(Debug, Default)]
struct Trace {
    spans: Vec<Span>,
    by_id: HashMap<u64, Slot>,
}

/// Where the spans with one id are: almost always one place, so no allocation for it.
#[derive(Debug)]
enum Slot {
    One(u32),
    Many(Vec<u32>),
}

impl Slot {
    fn positions(&self) -> &[u32] {
        match self {
            Slot::One(i) => std::slice::from_ref(i),
            Slot::Many(v) => v,
        }
    }
}

/// A span id as a number (16 hex digits), or a hash of it when it is not hex: the key
/// only narrows the search, spans are still compared whole.
fn id_key(span_id: &str) -> u64 {
    u64::from_str_radix(span_id, 16).unwrap_or_else(|_| {
        use std::hash::{Hash as _, Hasher as _};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        span_id.hash(&mut h);
        h.finish()
    })
}

/// Spans inserted per lock acquisition: short enough that a reader never waits long.
const SLICE: usize = 512;

#[derive(Debug, Default)]
struct Inner {
    traces: HashMap<String, Trace>,
    order: VecDeque<String>,
    spans: usize,
    received: u64,
    duplicates: u64,
    evicted_traces: u64,
    evicted_spans: u64,
    /// Spans refused because their trace already held `max_per_trace`.
    capped_spans: u64,
    rejected_payloads: u64,
    by_service: HashMap<String, u64>,
    last_insert: Option<Instant>,
}

/// Counters a caller (or `socialctl traces`) can show.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct StoreStats {
    pub traces: usize,
    pub spans: usize,
    pub span_budget: usize,
    pub received: u64,
    pub duplicates: u64,
    pub evicted_traces: u64,
    pub evicted_spans: u64,
    /// Spans not stored because their trace was full (`max_spans_per_trace`).
    pub capped_spans: u64,
    pub max_spans_per_trace: usize,
    pub rejected_payloads: u64,
    pub by_service: Vec<(String, u64)>,
    /// Milliseconds since the last span arrived (`None`: none yet).
    pub idle_ms: Option<u64>,
}

/// Thread-safe; share it behind an `Arc`.
#[derive(Debug)]
pub struct SpanStore {
    budget: usize,
    max_per_trace: usize,
    inner: Mutex<Inner>,
}

/// The default cap on one trace's spans.
pub const MAX_SPANS_PER_TRACE: usize = 100_000;

impl SpanStore {
    /// A store holding at most `span_budget` spans, [`MAX_SPANS_PER_TRACE`] per trace.
    pub fn new(span_budget: usize) -> Self {
        Self::with_trace_cap(span_budget, MAX_SPANS_PER_TRACE)
    }

    /// A store holding at most `span_budget` spans, `max_per_trace` in one trace.
    pub fn with_trace_cap(span_budget: usize, max_per_trace: usize) -> Self {
        Self {
            budget: span_budget.max(1),
            max_per_trace: max_per_trace.max(1),
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves counters, never broken invariants that
        // matter for reading, so a poisoned lock is still used.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores a batch, a slice at a time (the lock is released between slices).
    pub fn insert(&self, spans: Vec<Span>) {
        let mut spans = spans.into_iter().peekable();
        while spans.peek().is_some() {
            let mut g = self.lock();
            for span in spans.by_ref().take(SLICE) {
                self.insert_one(&mut g, span);
            }
            self.evict(&mut g);
        }
    }

    fn insert_one(&self, inner: &mut Inner, span: Span) {
        inner.last_insert = Some(Instant::now());
        inner.received += 1;
        match inner.by_service.get_mut(&span.service) {
            Some(n) => *n += 1,
            None => {
                inner.by_service.insert(span.service.clone(), 1);
            }
        }
        let trace = match inner.traces.get_mut(&span.trace_id) {
            Some(t) => t,
            None => {
                inner.order.push_back(span.trace_id.clone());
                inner.traces.entry(span.trace_id.clone()).or_default()
            }
        };
        let key = id_key(&span.span_id);
        let same_id = trace.by_id.get(&key);
        if same_id.is_some_and(|at| {
            at.positions()
                .iter()
                .any(|&i| trace.spans[i as usize] == span)
        }) {
            inner.duplicates += 1;
            return;
        }
        if trace.spans.len() >= self.max_per_trace {
            inner.capped_spans += 1;
            return;
        }
        let at = trace.spans.len() as u32;
        match trace.by_id.get_mut(&key) {
            None => {
                trace.by_id.insert(key, Slot::One(at));
            }
            Some(Slot::One(first)) => {
                let first = *first;
                trace.by_id.insert(key, Slot::Many(vec![first, at]));
            }
            Some(Slot::Many(v)) => v.push(at),
        }
        trace.spans.push(span);
        inner.spans += 1;
    }

    fn evict(&self, inner: &mut Inner) {
        while inner.spans > self.budget {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            if let Some(evicted) = inner.traces.remove(&oldest) {
                inner.spans -= evicted.spans.len();
                inner.evicted_spans += evicted.spans.len() as u64;
                inner.evicted_traces += 1;
            }
        }
    }

    /// Counts a payload refused as malformed or oversize.
    pub fn count_rejected(&self) {
        self.lock().rejected_payloads += 1;
    }

    pub fn trace(&self, trace_id: &str) -> Option<Vec<Span>> {
        self.lock()
            .traces
            .get(&trace_id.to_ascii_lowercase())
            .map(|t| t.spans.clone())
    }

    /// Whether span `span_id` of trace `trace_id` is stored (a link's target).
    pub fn has_span(&self, trace_id: &str, span_id: &str) -> bool {
        let g = self.lock();
        g.traces
            .get(&trace_id.to_ascii_lowercase())
            .and_then(|t| t.by_id.get(&id_key(span_id)))
            .is_some()
    }

    /// The spans of other traces that link to a span of trace `trace_id` (a message's
    /// consumers, a job's worker), oldest trace first. A scan of the whole store, for
    /// queries a person makes, not for ingest.
    pub fn linking_to(&self, trace_id: &str) -> Vec<Span> {
        let want = trace_id.to_ascii_lowercase();
        let g = self.lock();
        g.order
            .iter()
            .filter(|id| **id != want)
            .filter_map(|id| g.traces.get(id))
            .flat_map(|t| t.spans.iter())
            .filter(|s| {
                s.links
                    .iter()
                    .any(|l| l.trace_id.eq_ignore_ascii_case(&want))
            })
            .cloned()
            .collect()
    }

    /// Every stored trace, oldest first.
    pub fn all(&self) -> Vec<Vec<Span>> {
        let g = self.lock();
        g.order
            .iter()
            .filter_map(|id| g.traces.get(id).map(|t| t.spans.clone()))
            .collect()
    }

    /// The newest `limit` traces matching `keep`, newest first.
    pub fn recent(&self, limit: usize, keep: impl Fn(&[Span]) -> bool) -> Vec<Vec<Span>> {
        let g = self.lock();
        g.order
            .iter()
            .rev()
            .filter_map(|id| g.traces.get(id))
            .filter(|t| keep(&t.spans))
            .take(limit)
            .map(|t| t.spans.clone())
            .collect()
    }

    /// How long since the last span arrived.
    pub fn idle_for(&self) -> Option<Duration> {
        self.lock().last_insert.map(|t| t.elapsed())
    }

    pub fn stats(&self) -> StoreStats {
        let g = self.lock();
        let mut by_service: Vec<(String, u64)> =
            g.by_service.iter().map(|(k, v)| (k.clone(), *v)).collect();
        by_service.sort();
        StoreStats {
            traces: g.traces.len(),
            spans: g.spans,
            span_budget: self.budget,
            received: g.received,
            duplicates: g.duplicates,
            evicted_traces: g.evicted_traces,
            evicted_spans: g.evicted_spans,
            capped_spans: g.capped_spans,
            max_spans_per_trace: self.max_per_trace,
            rejected_payloads: g.rejected_payloads,
            by_service,
            idle_ms: g.last_insert.map(|t| t.elapsed().as_millis() as u64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{SpanKind, StatusCode};

    fn span(trace: &str, id: &str, name: &str) -> Span {
        Span {
            trace_id: trace.into(),
            span_id: id.into(),
            parent_span_id: String::new(),
            name: name.into(),
            kind: SpanKind::Internal,
            service: "svc".into(),
            start_ns: 1,
            end_ns: 2,
            status: StatusCode::Unset,
            status_message: String::new(),
            attributes: Vec::new(),
            instance: String::new(),
            ..Default::default()
        }
    }

    #[test]
    fn spans_of_other_traces_that_link_to_a_trace_are_found() {
        let store = SpanStore::new(1000);
        let (producer, other) = ("a".repeat(32), "b".repeat(32));
        let mut consumer = span(&other, "00000000000000c1", "process q");
        consumer.links.push(crate::model::Link {
            trace_id: producer.to_ascii_uppercase(),
            span_id: "00000000000000p1".into(),
            attributes: Vec::new(),
        });
        let mut self_link = span(&producer, "00000000000000p2", "send q");
        self_link.links.push(crate::model::Link {
            trace_id: producer.clone(),
            span_id: "00000000000000p1".into(),
            attributes: Vec::new(),
        });
        store.insert(vec![
            span(&producer, "00000000000000p1", "send q"),
            self_link,
            consumer,
            span(&other, "00000000000000c2", "unlinked"),
        ]);
        let linked: Vec<String> = store
            .linking_to(&producer)
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(
            linked,
            ["process q"],
            "only other traces' spans, only linked ones"
        );
        assert!(store.linking_to(&other).is_empty());
    }

    #[test]
    fn one_trace_is_capped_and_duplicates_are_found_by_id() {
        let store = SpanStore::with_trace_cap(1_000_000, 1000);
        let t = "a".repeat(32);
        let batch: Vec<Span> = (0..1500)
            .map(|i| span(&t, &format!("{i:016x}"), "x"))
            .collect();
        store.insert(batch.clone());
        let st = store.stats();
        assert_eq!((st.spans, st.capped_spans), (1000, 500));
        // Re-delivered spans are duplicates, whatever the cap; a distinct span reusing an
        // id is kept (a defect verify names), when there is room.
        store.insert(batch[..10].to_vec());
        assert_eq!(store.stats().duplicates, 10);
        let store = SpanStore::new(1_000_000);
        store.insert(vec![
            span(&t, "0000000000000001", "a"),
            span(&t, "0000000000000001", "b"),
        ]);
        assert_eq!(store.trace(&t).map(|s| s.len()), Some(2));
    }
}
