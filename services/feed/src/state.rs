//! What every feed handler can reach.

use std::sync::Arc;

use axum::extract::FromRef;
use common::{Cache, Db, TokenVerifier};

use crate::media_client::MediaClient;
use crate::profile_client::ProfileClient;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub db: Db,
    pub cache: Cache,
    pub verifier: Arc<TokenVerifier>,
    pub profiles: ProfileClient,
    pub media: MediaClient,
    pub settings: Settings,
}

/// Tunables of the fan-out strategy.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub celebrity_threshold: i64,
    pub timeline_cap: usize,
    pub timeline_ttl_secs: u64,
}
