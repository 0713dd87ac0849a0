//! Browser sessions: an HttpOnly, SameSite=Lax cookie holding a random id (`Secure` when
//! served over TLS), and a row in web's database keyed by the id's SHA-256 with the
//! account's access and refresh tokens, which never reach the page's JavaScript.
//!
//! CSRF: every state-changing form carries the session's token in a hidden field, checked
//! against the row. The sign-in and register forms, before any session exists, carry a
//! token that must equal the `pre` cookie set with the form (double submit).

use axum::http::{HeaderMap, HeaderValue, header};
use rand::Rng as _;
use sha2::{Digest as _, Sha256};

use crate::state::AppState;

/// The session cookie.
pub const COOKIE: &str = "sid";
/// The anonymous forms' double-submit cookie.
pub const PRE: &str = "pre";

/// A signed-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    pub id_hash: String,
    pub username: String,
    pub access: String,
    pub refresh: String,
    pub csrf: String,
}

/// 32 random bytes, hex.
pub fn random_token() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hash(id: &str) -> String {
    Sha256::digest(id.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The value of cookie `name` in a request's headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// Whether two tokens are equal, in time that does not depend on where they differ.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Lax`, `Path=/`, `Secure` when asked.
pub fn set_cookie(name: &str, value: &str, max_age: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Max-Age={max_age}; Path=/; HttpOnly; SameSite=Lax{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

const LOAD: &str = "SELECT username, access, refresh, csrf FROM sessions WHERE id_hash = $1 AND expires_at > now()";
const CREATE: &str = "INSERT INTO sessions (id_hash, username, access, refresh, csrf, expires_at) VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))";
const TOKENS: &str = "UPDATE sessions SET access = $2, refresh = $3 WHERE id_hash = $1";
const DELETE: &str = "DELETE FROM sessions WHERE id_hash = $1";
const SWEEP: &str = "DELETE FROM sessions WHERE expires_at <= now()";

/// The session the request's cookie names, if it is live.
pub async fn load(state: &AppState, headers: &HeaderMap) -> sqlx::Result<Option<Session>> {
    let Some(id) = cookie(headers, COOKIE).filter(|v| v.len() == 64) else {
        return Ok(None);
    };
    let id_hash = hash(&id);
    let db = &state.db;
    let row: Option<(String, String, String, String)> = db
        .spans
        .run(
            LOAD,
            sqlx::query_as(LOAD).bind(&id_hash).fetch_optional(&db.pool),
        )
        .await?;
    Ok(row.map(|(username, access, refresh, csrf)| Session {
        id_hash,
        username,
        access,
        refresh,
        csrf,
    }))
}

/// A new session for a signed-in account; its cookie value.
pub async fn create(
    state: &AppState,
    username: &str,
    access: &str,
    refresh: &str,
) -> sqlx::Result<String> {
    let id = random_token();
    let db = &state.db;
    db.spans
        .run(
            CREATE,
            sqlx::query(CREATE)
                .bind(hash(&id))
                .bind(username)
                .bind(access)
                .bind(refresh)
                .bind(random_token())
                .bind(state.session_ttl_secs as f64)
                .execute(&db.pool),
        )
        .await?;
    // Now and then, the expired ones go.
    if rand::rng().random_ratio(1, 50) {
        let _ = db
            .spans
            .run(SWEEP, sqlx::query(SWEEP).execute(&db.pool))
            .await;
    }
    Ok(id)
}

/// Keeps the tokens a refresh gave.
pub async fn update_tokens(state: &AppState, s: &Session) -> sqlx::Result<()> {
    let db = &state.db;
    db.spans
        .run(
            TOKENS,
            sqlx::query(TOKENS)
                .bind(&s.id_hash)
                .bind(&s.access)
                .bind(&s.refresh)
                .execute(&db.pool),
        )
        .await?;
    Ok(())
}

pub async fn delete(state: &AppState, s: &Session) -> sqlx::Result<()> {
    let db = &state.db;
    db.spans
        .run(
            DELETE,
            sqlx::query(DELETE).bind(&s.id_hash).execute(&db.pool),
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_and_written_safely() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; sid=abc; pre=xyz"),
        );
        assert_eq!(cookie(&h, COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&h, PRE).as_deref(), Some("xyz"));
        assert_eq!(cookie(&h, "nope"), None);
        let c = set_cookie(COOKIE, "v", 60, false);
        let c = c.to_str().unwrap();
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Lax") && !c.contains("Secure"));
        assert!(
            set_cookie(COOKIE, "v", 60, true)
                .to_str()
                .unwrap()
                .ends_with("; Secure")
        );
        assert!(same("abcd", "abcd") && !same("abcd", "abce") && !same("abc", "abcd"));
        let t = random_token();
        assert_eq!(t.len(), 64);
        assert_ne!(t, random_token());
        assert_eq!(hash("x").len(), 64);
    }
}
