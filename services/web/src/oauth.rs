//! Sign-in with an identity provider: the authorization-code + PKCE dance, through auth.
//!
//! 1. `GET /oauth/{provider}` makes a state and a PKCE verifier, keeps them in a
//!    short-lived HttpOnly cookie, and sends the browser to auth's
//!    `/api/auth/oauth/{provider}/start` with web's callback, the state and the S256
//!    challenge.
//! 2. Auth does its own dance with the provider and sends the browser back to
//!    `GET /oauth/callback?code&state` with a one-time code bound to the challenge.
//! 3. Web checks the state against the cookie and exchanges the code and verifier at
//!    `POST /api/auth/oauth/token` (a CLIENT span), server to server; the tokens go into
//!    a new session and never reach the browser.

#![allow(clippy::result_large_err)]

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::api;
use crate::handlers;
use crate::session;
use crate::state::AppState;

/// The cookie holding a login in progress: `provider.state.verifier`.
pub const COOKIE: &str = "oauth";
/// Seconds a login in progress may take.
const TTL: i64 = 600;

/// A provider's button label.
pub fn label(name: &str) -> String {
    match name {
        "dev" => "the workshop's provider".to_owned(),
        "github" => "GitHub".to_owned(),
        "google" => "Google".to_owned(),
        other => other.to_owned(),
    }
}

/// `BASE64URL(SHA256(verifier))` without padding (RFC 7636's S256).
pub fn challenge(verifier: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn callback_url(state: &AppState) -> String {
    format!("{}/oauth/callback", state.public)
}

/// `GET /oauth/{provider}`: off to auth (and the provider) with a new state and verifier.
pub async fn start(State(state): State<AppState>, Path(provider): Path<String>) -> Response {
    if provider.is_empty()
        || provider.len() > 32
        || !provider.bytes().all(|b| b.is_ascii_lowercase())
    {
        return handlers::problem(StatusCode::NOT_FOUND, "No such sign-in provider.", None);
    }
    let (login_state, verifier) = (session::random_token(), session::random_token());
    let query = serde_urlencoded::to_string([
        ("redirect_uri", callback_url(&state).as_str()),
        ("state", login_state.as_str()),
        ("code_challenge", challenge(&verifier).as_str()),
        ("code_challenge_method", "S256"),
    ])
    .unwrap_or_default();
    let mut r = handlers::see_other(&format!("/api/auth/oauth/{provider}/start?{query}"));
    r.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(
            COOKIE,
            &format!("{provider}.{login_state}.{verifier}"),
            TTL,
            state.secure_cookies,
        ),
    );
    r
}

#[derive(Debug, Deserialize)]
pub struct Callback {
    pub code: Option<String>,
    pub state: Option<String>,
}

/// `GET /oauth/callback`: the code exchanged for tokens, and a session.
pub async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<Callback>,
) -> Response {
    let pending = session::cookie(&headers, COOKIE).unwrap_or_default();
    let mut parts = pending.splitn(3, '.');
    let (Some(_provider), Some(expected), Some(verifier)) =
        (parts.next(), parts.next(), parts.next())
    else {
        return again(&state, "This sign-in has expired or was started elsewhere.");
    };
    let (Some(code), Some(given)) = (q.code, q.state) else {
        return again(&state, "The sign-in came back without its code.");
    };
    if !session::same(expected, &given) {
        return again(&state, "This sign-in did not start here; please try again.");
    }
    let body =
        json!({"code": code, "code_verifier": verifier, "redirect_uri": callback_url(&state)});
    let a = match api::call(
        &state,
        Method::POST,
        "/api/auth/oauth/token",
        None,
        Some(&body),
    )
    .await
    {
        Ok(a) => a,
        Err(f) => return handlers::failed(&state, f, None),
    };
    if !a.ok() {
        return again(&state, &a.message());
    }
    let mut r = handlers::start_session(&state, &a).await;
    r.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(COOKIE, "", 0, state.secure_cookies),
    );
    r
}

/// The sign-in page again, saying why, with the login in progress forgotten.
fn again(state: &AppState, why: &str) -> Response {
    let mut r = handlers::problem(StatusCode::BAD_REQUEST, why, None);
    r.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(COOKIE, "", 0, state.secure_cookies),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_challenge_is_s256_of_the_verifier() {
        // Computed apart, with Python's hashlib and base64.
        assert_eq!(
            challenge("a-web-frontends-verifier-of-at-least-43-characters"),
            "VINm31KHcjS-kU_fj1_uTjw8o_sXG3NrGbJ7Ilbvono"
        );
    }
}
