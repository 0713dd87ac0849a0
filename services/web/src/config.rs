//! The web service's settings, from flags or environment variables.

use std::net::SocketAddr;

/// The web frontend: server-rendered pages over the APIs.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "web", version)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "WEB_LISTEN", default_value = "127.0.0.1:8086")]
    pub listen: SocketAddr,
    /// PostgreSQL URL of web's own database (sessions; created if missing).
    #[arg(long, env = "WEB_DATABASE_URL")]
    pub database_url: String,
    /// Redis URL (readiness only: web keeps nothing there).
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379/0")]
    pub redis_url: String,
    /// The gateway, through which the pages call the APIs (with the page's trace).
    #[arg(long, env = "WEB_API_URL", default_value = "http://127.0.0.1:8080")]
    pub api_url: String,
    /// The gateway as browsers reach it: the OAuth callback auth sends them back to is
    /// `{public}/oauth/callback`.
    #[arg(long, env = "PUBLIC_URL", default_value = "http://127.0.0.1:8080")]
    pub public_url: String,
    /// Database connections in the pool, all opened at start.
    #[arg(long, env = "WEB_DB_POOL", default_value_t = common::db::QUIET_POOL)]
    pub db_pool: u32,
    /// Mark the session cookie `Secure` (serve over TLS then).
    #[arg(long, env = "WEB_SECURE_COOKIES")]
    pub secure_cookies: bool,
    /// How long a session lasts without signing in again, in seconds.
    #[arg(long, env = "WEB_SESSION_TTL", default_value_t = 7 * 24 * 3600)]
    pub session_ttl_secs: i64,
}
