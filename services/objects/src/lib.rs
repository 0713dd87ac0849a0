//! The stack's object store: an S3-compatible server, `s3s-fs` (objects are files under
//! one root directory, buckets are its subdirectories), with SigV4 authentication by one
//! access key. `socialnet objects` runs it; media talks to it over the S3 API, exactly as
//! it would talk to MinIO or AWS (official-image mode runs MinIO in its place).
//!
//! It is the stack's storage, not a service of the social network: no gateway route, no
//! spans of its own (the services' CLIENT spans name every call, with the AWS S3
//! attributes).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;

/// The object store's settings, from flags or environment variables.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "objects", version)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "OBJECTS_LISTEN", default_value = "127.0.0.1:9000")]
    pub listen: SocketAddr,
    /// Directory holding the buckets (created if missing).
    #[arg(long, env = "OBJECTS_ROOT")]
    pub root: PathBuf,
    /// Access key id clients sign with.
    #[arg(long, env = "OBJECTS_ACCESS_KEY")]
    pub access_key: String,
    /// Its secret key (from the environment: a flag would show in `ps`).
    #[arg(long, env = "OBJECTS_SECRET_KEY", hide_env_values = true)]
    pub secret_key: String,
    /// Buckets to create at start when missing, comma-separated.
    #[arg(
        long,
        env = "OBJECTS_BUCKETS",
        default_value = "",
        value_delimiter = ','
    )]
    pub buckets: Vec<String>,
}

/// The S3 service over `config.root`, its buckets made.
pub fn service(config: &Config) -> anyhow::Result<s3s::service::S3Service> {
    std::fs::create_dir_all(&config.root)
        .with_context(|| format!("could not create {}", config.root.display()))?;
    for b in config.buckets.iter().filter(|b| !b.is_empty()) {
        std::fs::create_dir_all(config.root.join(b))
            .with_context(|| format!("could not create bucket {b}"))?;
    }
    let fs = s3s_fs::FileSystem::new(&config.root)
        .map_err(|e| anyhow::anyhow!("could not open {}: {e:?}", config.root.display()))?;
    let mut b = s3s::service::S3ServiceBuilder::new(fs);
    b.set_auth(s3s::auth::SimpleAuth::from_single(
        config.access_key.clone(),
        config.secret_key.clone(),
    ));
    Ok(b.build())
}

/// The S3 API as a router: every path is S3's.
pub fn router(config: &Config) -> anyhow::Result<axum::Router> {
    let s3 = service(config)?;
    Ok(
        axum::Router::new().fallback_service(axum::error_handling::HandleError::new(
            s3,
            |e: s3s::HttpError| async move {
                tracing::warn!(error = ?e, "the object store failed a request");
                http::StatusCode::INTERNAL_SERVER_ERROR
            },
        )),
    )
}

/// Serves until Ctrl-C or SIGTERM.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let app = router(&config)?;
    let listener = common::server::bind(config.listen).await?;
    tracing::info!(root = %config.root.display(), "objects: serving S3");
    axum::serve(listener, app)
        .with_graceful_shutdown(telemetry::shutdown_signal())
        .await
        .context("server failed")
}

/// The entry point, as `socialnet objects [FLAGS]` runs it.
pub async fn main(argv: Vec<std::ffi::OsString>) -> std::process::ExitCode {
    common::server::main::<Config, _, _>("objects", argv, run).await
}
