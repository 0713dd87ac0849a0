//! What every media handler and the worker can reach.

use std::sync::Arc;

use axum::extract::FromRef;
use common::{Cache, Db, TokenVerifier};

use crate::config::Limits;
use crate::objects::Objects;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub db: Db,
    pub cache: Cache,
    pub verifier: Arc<TokenVerifier>,
    pub objects: Objects,
    pub limits: Arc<Limits>,
    /// ffmpeg and ffprobe, for video.
    pub video: Arc<crate::video::Tools>,
    /// Where video uploads and jobs spool their files.
    pub spool_dir: Arc<std::path::PathBuf>,
    /// Wakes this replica's worker when an upload queues a job.
    pub wake: Arc<tokio::sync::Notify>,
}

impl AppState {
    /// A state with ffmpeg and ffprobe from the PATH and the system's temporary directory
    /// for spooling (what tests and embedders want; the service reads its configuration).
    pub fn with(
        db: Db,
        cache: Cache,
        verifier: Arc<TokenVerifier>,
        objects: Objects,
        limits: Limits,
    ) -> Self {
        Self {
            db,
            cache,
            verifier,
            objects,
            limits: Arc::new(limits),
            video: Arc::new(crate::video::Tools {
                ffmpeg: "ffmpeg".into(),
                ffprobe: "ffprobe".into(),
            }),
            spool_dir: Arc::new(std::env::temp_dir()),
            wake: Arc::default(),
        }
    }
}
