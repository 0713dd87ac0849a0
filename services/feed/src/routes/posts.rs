//! Posts: create (with fan-out on write), read, delete, and a user's own posts.
//!
//! Fan-out is the push half of the hybrid timeline: a new post's id is pushed onto the
//! Redis timeline of each follower, unless the author has more followers than
//! `celebrity_threshold` — then the push would cost too much, so nothing is pushed and
//! readers pull that author's posts at read time (see `timeline.rs`). The `feed.fan_out`
//! span shows which way a post went.

use axum::extract::State;
use common::{AuthUser, Json, Path, Query};
use http::StatusCode;
use serde::Deserialize;
use telemetry::attrs;
use tracing::Instrument;

use super::{Page, PageParams, Post};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiError, Result};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(get_post, delete))
        .routes(routes!(user_posts))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPost {
    /// 1 to 500 characters, not all blank.
    #[schema(min_length = 1, max_length = 500, pattern = "[^ \\t\\n\\r]")]
    pub body: String,
    /// Ids of the author's own uploads (`POST /api/media`), processed and ready, up to 4
    /// (an id named twice is shown once).
    #[serde(default)]
    #[schema(max_items = 4)]
    pub media: Vec<uuid::Uuid>,
}

/// The most images one post carries.
pub const MAX_MEDIA: usize = 4;

const INSERT: &str = "INSERT INTO posts (author_id, author_username, body, media) VALUES ($1, $2, $3, $4) \
     RETURNING id, author_id, author_username, body, like_count, comment_count, created_at, media";

/// Publish a post; it reaches followers' home timelines (pushed, or pulled at read
/// time for celebrity authors).
#[utoipa::path(post, path = "/api/feed/posts", tag = "posts",
    security(("bearer" = [])), request_body = NewPost,
    responses(
        (status = 201, description = "the new post", body = Post),
        (status = 400, description = "malformed request (JSON, query or path)", body = common::ErrorBody),
        (status = 401, description = "missing, expired or invalid access token", body = common::ErrorBody),
        (status = 413, description = "body over 64 KiB", body = common::ErrorBody),
        (status = 403, description = "a named image is someone else's upload", body = common::ErrorBody),
        (status = 404, description = "a named image does not exist", body = common::ErrorBody),
        (status = 409, description = "a named image is still being processed", body = common::ErrorBody),
        (status = 422, description = "a field is out of range, or a named image failed processing; the message names it", body = common::ErrorBody),
        (status = 503, description = "a dependency (PostgreSQL, profile, media) is unavailable; retry", body = common::ErrorBody)))]
async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    Json(new): Json<NewPost>,
) -> Result<(StatusCode, Json<Post>)> {
    common::error::check_text("body", &new.body, 1, 500)?;
    let media = attach(&state, &user, &new.media).await?;
    let db = &state.db;
    let post: Post = db
        .spans
        .run(
            INSERT,
            sqlx::query_as(INSERT)
                .bind(user.id)
                .bind(&user.username)
                .bind(&new.body)
                .bind(sqlx::types::Json(&media))
                .fetch_one(&db.pool),
        )
        .await?;
    // The post is stored; a failed fan-out only delays it in followers' timelines until
    // they are rebuilt (TTL), so it is logged, not returned as an error.
    if telemetry::teaching::on(telemetry::teaching::LOST_CONTEXT) {
        fan_out_detached(&state, &user, post.id);
    } else if let Err(e) = fan_out(&state, &user, post.id).await {
        tracing::warn!(post_id = post.id, error = %e, "fan-out failed; followers see the post after their timeline is rebuilt");
    }
    Ok((StatusCode::CREATED, Json(post)))
}

