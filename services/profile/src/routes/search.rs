//! `GET /api/profiles/search?q=`: username prefix and trigram similarity over
//! username and display name (PostgreSQL `pg_trgm`, GIN-indexed).

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use common::error::check_len;
use common::{Json, Query};
use serde::Deserialize;

use super::ProfileSummary;
use crate::AppState;
use crate::error::{ApiError, Result};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/profiles/search", get(search))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchParams {
    pub q: String,
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
