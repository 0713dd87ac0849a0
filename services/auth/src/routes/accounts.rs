//! Register, log in, refresh, log out.

use axum::extract::State;
use common::{ApiError, Json};
use http::StatusCode;
use serde::Deserialize;
use uuid::Uuid;

use super::ClientIp;
use crate::error::Result;
use crate::sessions::{self, TokenResponse};
use crate::{AppState, password, ratelimit};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// 3 to 30 characters of a-z, 0-9 and _ (a few names are reserved: 409).
    #[schema(pattern = "^[a-z0-9_]{3,30}$", min_length = 3, max_length = 30)]
    pub username: String,
    /// 8 to 128 characters.
    #[schema(min_length = 8, max_length = 128)]
    pub password: String,
    /// Contact address (never revealed, and never an answer to "is this registered?").
    #[schema(pattern = "^[^@ \\t\\r\\n]+@[^@ \\t\\r\\n]+$", max_length = 254)]
    pub email: Option<String>,
}

/// Path segments under /api/profiles that are not usernames.
const RESERVED: &[&str] = &["me", "search", "admin", "api"];

pub(crate) fn check_username(u: &str) -> Result<()> {
    let ok_chars = u
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !(3..=30).contains(&u.len()) || !ok_chars {
        return Err(ApiError::validation(
            "username must be 3 to 30 characters of a-z, 0-9 and _",
        ));
    }
    if RESERVED.contains(&u) {
        return Err(ApiError::Conflict(format!(
            "the username {u:?} is reserved"
        )));
    }
    Ok(())
}

/// One `@` with something on each side, no blanks, at most 254 characters: the
/// schema's pattern, checked the same way.
fn plausible_email(e: &str) -> bool {
    let blank = |c: char| matches!(c, ' ' | '\t' | '\r' | '\n');
    match e.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !e.contains(blank)
                && e.chars().count() <= 254
        }
        None => false,
    }
}

const INSERT_USER: &str =
    "INSERT INTO users (id, username, email, password_hash) VALUES ($1, $2, $3, $4)";

/// Create an account (and its profile) and sign in.
#[utoipa::path(post, path = "/api/auth/register", tag = "accounts", request_body = Registration,
    responses(
        (status = 201, description = "signed in as the new user", body = TokenResponse),
        (status = 400, description = "malformed request (JSON, query, form or path)", body = common::ErrorBody),
        (status = 409, description = "the username is taken or reserved (usernames are public; whether an email address has an account is never revealed)", body = common::ErrorBody),
        (status = 413, description = "body over 64 KiB", body = common::ErrorBody),
        (status = 422, description = "a field is out of range; the message names it", body = common::ErrorBody),
        (status = 429, description = "too many registrations from this address; retry after the Retry-After header", body = common::ErrorBody),
        (status = 503, description = "a dependency (PostgreSQL, Redis, the provider) is unavailable; retry", body = common::ErrorBody)))]
async fn register(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(r): Json<Registration>,
) -> Result<(StatusCode, Json<TokenResponse>)> {
    check_username(&r.username)?;
    common::error::check_len("password", &r.password, 8, 128)?;
    if let Some(e) = &r.email
        && !plausible_email(e)
    {
        return Err(ApiError::validation(
            "email must be an address like name@example.org",
        ));
    }
    ratelimit::check_register(&state, &ip).await?;
    let hash = password::hash(r.password).await?;
    let id = Uuid::now_v7();
    let db = &state.db;
    db.spans
        .run(
            INSERT_USER,
            sqlx::query(INSERT_USER)
                .bind(id)
                .bind(&r.username)
                .bind(&r.email)
                .bind(&hash)
                .execute(&db.pool),
        )
        .await
        .map_err(|e| match ApiError::from(e) {
            ApiError::Conflict(_) => ApiError::Conflict("that username is already taken".into()),
            other => other,
        })?;
    let tokens = sessions::start(&state, id, &r.username).await?;
    create_profile(&state, &tokens.access_token).await;
    Ok((StatusCode::CREATED, Json(tokens)))
}

