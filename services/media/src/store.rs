//! Media rows and the processing queue in PostgreSQL.

use std::collections::HashMap;

use common::Db;
use serde::Serialize;
use uuid::Uuid;

use crate::error::Result;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Row {
    pub id: Uuid,
    pub owner: String,
    pub kind: String,
    pub sha256: String,
    pub bytes: i64,
    pub status: String,
    pub reason: Option<String>,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub variants: Vec<String>,
    pub duration_ms: Option<i64>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// The columns of a `Row`, in its order.
const COLUMNS: &str = "id, owner, kind, sha256, bytes, status, reason, width, height, variants, duration_ms, created_at";

/// A new upload: the row and its job, in one statement (one transaction).
pub struct NewMedia<'a> {
    pub owner: &'a str,
    pub kind: &'a str,
    pub sha256: &'a str,
    pub bytes: i64,
    pub width: i32,
    pub height: i32,
    /// A video's length.
    pub duration_ms: Option<i64>,
    pub context: &'a HashMap<String, String>,
}

/// The new row, as stored. The statement holds the original's lock (shared) while it
/// inserts, so the sweeper, which holds it alone while it looks for rows and deletes,
/// cannot delete an original between an upload's check that it exists and its row.
pub async fn create(db: &Db, m: NewMedia<'_>) -> Result<Row> {
    static INSERT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "WITH new_media AS (\
               INSERT INTO media (id, owner, kind, sha256, bytes, width, height, duration_ms) \
               SELECT $1, $2, $3, $4, $5, $6, $7, $9 \
               FROM (SELECT pg_advisory_xact_lock_shared(hashtextextended($4, 0))) AS original_lock \
               RETURNING {COLUMNS}), \
             job AS (INSERT INTO media_jobs (media_id, context) SELECT id, $8 FROM new_media) \
             SELECT * FROM new_media"
        )
    });
    let context = serde_json::to_value(m.context).unwrap_or_default();
    Ok(db
        .spans
        .run(
            INSERT.as_str(),
            sqlx::query_as::<_, Row>(INSERT.as_str())
                .bind(Uuid::now_v7())
                .bind(m.owner)
                .bind(m.kind)
                .bind(m.sha256)
                .bind(m.bytes)
                .bind(m.width)
                .bind(m.height)
                .bind(&context)
                .bind(m.duration_ms)
                .fetch_one(&db.pool),
        )
        .await?)
}

pub async fn one(db: &Db, id: Uuid) -> Result<Option<Row>> {
    static ONE: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| format!("SELECT {COLUMNS} FROM media WHERE id = $1"));
    Ok(db
        .spans
        .run(
            ONE.as_str(),
            sqlx::query_as::<_, Row>(ONE.as_str())
                .bind(id)
                .fetch_optional(&db.pool),
        )
        .await?)
}

/// A leased job.
#[derive(Debug, sqlx::FromRow)]
pub struct Job {
    pub media_id: Uuid,
    pub attempts: i32,
    pub context: serde_json::Value,
    pub kind: String,
    pub sha256: String,
    pub duration_ms: Option<i64>,
}

/// Leases the oldest job nobody holds, for `lease_secs`; `None` when there is none.
///
/// Not traced: an idle worker asks twice a second, and a root span per ask would bury
/// real traces (as the readiness probes are not traced). What a leased job does is
/// traced, from its CONSUMER span on.
pub async fn lease(db: &Db, lease_secs: i64) -> Result<Option<Job>> {
    const LEASE: &str = "WITH next AS (\
           SELECT media_id FROM media_jobs WHERE lease_until <= now() \
           ORDER BY lease_until LIMIT 1 FOR UPDATE SKIP LOCKED) \
         UPDATE media_jobs j SET attempts = j.attempts + 1, \
           lease_until = now() + make_interval(secs => $1) \
         FROM next, media m WHERE j.media_id = next.media_id AND m.id = j.media_id \
         RETURNING j.media_id, j.attempts, j.context, m.kind, m.sha256, m.duration_ms";
    Ok(sqlx::query_as::<_, Job>(LEASE)
        .bind(lease_secs as f64)
        .fetch_optional(&db.pool)
        .await?)
}

