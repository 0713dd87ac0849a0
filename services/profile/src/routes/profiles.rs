//! `GET /api/profiles/{username}`, `GET` and `PATCH /api/profiles/me`, with the
//! cache-aside read: Redis first, PostgreSQL on a miss, the result cached for
//! `cache_ttl_secs`; writes invalidate. The server span records `cache.hit`, or
//! `cache.bypassed` when Redis is down and the read went straight to PostgreSQL.

use axum::extract::State;
use chrono::{DateTime, Utc};
use common::error::check_len;
use common::{AuthUser, Json, Path};
use serde::{Deserialize, Serialize};
use telemetry::attrs;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiError, Result};

#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Profile {
    pub id: Uuid,
    pub username: String,
    pub display_name: String,
    pub bio: String,
    pub follower_count: i64,
    pub following_count: i64,
    pub created_at: DateTime<Utc>,
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_me, update_me))
        .routes(routes!(get_profile))
}

pub(crate) fn cache_key(username: &str) -> String {
    format!("p:{username}")
}

const SELECT_BY_USERNAME: &str = "SELECT user_id AS id, username, display_name, bio, follower_count, following_count, created_at \
     FROM profiles WHERE username = $1";

/// Cache-aside read of one profile.
pub(crate) async fn load(state: &AppState, username: &str) -> Result<Option<Profile>> {
    let key = cache_key(username);
    let mut cache_up = true;
    match state.cache.get(&key).await {
        Ok(Some(json)) => {
            if let Ok(p) = serde_json::from_str::<Profile>(&json) {
                telemetry::set_current_attribute(attrs::CACHE_HIT, true);
                return Ok(Some(p));
            }
            telemetry::set_current_attribute(attrs::CACHE_HIT, false);
        }
        Ok(None) => telemetry::set_current_attribute(attrs::CACHE_HIT, false),
        Err(e) => {
            cache_up = false;
            telemetry::set_current_attribute(attrs::CACHE_BYPASSED, true);
            tracing::warn!(error = %e, "profile cache unavailable; reading PostgreSQL");
        }
    }
    let db = &state.db;
    let profile: Option<Profile> = db
        .spans
        .run(
            SELECT_BY_USERNAME,
            sqlx::query_as(SELECT_BY_USERNAME)
                .bind(username)
                .fetch_optional(&db.pool),
        )
        .await?;
    if cache_up && let Some(p) = &profile {
        let json = serde_json::to_string(p).expect("a profile always serialises");
        if let Err(e) = state.cache.set_ex(&key, &json, state.cache_ttl_secs).await {
            tracing::warn!(error = %e, "could not fill the profile cache");
        }
    }
    Ok(profile)
}

/// Drops cached copies after a write; a failure only means a stale read until the TTL.
pub(crate) async fn invalidate(state: &AppState, usernames: &[&str]) {
    let keys: Vec<String> = usernames.iter().map(|u| cache_key(u)).collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    if let Err(e) = state.cache.del(&refs).await {
        tracing::warn!(error = %e, "could not invalidate cached profiles; they expire by TTL");
    }
}

/// One user's profile (cache-aside: Redis, then PostgreSQL).
#[utoipa::path(get, path = "/api/profiles/{username}", tag = "profiles",
    params(("username" = String, Path, description = "the user's name")),
    responses(
        (status = 200, description = "the profile", body = Profile),
        (status = 400, description = "malformed request (JSON, query or path)", body = common::ErrorBody),
        (status = 404, description = "no user of that name", body = common::ErrorBody),
        (status = 503, description = "a dependency (PostgreSQL) is unavailable; retry", body = common::ErrorBody)))]
async fn get_profile(
    State(state): State<AppState>,
    Path(username): Path<String>,
) -> Result<Json<Profile>> {
    load(&state, &username)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no user named {username:?}")))
}

/// The caller's own profile.
#[utoipa::path(get, path = "/api/profiles/me", tag = "profiles",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the caller's profile", body = Profile),
        (status = 401, description = "missing, expired or invalid access token", body = common::ErrorBody),
        (status = 404, description = "the caller has no profile yet", body = common::ErrorBody),
        (status = 503, description = "a dependency (PostgreSQL) is unavailable; retry", body = common::ErrorBody)))]
async fn get_me(State(state): State<AppState>, user: AuthUser) -> Result<Json<Profile>> {
    load(&state, &user.username)
        .await?
        .map(Json)
        .ok_or_else(|| {
            ApiError::NotFound("you have no profile yet: PATCH /api/profiles/me creates it".into())
        })
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileUpdate {
    pub display_name: Option<String>,
    pub bio: Option<String>,
}

const UPSERT: &str = "INSERT INTO profiles (user_id, username, display_name, bio) \
     VALUES ($1, $2, COALESCE($3, ''), COALESCE($4, '')) \
     ON CONFLICT (user_id) DO UPDATE SET display_name = COALESCE($3, profiles.display_name), \
     bio = COALESCE($4, profiles.bio), updated_at = now() \
     RETURNING user_id AS id, username, display_name, bio, follower_count, following_count, created_at";

/// Creates the caller's profile on first call (auth calls this at registration) and
/// updates the given fields after that.
#[utoipa::path(patch, path = "/api/profiles/me", tag = "profiles",
    security(("bearer" = [])),
    request_body = ProfileUpdate,
    responses(
        (status = 200, description = "the updated profile", body = Profile),
        (status = 400, description = "malformed request (JSON, query or path)", body = common::ErrorBody),
        (status = 401, description = "missing, expired or invalid access token", body = common::ErrorBody),
        (status = 413, description = "body over 64 KiB", body = common::ErrorBody),
        (status = 422, description = "a field is out of range; the message names it", body = common::ErrorBody),
        (status = 503, description = "a dependency (PostgreSQL) is unavailable; retry", body = common::ErrorBody)))]
async fn update_me(
    State(state): State<AppState>,
    user: AuthUser,
    Json(update): Json<ProfileUpdate>,
) -> Result<Json<Profile>> {
    if let Some(d) = &update.display_name {
        check_len("display_name", d, 0, 64)?;
    }
    if let Some(b) = &update.bio {
        check_len("bio", b, 0, 280)?;
    }
    let db = &state.db;
    let profile: Profile = db
        .spans
        .run(
            UPSERT,
            sqlx::query_as(UPSERT)
                .bind(user.id)
                .bind(&user.username)
                .bind(&update.display_name)
                .bind(&update.bio)
                .fetch_one(&db.pool),
        )
        .await?;
    invalidate(&state, &[&user.username]).await;
    Ok(Json(profile))
}

const ENSURE: &str =
    "INSERT INTO profiles (user_id, username) VALUES ($1, $2) ON CONFLICT (user_id) DO NOTHING";

/// Makes sure the caller has a profile row (following someone needs one).
pub(crate) async fn ensure(state: &AppState, user: &AuthUser) -> Result<()> {
    let db = &state.db;
    db.spans
        .run(
            ENSURE,
            sqlx::query(ENSURE)
                .bind(user.id)
                .bind(&user.username)
                .execute(&db.pool),
        )
        .await?;
    Ok(())
}
