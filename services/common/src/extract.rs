//! The request extractors every handler uses: axum's `Json`, `Path`, `Query` and `Form`,
//! with rejections in the `{error, message, trace_id}` shape, and text checked at the
//! edge. PostgreSQL cannot store U+0000 in text, so a NUL character anywhere in a
//! string a client sends (a JSON field, a path segment, a query or form parameter) is a
//! 422 naming the field, before any handler or query runs.

use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

fn nul(field: &str) -> ApiError {
    ApiError::Unprocessable(format!(
        "{field} contains the NUL character (U+0000), which text may not hold"
    ))
}

/// The first string in `v` holding a NUL character, as a field path (`body`,
/// `items[2].name`); object keys count too.
fn nul_field(v: &serde_json::Value, at: &str) -> Option<String> {
    match v {
        serde_json::Value::String(s) if s.contains('\0') => Some(if at.is_empty() {
            "the body".into()
        } else {
            at.into()
        }),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, x)| nul_field(x, &format!("{at}[{i}]"))),
        serde_json::Value::Object(map) => map.iter().find_map(|(k, x)| {
            let path = if at.is_empty() {
                k.clone()
            } else {
                format!("{at}.{k}")
            };
            if k.contains('\0') {
                Some(path)
            } else {
                nul_field(x, &path)
            }
        }),
        _ => None,
    }
}

/// The first form-encoded pair (`a=b&c=d`) whose name or value holds a NUL character.
fn nul_pair(encoded: &str) -> Option<String> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(encoded)
        .ok()?
        .into_iter()
        .find(|(k, v)| k.contains('\0') || v.contains('\0'))
        .map(|(k, _)| k.replace('\0', "\\0"))
}

/// `axum::Json` whose rejection is an [`ApiError`], refusing NUL characters.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !json_content_type(req.headers()) {
            return Err(ApiError::BadRequest(
                "unsupported_media_type",
                "send the body as JSON with Content-Type: application/json".into(),
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|r| crate::error::rejection(r.status(), r.body_text()))?;
        // The common case parses once, straight into `T`. Only a body that is not an
        // object, or that spells a NUL (`\u0000`), takes the slower path through a
        // `Value`, which names the offending field.
        let object = bytes
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|b| *b == b'{');
        if object && !mentions_nul(&bytes) {
            let axum::Json(v) = axum::Json::<T>::from_bytes(&bytes)?;
            return Ok(Json(v));
        }
        let axum::Json(value) = axum::Json::<serde_json::Value>::from_bytes(&bytes)?;
        // Every request body is an object; serde would otherwise read a struct from an
        // array of its fields in order (`[null, null]`).
        if !value.is_object() {
            return Err(ApiError::Unprocessable(
                "the body must be a JSON object".into(),
            ));
        }
        if let Some(field) = nul_field(&value, "") {
            return Err(nul(&field));
        }
        serde_json::from_value(value).map(Json).map_err(|e| {
            ApiError::Unprocessable(format!(
                "Failed to deserialize the JSON body into the target type: {e}"
            ))
        })
    }
}

/// Whether a request says its body is JSON (`application/json` or `application/*+json`).
fn json_content_type(headers: &http::HeaderMap) -> bool {
    let Some(ct) = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Whether raw JSON text contains a `\u0000` escape (the only way JSON can carry a NUL);
/// a false alarm (`\\u0000`, an escaped backslash) only costs the slower path.
fn mentions_nul(bytes: &[u8]) -> bool {
    bytes
        .windows(6)
        .any(|w| w[0] == b'\\' && (w[1] == b'u' || w[1] == b'U') && &w[2..] == b"0000")
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// `axum::extract::Path` whose rejection is an [`ApiError`], refusing NUL characters.
#[derive(Debug)]
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        if let Ok(raw) = RawPathParams::from_request_parts(parts, state).await
            && let Some((name, _)) = raw.iter().find(|(_, v)| v.contains('\0'))
        {
            return Err(nul(name));
        }
        let axum::extract::Path(v) =
            axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(Path(v))
    }
}

/// `axum::extract::Query` whose rejection is an [`ApiError`], refusing NUL characters.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        if let Some(field) = parts.uri.query().and_then(nul_pair) {
            return Err(nul(&field));
        }
        let axum::extract::Query(v) =
            axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(Query(v))
    }
}

/// `axum::Form` whose rejection is an [`ApiError`], refusing NUL characters.
#[derive(Debug)]
pub struct Form<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Form<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let axum::Form(pairs) =
            axum::Form::<Vec<(String, String)>>::from_request(req, state).await?;
        if let Some((k, _)) = pairs
            .iter()
            .find(|(k, v)| k.contains('\0') || v.contains('\0'))
        {
            return Err(nul(&k.replace('\0', "\\0")));
        }
        let encoded = serde_urlencoded::to_string(&pairs).expect("string pairs encode");
        serde_urlencoded::from_str(&encoded)
            .map(Form)
            .map_err(|e| ApiError::Unprocessable(format!("Failed to deserialize form body: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_characters_are_found_and_named() {
        let v = serde_json::json!({"a": "ok", "b": {"c": ["x", "y\u{0}z"]}});
        assert_eq!(nul_field(&v, "").as_deref(), Some("b.c[1]"));
        assert_eq!(nul_field(&serde_json::json!({"ok": [1, "two"]}), ""), None);
        assert_eq!(
            nul_field(&serde_json::json!("\u{0}"), "").as_deref(),
            Some("the body")
        );
        assert_eq!(nul_pair("q=%00&limit=2").as_deref(), Some("q"));
        assert_eq!(nul_pair("q=fine&limit=2"), None);
        assert!(mentions_nul(br#"{"a": "x\u0000"}"#));
        assert!(!mentions_nul(br#"{"a": "x\u0041"}"#));
    }
}
