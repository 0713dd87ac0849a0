//! Auth's settings, from flags or environment variables.

use std::net::SocketAddr;

/// The auth service: accounts, passwords, tokens, sessions, OAuth2 login, rate limits.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "auth", version)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "AUTH_LISTEN", default_value = "127.0.0.1:8081")]
    pub listen: SocketAddr,
    /// PostgreSQL URL of auth's own database (created if missing).
    #[arg(long, env = "AUTH_DATABASE_URL")]
    pub database_url: String,
    /// Redis URL for sessions, refresh tokens, OAuth state and rate limits.
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379/0")]
    pub redis_url: String,
    /// Prefix of every Redis key auth writes, so several stacks can share one Redis.
    #[arg(long, env = "AUTH_REDIS_PREFIX", default_value = "auth:")]
    pub redis_prefix: String,
    /// Base URL of the profile service (a profile is created at registration).
    #[arg(long, env = "PROFILE_URL", default_value = "http://127.0.0.1:8082")]
    pub profile_url: String,
    /// The URL browsers reach the system at (the gateway); OAuth redirects point here.
    #[arg(long, env = "PUBLIC_URL", default_value = "http://127.0.0.1:8080")]
    pub public_url: String,
    /// The URL auth reaches itself at, for the built-in identity provider's back channel.
    #[arg(long, env = "AUTH_SELF_URL", default_value = "http://127.0.0.1:8081")]
    pub self_url: String,
    /// Lifetime of an access token, in seconds.
    #[arg(long, env = "AUTH_ACCESS_TTL", default_value_t = 900)]
    pub access_ttl_secs: i64,
    /// Lifetime of a refresh token (and of an idle session), in seconds.
    #[arg(long, env = "AUTH_REFRESH_TTL", default_value_t = 30 * 24 * 3600)]
    pub refresh_ttl_secs: u64,
    /// Login attempts allowed per client IP per window.
    #[arg(long, env = "AUTH_LOGIN_IP_LIMIT", default_value_t = 60)]
    pub login_ip_limit: u64,
    /// Failed logins allowed per account from one client address per window (the owner,
    /// signing in from another address, is not locked out).
    #[arg(long, env = "AUTH_LOGIN_ACCOUNT_LIMIT", default_value_t = 10)]
    pub login_account_limit: u64,
    /// Registrations allowed per client address per registration window (each costs an
    /// argon2 hash).
    #[arg(long, env = "AUTH_REGISTER_IP_LIMIT", default_value_t = 20)]
    pub register_ip_limit: u64,
    /// Length of the registration rate-limit window, in seconds.
    #[arg(long, env = "AUTH_REGISTER_WINDOW", default_value_t = 3600)]
    pub register_window_secs: u64,
    /// Length of the rate-limit window, in seconds.
    #[arg(long, env = "AUTH_LOGIN_WINDOW", default_value_t = 60)]
    pub login_window_secs: u64,
    /// Offer the built-in development identity provider (`/api/auth/oauth/dev/start`),
    /// so the OAuth redirect dance works in a room with no internet. It signs anyone in
    /// as anyone: off unless the stack is started for a workshop (`socialctl up
    /// --workshop`).
    #[arg(long, env = "AUTH_DEV_IDP", default_value_t = false, action = clap::ArgAction::Set)]
    pub dev_idp: bool,
    /// GitHub OAuth app client id (GitHub login is off while unset).
    #[arg(long, env = "AUTH_GITHUB_CLIENT_ID")]
    pub github_client_id: Option<String>,
    /// GitHub OAuth app client secret.
    #[arg(long, env = "AUTH_GITHUB_CLIENT_SECRET", hide_env_values = true)]
    pub github_client_secret: Option<String>,
    /// Google OAuth client id (Google login is off while unset).
    #[arg(long, env = "AUTH_GOOGLE_CLIENT_ID")]
    pub google_client_id: Option<String>,
    /// Google OAuth client secret.
    #[arg(long, env = "AUTH_GOOGLE_CLIENT_SECRET", hide_env_values = true)]
    pub google_client_secret: Option<String>,
    /// Database connections in the pool, all opened at start.
    #[arg(long, env = "AUTH_DB_POOL", default_value_t = common::db::QUIET_POOL)]
    pub db_pool: u32,
}
