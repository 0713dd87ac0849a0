//! Media's settings, from flags or environment variables.

use std::net::SocketAddr;

/// The media service: uploads, processing into thumbnails, and serving.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "media", version)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "MEDIA_LISTEN", default_value = "127.0.0.1:8085")]
    pub listen: SocketAddr,
    /// PostgreSQL URL of media's own database (created if missing).
    #[arg(long, env = "MEDIA_DATABASE_URL")]
    pub database_url: String,
    /// Redis URL (token revocation checks).
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
    #[arg(long, env = "MEDIA_DB_POOL", default_value_t = common::db::QUIET_POOL)]
    pub db_pool: u32,
    #[command(flatten)]
    pub store: StoreConfig,
    #[command(flatten)]
    pub limits: Limits,
    /// Jobs processed at once by this replica's worker.
    #[arg(long, env = "MEDIA_WORKERS", default_value_t = 1)]
    pub workers: usize,
    /// Seconds a worker holds a job before another replica may take it again (a worker
    /// that died mid-job lets it run out).
    #[arg(long, env = "MEDIA_JOB_LEASE", default_value_t = 60)]
    pub job_lease_secs: i64,
    #[command(flatten)]
    pub sweep: SweepConfig,
    /// The ffmpeg program (video posters).
    #[arg(long, env = "MEDIA_FFMPEG", default_value = "ffmpeg")]
    pub ffmpeg: String,
    /// The ffprobe program (video checks).
    #[arg(long, env = "MEDIA_FFPROBE", default_value = "ffprobe")]
    pub ffprobe: String,
    /// Where uploads of video are spooled while they arrive (the system's temporary
    /// directory unless set).
    #[arg(long, env = "MEDIA_SPOOL_DIR")]
    pub spool_dir: Option<std::path::PathBuf>,
}

/// The sweeper: objects no media row points at (left by an upload that crashed between
/// the store and the database) are removed once they are old enough that no upload can
/// still be on its way to writing their row.
#[derive(Debug, Clone, clap::Args)]
pub struct SweepConfig {
    /// Seconds between sweeps (0: never).
    #[arg(long, env = "MEDIA_SWEEP_INTERVAL", default_value_t = 600)]
    pub interval_secs: u64,
    /// How old an unreferenced object must be before it is removed, in seconds.
    #[arg(long, env = "MEDIA_SWEEP_GRACE", default_value_t = 3600)]
    pub grace_secs: u64,
}

/// The S3-compatible object store.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreConfig {
    /// Its endpoint URL.
    #[arg(
        long,
        env = "MEDIA_S3_ENDPOINT",
        default_value = "http://127.0.0.1:9000"
    )]
    pub endpoint: String,
    #[arg(long, env = "MEDIA_S3_BUCKET", default_value = "media")]
    pub bucket: String,
    #[arg(long, env = "MEDIA_S3_ACCESS_KEY")]
    pub access_key: String,
    #[arg(long, env = "MEDIA_S3_SECRET_KEY", hide_env_values = true)]
    pub secret_key: String,
}

/// What an upload may be.
#[derive(Debug, Clone, clap::Args)]
pub struct Limits {
    /// Largest image, in bytes.
    #[arg(long, env = "MEDIA_MAX_IMAGE_BYTES", default_value_t = 10 * 1024 * 1024)]
    pub max_image_bytes: usize,
    /// Largest video (MP4 or WebM), in bytes: spooled to disk as it arrives, never held
    /// in memory.
    #[arg(long, env = "MEDIA_MAX_VIDEO_BYTES", default_value_t = 100 * 1024 * 1024)]
    pub max_video_bytes: usize,
    /// Largest width or height an image may declare, in pixels: checked from its header,
    /// before any pixel is decoded.
    #[arg(long, env = "MEDIA_MAX_SIDE", default_value_t = 12_000)]
    pub max_side: u32,
    /// Most memory one decode may allocate, in bytes.
    #[arg(long, env = "MEDIA_MAX_DECODE_ALLOC", default_value_t = 512 * 1024 * 1024)]
    pub max_decode_alloc: u64,
    /// Seconds one processing job may take.
    #[arg(long, env = "MEDIA_JOB_TIMEOUT", default_value_t = 30)]
    pub job_timeout_secs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_image_bytes: 10 * 1024 * 1024,
            max_video_bytes: 100 * 1024 * 1024,
            max_side: 12_000,
            max_decode_alloc: 512 * 1024 * 1024,
            job_timeout_secs: 30,
        }
    }
}
