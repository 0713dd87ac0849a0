//! Profile's settings, from flags or environment variables.

use std::net::SocketAddr;

/// The profile service: profiles, the follow graph and user search.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "profile", version)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "PROFILE_LISTEN", default_value = "127.0.0.1:8082")]
    pub listen: SocketAddr,
    /// PostgreSQL URL of profile's own database (created if missing).
    #[arg(long, env = "PROFILE_DATABASE_URL")]
    pub database_url: String,
    /// Redis URL for the profile cache.
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379/0")]
    pub redis_url: String,
    /// Where auth publishes its token keys.
    #[arg(
        long,
        env = "AUTH_JWKS_URL",
        default_value = "http://127.0.0.1:8081/api/auth/jwks"
    )]
    pub jwks_url: String,
    /// Database connections in the pool.
    #[arg(long, env = "PROFILE_DB_POOL", default_value_t = 8)]
    pub db_pool: u32,
    /// Seconds a cached profile lives before it is read from PostgreSQL again.
    #[arg(long, env = "PROFILE_CACHE_TTL", default_value_t = 300)]
    pub cache_ttl_secs: u64,
}
