#![doc = include_str!("../README.md")]
//! Media: uploads into an S3-compatible object store, thumbnails made in the background,
//! files served CDN-style.

pub mod config;
pub mod error;
pub mod objects;
pub mod process;
pub mod receive;
pub mod routes;
pub mod sniff;
pub mod state;
pub mod store;
pub mod sweeper;
pub mod video;
pub mod worker;

use std::sync::Arc;
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
        .merge(routes::uploads::router())
        .merge(routes::files::router())
}

/// The OpenAPI document served at `/openapi.json`, generated from the handlers.
pub fn openapi() -> utoipa::openapi::OpenApi {
    common::openapi::finish(
        api().into_openapi(),
        "media",
        "Image and video uploads, thumbnails and video posters made in the background, and files served CDN-style.",
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

/// The state for `config`: connects to PostgreSQL and the object store.
pub async fn state(config: &config::Config) -> anyhow::Result<AppState> {
    let db = Db::connect(&config.database_url, config.db_pool, &MIGRATOR).await?;
    let cache = Cache::new(&config.redis_url, "media:")?;
    let http = telemetry::HttpClient::new(Duration::from_secs(5));
    Ok(AppState {
        db,
        cache,
        verifier: TokenVerifier::for_service(http, config.jwks_url.clone(), &config.redis_url),
        objects: objects::Objects::new(&config.store)?,
        limits: Arc::new(config.limits.clone()),
        video: Arc::new(video::Tools {
            ffmpeg: config.ffmpeg.clone(),
            ffprobe: config.ffprobe.clone(),
        }),
        spool_dir: Arc::new(config.spool_dir.clone().unwrap_or_else(std::env::temp_dir)),
        wake: Arc::default(),
    })
}

/// Connects, starts the worker, and serves until shutdown.
pub async fn run(config: config::Config) -> anyhow::Result<()> {
    let state = state(&config).await?;
    // An empty store (MinIO in official-image mode) gets its bucket here; one that has
    // it answers 409. Not fatal: uploads answer 503 until the store is there.
    if let Err(e) = state.objects.ensure_bucket(&config.store).await {
        tracing::warn!(error = %e, bucket = %config.store.bucket, "could not make sure the bucket exists");
    }
    worker::start(state.clone(), config.workers, config.job_lease_secs);
    sweeper::start(state.clone(), config.sweep.clone());
    let listener = server::bind(config.listen).await?;
    server::serve(listener, app(state)).await
}

/// The service's entry point, as `socialnet media [FLAGS]` runs it.
pub async fn main(argv: Vec<std::ffi::OsString>) -> std::process::ExitCode {
    common::server::main::<config::Config, _, _>("media", argv, run).await
}
