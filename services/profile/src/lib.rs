#![doc = include_str!("../README.md")]
//! Profile: profiles, the follow graph, user search, and a cache-aside profile cache.

pub mod config;
pub mod error;
pub mod routes;
pub mod state;

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
        .merge(routes::profiles::router())
        .merge(routes::follows::router())
        .merge(routes::search::router())
}

/// The OpenAPI document served at `/openapi.json`, generated from the handlers.
pub fn openapi() -> utoipa::openapi::OpenApi {
    common::openapi::finish(
        api().into_openapi(),
        "profile",
        "Profiles, the follow graph and user search.",
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

/// Connects to PostgreSQL and Redis and serves until shutdown.
pub async fn run(config: config::Config) -> anyhow::Result<()> {
    let db = Db::connect(&config.database_url, config.db_pool, &MIGRATOR).await?;
    let cache = Cache::new(&config.redis_url, "profile:")?;
    let http = telemetry::HttpClient::new(Duration::from_secs(5));
    let state = AppState {
        db,
        cache,
        verifier: TokenVerifier::for_service(http, config.jwks_url, &config.redis_url),
        cache_ttl_secs: config.cache_ttl_secs,
    };
    let listener = server::bind(config.listen).await?;
    server::serve(listener, app(state)).await
}

/// The service's entry point, as `socialnet profile [FLAGS]` runs it: configuration from
/// `argv` and the environment, telemetry, then [`run`].
pub async fn main(argv: Vec<std::ffi::OsString>) -> std::process::ExitCode {
    common::server::main::<config::Config, _, _>("profile", argv, run).await
}