/// The images a new post names, checked with media (each the author's, and ready), in
/// the order given.
async fn attach(
    state: &AppState,
    user: &AuthUser,
    ids: &[uuid::Uuid],
) -> Result<Vec<crate::media_client::PostMedia>> {
    if ids.len() > MAX_MEDIA {
        return Err(ApiError::validation(format!(
            "a post carries at most {MAX_MEDIA} images (got {})",
            ids.len()
        )));
    }
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(ids.len());
    for id in ids.iter().filter(|id| seen.insert(**id)) {
        out.push(
            state
                .media
                .attachable(*id, &user.username, &user.token)
                .await?,
        );
    }
    Ok(out)
}

pub(crate) fn timeline_key(user: uuid::Uuid) -> String {
    format!("tl:{user}")
}

/// The `lost_context` teaching fault: the fan-out is moved to a background task to answer
/// sooner, and the task is spawned bare. Inside it there is no current span, so
/// `feed.fan_out` starts a trace of its own.
///
/// Symptom in the trace: the post's trace has no `feed.fan_out` (and no profile call
/// under it); new traces appear whose root is `feed.fan_out`, with no SERVER span above.
fn fan_out_detached(state: &AppState, author: &AuthUser, post_id: i64) {
    let (state, author) = (state.clone(), author.clone());
    tokio::spawn(
        async move {
            if let Err(e) = fan_out(&state, &author, post_id).await {
                tracing::warn!(post_id, error = %e, "fan-out failed");
            }
        }
        // The bug: nothing here carries the request's span into the task, and `None`
        // makes sure the task does not inherit one by accident either.
        .instrument(tracing::Span::none()),
    );
}

async fn fan_out(state: &AppState, author: &AuthUser, post_id: i64) -> Result<()> {
    let span = tracing::info_span!(
        "feed.fan_out",
        otel.name = "feed.fan_out",
        otel.kind = "internal"
    );
    async {
        let me = state
            .profiles
            .get(&author.username, &author.token)
            .await?
            .ok_or_else(|| ApiError::NotFound("author has no profile".into()))?;
        if me.follower_count > state.settings.celebrity_threshold {
            telemetry::set_current_attribute(attrs::FEED_STRATEGY, "pull");
            telemetry::set_current_attribute(attrs::FEED_FANOUT_COUNT, 0i64);
            return Ok(());
        }
        let followers = state
            .profiles
            .list_all(&author.username, "followers", 0, &author.token)
            .await?;
        telemetry::set_current_attribute(attrs::FEED_STRATEGY, "push");
        telemetry::set_current_attribute(attrs::FEED_FANOUT_COUNT, followers.len() as i64);
        let keys: Vec<String> = followers.iter().map(|f| timeline_key(f.id)).collect();
        let cap = state.settings.timeline_cap as isize;
        let pushed = if telemetry::teaching::on(telemetry::teaching::UNPIPELINED_FANOUT) {
            state.cache.push_one_by_one(&keys, post_id, cap).await
        } else {
            state.cache.push_to_existing(&keys, post_id, cap).await
        };
        pushed.map_err(|e| ApiError::Unavailable(e.to_string()))
    }
    .instrument(span)
    .await
}

const SELECT_ONE: &str = "SELECT id, author_id, author_username, body, like_count, comment_count, created_at, media FROM posts WHERE id = $1";

/// One post.
#[utoipa::path(get, path = "/api/feed/posts/{id}", tag = "posts",
    params(("id" = i64, Path, description = "the post's id")),
    responses(
        (status = 200, description = "the post", body = Post),
        (status = 400, description = "malformed request (JSON, query or path)", body = common::ErrorBody),
        (status = 404, description = "no post with that id", body = common::ErrorBody),
        (status = 503, description = "a dependency (PostgreSQL, profile) is unavailable; retry", body = common::ErrorBody)))]
async fn get_post(State(state): State<AppState>, Path(id): Path<i64>) -> Result<Json<Post>> {
    let db = &state.db;
    db.spans
        .run(
            SELECT_ONE,
            sqlx::query_as(SELECT_ONE).bind(id).fetch_optional(&db.pool),
        )
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no post {id}")))
}

const DELETE: &str = "DELETE FROM posts WHERE id = $1 AND author_id = $2";
const AUTHOR_OF: &str = "SELECT author_id FROM posts WHERE id = $1";

