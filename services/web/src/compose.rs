//! Posting: the composer's form, as `application/x-www-form-urlencoded` (text only) or
//! `multipart/form-data` (text and an image). An image goes to media
//! (`POST /api/media`, raw bytes), and the post is written once media has made its
//! thumbnails (`GET /api/media/{id}` until `ready`, at most [`READY_WITHIN`]), so the
//! timeline shows it at once. Every step is a CLIENT span under the form's SERVER span.

#![allow(clippy::result_large_err)]

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use reqwest::Method;
use serde_json::json;

use crate::api::{self, Payload};
use crate::handlers as h;
use crate::session::Session;
use crate::state::AppState;

/// How long a post waits for its image's thumbnails.
pub const READY_WITHIN: Duration = Duration::from_secs(20);
/// The largest image media takes (`MEDIA_MAX_IMAGE_BYTES`); larger is refused here first.
pub const MAX_IMAGE: usize = 10 * 1024 * 1024;
/// The longest text field read from a form.
const MAX_FIELD: usize = 16 * 1024;

/// What the composer sent.
#[derive(Debug, Default)]
pub struct Composed {
    pub csrf: String,
    pub body: String,
    pub image: Option<Vec<u8>>,
}

/// Reads the composer's form, either encoding; `Err` is what to tell the person.
pub async fn read_form(headers: &HeaderMap, body: Body) -> Result<Composed, String> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if ct.starts_with("multipart/form-data") {
        return read_multipart(ct, body).await;
    }
    if !ct.starts_with("application/x-www-form-urlencoded") {
        return Err(format!("expected a form, not {ct:?}"));
    }
    let bytes = axum::body::to_bytes(body, MAX_FIELD * 2)
        .await
        .map_err(|e| format!("the form could not be read: {e}"))?;
    let mut f = Composed::default();
    for (k, v) in form_urlencoded(&bytes)? {
        match k.as_str() {
            "csrf" => f.csrf = v,
            "body" => f.body = v,
            _ => {}
        }
    }
    Ok(f)
}

fn form_urlencoded(bytes: &[u8]) -> Result<Vec<(String, String)>, String> {
    serde_urlencoded::from_bytes(bytes).map_err(|e| format!("the form could not be read: {e}"))
}

async fn read_multipart(ct: &str, body: Body) -> Result<Composed, String> {
    let boundary =
        multer::parse_boundary(ct).map_err(|e| format!("the form has no usable boundary: {e}"))?;
    let mut form = multer::Multipart::new(body.into_data_stream(), boundary);
    let mut f = Composed::default();
    let unreadable = |e: multer::Error| format!("the form could not be read: {e}");
    while let Some(mut field) = form.next_field().await.map_err(unreadable)? {
        let name = field.name().unwrap_or_default().to_owned();
        let limit = if name == "image" {
            MAX_IMAGE
        } else {
            MAX_FIELD
        };
        let mut bytes = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(unreadable)? {
            if bytes.len() + chunk.len() > limit {
                return Err(if name == "image" {
                    "The image is larger than 10 MiB.".to_owned()
                } else {
                    format!("The field {name:?} is too long.")
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        match name.as_str() {
            "csrf" => f.csrf = String::from_utf8_lossy(&bytes).into_owned(),
            "body" => {
                f.body =
                    String::from_utf8(bytes).map_err(|_| "The text is not UTF-8.".to_owned())?
            }
            // A form posted without choosing a file sends an empty part.
            "image" if !bytes.is_empty() => f.image = Some(bytes),
            _ => {}
        }
    }
    Ok(f)
}

/// Uploads an image and waits until media has made its thumbnails: its id, or the page
/// that says why not.
async fn upload(state: &AppState, s: &mut Session, image: &[u8]) -> Result<String, Response> {
    let a = api::as_user_with(state, s, Method::POST, "/api/media", Payload::Bytes(image))
        .await
        .map_err(|f| h::failed(state, f, Some(s)))?;
    if !a.ok() {
        return Err(h::refused(&a, s));
    }
    let Some(id) = a.body["id"].as_str().map(str::to_owned) else {
        return Err(h::problem(
            StatusCode::BAD_GATEWAY,
            "media answered an upload without its id.",
            Some(s),
        ));
    };
    let deadline = Instant::now() + READY_WITHIN;
    let mut pause = Duration::from_millis(50);
    loop {
        let m = api::as_user(state, s, Method::GET, &format!("/api/media/{id}"), None)
            .await
            .map_err(|f| h::failed(state, f, Some(s)))?;
        match m.body["status"].as_str() {
            Some("ready") => return Ok(id),
            Some("failed") => {
                let why = m.body["reason"]
                    .as_str()
                    .unwrap_or("it could not be processed");
                return Err(h::problem(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &format!("The image was refused: {why}."),
                    Some(s),
                ));
            }
            _ if Instant::now() >= deadline => {
                return Err(h::problem(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The image is taking long to process; try posting again shortly.",
                    Some(s),
                ));
            }
            _ => {}
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

/// `POST /posts`: text, and an image when one was chosen.
pub async fn create_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut s = match h::signed_in(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let f = match read_form(&headers, body).await {
        Ok(f) => f,
        Err(why) => return h::problem(StatusCode::BAD_REQUEST, &why, Some(&s)),
    };
    if let Err(r) = h::check_csrf(&s, &f.csrf) {
        return r;
    }
    let media = match &f.image {
        Some(image) => match upload(&state, &mut s, image).await {
            Ok(id) => vec![id],
            Err(r) => return r,
        },
        None => Vec::new(),
    };
    let body = json!({"body": f.body, "media": media});
    let a = api::as_user(&state, &mut s, Method::POST, "/api/feed/posts", Some(&body)).await;
    h::after(&state, &s, a, "/")
}
