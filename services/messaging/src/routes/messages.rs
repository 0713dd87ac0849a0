//! A conversation's messages: history, sending over HTTP, and the read marker.

use axum::extract::State;
use common::{AuthUser, Json, Path, Query};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::Result;
use crate::store::{self, Message};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(history, send))
        .routes(routes!(read))
}

/// `before` (a sequence number, exclusive) and `limit` (1–100, default 50).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryParams {
    /// Messages before this sequence number (`next_before` of the previous page).
    #[param(minimum = 1)]
    pub before: Option<i64>,
    /// Page size, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MessagePage {
    /// Newest first.
    pub items: Vec<Message>,
    /// Pass back as `before` for older messages; absent at the beginning.
    pub next_before: Option<i64>,
}

/// A conversation's history, newest first.
#[utoipa::path(get, path = "/api/messages/conversations/{id}/messages", tag = "messages",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "the conversation's id"), HistoryParams),
    responses(
        (status = 200, description = "one page of messages", body = MessagePage),
        (status = 400, description = "malformed request (JSON, query or path)", body = common::ErrorBody),
        (status = 401, description = "missing, expired or invalid access token", body = common::ErrorBody),
        (status = 403, description = "you are not a member", body = common::ErrorBody),
        (status = 404, description = "no such conversation", body = common::ErrorBody),
        (status = 422, description = "limit or before out of range", body = common::ErrorBody),
        (status = 503, description = "PostgreSQL is unavailable; retry", body = common::ErrorBody)))]
async fn history(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<i64>,
    Query(p): Query<HistoryParams>,
) -> Result<Json<MessagePage>> {
    let limit = common::error::check_limit(p.limit, 50, 100)?;
    let before = match p.before {
        Some(b) if b < 1 => {
            return Err(crate::error::ApiError::validation(format!(
                "before must be at least 1 (got {b})"
            )));
        }
        Some(b) => b,
        None => i64::MAX,
    };
    let items = store::history(&state.db, &user.username, id, before, limit).await?;
    let next_before = items
        .last()
        .filter(|m| items.len() as i64 == limit && m.seq > 1)
        .map(|m| m.seq);
    Ok(Json(MessagePage { items, next_before }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMessage {
    /// 1 to 4,000 characters, not all blank.
    #[schema(min_length = 1, max_length = 4000, pattern = "[^ \\t\\n\\r]")]
    pub body: String,
    /// Your own id for this message (1 to 64 characters): sending it again stores nothing
    /// new. A fresh one is made when absent.
    #[schema(min_length = 1, max_length = 64)]
    pub client_id: Option<String>,
}

/// Send a message over HTTP (as over the socket): stored, then delivered live.
#[utoipa::path(post, path = "/api/messages/conversations/{id}/messages", tag = "messages",
    security(("bearer" = [])), request_body = NewMessage,
    params(("id" = i64, Path, description = "the conversation's id")),
    responses(
        (status = 201, description = "stored, with its sequence number", body = Message),
        (status = 200, description = "a retry: this client id was stored before", body = Message),
        (status = 400, description = "malformed request (JSON, query or path)", body = common::ErrorBody),
        (status = 401, description = "missing, expired or invalid access token", body = common::ErrorBody),
        (status = 403, description = "you are not a member", body = common::ErrorBody),
        (status = 404, description = "no such conversation", body = common::ErrorBody),
        (status = 413, description = "body over 64 KiB", body = common::ErrorBody),
        (status = 422, description = "a field is out of range; the message names it", body = common::ErrorBody),
        (status = 503, description = "PostgreSQL is unavailable; retry", body = common::ErrorBody)))]
async fn send(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<i64>,
    Json(new): Json<NewMessage>,
) -> Result<(StatusCode, Json<Message>)> {
    let client_id = new
        .client_id
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let (m, duplicate) =
        crate::deliver::send(&state, &user.username, id, &client_id, &new.body).await?;
    let status = if duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(m)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadMarker {
    /// The newest sequence number read.
    #[schema(minimum = 0)]
    #[serde(deserialize_with = "whole_number")]
    pub seq: i64,
}

/// An integer, also when written `12.0` (JSON Schema counts that as an integer too).
fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<i64, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    if let Some(i) = n.as_i64() {
        return Ok(i);
    }
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0 => Ok(f as i64),
        _ => Err(serde::de::Error::custom(format!(
            "{n} is not a whole number"
        ))),
    }
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReadState {
    /// Your read marker after the update (it never moves back, nor past the newest).
    pub read_seq: i64,
}

/// Mark messages read up to a sequence number.
#[utoipa::path(post, path = "/api/messages/conversations/{id}/read", tag = "messages",
    security(("bearer" = [])), request_body = ReadMarker,
    params(("id" = i64, Path, description = "the conversation's id")),
    responses(
        (status = 200, description = "the read marker", body = ReadState),
        (status = 400, description = "malformed request (JSON, query or path)", body = common::ErrorBody),
        (status = 401, description = "missing, expired or invalid access token", body = common::ErrorBody),
        (status = 403, description = "you are not a member", body = common::ErrorBody),
        (status = 404, description = "no such conversation", body = common::ErrorBody),
        (status = 422, description = "seq is negative", body = common::ErrorBody),
        (status = 503, description = "PostgreSQL is unavailable; retry", body = common::ErrorBody)))]
async fn read(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<i64>,
    Json(m): Json<ReadMarker>,
) -> Result<Json<ReadState>> {
    if m.seq < 0 {
        return Err(crate::error::ApiError::validation(format!(
            "seq must be 0 or more (got {})",
            m.seq
        )));
    }
    let read_seq = store::mark_read(&state.db, &user.username, id, m.seq).await?;
    Ok(Json(ReadState { read_seq }))
}