/// Asks profile to create the new user's profile, as the new user. A failure is logged,
/// not returned: the account exists, and profile creates the row on the user's first
/// profile write anyway.
pub(crate) async fn create_profile(state: &AppState, access_token: &str) {
    let url = format!(
        "{}/api/profiles/me",
        state.settings.profile_url.trim_end_matches('/')
    );
    let req = state
        .http
        .reqwest()
        .patch(url)
        .bearer_auth(access_token)
        .json(&serde_json::json!({}));
    match state.http.send(req).await {
        Ok(res) if res.status().is_success() => {}
        Ok(res) => tracing::warn!(
            status = res.status().as_u16(),
            "profile refused to create the new profile"
        ),
        Err(e) => {
            tracing::warn!(error = %e, "profile unreachable; the profile is created on first use")
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    #[schema(min_length = 1, max_length = 64)]
    pub username: String,
    #[schema(min_length = 1, max_length = 128)]
    pub password: String,
}

const FIND_USER: &str = "SELECT id, password_hash FROM users WHERE username = $1";

/// Sign in with a username and password.
#[utoipa::path(post, path = "/api/auth/login", tag = "accounts", request_body = Login,
    responses(
        (status = 200, description = "signed in", body = TokenResponse),
        (status = 400, description = "malformed request (JSON, query, form or path)", body = common::ErrorBody),
        (status = 401, description = "wrong credentials, or a missing, expired or revoked token", body = common::ErrorBody),
        (status = 413, description = "body over 64 KiB", body = common::ErrorBody),
        (status = 422, description = "a field is out of range; the message names it", body = common::ErrorBody),
        (status = 429, description = "too many attempts from this address, or too many failed ones for this account from it; retry after the Retry-After header", body = common::ErrorBody),
        (status = 503, description = "a dependency (PostgreSQL, Redis, the provider) is unavailable; retry", body = common::ErrorBody)))]
async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(l): Json<Login>,
) -> Result<Json<TokenResponse>> {
    common::error::check_len("username", &l.username, 1, 64)?;
    common::error::check_len("password", &l.password, 1, 128)?;
    ratelimit::check_login(&state, &ip, &l.username).await?;
    let db = &state.db;
    let row: Option<(Uuid, Option<String>)> = db
        .spans
        .run(
            FIND_USER,
            sqlx::query_as(FIND_USER)
                .bind(&l.username)
                .fetch_optional(&db.pool),
        )
        .await?;
    let (id, hash) = match row {
        Some((id, h)) => (Some(id), h),
        None => (None, None),
    };
    let ok = password::verify(l.password, hash).await && id.is_some();
    ratelimit::record_login(&state, &ip, &l.username, ok).await;
    match (ok, id) {
        (true, Some(id)) => Ok(Json(sessions::start(&state, id, &l.username).await?)),
        _ => Err(ApiError::Unauthorized("wrong username or password".into())),
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    #[schema(min_length = 1, max_length = 256)]
    pub refresh_token: String,
}

/// Trade a refresh token for new tokens (the old one is spent; reusing it revokes
/// the whole session).
#[utoipa::path(post, path = "/api/auth/refresh", tag = "accounts", request_body = RefreshRequest,
    responses(
        (status = 200, description = "new tokens", body = TokenResponse),
        (status = 400, description = "malformed request (JSON, query, form or path)", body = common::ErrorBody),
        (status = 401, description = "wrong credentials, or a missing, expired or revoked token", body = common::ErrorBody),
        (status = 413, description = "body over 64 KiB", body = common::ErrorBody),
        (status = 422, description = "a field is out of range; the message names it", body = common::ErrorBody),
        (status = 503, description = "a dependency (PostgreSQL, Redis, the provider) is unavailable; retry", body = common::ErrorBody)))]
async fn refresh(
    State(state): State<AppState>,
    Json(r): Json<RefreshRequest>,
) -> Result<Json<TokenResponse>> {
    common::error::check_len("refresh_token", &r.refresh_token, 1, 256)?;
    Ok(Json(sessions::rotate(&state, &r.refresh_token).await?))
}

/// End the session a refresh token belongs to.
#[utoipa::path(post, path = "/api/auth/logout", tag = "accounts", request_body = RefreshRequest,
    responses(
        (status = 204, description = "signed out"),
        (status = 400, description = "malformed request (JSON, query, form or path)", body = common::ErrorBody),
        (status = 413, description = "body over 64 KiB", body = common::ErrorBody),
        (status = 422, description = "a field is out of range; the message names it", body = common::ErrorBody),
        (status = 503, description = "a dependency (PostgreSQL, Redis, the provider) is unavailable; retry", body = common::ErrorBody)))]
async fn logout(
    State(state): State<AppState>,
    Json(r): Json<RefreshRequest>,
) -> Result<StatusCode> {
    common::error::check_len("refresh_token", &r.refresh_token, 1, 256)?;
    sessions::revoke(&state, &r.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT)
}
