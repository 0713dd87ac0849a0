//! `GET /api/feed/timeline`: the caller's home timeline, assembled from two halves.
//!
//! - push: post ids fanned out on write into the caller's Redis list (`LRANGE`);
//! - pull: posts of the celebrities the caller follows (and the caller's own), read from
//!   PostgreSQL at request time, because they were never pushed.
//!
//! A timeline not in Redis (new reader, expired, or Redis flushed) is rebuilt from
//! PostgreSQL and stored again. With Redis down the whole timeline is pulled from
//! PostgreSQL and the span says `cache.bypassed`. `socialnet.feed.strategy` on the server
//! span records which path served the request.

use std::collections::BTreeSet;

use axum::extract::State;
use common::{AuthUser, Json, Query};
use telemetry::attrs;
use uuid::Uuid;

use super::posts::timeline_key;
use super::{Page, PageParams, Post};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::Result;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(timeline))
}

/// The newest posts of several authors. Each author's index range is read only up to
/// the limit (LATERAL top-N), instead of sorting every post of every celebrity followed.
const RECENT_BY_AUTHORS: &str = "SELECT p.id FROM UNNEST($1::uuid[]) AS a(author_id) \
     CROSS JOIN LATERAL (SELECT id FROM posts WHERE posts.author_id = a.author_id \
     AND ($2::bigint IS NULL OR id < $2) ORDER BY id DESC LIMIT $3) AS p \
     ORDER BY p.id DESC LIMIT $3";
const BY_IDS: &str = "SELECT id, author_id, author_username, body, like_count, comment_count, created_at, media FROM posts \
     WHERE id = ANY($1) ORDER BY id DESC";

async fn recent_ids(
    state: &AppState,
    authors: &[Uuid],
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<i64>> {
    if authors.is_empty() {
        return Ok(Vec::new());
    }
    let db = &state.db;
    Ok(db
        .spans
        .run(
            RECENT_BY_AUTHORS,
            sqlx::query_scalar(RECENT_BY_AUTHORS)
                .bind(authors)
                .bind(before)
                .bind(limit)
                .fetch_all(&db.pool),
        )
        .await?)
}

/// The push half from Redis: `Ok(Some(ids))` on a hit, `Ok(None)` when the timeline is not
/// materialised, `Err(())` when Redis is unusable.
/// The first page needs only the newest `limit` ids (the list is newest first); a later
/// page reads the whole list and skips to the cursor.
async fn pushed_ids(
    state: &AppState,
    user: Uuid,
    first_page_limit: Option<i64>,
) -> std::result::Result<Option<Vec<i64>>, ()> {
    let stop = first_page_limit.map_or(-1, |n| n as isize - 1);
    match state.cache.lrange(&timeline_key(user), 0, stop).await {
        Ok(ids) if !ids.is_empty() => Ok(Some(ids)),
        Ok(_) => Ok(None),
        Err(e) => {
            tracing::warn!(error = %e, "timeline cache unavailable; pulling from PostgreSQL");
            Err(())
        }
    }
}

/// Seconds a reader's list of followed celebrities is cached. A new celebrity follow
/// shows up in the timeline within this time.
const CELEBS_TTL: u64 = 60;

/// The celebrities `user` follows: from feed's cache, else asked of profile and cached.
async fn followed_celebrities(state: &AppState, user: &AuthUser) -> Result<Vec<Uuid>> {
    let key = format!("celebs:{}", user.id);
    if let Ok(Some(json)) = state.cache.get(&key).await
        && let Ok(ids) = serde_json::from_str::<Vec<Uuid>>(&json)
    {
        return Ok(ids);
    }
    let celebs = state
        .profiles
        .list_all(
            &user.username,
            "following",
            state.settings.celebrity_threshold + 1,
            &user.token,
        )
        .await?;
    let ids: Vec<Uuid> = celebs.iter().map(|c| c.id).collect();
    let json = serde_json::to_string(&ids).expect("ids serialise");
    if let Err(e) = state.cache.set_ex(&key, &json, CELEBS_TTL).await {
        tracing::warn!(error = %e, "could not cache the followed celebrities");
    }
    Ok(ids)
}

const ONE: &str = "SELECT id, author_id, author_username, body, like_count, comment_count, created_at, media FROM posts \
     WHERE id = $1";

/// The `n_plus_one` teaching fault: the page's posts read one query each, in order,
/// instead of one `WHERE id = ANY($1)` ([`BY_IDS`]).
///
/// Symptom in the trace: a ladder of `SELECT posts` CLIENT spans under
/// `GET /api/feed/timeline`, one per post on the page, each starting when the last ends.
async fn one_by_one(state: &AppState, page: &[i64]) -> Result<Vec<Post>> {
    let db = &state.db;
    let mut items = Vec::with_capacity(page.len());
    for id in page {
        let post: Option<Post> = db
            .spans
            .run(ONE, sqlx::query_as(ONE).bind(id).fetch_optional(&db.pool))
            .await?;
        items.extend(post);
    }
    Ok(items)
}

/// The caller's home timeline: posts of the people they follow, newest first.
#[utoipa::path(get, path = "/api/feed/timeline", tag = "timeline",
    security(("bearer" = [])),
    params(PageParams),
    responses(
        (status = 200, description = "one page of the home timeline", body = Page<Post>),
        (status = 400, description = "malformed request (JSON, query or path)", body = common::ErrorBody),
        (status = 401, description = "missing, expired or invalid access token", body = common::ErrorBody),
        (status = 422, description = "a field is out of range; the message names it", body = common::ErrorBody),
        (status = 503, description = "a dependency (PostgreSQL, profile) is unavailable; retry", body = common::ErrorBody)))]
