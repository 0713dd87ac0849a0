//! A bounded, trace-indexed span store that expects spans out of order.
//!
//! Spans arrive in batches from many processes: children usually before parents (a
//! child ends first), and a retried export can deliver a batch twice. The store keys
//! spans by trace, drops exact re-deliveries (counted), keeps distinct spans that reuse
//! an id (a defect `verify` reports), and, past its span budget, evicts whole traces,
//! oldest first, counting what it evicted so no loss goes unexplained.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::model::Span;

#[derive(Debug, Default)]
struct Inner {
    traces: HashMap<String, Vec<Span>>,
    order: VecDeque<String>,
    spans: usize,
    received: u64,
    duplicates: u64,
    evicted_traces: u64,
    evicted_spans: u64,
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
    pub rejected_payloads: u64,
    pub by_service: Vec<(String, u64)>,
    /// Milliseconds since the last span arrived (`None`: none yet).
    pub idle_ms: Option<u64>,
}

/// Thread-safe; share it behind an `Arc`.
#[derive(Debug)]
pub struct SpanStore {
    budget: usize,
    inner: Mutex<Inner>,
}

impl SpanStore {
    /// A store holding at most `span_budget` spans.
    pub fn new(span_budget: usize) -> Self {
        Self {
            budget: span_budget.max(1),
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves counters, never broken invariants that
        // matter for reading, so a poisoned lock is still used.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn insert(&self, spans: Vec<Span>) {
        let mut g = self.lock();
        let inner = &mut *g;
        inner.last_insert = Some(Instant::now());
        for span in spans {
            inner.received += 1;
            *inner.by_service.entry(span.service.clone()).or_default() += 1;
            let entry = match inner.traces.get_mut(&span.trace_id) {
                Some(e) => e,
                None => {
                    inner.order.push_back(span.trace_id.clone());
                    inner.traces.entry(span.trace_id.clone()).or_default()
                }
            };
            if entry.contains(&span) {
                inner.duplicates += 1;
                continue;
            }
            entry.push(span);
            inner.spans += 1;
        }
        while inner.spans > self.budget {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            if let Some(evicted) = inner.traces.remove(&oldest) {
                inner.spans -= evicted.len();
                inner.evicted_spans += evicted.len() as u64;
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
            .cloned()
    }

    /// Every stored trace, oldest first.
    pub fn all(&self) -> Vec<Vec<Span>> {
        let g = self.lock();
        g.order
            .iter()
            .filter_map(|id| g.traces.get(id).cloned())
            .collect()
    }

    /// The newest `limit` traces matching `keep`, newest first.
    pub fn recent(&self, limit: usize, keep: impl Fn(&[Span]) -> bool) -> Vec<Vec<Span>> {
        let g = self.lock();
        g.order
            .iter()
            .rev()
            .filter_map(|id| g.traces.get(id))
            .filter(|t| keep(t))
            .take(limit)
            .cloned()
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
            rejected_payloads: g.rejected_payloads,
            by_service,
            idle_ms: g.last_insert.map(|t| t.elapsed().as_millis() as u64),
        }
    }
}
