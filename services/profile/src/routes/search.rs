//! `GET /api/profiles/search?q=`: username prefix and trigram similarity over
//! username and display name (PostgreSQL `pg_trgm`, GIN-indexed).

use axum::extract::State;
use common::error::check_len;
use common::{Json, Query};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ProfileSummary;
use crate::AppState;
use crate::error::{ApiError, Result};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(search))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SearchParams {
    /// Text to find in usernames and display names (1 to 64 characters).
    #[param(min_length = 1, max_length = 64)]
    pub q: String,
    /// Most results, 1 to 50 (default 20).
    #[param(minimum = 1, maximum = 50)]
    pub limit: Option<i64>,
}

const SEARCH: &str = "SELECT user_id AS id, username, display_name, follower_count FROM profiles \
     WHERE (username || ' ' || display_name) ILIKE $1 OR (username || ' ' || display_name) % $2 \
     ORDER BY (username ILIKE $3) DESC, similarity(username || ' ' || display_name, $2) DESC, follower_count DESC \
     LIMIT $4";

/// Escapes LIKE wildcards so user input matches literally.
fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// Users whose name contains or resembles `q`, best matches first.
#[utoipa::path(get, path = "/api/profiles/search", tag = "search",
    params(SearchParams),
    responses(
        (status = 200, description = "matching users", body = Vec<ProfileSummary>),
        (status = 400, description = "malformed request (JSON, query or path)", body = common::ErrorBody),
        (status = 422, description = "a field is out of range; the message names it", body = common::ErrorBody),
        (status = 503, description = "a dependency (PostgreSQL) is unavailable; retry", body = common::ErrorBody)))]
async fn search(
    State(state): State<AppState>,
    Query(p): Query<SearchParams>,
) -> Result<Json<Vec<ProfileSummary>>> {
    let q = p.q.trim();
    check_len("q", q, 1, 64)?;
    let limit = p.limit.unwrap_or(20);
    if !(1..=50).contains(&limit) {
        return Err(ApiError::validation(format!(
            "limit must be 1 to 50 (got {limit})"
        )));
    }
    let escaped = like_escape(q);
    let db = &state.db;
    let rows = db
        .spans
        .run(
            SEARCH,
            sqlx::query_as(SEARCH)
                .bind(format!("%{escaped}%"))
                .bind(q)
                .bind(format!("{escaped}%"))
                .bind(limit)
                .fetch_all(&db.pool),
        )
        .await?;
    Ok(Json(rows))
}