/// Only the author may delete. Timelines keep the id; reads skip posts that are gone.
/// Delete one of your posts.
#[utoipa::path(delete, path = "/api/feed/posts/{id}", tag = "posts",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "the post's id")),
    responses(
        (status = 204, description = "deleted"),
        (status = 400, description = "malformed request (JSON, query or path)", body = common::ErrorBody),
        (status = 401, description = "missing, expired or invalid access token", body = common::ErrorBody),
        (status = 403, description = "only the author may do this", body = common::ErrorBody),
        (status = 404, description = "no post with that id", body = common::ErrorBody),
        (status = 503, description = "a dependency (PostgreSQL, profile) is unavailable; retry", body = common::ErrorBody)))]
async fn delete(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<i64>,
) -> Result<StatusCode> {
    let db = &state.db;
    let deleted = db
        .spans
        .run(
            DELETE,
            sqlx::query(DELETE).bind(id).bind(user.id).execute(&db.pool),
        )
        .await?
        .rows_affected();
    if deleted == 1 {
        return Ok(StatusCode::NO_CONTENT);
    }
    let author: Option<uuid::Uuid> = db
        .spans
        .run(
            AUTHOR_OF,
            sqlx::query_scalar(AUTHOR_OF)
                .bind(id)
                .fetch_optional(&db.pool),
        )
        .await?;
    match author {
        Some(_) => Err(ApiError::Forbidden(
            "only the author can delete a post".into(),
        )),
        None => Err(ApiError::NotFound(format!("no post {id}"))),
    }
}

const BY_USER: &str = "SELECT id, author_id, author_username, body, like_count, comment_count, created_at, media FROM posts \
     WHERE author_username = $1 AND ($2::bigint IS NULL OR id < $2) ORDER BY id DESC LIMIT $3";

/// The `missing_index` teaching fault's version of [`BY_USER`]: a case-insensitive match
/// someone added without an index to serve it. PostgreSQL cannot use
/// `posts_by_author_username` for `lower(author_username)`, so it reads every post.
///
/// Symptom in the trace: this `SELECT posts` span grows with the size of the table, not of
/// the page; its `db.query.text` shows `lower(`; EXPLAIN shows a sequential scan.
const BY_USER_UNINDEXED: &str = "SELECT id, author_id, author_username, body, like_count, comment_count, created_at, media FROM posts \
     WHERE lower(author_username) = lower($1) AND ($2::bigint IS NULL OR id < $2) ORDER BY id DESC LIMIT $3";

/// One author's posts, newest first.
#[utoipa::path(get, path = "/api/feed/users/{username}/posts", tag = "posts",
    params(("username" = String, Path, description = "the author's name"), PageParams),
    responses(
        (status = 200, description = "one page of posts", body = Page<Post>),
        (status = 400, description = "malformed request (JSON, query or path)", body = common::ErrorBody),
        (status = 422, description = "a field is out of range; the message names it", body = common::ErrorBody),
        (status = 503, description = "a dependency (PostgreSQL, profile) is unavailable; retry", body = common::ErrorBody)))]
async fn user_posts(
    State(state): State<AppState>,
    Path(username): Path<String>,
    Query(p): Query<PageParams>,
) -> Result<Json<Page<Post>>> {
    let limit = p.limit()?;
    let db = &state.db;
    let sql = if telemetry::teaching::on(telemetry::teaching::MISSING_INDEX) {
        BY_USER_UNINDEXED
    } else {
        BY_USER
    };
    let items: Vec<Post> = db
        .spans
        .run(
            sql,
            sqlx::query_as(sql)
                .bind(&username)
                .bind(p.cursor)
                .bind(limit)
                .fetch_all(&db.pool),
        )
        .await?;
    let next_cursor = if items.len() as i64 == limit {
        items.last().map(|p| p.id)
    } else {
        None
    };
    Ok(Json(Page { items, next_cursor }))
}
