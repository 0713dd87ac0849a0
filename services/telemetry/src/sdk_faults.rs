//! The teaching faults that live in the SDK's pipeline rather than in a service's code:
//! a sampler that ignores its caller (`wrong_sampler`) and a clock that runs behind
//! (`clock_offset`, applied by the span counter in [`crate::export`] as each span
//! ends). Both sit in every process's provider and do nothing until their
//! switch is on (see [`crate::teaching`]).

use std::time::Duration;

use opentelemetry::trace::{Link, SpanKind, TraceContextExt as _, TraceId};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{Sampler, SamplingResult, ShouldSample, SpanData};

use crate::teaching::{self, CLOCK_OFFSET_MS, WRONG_SAMPLER, WRONG_SAMPLER_RATIO};

/// The sampler every process runs: the standard one (from `OTEL_TRACES_SAMPLER`,
/// parent-based always-on by default), unless `wrong_sampler` is on.
#[derive(Debug, Clone)]
pub(crate) struct Sampling {
    pub inner: Box<dyn ShouldSample>,
}

impl Sampling {
    /// The sampler the SDK would build from the environment, wrapped.
    pub fn from_env() -> Self {
        Self {
            inner: opentelemetry_sdk::trace::Config::default().sampler,
        }
    }
}

impl ShouldSample for Sampling {
    fn should_sample(
        &self,
        parent: Option<&Context>,
        trace_id: TraceId,
        name: &str,
        kind: &SpanKind,
        attributes: &[KeyValue],
        links: &[Link],
    ) -> SamplingResult {
        let remote_parent = parent.is_some_and(|cx| cx.span().span_context().is_remote());
        let wrong;
        let sampler: &dyn ShouldSample = if remote_parent && teaching::on(WRONG_SAMPLER) {
            wrong = wrong_sampler();
            &wrong
        } else {
            &*self.inner
        };
        sampler.should_sample(parent, trace_id, name, kind, attributes, links)
    }
}

/// The `wrong_sampler` teaching fault: a span continuing a caller's trace is kept on
/// a coin of this process's own (half of them), whatever the caller decided, as a
/// service configured with `traceidratio` instead of `parentbased_traceidratio` with
/// its own salt would. Its children follow it, so the whole subtree goes.
///
/// Symptom in the trace: about half the traces through the service lose its spans
/// (and those of everything it calls): `verify-traces` reports `client_without_server`
/// at its callers, and `--sent` shows incomplete traces with nothing failed.
fn wrong_sampler() -> Sampler {
    let coin = uuid::Uuid::new_v4().as_u128() as u16 as f64 / f64::from(u16::MAX);
    Sampler::TraceIdRatioBased(if coin < WRONG_SAMPLER_RATIO { 1.0 } else { 0.0 })
}

/// The `clock_offset` teaching fault: this process's clock runs
/// [`CLOCK_OFFSET_MS`] behind the other hosts', so every timestamp it records is early.
///
/// Symptom in the trace: its SERVER spans start (and end) before the CLIENT spans that
/// called them: `verify-traces` reports `starts_before_parent` in this service, and the
/// waterfall draws its bars left of their parent's.
pub(crate) fn clock_offset(span: &mut SpanData) {
    let behind = Duration::from_millis(CLOCK_OFFSET_MS);
    span.start_time -= behind;
    span.end_time -= behind;
    for e in span.events.events.iter_mut() {
        e.timestamp -= behind;
    }
}
