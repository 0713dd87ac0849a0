//! What every auth handler can reach.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::FromRef;
use common::tokens::{Jwks, SigningKey};
use common::{Cache, Db};

use crate::routes::oauth::Provider;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub db: Db,
    pub cache: Cache,
    pub http: telemetry::HttpClient,
    pub signer: Arc<SigningKey>,
    pub jwks: Arc<Jwks>,
    pub settings: Arc<Settings>,
    pub providers: Arc<HashMap<String, Provider>>,
}

/// Tunables and addresses, fixed at start.
#[derive(Debug, Clone)]
pub struct Settings {
    pub profile_url: String,
    pub public_url: String,
    pub access_ttl_secs: i64,
    pub refresh_ttl_secs: u64,
    pub login_ip_limit: u64,
    pub login_account_limit: u64,
    pub login_window_secs: u64,
    pub register_ip_limit: u64,
    pub register_window_secs: u64,
    pub dev_idp: bool,
    /// Providers named by the operator but missing a client id or secret, so the error
    /// for them can say exactly which variable to set.
    pub unconfigured: Vec<(&'static str, &'static str)>,
}
