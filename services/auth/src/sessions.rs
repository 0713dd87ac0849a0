//! Sessions and rotating refresh tokens, kept in Redis.
//!
//! A session is a refresh-token *family*: logging in starts one; each `POST
//! /api/auth/refresh` spends the presented refresh token and issues the next one in the
//! same family. Spending is atomic (`SET NX` on a "used" marker), so if a token is ever
//! presented twice — the sign of a stolen token — the second use revokes the whole
//! family, and both the thief and the victim must log in again.
//!
//! Access tokens are stateless JWTs, so ending a session also announces it
//! ([`common::revocation`]): every service then refuses the session's access tokens
//! within moments instead of at their expiry.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::tokens::{Claims, ISSUER};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiError, Result};

/// What login, registration, refresh and OAuth callbacks answer with.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenResponse {
    pub token_type: String,
    pub access_token: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    pub refresh_token: String,
    pub user: UserRef,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UserRef {
    pub id: Uuid,
    pub username: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct RefreshRecord {
    user_id: Uuid,
    username: String,
    family: Uuid,
}

fn store_down(e: impl std::fmt::Display) -> ApiError {
    tracing::warn!(error = %e, "session store unavailable");
    ApiError::Unavailable("the session store is unavailable; retry shortly".into())
}

/// Refresh tokens are stored by hash, so a Redis dump does not leak usable tokens.
fn token_key(token: &str) -> String {
    format!("rt:{}", hex(&Sha256::digest(token.as_bytes())))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn family_key(family: Uuid) -> String {
    format!("fam:{family}")
}

/// Starts a new session for a user who just proved who they are.
pub async fn start(state: &AppState, user_id: Uuid, username: &str) -> Result<TokenResponse> {
    let family = Uuid::new_v4();
    state
        .cache
        .set_ex(
            &family_key(family),
            &user_id.to_string(),
            state.settings.refresh_ttl_secs,
        )
        .await
        .map_err(store_down)?;
    issue(
        state,
        RefreshRecord {
            user_id,
            username: username.to_owned(),
            family,
        },
    )
    .await
}

async fn issue(state: &AppState, rec: RefreshRecord) -> Result<TokenResponse> {
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    let refresh = URL_SAFE_NO_PAD.encode(raw);
    let json = serde_json::to_string(&rec).expect("a refresh record always serialises");
    state
        .cache
        .set_ex(&token_key(&refresh), &json, state.settings.refresh_ttl_secs)
        .await
        .map_err(store_down)?;
    let now = chrono::Utc::now().timestamp();
    let ttl = state.settings.access_ttl_secs;
    let access = state.signer.sign(&Claims {
        sub: rec.user_id,
        username: rec.username.clone(),
        sid: rec.family,
        iss: ISSUER.into(),
        iat: now,
        exp: now + ttl,
    });
    Ok(TokenResponse {
        token_type: "Bearer".into(),
        access_token: access,
        expires_in: ttl,
        refresh_token: refresh,
        user: UserRef {
            id: rec.user_id,
            username: rec.username,
        },
    })
}

/// A one-minute access token of no session, for auth's own call as a new account made
/// before any session exists (asking profile to create its profile at an OAuth client's
/// callback, where the session starts only when the client exchanges its code).
pub fn account_setup_token(state: &AppState, user_id: Uuid, username: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    state.signer.sign(&Claims {
        sub: user_id,
        username: username.to_owned(),
        sid: Uuid::new_v4(),
        iss: ISSUER.into(),
        iat: now,
        exp: now + 60,
    })
}

/// Spends `refresh` and issues the next token of its family.
pub async fn rotate(state: &AppState, refresh: &str) -> Result<TokenResponse> {
    let key = token_key(refresh);
    let record = state.cache.get(&key).await.map_err(store_down)?;
    let Some(record) = record else {
        return Err(ApiError::Unauthorized(
            "unknown or expired refresh token; log in again".into(),
        ));
    };
    let rec: RefreshRecord = serde_json::from_str(&record)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("corrupt refresh record: {e}")))?;
    let alive = state
        .cache
        .exists(&family_key(rec.family))
        .await
        .map_err(store_down)?;
    if !alive {
        return Err(ApiError::Unauthorized(
            "this session was revoked; log in again".into(),
        ));
    }
    let first_use = state
        .cache
        .set_nx_ex(&format!("{key}:used"), "1", state.settings.refresh_ttl_secs)
        .await
        .map_err(store_down)?;
    if !first_use {
        end(state, rec.family).await?;
        tracing::warn!(user_id = %rec.user_id, family = %rec.family, "refresh token reused; session revoked");
        return Err(ApiError::Unauthorized(
            "this refresh token was already used, so the session has been revoked for safety; log in again".into(),
        ));
    }
    issue(state, rec).await
}

/// Ends the session `refresh` belongs to. Unknown tokens are not an error: the session
/// is gone either way.
pub async fn revoke(state: &AppState, refresh: &str) -> Result<()> {
    if let Some(record) = state
        .cache
        .get(&token_key(refresh))
        .await
        .map_err(store_down)?
        && let Ok(rec) = serde_json::from_str::<RefreshRecord>(&record)
    {
        end(state, rec.family).await?;
    }
    Ok(())
}

/// Ends a session: its refresh tokens stop working here, and every service is told to
/// refuse its access tokens until the last of them would have expired.
async fn end(state: &AppState, family: Uuid) -> Result<()> {
    state
        .cache
        .del(&[&family_key(family)])
        .await
        .map_err(store_down)?;
    let until = chrono::Utc::now().timestamp() + state.settings.access_ttl_secs + 5;
    common::revocation::revoke(&state.cache, family, until)
        .await
        .map_err(store_down)
}
