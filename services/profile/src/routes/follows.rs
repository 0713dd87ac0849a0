//! Follow and unfollow (idempotent `PUT`/`DELETE /api/profiles/{username}/follow`) and
//! the keyset-paginated follower and following lists feed reads for fan-out.

use axum::extract::State;
use common::{AuthUser, Json, Path, Query};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::profiles::{ensure, invalidate};
use super::{Page, ProfileSummary};
use crate::AppState;
use crate::error::{ApiError, Result};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(follow, unfollow))
        .routes(routes!(followers))
        .routes(routes!(following))
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FollowState {
    pub username: String,
    pub following: bool,
    pub follower_count: i64,
}

const USER_ID: &str = "SELECT user_id FROM profiles WHERE username = $1";

async fn user_id(state: &AppState, username: &str) -> Result<Uuid> {
    let db = &state.db;
    db.spans
        .run(
            USER_ID,
            sqlx::query_scalar(USER_ID)
                .bind(username)
                .fetch_optional(&db.pool),
        )
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no user named {username:?}")))
}

const INSERT_FOLLOW: &str =
    "INSERT INTO follows (follower_id, followee_id) VALUES ($1, $2) ON CONFLICT DO NOTHING";
const DELETE_FOLLOW: &str = "DELETE FROM follows WHERE follower_id = $1 AND followee_id = $2";
const BUMP_FOLLOWERS: &str = "UPDATE profiles SET follower_count = follower_count + $2 WHERE user_id = $1 RETURNING follower_count";
const BUMP_FOLLOWING: &str =
    "UPDATE profiles SET following_count = following_count + $2 WHERE user_id = $1";
const FOLLOWER_COUNT: &str = "SELECT follower_count FROM profiles WHERE user_id = $1";

async fn set_follow(
    state: &AppState,
    user: &AuthUser,
    username: &str,
    on: bool,
) -> Result<FollowState> {
    ensure(state, user).await?;
    let target = user_id(state, username).await?;
    // Following yourself is refused; unfollowing yourself is already true.
    if on && target == user.id {
        return Err(ApiError::Conflict("you cannot follow yourself".into()));
    }
    let db = &state.db;
    let mut tx = db.spans.run("BEGIN", db.pool.begin()).await?;
    let (sql, delta) = if on {
        (INSERT_FOLLOW, 1i64)
    } else {
        (DELETE_FOLLOW, -1i64)
    };
    let changed = db
        .spans
        .run(
            sql,
            sqlx::query(sql)
                .bind(user.id)
                .bind(target)
                .execute(&mut *tx),
        )
        .await?
        .rows_affected();
    let follower_count: i64 = if changed == 1 {
        db.spans
            .run(
                BUMP_FOLLOWING,
                sqlx::query(BUMP_FOLLOWING)
                    .bind(user.id)
                    .bind(delta)
                    .execute(&mut *tx),
            )
            .await?;
        db.spans
            .run(
                BUMP_FOLLOWERS,
                sqlx::query_scalar(BUMP_FOLLOWERS)
                    .bind(target)
                    .bind(delta)
                    .fetch_one(&mut *tx),
            )
            .await?
    } else {
        db.spans
            .run(
                FOLLOWER_COUNT,
                sqlx::query_scalar(FOLLOWER_COUNT)
                    .bind(target)
                    .fetch_one(&mut *tx),
            )
            .await?
    };
    db.spans.run("COMMIT", tx.commit()).await?;
    if changed == 1 {
        invalidate(state, &[username, &user.username]).await;
    }
    Ok(FollowState {
        username: username.to_owned(),
        following: on,
        follower_count,
    })
}

/// Follow a user (idempotent).
#[utoipa::path(put, path = "/api/profiles/{username}/follow", tag = "follows",
    security(("bearer" = [])),
    params(("username" = String, Path, description = "the user's name")),
    responses(
        (status = 200, description = "now following", body = FollowState),
        (status = 400, description = "malformed request (JSON, query or path)", body = common::ErrorBody),
        (status = 401, description = "missing, expired or invalid access token", body = common::ErrorBody),
        (status = 404, description = "no user of that name", body = common::ErrorBody),
        (status = 409, description = "that user is you: you cannot follow yourself", body = common::ErrorBody),
        (status = 422, description = "a field is out of range; the message names it", body = common::ErrorBody),
        (status = 503, description = "a dependency (PostgreSQL) is unavailable; retry", body = common::ErrorBody)))]
async fn follow(
    State(state): State<AppState>,
    user: AuthUser,
    Path(username): Path<String>,
) -> Result<Json<FollowState>> {
    set_follow(&state, &user, &username, true).await.map(Json)
}

