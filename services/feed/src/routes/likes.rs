//! Likes: idempotent `PUT` / `DELETE /api/feed/posts/{id}/like`.

use axum::extract::State;
use common::{AuthUser, Json, Path};
use serde::{Deserialize, Serialize};

use super::lock_post;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::Result;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(like, unlike))
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LikeState {
    pub post_id: i64,
    pub liked: bool,
    pub like_count: i64,
}

const INSERT: &str = "INSERT INTO likes (post_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING";
const DELETE: &str = "DELETE FROM likes WHERE post_id = $1 AND user_id = $2";
const BUMP: &str =
    "UPDATE posts SET like_count = like_count + $2 WHERE id = $1 RETURNING like_count";
const COUNT: &str = "SELECT like_count FROM posts WHERE id = $1";

async fn set_like(state: &AppState, user: &AuthUser, id: i64, on: bool) -> Result<LikeState> {
    let db = &state.db;
    let mut tx = db.spans.run("BEGIN", db.pool.begin()).await?;
    lock_post(db, &mut tx, id).await?;
    let (sql, delta) = if on { (INSERT, 1i64) } else { (DELETE, -1i64) };
    let changed = db
        .spans
        .run(
            sql,
            sqlx::query(sql).bind(id).bind(user.id).execute(&mut *tx),
        )
        .await?
        .rows_affected();
    let like_count: i64 = if changed == 1 {
        db.spans
            .run(
                BUMP,
                sqlx::query_scalar(BUMP)
                    .bind(id)
                    .bind(delta)
                    .fetch_one(&mut *tx),
            )
            .await?
    } else {
        db.spans
            .run(
                COUNT,
                sqlx::query_scalar(COUNT).bind(id).fetch_one(&mut *tx),
            )
            .await?
    };
    db.spans.run("COMMIT", tx.commit()).await?;
    Ok(LikeState {
        post_id: id,
        liked: on,
        like_count,
    })
}

/// Like a post (idempotent).
#[utoipa::path(put, path = "/api/feed/posts/{id}/like", tag = "likes",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "the post's id")),
    responses(
        (status = 200, description = "liked", body = LikeState),
        (status = 400, description = "malformed request (JSON, query or path)", body = common::ErrorBody),
        (status = 401, description = "missing, expired or invalid access token", body = common::ErrorBody),
        (status = 404, description = "no post with that id", body = common::ErrorBody),
        (status = 503, description = "a dependency (PostgreSQL, profile) is unavailable; retry", body = common::ErrorBody)))]
async fn like(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<i64>,
) -> Result<Json<LikeState>> {
    set_like(&state, &user, id, true).await.map(Json)
}

/// Take a like back (idempotent).
#[utoipa::path(delete, path = "/api/feed/posts/{id}/like", tag = "likes",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "the post's id")),
    responses(
        (status = 200, description = "not liked", body = LikeState),
        (status = 400, description = "malformed request (JSON, query or path)", body = common::ErrorBody),
        (status = 401, description = "missing, expired or invalid access token", body = common::ErrorBody),
        (status = 404, description = "no post with that id", body = common::ErrorBody),
        (status = 503, description = "a dependency (PostgreSQL, profile) is unavailable; retry", body = common::ErrorBody)))]
async fn unlike(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<i64>,
) -> Result<Json<LikeState>> {
    set_like(&state, &user, id, false).await.map(Json)
}
