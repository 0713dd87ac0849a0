//! Comments: `POST` and `GET /api/feed/posts/{id}/comments` (oldest first, keyset pages).

use axum::extract::State;
use chrono::{DateTime, Utc};
use common::{AuthUser, Json, Path, Query};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Page, PageParams, ensure_post, lock_post};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::Result;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create, list))
}

#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Comment {
    pub id: i64,
    pub post_id: i64,
    pub author_id: Uuid,
    pub author_username: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewComment {
    /// 1 to 500 characters, not all blank.
    #[schema(min_length = 1, max_length = 500, pattern = "[^ \\t\\n\\r]")]
    pub body: String,
}

const INSERT: &str = "INSERT INTO comments (post_id, author_id, author_username, body) VALUES ($1, $2, $3, $4) \
     RETURNING id, post_id, author_id, author_username, body, created_at";
const BUMP: &str = "UPDATE posts SET comment_count = comment_count + 1 WHERE id = $1";
const LIST: &str = "SELECT id, post_id, author_id, author_username, body, created_at FROM comments \
     WHERE post_id = $1 AND ($2::bigint IS NULL OR id > $2) ORDER BY id LIMIT $3";

/// Comment on a post.
#[utoipa::path(post, path = "/api/feed/posts/{id}/comments", tag = "comments",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "the post's id")),
    request_body = NewComment,
    responses(
        (status = 201, description = "the new comment", body = Comment),
        (status = 400, description = "malformed request (JSON, query or path)", body = common::ErrorBody),
        (status = 401, description = "missing, expired or invalid access token", body = common::ErrorBody),
        (status = 404, description = "no post with that id", body = common::ErrorBody),
        (status = 413, description = "body over 64 KiB", body = common::ErrorBody),
        (status = 422, description = "a field is out of range; the message names it", body = common::ErrorBody),
        (status = 503, description = "a dependency (PostgreSQL, profile) is unavailable; retry", body = common::ErrorBody)))]
async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<i64>,
    Json(new): Json<NewComment>,
) -> Result<(StatusCode, Json<Comment>)> {
    common::error::check_text("body", &new.body, 1, 500)?;
    let db = &state.db;
    let mut tx = db.spans.run("BEGIN", db.pool.begin()).await?;
    lock_post(db, &mut tx, id).await?;
    let comment: Comment = db
        .spans
        .run(
            INSERT,
            sqlx::query_as(INSERT)
                .bind(id)
                .bind(user.id)
                .bind(&user.username)
                .bind(&new.body)
                .fetch_one(&mut *tx),
        )
        .await?;
    db.spans
        .run(BUMP, sqlx::query(BUMP).bind(id).execute(&mut *tx))
        .await?;
    db.spans.run("COMMIT", tx.commit()).await?;
    Ok((StatusCode::CREATED, Json(comment)))
}

/// A post's comments, oldest first.
#[utoipa::path(get, path = "/api/feed/posts/{id}/comments", tag = "comments",
    params(("id" = i64, Path, description = "the post's id"), PageParams),
    responses(
        (status = 200, description = "one page of comments", body = Page<Comment>),
        (status = 400, description = "malformed request (JSON, query or path)", body = common::ErrorBody),
        (status = 404, description = "no post with that id", body = common::ErrorBody),
        (status = 422, description = "a field is out of range; the message names it", body = common::ErrorBody),
        (status = 503, description = "a dependency (PostgreSQL, profile) is unavailable; retry", body = common::ErrorBody)))]
async fn list(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(p): Query<PageParams>,
) -> Result<Json<Page<Comment>>> {
    let limit = p.limit()?;
    let db = &state.db;
    ensure_post(db, id).await?;
    let items: Vec<Comment> = db
        .spans
        .run(
            LIST,
            sqlx::query_as(LIST)
                .bind(id)
                .bind(p.cursor)
                .bind(limit)
                .fetch_all(&db.pool),
        )
        .await?;
    let next_cursor = if items.len() as i64 == limit {
        items.last().map(|c| c.id)
    } else {
        None
    };
    Ok(Json(Page { items, next_cursor }))
}
