//! What every profile handler can reach.

use std::sync::Arc;

use axum::extract::FromRef;
use common::{Cache, Db, TokenVerifier};

#[derive(Clone, FromRef)]
pub struct AppState {
    pub db: Db,
    pub cache: Cache,
    pub verifier: Arc<TokenVerifier>,
    pub cache_ttl_secs: u64,
}
