#![doc = include_str!("../README.md")]
//! Feed: posts, likes, comments, and home timelines with hybrid fan-out.

pub mod config;
pub mod error;
pub mod media_client;
pub mod profile_client;
pub mod routes;
pub mod service_client;
pub mod state;

use std::time::Duration;

use axum::Router;
use common::{Cache, Db, TokenVerifier, server};
use utoipa_axum::router::OpenApiRouter;

pub use state::{AppState, Settings};

/// The database schema, applied at start.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Every API route, in reading order, each with its OpenAPI operation.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(routes::posts::router())
        .merge(routes::timeline::router())
        .merge(routes::likes::router())
        .merge(routes::comments::router())
}

/// The OpenAPI document served at `/openapi.json`, generated from the handlers.
pub fn openapi() -> utoipa::openapi::OpenApi {
    common::openapi::finish(
        api().into_openapi(),
        "feed",
        "Posts, likes, comments and home timelines (hybrid fan-out).",
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
    let cache = Cache::new(&config.redis_url, "feed:")?;
    let http = telemetry::HttpClient::new(Duration::from_secs(5));
    let state = AppState {
        db,
        cache,
        verifier: TokenVerifier::for_service(http.clone(), config.jwks_url, &config.redis_url),
        profiles: profile_client::ProfileClient::new(http.clone(), config.profile_url),
        media: media_client::MediaClient::new(http, config.media_url),
        settings: Settings {
            celebrity_threshold: config.celebrity_threshold,
            timeline_cap: config.timeline_cap,
            timeline_ttl_secs: config.timeline_ttl_secs,
        },
    };
    let listener = server::bind(config.listen).await?;
    server::serve(listener, app(state)).await
}

/// The service's entry point, as `socialnet feed [FLAGS]` runs it: configuration from
/// `argv` and the environment, telemetry, then [`run`].
pub async fn main(argv: Vec<std::ffi::OsString>) -> std::process::ExitCode {
    common::server::main::<config::Config, _, _>("feed", argv, run).await
}
