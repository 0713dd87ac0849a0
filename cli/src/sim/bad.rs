//! The deliberately wrong requests real clients send. Each must be answered with a 4xx
//! and the JSON error body `{error, message, trace_id}`; a 5xx or no answer is a defect
//! of the system under test.
//!
//! Not simulated: an expired access token (it would need the stack's signing key or a
//! run longer than a token's life) and a token for a deleted account (the API has no
//! account deletion).

use serde_json::json;

use super::device::Body;

/// One kind of bad request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BadKind {
    /// `Authorization: Bearer` with something that is not a token.
    MalformedToken,
    /// A well-formed token no key of the stack signed.
    ForgedToken,
    /// A body that is not JSON.
    MalformedJson,
    /// A body past the 64 KiB limit.
    Oversize,
    /// JSON sent as `text/plain`.
    WrongContentType,
    /// A post that does not exist.
    UnknownId,
    /// A refresh token used a second time.
    ReplayedRefresh,
}

pub const ALL: [BadKind; 7] = [
    BadKind::MalformedToken,
    BadKind::ForgedToken,
    BadKind::MalformedJson,
    BadKind::Oversize,
    BadKind::WrongContentType,
    BadKind::UnknownId,
    BadKind::ReplayedRefresh,
];

impl BadKind {
    pub fn name(self) -> &'static str {
        match self {
            BadKind::MalformedToken => "malformed token",
            BadKind::ForgedToken => "forged token",
            BadKind::MalformedJson => "malformed JSON",
            BadKind::Oversize => "oversize body",
            BadKind::WrongContentType => "wrong content type",
            BadKind::UnknownId => "unknown id",
            BadKind::ReplayedRefresh => "replayed refresh token",
        }
    }
}

/// A bad request, ready to send.
pub struct BadRequest {
    pub method: reqwest::Method,
    pub path: String,
    pub route: &'static str,
    pub body: Body,
    pub token: Option<String>,
}

/// A token-shaped string signed by nobody (header `{"alg":"EdDSA","typ":"JWT"}`).
const FORGED: &str = "eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJub2JvZHkiLCJleHAiOjQxMDI0NDQ4MDB9.c2lnbmVkIGJ5IG5vYm9keQ";

/// The request of `kind`; `access` is the phone's token (the bad body still needs a
/// good token to get past authentication), `spent` a refresh token already used.
pub fn request(kind: BadKind, access: Option<&str>, spent: Option<&str>) -> BadRequest {
    use reqwest::Method;
    let access = access.map(str::to_owned);
    let post = |body: Body| BadRequest {
        method: Method::POST,
        path: "/api/feed/posts".into(),
        route: "POST /api/feed/posts",
        body,
        token: access.clone(),
    };
    match kind {
        BadKind::MalformedToken => BadRequest {
            method: Method::GET,
            path: "/api/feed/timeline".into(),
            route: "GET /api/feed/timeline",
            body: Body::None,
            token: Some("not-a-token".into()),
        },
        BadKind::ForgedToken => BadRequest {
            method: Method::GET,
            path: "/api/feed/timeline".into(),
            route: "GET /api/feed/timeline",
            body: Body::None,
            token: Some(FORGED.into()),
        },
        BadKind::MalformedJson => post(Body::Raw {
            content_type: "application/json",
            bytes: b"{\"body\": \"unterminated".to_vec(),
        }),
        BadKind::Oversize => post(Body::Raw {
            content_type: "application/json",
            bytes: serde_json::to_vec(&json!({"body": "x".repeat(70 * 1024)})).unwrap_or_default(),
        }),
        BadKind::WrongContentType => post(Body::Raw {
            content_type: "text/plain",
            bytes: b"{\"body\": \"plain text\"}".to_vec(),
        }),
        BadKind::UnknownId => BadRequest {
            method: Method::GET,
            path: "/api/feed/posts/999999999999".into(),
            route: "GET /api/feed/posts/{id}",
            body: Body::None,
            token: access.clone(),
        },
        BadKind::ReplayedRefresh => BadRequest {
            method: Method::POST,
            path: "/api/auth/refresh".into(),
            route: "POST /api/auth/refresh",
            // With no spent token yet, one that never existed: refused the same way.
            body: Body::Json(json!({"refresh_token": spent.unwrap_or("r3fresh-never-issued")})),
            token: None,
        },
    }
}
