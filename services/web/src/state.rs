//! What every page handler can reach.

use axum::extract::FromRef;
use common::{Cache, Db};

#[derive(Clone, FromRef)]
pub struct AppState {
    pub db: Db,
    pub cache: Cache,
    pub http: telemetry::HttpClient,
    /// The gateway's base URL (`http://127.0.0.1:8080`).
    pub api: String,
    pub secure_cookies: bool,
    pub session_ttl_secs: i64,
}
