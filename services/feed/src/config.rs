//! Feed's settings, from flags or environment variables.

use std::net::SocketAddr;

/// The feed service: posts, likes, comments and home timelines (hybrid fan-out).
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "feed", version)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "FEED_LISTEN", default_value = "127.0.0.1:8083")]
    pub listen: SocketAddr,
    /// PostgreSQL URL of feed's own database (created if missing).
    #[arg(long, env = "FEED_DATABASE_URL")]
    pub database_url: String,
    /// Redis URL for home timelines.
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379/0")]
    pub redis_url: String,
    /// Base URL of the profile service (the follow graph).
    #[arg(long, env = "PROFILE_URL", default_value = "http://127.0.0.1:8082")]
    pub profile_url: String,
    /// Base URL of the media service (checks the images a post names).
    #[arg(long, env = "MEDIA_URL", default_value = "http://127.0.0.1:8085")]
    pub media_url: String,
    /// Where auth publishes its token keys.
    #[arg(
        long,
        env = "AUTH_JWKS_URL",
        default_value = "http://127.0.0.1:8081/api/auth/jwks"
    )]
    pub jwks_url: String,
    /// Authors with more followers than this are "celebrities": their posts are not pushed
    /// into followers' timelines on write but merged in when a timeline is read.
    #[arg(long, env = "FEED_CELEBRITY_THRESHOLD", default_value_t = 1000)]
    pub celebrity_threshold: i64,
    /// Post ids kept per materialised home timeline in Redis.
    #[arg(long, env = "FEED_TIMELINE_CAP", default_value_t = 800)]
    pub timeline_cap: usize,
    /// Seconds a materialised timeline lives; it is rebuilt from PostgreSQL after that.
    #[arg(long, env = "FEED_TIMELINE_TTL", default_value_t = 3600)]
    pub timeline_ttl_secs: u64,
    /// Database connections in the pool.
    #[arg(long, env = "FEED_DB_POOL", default_value_t = 8)]
    pub db_pool: u32,
}
