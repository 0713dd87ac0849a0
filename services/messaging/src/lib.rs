#![doc = include_str!("../README.md")]
//! Messaging: conversations and messages over HTTP and a WebSocket, fanned out across
//! replicas with Redis pub/sub, with presence.

pub mod config;
pub mod deliver;
pub mod error;
pub mod hub;
pub mod presence;
pub mod routes;
pub mod state;
pub mod store;

use std::time::Duration;

use axum::Router;
use common::{Cache, Db, TokenVerifier, server};
use utoipa_axum::router::OpenApiRouter;

pub use state::AppState;

/// The database schema, applied at start.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Every API route, in reading order, each with its OpenAPI operation.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(routes::conversations::router())
        .merge(routes::messages::router())
        .merge(routes::live::router())
}

/// The OpenAPI document served at `/openapi.json`, generated from the handlers.
pub fn openapi() -> utoipa::openapi::OpenApi {
    common::openapi::finish(
        api().into_openapi(),
        "messaging",
        "Conversations and messages, live over a WebSocket, with presence.",
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

/// The state for `config`: connects to PostgreSQL, follows the Redis channel, and starts
/// the presence heartbeat.
pub async fn state(config: &config::Config) -> anyhow::Result<AppState> {
    let db = Db::connect(&config.database_url, config.db_pool, &MIGRATOR).await?;
    let cache = Cache::new(&config.redis_url, "messaging:")?;
    let http = telemetry::HttpClient::new(Duration::from_secs(5));
    let hub = hub::Hub::new(cache.clone(), config.presence_ttl_secs);
    hub.follow(&config.redis_url)?;
    let state = AppState {
        db,
        cache,
        verifier: TokenVerifier::for_service(http, config.jwks_url.clone(), &config.redis_url),
        hub,
    };
    presence::heartbeat(state.clone());
    Ok(state)
}

/// Connects and serves until shutdown.
pub async fn run(config: config::Config) -> anyhow::Result<()> {
    let state = state(&config).await?;
    let listener = server::bind(config.listen).await?;
    server::serve(listener, app(state)).await
}

/// The service's entry point, as `socialnet messaging [FLAGS]` runs it.
pub async fn main(argv: Vec<std::ffi::OsString>) -> std::process::ExitCode {
    common::server::main::<config::Config, _, _>("messaging", argv, run).await
}
