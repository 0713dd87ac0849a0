//! The error shape every service answers with, and extractors that use it.
//!
//! Client mistakes are 4xx with `{error, message, trace_id}`; anything internal is a 500
//! with a generic message, while the detail goes on the server span and into one log line
//! (written by the telemetry middleware, inside the request's span).

use axum::extract::rejection::{FormRejection, JsonRejection, PathRejection, QueryRejection};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use telemetry::http_server::ErrorDetail;

/// The JSON body of every error response.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `not_found`.
    pub error: String,
    /// One sentence for a human: what went wrong and, where useful, what to do.
    pub message: String,
    /// The trace of the failed request, to look it up in the trace UI.
    pub trace_id: String,
}

/// An error a handler returns; converts into the right status and body.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{1}")]
    BadRequest(&'static str, String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 416: a `Range` outside the resource.
    #[error("{0}")]
    RangeNotSatisfiable(String),
    /// 415: a body of a kind the endpoint does not take.
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{message}")]
    TooManyRequests {
        message: String,
        retry_after_secs: u64,
    },
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn validation(message: impl Into<String>) -> Self {
        Self::Unprocessable(message.into())
    }

    /// The machine-readable `error` code of the body (`forbidden`, `validation_failed`, …).
    pub fn code(&self) -> &'static str {
        self.parts().1
    }

    /// The `message` a client is shown: the error's own words, except for an internal
    /// error, whose detail stays in the logs and the trace.
    pub fn client_message(&self) -> String {
        match self {
            Self::Internal(_) => {
                "something went wrong on our side; the trace id says where".to_owned()
            }
            other => other.to_string(),
        }
    }

    fn parts(&self) -> (StatusCode, &'static str) {
        match self {
            Self::BadRequest(code, _) => (StatusCode::BAD_REQUEST, code),
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Self::Unprocessable(_) => (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            Self::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Self::RangeNotSatisfiable(_) => {
                (StatusCode::RANGE_NOT_SATISFIABLE, "range_not_satisfiable")
            }
            Self::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            Self::TooManyRequests { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Self::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        // Errors a client's input can cause are theirs (4xx); the rest are ours (500).
        let sqlstate = match &e {
            sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
            _ => None,
        };
        match (&e, sqlstate.as_deref()) {
            (sqlx::Error::Database(db), _) if db.is_unique_violation() => {
                Self::Conflict("that already exists".into())
            }
            // Class 22, data exceptions: a value PostgreSQL cannot store or compare (text
            // it cannot encode, a number out of range). Input that reaches here was not
            // validated at the edge, but it is still the client's input.
            (_, Some(code)) if code.starts_with("22") => Self::Unprocessable(
                "a value in the request cannot be stored (out of range or not valid text)".into(),
            ),
            // What a request referred to was deleted under it (a foreign key with nothing
            // to point at, or a row a write expected to find).
            (_, Some("23503")) | (sqlx::Error::RowNotFound, _) => {
                Self::NotFound("what this refers to no longer exists".into())
            }
            // Serialization failures and deadlocks: retrying succeeds.
            (_, Some("40001" | "40P01")) => {
                Self::Unavailable("the request collided with another; retry it".into())
            }
            (sqlx::Error::PoolTimedOut | sqlx::Error::Io(_), _) => {
                Self::Unavailable("the database is not reachable right now; retry shortly".into())
            }
            _ => Self::Internal(anyhow::Error::new(e).context("database query failed")),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.parts();
        let detail = format!("{self:#}");
        let message = self.client_message();
        let body = ErrorBody {
            error: code.to_owned(),
            message,
            trace_id: telemetry::current_trace_id(),
        };
        let mut res = (status, axum::Json(body)).into_response();
        if let Self::TooManyRequests {
            retry_after_secs, ..
        } = &self
        {
            res.headers_mut().insert(
                http::header::RETRY_AFTER,
                http::HeaderValue::from(*retry_after_secs),
            );
        }
        res.extensions_mut().insert(ErrorDetail {
            error_type: code,
            message: detail,
        });
        res
    }
}

pub(crate) fn rejection(status: StatusCode, text: String) -> ApiError {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::PayloadTooLarge(format!("request body too large: {text}"))
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::BadRequest(
            "unsupported_media_type",
            "send the body as JSON with Content-Type: application/json".into(),
        ),
        StatusCode::UNPROCESSABLE_ENTITY => ApiError::Unprocessable(text),
        _ => ApiError::BadRequest("bad_request", text),
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        rejection(r.status(), r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        // A path that matched a route but whose parameter does not parse names nothing
        // that exists: 404, as for an unknown id.
        ApiError::NotFound(r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::BadRequest("bad_query", r.body_text())
    }
}

impl From<FormRejection> for ApiError {
    fn from(r: FormRejection) -> Self {
        rejection(r.status(), r.body_text())
    }
}

/// Fallback for paths no route matches. The body is read (and dropped) first: see
/// [`drain`].
pub async fn not_found(uri: http::Uri, body: axum::body::Body) -> ApiError {
    drain(body).await;
    ApiError::NotFound(format!("no such endpoint: {}", uri.path()))
}

/// Fallback for a known path with the wrong method. The body is read (and dropped)
/// first: see [`drain`].
pub async fn method_not_allowed(
    method: http::Method,
    uri: http::Uri,
    body: axum::body::Body,
) -> Response {
    drain(body).await;
    let body = ErrorBody {
        error: "method_not_allowed".into(),
        message: format!("{method} is not allowed on {}", uri.path()),
        trace_id: telemetry::current_trace_id(),
    };
    (StatusCode::METHOD_NOT_ALLOWED, axum::Json(body)).into_response()
}

/// Reads a refused request's body to its end (at most the service's body limit) and
/// drops it. A route whose body the gateway streams unbuffered (media's uploads) is
/// still sending when the refusal is ready: answered unread, the connection is closed
/// under the gateway mid-send and the client gets the gateway's 503 instead of this
/// 4xx (a clean-clone fuzz run saw it for PATCH /api/media).
async fn drain(body: axum::body::Body) {
    use tokio_stream::StreamExt;
    let limit = crate::server::max_body_bytes();
    let mut stream = body.into_data_stream();
    let mut read = 0usize;
    while let Some(Ok(chunk)) = stream.next().await {
        read += chunk.len();
        if read > limit {
            break;
        }
    }
}

/// Checks a free-text field: `min` to `max` characters (code points, as JSON Schema's
/// `minLength`/`maxLength` count), not all blank (space, tab, CR, LF: the same set as
/// the `[^ \t\n\r]` pattern its OpenAPI schema carries).
pub fn check_text(field: &str, value: &str, min: usize, max: usize) -> Result<(), ApiError> {
    check_len(field, value, min, max)?;
    if value.trim_matches([' ', '\t', '\n', '\r']).is_empty() {
        return Err(ApiError::validation(format!("{field} must not be blank")));
    }
    Ok(())
}

/// Checks a free-text field's length in characters.
pub fn check_len(field: &str, value: &str, min: usize, max: usize) -> Result<(), ApiError> {
    let n = value.chars().count();
    if n < min || n > max {
        return Err(ApiError::validation(format!(
            "{field} must be {min} to {max} characters (got {n})"
        )));
    }
    Ok(())
}

/// A page size: `default` when absent, else 1 to `max` (422 outside).
pub fn check_limit(limit: Option<i64>, default: i64, max: i64) -> Result<i64, ApiError> {
    match limit {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::validation(format!(
            "limit must be 1 to {max} (got {n})"
        ))),
    }
}
