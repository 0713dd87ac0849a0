//! Teaching faults that break telemetry itself, switched on at start-up with
//! `SOCIALNET_FAULTS=name[,name…]` and off by default. Each is a single check in the
//! code it breaks, so a learner can find it.

use std::sync::OnceLock;

/// Outgoing HTTP calls forward the trace id with a *made-up* parent span id, as a proxy
/// that forgets to record its own hop would.
///
/// Symptom in the trace: the callee's SERVER span names a parent that never arrives —
/// `verify-traces` reports `missing_parent` (an orphan) in the callee's service, and the
/// caller's CLIENT span shows `client_without_server`.
pub const BROKEN_PROPAGATION: &str = "broken_propagation";

/// Whether fault `name` is switched on in this process.
pub fn enabled(name: &str) -> bool {
    static FAULTS: OnceLock<Vec<String>> = OnceLock::new();
    FAULTS
        .get_or_init(|| {
            std::env::var("SOCIALNET_FAULTS")
                .unwrap_or_default()
                .split(',')
                .map(|f| f.trim().to_owned())
                .filter(|f| !f.is_empty())
                .collect()
        })
        .iter()
        .any(|f| f == name)
}
