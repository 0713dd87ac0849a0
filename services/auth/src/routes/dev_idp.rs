//! A small built-in OAuth2 identity provider for offline workshop rooms.
//!
//! It speaks the same authorization-code + PKCE protocol as GitHub or Google, so the
//! login flow — redirects, code exchange, user lookup — is identical in the trace; only
//! the "who are you" step is a one-field form (or `login_hint`) instead of a password.
//! It is off unless the stack is started for a workshop (`AUTH_DEV_IDP=true`, set by
//! `socialctl up --workshop`), and even then it only ever sends a code to this system's
//! own callback: never enable it on a system that faces the internet.

use axum::extract::State;
use axum::response::{Html, IntoResponse, Redirect, Response};
use common::{ApiError, Form, Json, Query};
use serde::{Deserialize, Serialize};

use super::oauth::{callback_url, pkce_challenge};
use crate::AppState;
use crate::error::Result;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub const CLIENT_ID: &str = "socialnet-dev";
pub const CLIENT_SECRET: &str = "socialnet-dev-secret";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(authorize))
        .routes(routes!(token))
        .routes(routes!(userinfo))
}

fn enabled(state: &AppState) -> Result<()> {
    if state.settings.dev_idp {
        Ok(())
    } else {
        Err(ApiError::NotFound(
            "the development identity provider is switched off (AUTH_DEV_IDP=false)".into(),
        ))
    }
}

fn store_down(e: impl std::fmt::Display) -> ApiError {
    tracing::warn!(error = %e, "dev idp store unavailable");
    ApiError::Unavailable("the identity provider's store is unavailable; retry shortly".into())
}

#[derive(Debug, Deserialize, Serialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuthorizeParams {
    pub response_type: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub state: String,
    pub code_challenge: String,
    pub code_challenge_method: String,
    pub scope: Option<String>,
    pub login_hint: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Grant {
    login: String,
    challenge: String,
    redirect_uri: String,
    client_id: String,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The built-in provider's authorization page: a sign-in form, then a redirect back
/// with a code.
#[utoipa::path(get, path = "/api/auth/dev-idp/authorize", tag = "dev-idp",
    params(AuthorizeParams),
    responses(
        (status = 200, description = "the sign-in form", content_type = "text/html", body = String),
        (status = 303, description = "back to the client with a code"),
        (status = 400, description = "malformed request (JSON, query, form or path)", body = common::ErrorBody),
        (status = 404, description = "the development provider is switched off", body = common::ErrorBody),
        (status = 422, description = "a field is out of range; the message names it", body = common::ErrorBody),
        (status = 503, description = "a dependency (PostgreSQL, Redis, the provider) is unavailable; retry", body = common::ErrorBody)))]
async fn authorize(
    State(state): State<AppState>,
    params: std::result::Result<Query<AuthorizeParams>, ApiError>,
) -> Result<Response> {
    // Switched off is a 404 whatever the request holds.
    enabled(&state)?;
    let Query(p) = params?;
    if p.response_type != "code" || p.client_id != CLIENT_ID {
        return Err(ApiError::BadRequest(
            "invalid_request",
            "expected response_type=code and the dev client id".into(),
        ));
    }
    // Codes go only to this system's own callback: an authorization server that
    // redirects anywhere is an open redirect and hands codes to whoever asks.
    if !state
        .providers
        .keys()
        .any(|name| p.redirect_uri == callback_url(&state, name))
    {
        return Err(ApiError::BadRequest(
            "invalid_request",
            "redirect_uri must be this system's own callback (/api/auth/oauth/dev/callback)".into(),
        ));
    }
    if p.code_challenge_method != "S256" || p.code_challenge.len() < 43 {
        return Err(ApiError::BadRequest(
            "invalid_request",
            "PKCE with code_challenge_method=S256 is required".into(),
        ));
    }
    let Some(login) = p
        .login_hint
        .as_deref()
        .map(str::trim)
        .filter(|l| !l.is_empty())
    else {
        // No user chosen yet: a one-field form that comes back here with login_hint.
        let hidden: String = [
            ("response_type", &p.response_type),
            ("client_id", &p.client_id),
            ("redirect_uri", &p.redirect_uri),
            ("state", &p.state),
            ("code_challenge", &p.code_challenge),
            ("code_challenge_method", &p.code_challenge_method),
        ]
        .iter()
        .map(|(k, v)| format!(r#"<input type="hidden" name="{k}" value="{}">"#, escape(v)))
        .collect();
        return Ok(Html(format!(
            "<!doctype html><title>socialnet dev sign-in</title><h1>Development identity provider</h1>\
             <p><strong>Workshop mode:</strong> this provider signs anyone in as any name, with \
             no password. It exists for offline classrooms; never expose this system.</p>\
             <form method=get>{hidden}<label>Sign in as <input name=login_hint autofocus></label> \
             <button>Continue</button></form>"
        ))
        .into_response());
    };
    common::error::check_len("login_hint", login, 1, 64)?;
    let code = uuid::Uuid::new_v4().simple().to_string();
    let grant = Grant {
        login: login.to_owned(),
        challenge: p.code_challenge,
        redirect_uri: p.redirect_uri.clone(),
        client_id: p.client_id.clone(),
    };
    state
        .cache
        .set_ex(
            &format!("devidp:code:{code}"),
            &serde_json::to_string(&grant).expect("grant serialises"),
            120,
        )
        .await
        .map_err(store_down)?;
    let mut url = reqwest::Url::parse(&p.redirect_uri)
        .map_err(|_| ApiError::BadRequest("invalid_request", "redirect_uri is not a URL".into()))?;
    url.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &p.state);
    Ok(Redirect::to(url.as_str()).into_response())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct TokenRequest {
    pub grant_type: String,
    pub code: String,
    pub redirect_uri: String,
    pub client_id: String,
    pub client_secret: String,
    pub code_verifier: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct TokenAnswer {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
}

/// The built-in provider's token endpoint (a form post, as OAuth2 has it).
#[utoipa::path(post, path = "/api/auth/dev-idp/token", tag = "dev-idp",
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "a provider access token", body = TokenAnswer),
        (status = 400, description = "malformed request (JSON, query, form or path)", body = common::ErrorBody),
        (status = 401, description = "wrong client id, client secret or grant type (RFC 6749's invalid_client)", body = common::ErrorBody),
        (status = 404, description = "the development provider is switched off", body = common::ErrorBody),
        (status = 422, description = "a form field is missing or out of range; the message names it", body = common::ErrorBody),
        (status = 503, description = "a dependency (PostgreSQL, Redis, the provider) is unavailable; retry", body = common::ErrorBody)))]
