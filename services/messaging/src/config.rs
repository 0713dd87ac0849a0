//! Messaging's settings, from flags or environment variables.

use std::net::SocketAddr;

/// The messaging service: conversations, messages, live delivery and presence.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "messaging", version)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "MESSAGING_LISTEN", default_value = "127.0.0.1:8084")]
    pub listen: SocketAddr,
    /// PostgreSQL URL of messaging's own database (created if missing).
    #[arg(long, env = "MESSAGING_DATABASE_URL")]
    pub database_url: String,
    /// Redis URL: live delivery (pub/sub), socket tickets and presence.
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379/0")]
    pub redis_url: String,
    /// Where auth publishes its token keys.
    #[arg(
        long,
        env = "AUTH_JWKS_URL",
        default_value = "http://127.0.0.1:8081/api/auth/jwks"
    )]
    pub jwks_url: String,
    /// Database connections in the pool, all opened at start.
    #[arg(long, env = "MESSAGING_DB_POOL", default_value_t = common::db::QUIET_POOL)]
    pub db_pool: u32,
    /// Seconds a user stays online after their last socket's last heartbeat.
    #[arg(long, env = "MESSAGING_PRESENCE_TTL", default_value_t = 30)]
    pub presence_ttl_secs: u64,
}
