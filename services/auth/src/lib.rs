#![doc = include_str!("../README.md")]
//! Auth: accounts, argon2id passwords, EdDSA access tokens, rotating refresh tokens,
//! sessions, login rate limits, and OAuth2 login (GitHub, Google, built-in dev provider).

pub mod config;
pub mod error;
pub mod keys;
pub mod password;
pub mod ratelimit;
pub mod routes;
pub mod sessions;
pub mod state;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use common::{Cache, Db, server};
use utoipa_axum::router::OpenApiRouter;

pub use state::{AppState, Settings};

/// The database schema, applied at start.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Every API route, in reading order, each with its OpenAPI operation.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(routes::accounts::router())
        .merge(routes::jwks::router())
        .merge(routes::oauth::router())
        .merge(routes::dev_idp::router())
}

/// The OpenAPI document served at `/openapi.json`, generated from the handlers.
pub fn openapi() -> utoipa::openapi::OpenApi {
    common::openapi::finish(
        api().into_openapi(),
        "auth",
        "Accounts, passwords, tokens, sessions and OAuth2 login.",
    )
}

/// Every route with the standard layers.
pub fn app(state: AppState) -> Router {
    let (routes, _) = api().split_for_parts();
    let routes = routes
        .merge(server::ops_routes(openapi()))
        .with_state(state);
    server::finish(routes)
}

/// Builds the state from config: connects, migrates, loads the signing key.
pub async fn state(config: &config::Config) -> anyhow::Result<AppState> {
    let db = Db::connect(&config.database_url, config.db_pool, &MIGRATOR).await?;
    let cache = Cache::new(&config.redis_url, &config.redis_prefix)?;
    let (signer, jwks) = keys::load(&db).await?;
    let (providers, unconfigured) = routes::oauth::providers_from(config);
    Ok(AppState {
        db,
        cache,
        http: telemetry::HttpClient::new(Duration::from_secs(10)),
        signer: Arc::new(signer),
        jwks: Arc::new(jwks),
        settings: Arc::new(Settings {
            profile_url: config.profile_url.clone(),
            public_url: config.public_url.clone(),
            access_ttl_secs: config.access_ttl_secs,
            refresh_ttl_secs: config.refresh_ttl_secs,
            login_ip_limit: config.login_ip_limit,
            login_account_limit: config.login_account_limit,
            login_window_secs: config.login_window_secs,
            register_ip_limit: config.register_ip_limit,
            register_window_secs: config.register_window_secs,
            dev_idp: config.dev_idp,
            unconfigured,
        }),
        providers: Arc::new(providers),
    })
}

/// Connects to PostgreSQL and Redis and serves until shutdown.
pub async fn run(config: config::Config) -> anyhow::Result<()> {
    let state = state(&config).await?;
    let listener = server::bind(config.listen).await?;
    server::serve(listener, app(state)).await
}

/// The service's entry point, as `socialnet auth [FLAGS]` runs it: configuration from
/// `argv` and the environment, telemetry, then [`run`].
pub async fn main(argv: Vec<std::ffi::OsString>) -> std::process::ExitCode {
    common::server::main::<config::Config, _, _>("auth", argv, run).await
}
