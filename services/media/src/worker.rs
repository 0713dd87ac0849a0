//! The processing worker: leases jobs from PostgreSQL (`FOR UPDATE SKIP LOCKED`), makes
//! the thumbnails on a blocking thread with a timeout, stores them, and marks the media
//! ready, or failed with the reason.
//!
//! Why PostgreSQL and not a Redis stream: the job is written in the same transaction as
//! the media row, so an acknowledged upload always has its job and a failed one never
//! does (no second system to keep in step). A lease, not a lock held for the whole job:
//! a worker that dies mid-job lets its lease run out and another takes the job again;
//! the outputs are content-addressed and finishing only moves a pending row, so a job
//! done twice is recorded once.
//!
//! Each job is a trace of its own: a CONSUMER span `process media.jobs` linked to the
//! PRODUCER span of the upload that queued it.

use std::collections::HashMap;
use std::time::Duration;

use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::AppState;
use crate::routes::uploads::{original_key, variant_key};
use crate::sniff::Kind;
use crate::store;

/// The queue's name in spans (`messaging.destination.name`).
pub const QUEUE: &str = "media.jobs";
/// Attempts before a job that keeps failing for want of the store is given up.
const MAX_ATTEMPTS: i32 = 5;
/// How often an idle worker looks for jobs queued by other replicas.
const IDLE_POLL: Duration = Duration::from_millis(500);

/// Starts `n` workers on this replica, for as long as the process runs; each holds a job
/// for at most `lease_secs` before another worker may take it again.
pub fn start(state: AppState, n: usize, lease_secs: i64) {
    for _ in 0..n.max(1) {
        let state = state.clone();
        tokio::spawn(async move {
            loop {
                match store::lease(&state.db, lease_secs).await {
                    Ok(Some(job)) => run(&state, job).await,
                    Ok(None) => {
                        let _ = tokio::time::timeout(IDLE_POLL, state.wake.notified()).await;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "could not lease a media job");
                        tokio::time::sleep(IDLE_POLL).await;
                    }
                }
            }
        });
    }
}

/// Processes one leased job inside its CONSUMER span.
pub async fn run(state: &AppState, job: store::Job) {
    let context: HashMap<String, String> =
        serde_json::from_value(job.context.clone()).unwrap_or_default();
    let span = telemetry::messaging::process_linked(
        "postgresql",
        QUEUE,
        &job.media_id.to_string(),
        &context,
    );
    span.set_attribute("socialnet.media.attempt", i64::from(job.attempts));
    async {
        let timeout = Duration::from_secs(state.limits.job_timeout_secs);
        let outcome = tokio::time::timeout(timeout, make(state, &job)).await;
        let result = match outcome {
            Ok(Ok(variants)) => store::finish(&state.db, job.media_id, &variants)
                .await
                .map(|_| ()),
            Ok(Err(Failure::Refused(reason))) => {
                telemetry::record_error(&tracing::Span::current(), "refused", reason.clone());
                store::fail(&state.db, job.media_id, &reason).await
            }
            Ok(Err(Failure::Store(e))) if job.attempts < MAX_ATTEMPTS => {
                telemetry::record_error(&tracing::Span::current(), "store_unavailable", e.clone());
                let backoff = 2_i64.pow(job.attempts.clamp(0, 5) as u32);
                store::retry_later(&state.db, job.media_id, backoff).await
            }
            Ok(Err(Failure::Store(e))) => {
                store::fail(&state.db, job.media_id, &format!("the object store kept failing: {e}"))
                    .await
            }
            Err(_) => {
                let reason = format!("processing took longer than {} s", timeout.as_secs());
                telemetry::record_error(&tracing::Span::current(), "timeout", reason.clone());
                store::fail(&state.db, job.media_id, &reason).await
            }
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, media = %job.media_id, "could not record a job's outcome; it is retried when its lease ends");
        }
    }
    .instrument(span)
    .await;
}

enum Failure {
    /// The file cannot be processed: the media fails with this reason.
    Refused(String),
    /// The store could not be reached: try again later.
    Store(String),
}

/// Fetches the original, makes and stores the thumbnails (a video's are of its poster
/// frame); their names.
async fn make(state: &AppState, job: &store::Job) -> Result<Vec<String>, Failure> {
    let kind = Kind::from_extension(&job.kind)
        .ok_or_else(|| Failure::Refused(format!("unknown kind {}", job.kind)))?;
    let key = original_key(&job.sha256, kind);
    let (source_kind, source) = if kind.is_video() {
        (Kind::Png, poster(state, job, &key).await?)
    } else {
        let bytes = state
            .objects
            .get(&key)
            .await
            .map_err(|e| Failure::Store(e.to_string()))?;
        (kind, bytes.to_vec())
    };
    let limits = state.limits.clone();
    let decode = tracing::info_span!("media.thumbnails", otel.name = "media.thumbnails");
    let variants = tokio::task::spawn_blocking(move || {
        decode.in_scope(|| crate::process::thumbnails(source_kind, &source, &limits))
    })
    .await
    .map_err(|e| Failure::Refused(format!("processing crashed: {e}")))?
    .map_err(|r| Failure::Refused(r.0))?;
    let mut names = Vec::new();
    for v in variants {
        state
            .objects
            .put(&variant_key(&job.sha256, &v.name), v.bytes.into())
            .await
            .map_err(|e| Failure::Store(e.to_string()))?;
        names.push(v.name);
    }
    Ok(names)
}

/// A video's poster frame (PNG): the original is copied to a spool file (never held in
/// memory) and ffmpeg reads the frame from it.
async fn poster(state: &AppState, job: &store::Job, key: &str) -> Result<Vec<u8>, Failure> {
    let spool = tempfile::Builder::new()
        .prefix("job-")
        .tempfile_in(&*state.spool_dir)
        .map_err(|e| Failure::Store(format!("no spool file: {e}")))?
        .into_temp_path();
    state
        .objects
        .get_to_file(key, &spool)
        .await
        .map_err(|e| Failure::Store(e.to_string()))?;
    let timeout = Duration::from_secs(state.limits.job_timeout_secs);
    state
        .video
        .poster(&spool, job.duration_ms.unwrap_or(0), timeout)
        .await
        .map_err(|e| match e {
            crate::video::Failed::Refused(r) => {
                Failure::Refused(format!("no poster frame could be read: {}", r.0))
            }
            crate::video::Failed::Unavailable(m) => Failure::Store(m),
        })
}
