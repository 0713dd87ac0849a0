//! Application faults for `socialctl chaos`, switched on at run time. Teaching faults
//! (bugs a learner finds in the traces) are in [`crate::teaching`]; [`on`] and
//! [`BROKEN_PROPAGATION`] are here too for the code that asks.

pub use crate::teaching::{BROKEN_PROPAGATION, on};

/// Application faults, switched on and off at run time by `socialctl chaos` through the
/// service's `/chaos/faults` endpoint (operations port only: the gateway does not route
/// it). Each lapses by itself at its deadline, so a fault outlives no lost terminal.
///
/// Every span a fault touches says so: `chaos.injected=true` and an event naming the
/// fault, so a learner can tell an injected failure from a real one.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AppFaults {
    /// Share of API requests (0 to 1) answered 500 `injected_fault` instead of handled.
    pub error_rate: f64,
    /// Milliseconds added before every API request is handled.
    pub latency_ms: u64,
    /// Outgoing HTTP calls to these fail as an unreachable dependency would (connection
    /// refused), inside their CLIENT span: a `host:port`, or a path prefix (`/api/profiles`,
    /// for calls that go to a service through the gateway).
    pub failing_calls: Vec<String>,
    /// Only requests whose route starts with this are touched (all when empty).
    pub route_prefix: String,
    /// Seconds until the faults lapse by themselves (0: at once).
    pub ttl_secs: u64,
}

struct Active {
    faults: AppFaults,
    until: std::time::Instant,
}

static ACTIVE: std::sync::RwLock<Option<Active>> = std::sync::RwLock::new(None);

/// Replaces this process's application faults (`None` clears them).
pub fn set(faults: Option<AppFaults>) {
    let active = faults.map(|f| Active {
        until: std::time::Instant::now() + std::time::Duration::from_secs(f.ttl_secs),
        faults: f,
    });
    *ACTIVE.write().unwrap_or_else(|p| p.into_inner()) = active;
}

/// Runs `f` on the faults in force now, if any, without copying them (this is read on
/// every request and every outgoing call).
fn with_active<R>(f: impl FnOnce(&AppFaults) -> R) -> Option<R> {
    let guard = ACTIVE.read().unwrap_or_else(|p| p.into_inner());
    guard
        .as_ref()
        .filter(|a| a.until > std::time::Instant::now())
        .map(|a| f(&a.faults))
}

/// The faults in force now, if any.
pub fn current() -> Option<AppFaults> {
    with_active(AppFaults::clone)
}

/// What the faults do to one request on `route`: the latency to add, and whether to
/// fail it (decided from the trace id's random bits, so it is the same wherever the
/// trace is looked at). `trace_id` is asked only when a fault applies.
pub fn for_request(route: &str, trace_id: impl FnOnce() -> u128) -> Option<(u64, bool)> {
    let (latency_ms, rate) = with_active(|f| {
        let touched =
            route.starts_with(&f.route_prefix) && (f.latency_ms > 0 || f.error_rate > 0.0);
        touched.then_some((f.latency_ms, f.error_rate))
    })??;
    let draw = (trace_id() % 10_000) as f64 / 10_000.0;
    Some((latency_ms, draw < rate))
}

/// Whether an outgoing call to `url` is to fail; then the `host:port` it was for.
pub fn failing_call(url: &reqwest::Url) -> Option<String> {
    with_active(|f| {
        if f.failing_calls.is_empty() {
            return None;
        }
        let target = format!(
            "{}:{}",
            url.host_str().unwrap_or_default(),
            url.port_or_known_default().unwrap_or_default()
        );
        let hit = f.failing_calls.iter().any(|c| {
            if c.starts_with('/') {
                url.path().starts_with(c.as_str())
            } else {
                *c == target
            }
        });
        hit.then_some(target)
    })?
}

/// Marks `span` as touched by fault `name`.
pub fn mark(span: &tracing::Span, name: &'static str, detail: String) {
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    span.set_attribute("chaos.injected", true);
    span.add_event(
        "chaos.fault",
        vec![
            opentelemetry::KeyValue::new("chaos.fault.name", name),
            opentelemetry::KeyValue::new("chaos.fault.detail", detail),
        ],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_apply_to_their_routes_and_lapse() {
        // A route and a callee no other test of this binary uses: the state is global.
        set(Some(AppFaults {
            error_rate: 0.5,
            latency_ms: 20,
            route_prefix: "/api/chaos-unit".into(),
            failing_calls: vec!["chaos-unit:1".into(), "/api/chaos-unit-callee".into()],
            ttl_secs: 60,
        }));
        assert_eq!(for_request("/api/chaos-unit/x", || 7000), Some((20, false)));
        assert_eq!(for_request("/api/chaos-unit/x", || 1234), Some((20, true)));
        assert_eq!(for_request("/api/feed/timeline", || 4321), None);
        let url = |u: &str| reqwest::Url::parse(u).expect("url");
        assert_eq!(
            failing_call(&url("http://chaos-unit:1/x")).as_deref(),
            Some("chaos-unit:1")
        );
        assert_eq!(failing_call(&url("http://media:8085/x")), None);
        assert!(failing_call(&url("http://gateway:8080/api/chaos-unit-callee/ann")).is_some());
        set(Some(AppFaults {
            latency_ms: 5,
            route_prefix: "/api/chaos-unit".into(),
            ttl_secs: 0,
            ..Default::default()
        }));
        assert_eq!(current(), None, "lapsed at once");
        set(None);
        assert_eq!(for_request("/api/chaos-unit/x", || 1), None);
    }
}
