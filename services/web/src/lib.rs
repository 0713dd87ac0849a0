#![doc = include_str!("../README.md")]
//! Web: server-rendered pages over the APIs, browser sessions, and the browser's tracer.

pub mod api;
pub mod assets;
pub mod compose;
pub mod config;
pub mod handlers;
pub mod messages;
pub mod oauth;
pub mod pages;
pub mod session;
pub mod state;

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use common::{Cache, Db, server};

pub use state::AppState;

/// The database schema (sessions), applied at start.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The operations document: web's API is pages, not JSON, so it lists no operation.
pub fn openapi() -> utoipa::openapi::OpenApi {
    common::openapi::finish(
        utoipa::openapi::OpenApi::default(),
        "web",
        "Server-rendered pages (HTML forms), not a JSON API: nothing to list here.",
    )
}

/// Every page and the operations endpoints, each request a SERVER span.
pub fn app(state: AppState) -> Router {
    use handlers as h;
    let pages = Router::new()
        .route("/", get(h::home))
        .route("/fragments/timeline", get(h::timeline_fragment))
        .route("/fragments/u/{username}", get(h::user_posts_fragment))
        .route("/signin", get(h::sign_in_form).post(h::sign_in))
        .route("/register", get(h::register_form).post(h::register))
        .route("/signout", post(h::sign_out))
        .route("/oauth/callback", get(oauth::callback))
        .route("/oauth/{provider}", get(oauth::start))
        .route("/posts", post(compose::create_post))
        .route("/posts/{id}", get(h::post_page))
        .route("/posts/{id}/comments", post(h::comment))
        .route("/posts/{id}/like", post(h::like))
        .route("/search", get(h::search))
        .route("/messages", get(messages::list).post(messages::start))
        .route(
            "/messages/{id}",
            get(messages::conversation).post(messages::send),
        )
        .route("/fragments/ws-ticket", post(messages::ws_ticket))
        .route("/u/{username}", get(h::profile_page))
        .route("/u/{username}/follow", post(h::follow))
        .route("/u/{username}/unfollow", post(h::unfollow))
        .route("/u/{username}/followers", get(h::followers))
        .route("/u/{username}/following", get(h::following))
        .route("/assets/{file}", get(assets::serve))
        .fallback(h::not_found);
    pages
        .merge(server::ops_routes(openapi()))
        .with_state(state)
        .layer(DefaultBodyLimit::max(server::max_body_bytes()))
        .layer(axum::middleware::from_fn(
            telemetry::http_server::trace_requests,
        ))
}

/// Connects to PostgreSQL and Redis and serves until shutdown.
pub async fn run(config: config::Config) -> anyhow::Result<()> {
    let db = Db::connect(&config.database_url, config.db_pool, &MIGRATOR).await?;
    let cache = Cache::new(&config.redis_url, "web:")?;
    let state = AppState {
        db,
        cache,
        http: telemetry::HttpClient::new(Duration::from_secs(10)),
        api: config.api_url.trim_end_matches('/').to_owned(),
        public: config.public_url.trim_end_matches('/').to_owned(),
        secure_cookies: config.secure_cookies,
        session_ttl_secs: config.session_ttl_secs,
    };
    let listener = server::bind(config.listen).await?;
    server::serve(listener, app(state)).await
}

/// The service's entry point, as `socialnet web [FLAGS]` runs it.
pub async fn main(argv: Vec<std::ffi::OsString>) -> std::process::ExitCode {
    common::server::main::<config::Config, _, _>("web", argv, run).await
}
