//! The PostgreSQL handle a service holds: a pool plus the span facts for its queries.
//!
//! Each service owns one database on the shared server; [`Db::connect`] creates it when
//! missing and runs the service's migrations, so a fresh server needs no manual set-up.

use std::time::Duration;

use anyhow::Context as _;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};
use telemetry::db::SqlSpans;

/// Pool size of a service whose queries are few and short (auth, media, messaging,
/// web): every connection is opened at start and is a PostgreSQL backend of ~2 MiB that
/// counts in the stack's memory; feed and profile, the busy ones, keep 8.
pub const QUIET_POOL: u32 = 4;

/// A pool and the span facts for every query made through it.
#[derive(Debug, Clone)]
pub struct Db {
    pub pool: PgPool,
    pub spans: SqlSpans,
}

impl Db {
    /// Connects (creating the database if it does not exist) and migrates.
    pub async fn connect(
        url: &str,
        max_connections: u32,
        migrator: &Migrator,
    ) -> anyhow::Result<Self> {
        let opts: PgConnectOptions = url
            .parse()
            .with_context(|| format!("DATABASE_URL is not a valid PostgreSQL URL: {url}"))?;
        create_database_if_missing(&opts).await?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            // Opened ahead of need: connecting (SCRAM authentication, statement
            // preparation) costs milliseconds a request waits out, so a burst right after
            // a start or a deploy must not pay it.
            .min_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(opts.clone())
            .await
            .with_context(|| format!("could not connect to PostgreSQL at {}", redact(url)))?;
        migrator
            .run(&pool)
            .await
            .context("database migrations failed")?;
        Ok(Self {
            pool,
            spans: SqlSpans::from_url(url),
        })
    }

    /// Readiness: one round trip. Not traced: probes run outside any request, and a
    /// root span per probe would bury real traces.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
    }
}

async fn create_database_if_missing(opts: &PgConnectOptions) -> anyhow::Result<()> {
    let Some(name) = opts.get_database().map(str::to_owned) else {
        return Ok(());
    };
    match opts.connect().await {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("3D000") => {
            let mut admin = opts.clone().database("postgres").connect().await.context(
                "could not connect to the `postgres` database to create this service's database",
            )?;
            let quoted = name.replace('"', "\"\"");
            // The name comes from our own configuration, quoted; it cannot be a bind parameter.
            let create = sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{quoted}\""));
            match sqlx::raw_sql(create).execute(&mut admin).await {
                Ok(_) => Ok(()),
                // Another replica created it at the same moment.
                Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => Ok(()),
                Err(e) => Err(e).with_context(|| format!("could not create database {name}")),
            }
        }
        Err(e) => Err(anyhow::Error::new(e).context("could not connect to PostgreSQL")),
    }
}

/// The URL without its password, for error messages.
pub fn redact(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "<unparseable url>".into(),
    }
}
