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
    /// Wakes this replica's worker when an upload queues a job.
    pub wake: Arc<tokio::sync::Notify>,
}
