//! What every page handler can reach.

use axum::extract::FromRef;
use common::{Cache, Db};

#[derive(Clone, FromRef)]
pub struct AppState {
    pub db: Db,
    pub cache: Cache,
    pub http: telemetry::HttpClient,
    /// The gateway's base URL (`http://127.0.0.1:8080`).
    #[from_ref(skip)]
    pub api: String,
    /// The gateway as browsers reach it (`http://127.0.0.1:8080`).
    #[from_ref(skip)]
    pub public: String,
    pub secure_cookies: bool,
    pub session_ttl_secs: i64,
}
