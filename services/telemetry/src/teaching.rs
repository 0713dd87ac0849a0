//! Teaching faults: realistic bugs a learner finds in the traces, each written in one
//! place in the code it breaks, off by default, switched on at start
//! (`SOCIALNET_FAULTS=name[,name…]`) or at run time through the service's
//! `/chaos/teaching` operations endpoint (`socialctl fault on NAME`), with no restart.
//!
//! [`CATALOGUE`] is the one list: `socialctl fault list` prints it, the operations
//! endpoint refuses names not in it, and the workshop's labs and debugging guide follow
//! it. Whether a fault is on is one atomic load ([`on`]), because some are asked on every
//! span.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// One teaching fault, as a learner meets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Teaching {
    /// The switch's name.
    pub name: &'static str,
    /// The service it is switched on in when no target is named.
    pub home: &'static str,
    /// The bug, in one line.
    pub bug: &'static str,
    /// What a learner sees, and in which span or attribute.
    pub symptom: &'static str,
    /// The repair in the real code.
    pub fix: &'static str,
}

/// Outgoing calls forward the trace id with a made-up parent span id.
pub const BROKEN_PROPAGATION: &str = "broken_propagation";
/// feed's home timeline reads its posts one query per post.
pub const N_PLUS_ONE: &str = "n_plus_one";
/// feed's query for a user's posts matches `lower(author_username)`, which no index serves.
pub const MISSING_INDEX: &str = "missing_index";
/// feed's fan-out sends one Redis round trip per follower instead of one pipeline.
pub const UNPIPELINED_FANOUT: &str = "unpipelined_fanout";
/// feed's fan-out runs in a spawned task that was not given the request's context.
pub const LOST_CONTEXT: &str = "lost_context";
/// Failed outgoing calls are retried at once, with no backoff and no budget.
pub const RETRY_STORM: &str = "retry_storm";
/// An error answer from a callee is not recorded on the calling CLIENT span.
pub const SWALLOWED_ERROR: &str = "swallowed_error";
/// The service samples on a coin of its own instead of following its caller.
pub const WRONG_SAMPLER: &str = "wrong_sampler";
/// The service's clock runs two seconds behind everyone else's.
pub const CLOCK_OFFSET: &str = "clock_offset";

/// How far behind the `clock_offset` fault sets the service's clock.
pub const CLOCK_OFFSET_MS: u64 = 2_000;
/// How many times the `retry_storm` fault sends a failed call again.
pub const RETRY_STORM_RETRIES: usize = 5;
/// The share of spans the `wrong_sampler` fault keeps, whatever the caller decided.
pub const WRONG_SAMPLER_RATIO: f64 = 0.5;

/// Every teaching fault, in the order the workshop meets them.
pub const CATALOGUE: &[Teaching] = &[
    Teaching {
        name: BROKEN_PROPAGATION,
        home: "feed",
        bug: "outgoing HTTP calls send the right trace id with a made-up parent span id, as a proxy that forgets its own hop",
        symptom: "verify-traces: missing_parent (an orphan) in the callee, client_without_server in the caller",
        fix: "inject the CLIENT span's own context (telemetry::propagation::inject_http)",
    },
    Teaching {
        name: N_PLUS_ONE,
        home: "feed",
        bug: "the home timeline reads its page of posts one SELECT per post instead of one `WHERE id = ANY($1)`",
        symptom: "a ladder of 20 `SELECT posts` CLIENT spans under `GET /api/feed/timeline`, one after another",
        fix: "fetch the page in one query (routes/timeline.rs, BY_IDS)",
    },
    Teaching {
        name: MISSING_INDEX,
        home: "feed",
        bug: "a user's posts are matched case-insensitively with `lower(author_username) = lower($1)`; the index is on `author_username` itself",
        symptom: "`SELECT posts` under `GET /api/feed/users/{username}/posts` grows with the table; its db.query.text shows lower(); EXPLAIN shows a sequential scan",
        fix: "compare the column as stored (usernames are already lowercase), or index the expression `lower(author_username)`",
    },
    Teaching {
        name: UNPIPELINED_FANOUT,
        home: "feed",
        bug: "a new post is pushed to each follower's timeline with its own Redis round trips instead of one pipeline",
        symptom: "under `feed.fan_out`, a ladder of `LPUSHX` and `LTRIM` spans, two per follower, where one `PIPELINE` span should be",
        fix: "send every follower's push in one pipeline (common::cache::Cache::push_to_existing)",
    },
    Teaching {
        name: LOST_CONTEXT,
        home: "feed",
        bug: "the fan-out of a new post runs in a spawned task that was not given the request's span",
        symptom: "the post's trace has no `feed.fan_out`; new traces appear whose root is `feed.fan_out`, with no SERVER span above it",
        fix: "instrument the spawned future with the current span (`.instrument(Span::current())`), or link it",
    },
    Teaching {
        name: RETRY_STORM,
        home: "feed",
        bug: "a failed outgoing call is sent again at once, five more times, with no backoff and no budget",
        symptom: "six CLIENT spans of the same call side by side in one trace when the callee fails; the callee's load multiplied",
        fix: "retry only idempotent calls, with exponential backoff and jitter, within a retry budget",
    },
    Teaching {
        name: SWALLOWED_ERROR,
        home: "feed",
        bug: "an error answer from a callee is not recorded on the CLIENT span that got it",
        symptom: "verify-traces: error_not_propagated; the callee's SERVER span is 5xx, the caller's CLIENT span looks fine",
        fix: "set http.response.status_code, error.type and the span's error status on every 4xx/5xx (telemetry::HttpClient)",
    },
    Teaching {
        name: WRONG_SAMPLER,
        home: "profile",
        bug: "the service samples each span on a coin of its own (50 %) instead of following the sampled flag its caller sent",
        symptom: "about half the traces lose the service's spans: verify-traces reports client_without_server at its callers",
        fix: "use a parent-based sampler everywhere (OTEL_TRACES_SAMPLER=parentbased_traceidratio), deciding once at the root",
    },
    Teaching {
        name: CLOCK_OFFSET,
        home: "profile",
        bug: "the service's host clock runs two seconds behind the rest of the stack",
        symptom: "verify-traces: starts_before_parent (and ends_after_parent) for the service's SERVER spans; their waterfall bars sit left of their parent",
        fix: "run NTP/chrony on every host; never compare timestamps from two hosts without a skew allowance",
    },
];