async fn timeline(
    State(state): State<AppState>,
    user: AuthUser,
    Query(p): Query<PageParams>,
) -> Result<Json<Page<Post>>> {
    let limit = p.limit()?;
    let threshold = state.settings.celebrity_threshold;
    let pushed = pushed_ids(&state, user.id, p.cursor.is_none().then_some(limit)).await;

    // Who must be pulled at read time: celebrities always, everyone when nothing was pushed.
    let (pull_authors, pushed): (Vec<Uuid>, Vec<i64>) = match pushed {
        Ok(Some(ids)) => {
            telemetry::set_current_attribute(attrs::CACHE_HIT, true);
            let celebs = followed_celebrities(&state, &user).await?;
            let strategy = if celebs.is_empty() {
                "push"
            } else {
                "push+pull"
            };
            telemetry::set_current_attribute(attrs::FEED_STRATEGY, strategy);
            (celebs.into_iter().chain([user.id]).collect(), ids)
        }
        Ok(None) => {
            telemetry::set_current_attribute(attrs::CACHE_HIT, false);
            let followees = state
                .profiles
                .list_all(&user.username, "following", 0, &user.token)
                .await?;
            let (celebs, regular): (Vec<_>, Vec<_>) =
                followees.iter().partition(|f| f.follower_count > threshold);
            let regular: Vec<Uuid> = regular.iter().map(|f| f.id).collect();
            let cap = state.settings.timeline_cap as i64;
            let rebuilt = recent_ids(&state, &regular, None, cap).await?;
            if let Err(e) = state
                .cache
                .replace_list(
                    &timeline_key(user.id),
                    &rebuilt,
                    state.settings.timeline_ttl_secs,
                )
                .await
            {
                tracing::warn!(error = %e, "could not store the rebuilt timeline");
            }
            telemetry::set_current_attribute(attrs::FEED_STRATEGY, "rebuild");
            (
                celebs.iter().map(|c| c.id).chain([user.id]).collect(),
                rebuilt,
            )
        }
        Err(()) => {
            telemetry::set_current_attribute(attrs::CACHE_BYPASSED, true);
            telemetry::set_current_attribute(attrs::FEED_STRATEGY, "pull");
            let followees = state
                .profiles
                .list_all(&user.username, "following", 0, &user.token)
                .await?;
            (
                followees.iter().map(|f| f.id).chain([user.id]).collect(),
                Vec::new(),
            )
        }
    };

    let pulled = recent_ids(&state, &pull_authors, p.cursor, limit).await?;
    let merged: BTreeSet<i64> = pushed
        .into_iter()
        .filter(|&id| id > 0 && p.cursor.is_none_or(|c| id < c))
        .chain(pulled)
        .collect();
    let page: Vec<i64> = merged.into_iter().rev().take(limit as usize).collect();
    let items: Vec<Post> = if page.is_empty() {
        Vec::new()
    } else if telemetry::teaching::on(telemetry::teaching::N_PLUS_ONE) {
        one_by_one(&state, &page).await?
    } else {
        let db = &state.db;
        db.spans
            .run(
                BY_IDS,
                sqlx::query_as(BY_IDS).bind(&page).fetch_all(&db.pool),
            )
            .await?
    };
    // Deleted posts leave ids behind in timelines; the cursor still moves past them.
    let next_cursor = if page.len() as i64 == limit {
        page.last().copied()
    } else {
        None
    };
    Ok(Json(Page { items, next_cursor }))
}
