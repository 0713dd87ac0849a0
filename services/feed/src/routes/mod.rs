//! Feed's HTTP routes, one file per resource.

pub mod comments;
pub mod likes;
pub mod posts;
pub mod timeline;

use chrono::{DateTime, Utc};
use common::Db;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{ApiError, Result};

#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Post {
    pub id: i64,
    pub author_id: Uuid,
    pub author_username: String,
    pub body: String,
    pub like_count: i64,
    pub comment_count: i64,
    pub created_at: DateTime<Utc>,
    /// Its images (up to 4), with their thumbnails.
    #[schema(value_type = Vec<crate::media_client::PostMedia>)]
    pub media: sqlx::types::Json<Vec<crate::media_client::PostMedia>>,
}

/// One page of posts or comments; pass `next_cursor` back as `cursor`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<i64>,
}

/// `cursor` (exclusive, an id) and `limit` (1–100, default 20).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageParams {
    /// `next_cursor` of the previous page.
    pub cursor: Option<i64>,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

impl PageParams {
    pub fn limit(&self) -> Result<i64> {
        common::error::check_limit(self.limit, 20, 100)
    }
}

const POST_EXISTS: &str = "SELECT EXISTS (SELECT 1 FROM posts WHERE id = $1)";
const LOCK_POST: &str = "SELECT id FROM posts WHERE id = $1 FOR NO KEY UPDATE";

/// Inside a write's transaction, locks the post's row first (or says it does not exist).
/// Every write that touches a post and its likes or comments takes this lock before
/// anything else, as `DELETE FROM posts` does, so concurrent writes queue on one row in
/// one order: no deadlock, and no insert into a post deleted meanwhile.
pub(crate) async fn lock_post(
    db: &Db,
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    id: i64,
) -> Result<()> {
    let found: Option<i64> = db
        .spans
        .run(
            LOCK_POST,
            sqlx::query_scalar(LOCK_POST)
                .bind(id)
                .fetch_optional(&mut **tx),
        )
        .await?;
    found
        .map(|_| ())
        .ok_or_else(|| ApiError::NotFound(format!("no post {id}")))
}

pub(crate) async fn ensure_post(db: &Db, id: i64) -> Result<()> {
    let exists: bool = db
        .spans
        .run(
            POST_EXISTS,
            sqlx::query_scalar(POST_EXISTS).bind(id).fetch_one(&db.pool),
        )
        .await?;
    if exists {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!("no post {id}")))
    }
}