/// The catalogue entry named `name`.
pub fn find(name: &str) -> Option<&'static Teaching> {
    CATALOGUE.iter().find(|t| t.name == name)
}

fn bit(name: &str) -> Option<u64> {
    CATALOGUE
        .iter()
        .position(|t| t.name == name)
        .map(|i| 1 << i)
}

/// The switches, one bit per catalogue entry, with `SOCIALNET_FAULTS` folded in on first
/// use (so `off` also switches off a fault set at start).
fn switches() -> &'static AtomicU64 {
    static SWITCHES: OnceLock<AtomicU64> = OnceLock::new();
    SWITCHES.get_or_init(|| {
        let names = std::env::var("SOCIALNET_FAULTS").unwrap_or_default();
        let mask = names
            .split(',')
            .filter_map(|n| bit(n.trim()))
            .fold(0, |m, b| m | b);
        AtomicU64::new(mask)
    })
}

/// Whether teaching fault `name` is on in this process.
pub fn on(name: &str) -> bool {
    // Asked on every span's end and every outgoing call: with nothing on (the usual
    // case) one atomic load answers, without looking the name up.
    let now = switches().load(Ordering::Relaxed);
    now != 0 && bit(name).is_some_and(|b| now & b != 0)
}

/// Switches `name` on or off; `false` when no such fault exists.
pub fn switch(name: &str, on: bool) -> bool {
    let Some(b) = bit(name) else {
        return false;
    };
    if on {
        switches().fetch_or(b, Ordering::Relaxed);
    } else {
        switches().fetch_and(!b, Ordering::Relaxed);
    }
    true
}

/// Switches every teaching fault off.
pub fn all_off() {
    switches().store(0, Ordering::Relaxed);
}

/// The names of the faults on now, in catalogue order.
pub fn active() -> Vec<&'static str> {
    CATALOGUE
        .iter()
        .filter(|t| on(t.name))
        .map(|t| t.name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switches_follow_the_catalogue() {
        assert!(CATALOGUE.len() <= 64, "one bit per fault");
        let mut names: Vec<_> = CATALOGUE.iter().map(|t| t.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), CATALOGUE.len(), "names are unique");
        assert!(!switch("no_such_fault", true));
        assert!(!on("no_such_fault"));
        assert!(switch(CLOCK_OFFSET, true));
        assert!(switch(N_PLUS_ONE, true));
        assert!(on(CLOCK_OFFSET) && on(N_PLUS_ONE) && !on(LOST_CONTEXT));
        assert_eq!(active(), vec![N_PLUS_ONE, CLOCK_OFFSET], "catalogue order");
        assert!(switch(CLOCK_OFFSET, false));
        assert_eq!(active(), vec![N_PLUS_ONE]);
        all_off();
        assert!(active().is_empty());
    }
}