async fn token(
    State(state): State<AppState>,
    form: std::result::Result<Form<TokenRequest>, ApiError>,
) -> Result<Json<TokenAnswer>> {
    enabled(&state)?;
    let Form(t) = form?;
    if t.grant_type != "authorization_code"
        || t.client_id != CLIENT_ID
        || t.client_secret != CLIENT_SECRET
    {
        return Err(ApiError::Unauthorized(
            "invalid client or grant type".into(),
        ));
    }
    let grant = state
        .cache
        .get_del(&format!("devidp:code:{}", t.code))
        .await
        .map_err(store_down)?;
    let grant: Grant = grant
        .and_then(|g| serde_json::from_str(&g).ok())
        .ok_or_else(|| {
            ApiError::BadRequest("invalid_grant", "unknown, used or expired code".into())
        })?;
    if grant.redirect_uri != t.redirect_uri || grant.client_id != t.client_id {
        return Err(ApiError::BadRequest(
            "invalid_grant",
            "redirect_uri or client_id does not match the authorization request".into(),
        ));
    }
    if pkce_challenge(&t.code_verifier) != grant.challenge {
        return Err(ApiError::BadRequest(
            "invalid_grant",
            "PKCE verification failed".into(),
        ));
    }
    let access = uuid::Uuid::new_v4().simple().to_string();
    state
        .cache
        .set_ex(&format!("devidp:at:{access}"), &grant.login, 300)
        .await
        .map_err(store_down)?;
    Ok(Json(TokenAnswer {
        access_token: access,
        token_type: "bearer",
        expires_in: 300,
    }))
}

/// Who a provider access token belongs to.
#[utoipa::path(get, path = "/api/auth/dev-idp/userinfo", tag = "dev-idp",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the user's `sub`, `login` and `email`", body = Object),
        (status = 401, description = "wrong credentials, or a missing, expired or revoked token", body = common::ErrorBody),
        (status = 404, description = "the development provider is switched off", body = common::ErrorBody),
        (status = 503, description = "a dependency (PostgreSQL, Redis, the provider) is unavailable; retry", body = common::ErrorBody)))]
async fn userinfo(
    State(state): State<AppState>,
    headers: http::HeaderMap,
) -> Result<Json<serde_json::Value>> {
    enabled(&state)?;
    let token = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| ApiError::Unauthorized("bearer token required".into()))?;
    let login = state
        .cache
        .get(&format!("devidp:at:{token}"))
        .await
        .map_err(store_down)?
        .ok_or_else(|| ApiError::Unauthorized("unknown or expired provider token".into()))?;
    Ok(Json(
        serde_json::json!({ "sub": format!("dev|{login}"), "login": login, "email": format!("{login}@dev.invalid") }),
    ))
}