/// The job is done: the media is ready with its variants, and the job is gone. Only a
/// pending row changes, so a job done twice (a lease that ran out under a slow worker)
/// is recorded once.
pub async fn finish(db: &Db, id: Uuid, variants: &[String]) -> Result<bool> {
    const FINISH: &str = "WITH done AS (DELETE FROM media_jobs WHERE media_id = $1) \
         UPDATE media SET status = 'ready', variants = $2 \
         WHERE id = $1 AND status = 'pending' RETURNING id";
    Ok(db
        .spans
        .run(
            FINISH,
            sqlx::query_scalar::<_, Uuid>(FINISH)
                .bind(id)
                .bind(variants)
                .fetch_optional(&db.pool),
        )
        .await?
        .is_some())
}

/// The job failed for good: the media is failed with `reason`, and the job is gone.
pub async fn fail(db: &Db, id: Uuid, reason: &str) -> Result<()> {
    const FAIL: &str = "WITH done AS (DELETE FROM media_jobs WHERE media_id = $1) \
         UPDATE media SET status = 'failed', reason = $2 WHERE id = $1 AND status = 'pending'";
    db.spans
        .run(
            FAIL,
            sqlx::query(FAIL).bind(id).bind(reason).execute(&db.pool),
        )
        .await?;
    Ok(())
}

/// The job is given back to be tried again after `secs` (the store was unavailable).
pub async fn retry_later(db: &Db, id: Uuid, secs: i64) -> Result<()> {
    const LATER: &str =
        "UPDATE media_jobs SET lease_until = now() + make_interval(secs => $2) WHERE media_id = $1";
    db.spans
        .run(
            LATER,
            sqlx::query(LATER)
                .bind(id)
                .bind(secs as f64)
                .execute(&db.pool),
        )
        .await?;
    Ok(())
}

/// The public view of a media row.
#[derive(Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Media {
    pub id: Uuid,
    pub owner: String,
    /// `jpg`, `png`, `webp`, `gif`, `mp4`, `webm`.
    pub kind: String,
    /// `pending` (being processed), `ready`, or `failed` (see `reason`).
    pub status: String,
    pub reason: Option<String>,
    pub bytes: i64,
    pub width: Option<i32>,
    pub height: Option<i32>,
    /// A video's length, in milliseconds.
    pub duration_ms: Option<i64>,
    /// The original, as uploaded.
    pub url: String,
    /// Variant name (`160`, `640`) → its URL, once ready; for a video, these are its
    /// poster frame's.
    pub variants: std::collections::BTreeMap<String, String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl Row {
    pub fn public(self, prefix: &str) -> Media {
        let base = format!("{prefix}/{}", self.sha256);
        Media {
            url: format!("{base}/original.{}", self.kind),
            variants: self
                .variants
                .iter()
                .map(|v| {
                    let size = v.split('.').next().unwrap_or(v).to_owned();
                    (size, format!("{base}/{v}"))
                })
                .collect(),
            id: self.id,
            owner: self.owner,
            kind: self.kind,
            status: self.status,
            reason: self.reason,
            bytes: self.bytes,
            width: self.width,
            height: self.height,
            duration_ms: self.duration_ms,
            created_at: self.created_at,
        }
    }
}

/// Of `shas`, those no media row points at.
pub async fn unreferenced(db: &Db, shas: &[String]) -> Result<Vec<String>> {
    const UNREFERENCED: &str = "SELECT s FROM unnest($1::text[]) AS s \
         WHERE NOT EXISTS (SELECT 1 FROM media WHERE sha256 = s)";
    Ok(db
        .spans
        .run(
            UNREFERENCED,
            sqlx::query_scalar::<_, String>(UNREFERENCED)
                .bind(shas)
                .fetch_all(&db.pool),
        )
        .await?)
}

/// Runs `delete` for an original while holding its lock alone, if still no row points
/// at it: an upload's row, which takes the lock shared, waits meanwhile, and its upload
/// then finds the object gone and stores it again. True when `delete` ran.
pub async fn delete_if_unreferenced<F, Fut>(db: &Db, sha: &str, delete: F) -> Result<bool>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    const LOCK: &str = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))";
    const REFERENCED: &str = "SELECT EXISTS (SELECT 1 FROM media WHERE sha256 = $1)";
    let mut tx = db.pool.begin().await?;
    db.spans
        .run(LOCK, sqlx::query(LOCK).bind(sha).execute(&mut *tx))
        .await?;
    let referenced: bool = db
        .spans
        .run(
            REFERENCED,
            sqlx::query_scalar(REFERENCED).bind(sha).fetch_one(&mut *tx),
        )
        .await?;
    if referenced {
        return Ok(false);
    }
    let deleted = delete().await;
    tx.commit().await?;
    Ok(deleted)
}
