//! `POST` and `GET /api/messages/conversations`, `GET /api/messages/conversations/{id}`.

use axum::extract::State;
use chrono::{DateTime, Utc};
use common::{AuthUser, Json, Path, Query};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiError, Result};
use crate::store::{self, Conversation};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(get_one))
}

/// A username (3 to 30 of a-z, 0-9 and _).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
#[schema(pattern = "^[a-z0-9_]{3,30}$")]
pub struct Username(pub String);

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewConversation {
    /// The other members' usernames (1 to 49); you are a member too.
    #[schema(min_items = 1, max_items = 49)]
    pub members: Vec<Username>,
}

/// Start a conversation (or find the one-to-one conversation with that person again).
#[utoipa::path(post, path = "/api/messages/conversations", tag = "conversations",
    security(("bearer" = [])), request_body = NewConversation,
    responses(
        (status = 201, description = "a new conversation", body = Conversation),
        (status = 200, description = "the existing one-to-one conversation with that person", body = Conversation),
        (status = 400, description = "malformed request (JSON, query or path)", body = common::ErrorBody),
        (status = 401, description = "missing, expired or invalid access token", body = common::ErrorBody),
        (status = 422, description = "a member is not a username, or too many members", body = common::ErrorBody),
        (status = 503, description = "PostgreSQL is unavailable; retry", body = common::ErrorBody)))]
async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    Json(new): Json<NewConversation>,
) -> Result<(StatusCode, Json<Conversation>)> {
    if new.members.len() >= store::MAX_MEMBERS {
        return Err(ApiError::validation(format!(
            "a conversation has at most {} members, you included",
            store::MAX_MEMBERS
        )));
    }
    let members: Vec<String> = new.members.into_iter().map(|u| u.0).collect();
    let (c, created) = store::create(&state.db, &user.username, &members).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(c)))
}

/// `cursor` (from the previous page's `next_cursor`) and `limit` (1–100, default 20).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[0-9]{1,19}\\.[0-9]{1,19}$")]
    pub cursor: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConversationPage {
    pub items: Vec<Conversation>,
    pub next_cursor: Option<String>,
}

fn parse_cursor(c: &str) -> Result<(DateTime<Utc>, i64)> {
    let bad = || {
        ApiError::BadRequest(
            "invalid_cursor",
            format!("{c:?} is not a cursor this API gave out"),
        )
    };
    let (micros, id) = c.split_once('.').ok_or_else(bad)?;
    let micros: i64 = micros.parse().map_err(|_| bad())?;
    let id: i64 = id.parse().map_err(|_| bad())?;
    let at = DateTime::from_timestamp_micros(micros).ok_or_else(bad)?;
    Ok((at, id))
}

/// Your conversations, newest activity first, with unread counts.
#[utoipa::path(get, path = "/api/messages/conversations", tag = "conversations",
    security(("bearer" = [])), params(ListParams),
    responses(
        (status = 200, description = "one page of conversations", body = ConversationPage),
        (status = 400, description = "malformed request (JSON, query or path)", body = common::ErrorBody),
        (status = 401, description = "missing, expired or invalid access token", body = common::ErrorBody),
        (status = 422, description = "limit out of range", body = common::ErrorBody),
        (status = 503, description = "PostgreSQL is unavailable; retry", body = common::ErrorBody)))]
async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    Query(p): Query<ListParams>,
) -> Result<Json<ConversationPage>> {
    let limit = common::error::check_limit(p.limit, 20, 100)?;
    let cursor = p.cursor.as_deref().map(parse_cursor).transpose()?;
    let items = store::list(&state.db, &user.username, cursor, limit).await?;
    let next_cursor = (items.len() as i64 == limit)
        .then(|| items.last())
        .flatten()
        .map(|c| format!("{}.{}", c.last_activity.timestamp_micros(), c.id));
    Ok(Json(ConversationPage { items, next_cursor }))
}

/// One of your conversations.
#[utoipa::path(get, path = "/api/messages/conversations/{id}", tag = "conversations",
    security(("bearer" = [])), params(("id" = i64, Path, description = "the conversation's id")),
    responses(
        (status = 200, description = "the conversation", body = Conversation),
        (status = 400, description = "malformed request (JSON, query or path)", body = common::ErrorBody),
        (status = 401, description = "missing, expired or invalid access token", body = common::ErrorBody),
        (status = 403, description = "you are not a member", body = common::ErrorBody),
        (status = 404, description = "no such conversation", body = common::ErrorBody),
        (status = 503, description = "PostgreSQL is unavailable; retry", body = common::ErrorBody)))]
async fn get_one(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<i64>,
) -> Result<Json<Conversation>> {
    Ok(Json(store::one(&state.db, &user.username, id).await?))
}
