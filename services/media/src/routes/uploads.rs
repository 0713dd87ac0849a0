//! `POST /api/media` (an upload) and `GET /api/media/{id}` (its state and URLs).

use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use common::{AuthUser, Json, Path};
use http::{HeaderMap, StatusCode};
use sha2::Digest as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiError, Result};
use crate::receive::{Received, receive};
use crate::sniff::Kind;
use crate::store::{self, Media};
use crate::video::Failed;

/// Where the files are served, through the gateway.
pub const FILES: &str = "/media";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(upload))
        .routes(routes!(media))
}

/// Upload an image (JPEG, PNG, WebP or GIF, at most 10 MiB) or a video (MP4 or WebM, at
/// most 100 MiB): the raw request body, or the file part of a `multipart/form-data` form.
/// Its kind is read from its bytes, whatever its name or declared type. Answered once the
/// original is in the object store and its row in PostgreSQL; thumbnails (for a video,
/// of its poster frame) follow: `status: pending`, then `ready`.
#[utoipa::path(post, path = "/api/media", tag = "media",
    security(("bearer" = [])),
    request_body(content(
        (Vec<u8> = "application/octet-stream"),
        (Vec<u8> = "multipart/form-data")),
        description = "the file's bytes, or a form with the file in a part named `file`"),
    responses(
        (status = 201, description = "stored; processing follows", body = Media),
        (status = 400, description = "the body or the form could not be read", body = common::ErrorBody),
        (status = 401, description = "missing, expired or invalid access token", body = common::ErrorBody),
        (status = 413, description = "larger than the limit for its kind", body = common::ErrorBody),
        (status = 415, description = "not a file this service takes (read from its bytes)", body = common::ErrorBody),
        (status = 422, description = "an image that is truncated, unreadable or larger than the decode limits, or a video whose container cannot be read", body = common::ErrorBody),
        (status = 503, description = "the object store, the database or the video tools are unavailable; nothing was stored", body = common::ErrorBody)))]
async fn upload(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Media>)> {
    let received = receive(&headers, body, &state.limits, &state.spool_dir).await?;
    let kind = received.kind();
    let (sha, len, width, height, duration_ms) = match &received {
        Received::Image { bytes, .. } => {
            let (w, h) = crate::process::check(kind, bytes, &state.limits)
                .map_err(|r| ApiError::validation(r.0))?;
            (
                hex(&sha2::Sha256::digest(bytes)),
                bytes.len() as u64,
                w,
                h,
                None,
            )
        }
        Received::Video {
            file, sha256, len, ..
        } => {
            let timeout = Duration::from_secs(state.limits.job_timeout_secs);
            let probe = state
                .video
                .probe(kind, file, timeout)
                .await
                .map_err(|e| match e {
                    Failed::Refused(r) => ApiError::validation(r.0),
                    Failed::Unavailable(m) => {
                        tracing::warn!(reason = %m, "a video could not be checked");
                        ApiError::Unavailable(
                            "video cannot be checked right now; nothing was stored, retry shortly"
                                .into(),
                        )
                    }
                })?;
            (
                sha256.clone(),
                *len,
                probe.width,
                probe.height,
                Some(probe.duration_ms),
            )
        }
    };
    let key = original_key(&sha, kind);
    // Content-addressed: bytes already stored are not sent again.
    let existed = match state.objects.head(&key).await {
        Ok(_) => true,
        Err(crate::objects::StoreError::NotFound) => {
            put_original(&state, &key, &received).await?;
            false
        }
        Err(e) => return Err(e.into()),
    };
    let (span, context) = telemetry::messaging::send("postgresql", crate::worker::QUEUE, &sha);
    let row = tracing::Instrument::instrument(
        store::create(
            &state.db,
            store::NewMedia {
                owner: &user.username,
                kind: kind.extension(),
                sha256: &sha,
                bytes: len as i64,
                width: width as i32,
                height: height as i32,
                duration_ms,
                context: &context,
            },
        ),
        span,
    )
    .await?;
    // The sweeper may have removed the object between the check above and the row: it
    // holds the original's lock while it looks for rows and deletes, and the row's
    // statement waits for that lock, so asking again now settles it.
    if existed
        && matches!(
            state.objects.head(&key).await,
            Err(crate::objects::StoreError::NotFound)
        )
    {
        put_original(&state, &key, &received).await?;
    }
    state.wake.notify_one();
    Ok((StatusCode::CREATED, Json(row.public(FILES))))
}

async fn put_original(state: &AppState, key: &str, received: &Received) -> Result<()> {
    match received {
        Received::Image { bytes, .. } => state.objects.put(key, bytes.clone()).await?,
        Received::Video { file, .. } => state.objects.put_file(key, file).await?,
    }
    Ok(())
}

/// A media item's state: `pending`, `ready` (with its thumbnails' URLs) or `failed`
/// (with the reason).
#[utoipa::path(get, path = "/api/media/{id}", tag = "media",
    params(("id" = Uuid, Path, description = "the media id")),
    responses(
        (status = 200, description = "the media", body = Media),
        (status = 400, description = "malformed request (JSON, query or path)", body = common::ErrorBody),
        (status = 404, description = "no such media", body = common::ErrorBody)))]
async fn media(State(state): State<AppState>, Path(id): Path<Uuid>) -> Result<Json<Media>> {
    let row = store::one(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no media {id}")))?;
    Ok(Json(row.public(FILES)))
}

pub fn original_key(sha: &str, kind: Kind) -> String {
    format!("originals/{sha}.{}", kind.extension())
}

pub fn variant_key(sha: &str, variant: &str) -> String {
    format!("thumbs/{sha}/{variant}")
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