/// Stop following a user (idempotent).
#[utoipa::path(delete, path = "/api/profiles/{username}/follow", tag = "follows",
    security(("bearer" = [])),
    params(("username" = String, Path, description = "the user's name")),
    responses(
        (status = 200, description = "no longer following", body = FollowState),
        (status = 400, description = "malformed request (JSON, query or path)", body = common::ErrorBody),
        (status = 401, description = "missing, expired or invalid access token", body = common::ErrorBody),
        (status = 404, description = "no user of that name", body = common::ErrorBody),
        (status = 422, description = "a field is out of range; the message names it", body = common::ErrorBody),
        (status = 503, description = "a dependency (PostgreSQL) is unavailable; retry", body = common::ErrorBody)))]
async fn unfollow(
    State(state): State<AppState>,
    user: AuthUser,
    Path(username): Path<String>,
) -> Result<Json<FollowState>> {
    set_follow(&state, &user, &username, false).await.map(Json)
}

/// Paging for follower lists. `limit` is 1–1000 (default 50); feed pages through a
/// whole follower list at 1000 a request when it fans a post out.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// `next_cursor` of the previous page.
    pub cursor: Option<Uuid>,
    /// Page size, 1 to 1000 (default 50).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Only users with at least this many followers (feed asks for the celebrities a
    /// reader follows, whose posts it merges at read time).
    pub min_followers: Option<i64>,
}

impl ListParams {
    fn limit(&self) -> Result<i64> {
        match self.limit {
            None => Ok(50),
            Some(n) if (1..=1000).contains(&n) => Ok(n),
            Some(n) => Err(ApiError::validation(format!(
                "limit must be 1 to 1000 (got {n})"
            ))),
        }
    }
}

const FOLLOWERS: &str = "SELECT p.user_id AS id, p.username, p.display_name, p.follower_count \
     FROM follows f JOIN profiles p ON p.user_id = f.follower_id \
     WHERE f.followee_id = $1 AND ($2::uuid IS NULL OR f.follower_id > $2) AND p.follower_count >= $4 \
     ORDER BY f.follower_id LIMIT $3";
const FOLLOWING: &str = "SELECT p.user_id AS id, p.username, p.display_name, p.follower_count \
     FROM follows f JOIN profiles p ON p.user_id = f.followee_id \
     WHERE f.follower_id = $1 AND ($2::uuid IS NULL OR f.followee_id > $2) AND p.follower_count >= $4 \
     ORDER BY f.followee_id LIMIT $3";

async fn list(
    state: &AppState,
    username: &str,
    params: &ListParams,
    sql: &'static str,
) -> Result<Page<ProfileSummary>> {
    let limit = params.limit()?;
    let id = user_id(state, username).await?;
    let db = &state.db;
    let items: Vec<ProfileSummary> = db
        .spans
        .run(
            sql,
            sqlx::query_as(sql)
                .bind(id)
                .bind(params.cursor)
                .bind(limit)
                .bind(params.min_followers.unwrap_or(0))
                .fetch_all(&db.pool),
        )
        .await?;
    let next_cursor = if items.len() as i64 == limit {
        items.last().map(|p| p.id)
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}

/// Who follows a user, newest first, a page at a time.
#[utoipa::path(get, path = "/api/profiles/{username}/followers", tag = "follows",
    params(("username" = String, Path, description = "the user's name"), ListParams),
    responses(
        (status = 200, description = "one page of followers", body = Page<ProfileSummary>),
        (status = 400, description = "malformed request (JSON, query or path)", body = common::ErrorBody),
        (status = 404, description = "no user of that name", body = common::ErrorBody),
        (status = 422, description = "a field is out of range; the message names it", body = common::ErrorBody),
        (status = 503, description = "a dependency (PostgreSQL) is unavailable; retry", body = common::ErrorBody)))]
async fn followers(
    State(state): State<AppState>,
    Path(username): Path<String>,
    Query(params): Query<ListParams>,
) -> Result<Json<Page<ProfileSummary>>> {
    list(&state, &username, &params, FOLLOWERS).await.map(Json)
}

/// Whom a user follows, newest first, a page at a time.
#[utoipa::path(get, path = "/api/profiles/{username}/following", tag = "follows",
    params(("username" = String, Path, description = "the user's name"), ListParams),
    responses(
        (status = 200, description = "one page of followed users", body = Page<ProfileSummary>),
        (status = 400, description = "malformed request (JSON, query or path)", body = common::ErrorBody),
        (status = 404, description = "no user of that name", body = common::ErrorBody),
        (status = 422, description = "a field is out of range; the message names it", body = common::ErrorBody),
        (status = 503, description = "a dependency (PostgreSQL) is unavailable; retry", body = common::ErrorBody)))]
async fn following(
    State(state): State<AppState>,
    Path(username): Path<String>,
    Query(params): Query<ListParams>,
) -> Result<Json<Page<ProfileSummary>>> {
    list(&state, &username, &params, FOLLOWING).await.map(Json)
}
