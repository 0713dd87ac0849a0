//! The sweeper: removes objects no media row points at. An upload stores its original
//! before it writes its row, so a crash in between leaves an object nobody refers to
//! (never a row pointing at nothing); the sweeper finds those once they are older than
//! the grace period (no upload takes that long) and deletes them with their thumbnails.
//!
//! Each sweep is one trace, `media.sweep`, with the objects it looked at and removed.

use std::collections::BTreeMap;
use std::time::Duration;

use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::AppState;
use crate::config::SweepConfig;
use crate::store;

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    /// Originals and thumbnails looked at.
    pub objects: usize,
    /// Objects removed (an original and each of its thumbnails count one each).
    pub removed: usize,
}

/// The content hash a key belongs to: `originals/<sha>.<ext>` or `thumbs/<sha>/<file>`.
fn sha_of(key: &str) -> Option<&str> {
    let rest = key
        .strip_prefix("originals/")
        .and_then(|r| r.split('.').next())
        .or_else(|| {
            key.strip_prefix("thumbs/")
                .and_then(|r| r.split('/').next())
        })?;
    (rest.len() == 64 && rest.bytes().all(|b| b.is_ascii_hexdigit())).then_some(rest)
}

/// Sweeps once: every object older than `grace` whose hash no row names is deleted.
pub async fn sweep(state: &AppState, grace: Duration) -> Result<Swept, String> {
    let span = tracing::info_span!("media.sweep", otel.name = "media.sweep");
    async {
        let cutoff =
            chrono::Utc::now() - chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
        let mut by_sha: BTreeMap<String, (Vec<String>, bool)> = BTreeMap::new();
        let mut swept = Swept::default();
        for prefix in ["originals", "thumbs"] {
            for (key, modified) in state
                .objects
                .list(prefix)
                .await
                .map_err(|e| e.to_string())?
            {
                swept.objects += 1;
                let Some(sha) = sha_of(&key) else { continue };
                let entry = by_sha.entry(sha.to_owned()).or_default();
                entry.0.push(key.clone());
                // A hash with any recent object is left alone: an upload may be on its way.
                entry.1 |= modified > cutoff;
            }
        }
        let old: Vec<String> = by_sha
            .iter()
            .filter(|(_, (_, recent))| !recent)
            .map(|(sha, _)| sha.clone())
            .collect();
        let unreferenced = if old.is_empty() {
            Vec::new()
        } else {
            store::unreferenced(&state.db, &old)
                .await
                .map_err(|e| e.to_string())?
        };
        for sha in unreferenced {
            let keys = by_sha.remove(&sha).map(|(k, _)| k).unwrap_or_default();
            let n = keys.len();
            let deleted = store::delete_if_unreferenced(&state.db, &sha, || async {
                let mut ok = true;
                for key in &keys {
                    ok &= state.objects.delete(key).await.is_ok();
                }
                ok
            })
            .await
            .map_err(|e| e.to_string())?;
            if deleted {
                swept.removed += n;
            }
        }
        let current = tracing::Span::current();
        current.set_attribute("socialnet.media.sweep.objects", swept.objects as i64);
        current.set_attribute("socialnet.media.sweep.removed", swept.removed as i64);
        Ok(swept)
    }
    .instrument(span)
    .await
}

/// Sweeps every `interval` for as long as the process runs (never, when it is zero).
pub fn start(state: AppState, config: SweepConfig) {
    if config.interval_secs == 0 {
        return;
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(config.interval_secs));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            match sweep(&state, Duration::from_secs(config.grace_secs)).await {
                Ok(s) if s.removed > 0 => {
                    tracing::info!(
                        removed = s.removed,
                        looked_at = s.objects,
                        "swept unreferenced objects"
                    )
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "a sweep failed; the next one tries again"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_their_hash() {
        let sha = "ab".repeat(32);
        assert_eq!(sha_of(&format!("originals/{sha}.mp4")), Some(sha.as_str()));
        assert_eq!(sha_of(&format!("thumbs/{sha}/160.jpg")), Some(sha.as_str()));
        assert_eq!(sha_of("originals/short.png"), None);
        assert_eq!(sha_of("elsewhere/x"), None);
    }
}
