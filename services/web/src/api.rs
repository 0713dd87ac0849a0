//! The pages' calls to the APIs, through the gateway with the traced client: each call
//! is a CLIENT span under the page's SERVER span, so one page view is one trace (browser
//! → gateway → web → gateway → feed → profile → databases).
//!
//! A signed-in call whose access token has expired is refreshed once with the session's
//! refresh token, and the session keeps the new pair.

use reqwest::Method;
use serde_json::Value;

use crate::session::{self, Session};
use crate::state::AppState;

/// What an API call came to.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The API's own error message, for the page.
    pub fn message(&self) -> String {
        self.body["message"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("the service answered HTTP {}", self.status))
    }
}

/// Why a page could not be made.
#[derive(Debug)]
pub enum Failure {
    /// The APIs could not be reached.
    Unreachable(String),
    /// The session is no longer valid (signed out elsewhere, refresh refused).
    SignedOut,
    Database(sqlx::Error),
}

impl From<sqlx::Error> for Failure {
    fn from(e: sqlx::Error) -> Self {
        Failure::Database(e)
    }
}

/// What a call sends.
#[derive(Debug, Clone, Copy)]
pub enum Payload<'a> {
    Nothing,
    Json(&'a Value),
    /// Raw bytes (an upload), whose kind the service reads from them.
    Bytes(&'a [u8]),
}

impl<'a> From<Option<&'a Value>> for Payload<'a> {
    fn from(v: Option<&'a Value>) -> Self {
        v.map_or(Payload::Nothing, Payload::Json)
    }
}

/// One call, as `token`'s holder (or anonymously).
pub async fn call(
    state: &AppState,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Result<Answer, Failure> {
    send(state, method, path, token, body.into()).await
}

async fn send(
    state: &AppState,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Payload<'_>,
) -> Result<Answer, Failure> {
    let mut rb = state
        .http
        .reqwest()
        .request(method, format!("{}{path}", state.api));
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    match body {
        Payload::Nothing => {}
        Payload::Json(b) => rb = rb.json(b),
        Payload::Bytes(b) => {
            rb = rb
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .body(b.to_vec())
        }
    }
    let r = state
        .http
        .send(rb)
        .await
        .map_err(|e| Failure::Unreachable(e.to_string()))?;
    let status = r.status().as_u16();
    let body = r.json().await.unwrap_or(Value::Null);
    Ok(Answer { status, body })
}

/// A call as the session's account, refreshing its tokens once when they have expired.
pub async fn as_user(
    state: &AppState,
    s: &mut Session,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Result<Answer, Failure> {
    as_user_with(state, s, method, path, body.into()).await
}

/// [`as_user`] with any payload (an upload's bytes).
pub async fn as_user_with(
    state: &AppState,
    s: &mut Session,
    method: Method,
    path: &str,
    body: Payload<'_>,
) -> Result<Answer, Failure> {
    let a = send(state, method.clone(), path, Some(&s.access), body).await?;
    if a.status != 401 {
        return Ok(a);
    }
    let r = call(
        state,
        Method::POST,
        "/api/auth/refresh",
        None,
        Some(&serde_json::json!({"refresh_token": s.refresh})),
    )
    .await?;
    match (
        r.ok(),
        r.body["access_token"].as_str(),
        r.body["refresh_token"].as_str(),
    ) {
        (true, Some(access), Some(refresh)) => {
            s.access = access.to_owned();
            s.refresh = refresh.to_owned();
            session::update_tokens(state, s).await?;
            send(state, method, path, Some(&s.access), body).await
        }
        _ => Err(Failure::SignedOut),
    }
}
