//! The messaging pages: conversations, one conversation, starting and sending. Without
//! JavaScript they are forms and reloads; with it (`static/app.js`) the conversation
//! page opens the live socket through the gateway with a single-use ticket web fetches
//! for it (`POST /fragments/ws-ticket`, CSRF in a header), so the access token stays on
//! the server, and messages, typing and presence arrive as they happen.

#![allow(clippy::result_large_err)]

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api;
use crate::handlers::{self as h, HasCsrf, Text};
use crate::pages;
use crate::session;
use crate::state::AppState;

/// `GET /messages`: the conversations, and a form to start one.
pub async fn list(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let mut s = match h::signed_in(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let path = "/api/messages/conversations?limit=50";
    match h::read(&state, &mut s, path, "No conversations.").await {
        Ok(body) => {
            let items = body["items"].as_array().cloned().unwrap_or_default();
            h::page(
                StatusCode::OK,
                "Messages",
                Some(&s),
                pages::conversations(&s.csrf, &s.username, &items, None),
            )
        }
        Err(r) => r,
    }
}

#[derive(Debug, Deserialize)]
pub struct With {
    pub csrf: String,
    pub with: String,
}

impl HasCsrf for With {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /messages`: the conversation with someone (found again when it exists).
pub async fn start(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<With>, FormRejection>,
) -> Response {
    let (mut s, f) = match h::posted(&state, &headers, form).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let with = f.with.trim().trim_start_matches('@');
    let body = json!({"members": [with]});
    let a = api::as_user(
        &state,
        &mut s,
        Method::POST,
        "/api/messages/conversations",
        Some(&body),
    )
    .await;
    match &a {
        Ok(ok) if ok.ok() => {
            let id = ok.body["id"].as_i64().unwrap_or_default();
            h::see_other(&format!("/messages/{id}"))
        }
        _ => h::after(&state, &s, a, "/messages"),
    }
}

/// `GET /messages/{id}`: the last 50 messages, who is online, the composer; the
/// conversation is marked read up to its newest message.
pub async fn conversation(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    let mut s = match h::signed_in(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let c = match h::read(
        &state,
        &mut s,
        &format!("/api/messages/conversations/{id}"),
        "No such conversation.",
    )
    .await
    {
        Ok(v) => v,
        Err(r) => return r,
    };
    let history = match h::read(
        &state,
        &mut s,
        &format!("/api/messages/conversations/{id}/messages?limit=50"),
        "No such conversation.",
    )
    .await
    {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut messages = history["items"].as_array().cloned().unwrap_or_default();
    messages.reverse();
    let others: Vec<&str> = c["members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|m| *m != s.username)
        .collect();
    let online: Vec<String> = if others.is_empty() {
        Vec::new()
    } else {
        let q = serde_urlencoded::to_string([("users", others.join(","))]).unwrap_or_default();
        match api::as_user(
            &state,
            &mut s,
            Method::GET,
            &format!("/api/messages/presence?{q}"),
            None,
        )
        .await
        {
            Ok(a) if a.ok() => online_of(&a.body),
            _ => Vec::new(),
        }
    };
    if let Some(last) = messages.last().and_then(|m| m["seq"].as_i64()) {
        let path = format!("/api/messages/conversations/{id}/read");
        if let Err(api::Failure::Unreachable(e)) = api::as_user(
            &state,
            &mut s,
            Method::POST,
            &path,
            Some(&json!({"seq": last})),
        )
        .await
        {
            tracing::warn!(error = %e, "the read marker could not be moved");
        }
    }
    h::page(
        StatusCode::OK,
        "Conversation",
        Some(&s),
        pages::conversation(&s.csrf, &s.username, &c, &messages, &online),
    )
}

/// The usernames presence reports online (`{"online": {"alice": true, …}}`).
fn online_of(body: &Value) -> Vec<String> {
    body["online"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, v)| v.as_bool() == Some(true))
        .map(|(k, _)| k.clone())
        .collect()
}

/// `POST /messages/{id}`: send (the page without JavaScript).
pub async fn send(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    form: Result<Form<Text>, FormRejection>,
) -> Response {
    let (mut s, f) = match h::posted(&state, &headers, form).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let a = api::as_user(
        &state,
        &mut s,
        Method::POST,
        &format!("/api/messages/conversations/{id}/messages"),
        Some(&json!({"body": f.body})),
    )
    .await;
    h::after(&state, &s, a, &format!("/messages/{id}"))
}

/// `POST /fragments/ws-ticket`: a single-use socket ticket for the page's script, which
/// proves itself with the session's CSRF token in `x-csrf-token`.
pub async fn ws_ticket(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let json_error = |status: StatusCode, error: &str, message: &str| {
        (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            json!({"error": error, "message": message, "trace_id": telemetry::current_trace_id()})
                .to_string(),
        )
            .into_response()
    };
    let mut s = match session::load(&state, &headers).await {
        Ok(Some(s)) => s,
        _ => return json_error(StatusCode::UNAUTHORIZED, "unauthorized", "sign in first"),
    };
    let given = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !session::same(&s.csrf, given) {
        return json_error(
            StatusCode::FORBIDDEN,
            "csrf",
            "the request did not come from this site's pages",
        );
    }
    match api::as_user(
        &state,
        &mut s,
        Method::POST,
        "/api/messages/ws-ticket",
        None,
    )
    .await
    {
        Ok(a) if a.ok() => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            a.body.to_string(),
        )
            .into_response(),
        Ok(a) => json_error(StatusCode::BAD_GATEWAY, "upstream", &a.message()),
        Err(_) => json_error(
            StatusCode::BAD_GATEWAY,
            "upstream",
            "messaging could not be reached",
        ),
    }
}
