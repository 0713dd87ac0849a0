//! `POST /api/media` (an upload) and `GET /api/media/{id}` (its state and URLs).

use axum::body::Body;
use axum::extract::State;
use common::{AuthUser, Json, Path};
use http::StatusCode;
use http_body_util::BodyExt as _;
use sha2::Digest as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiError, Result};
use crate::sniff::{Kind, sniff};
use crate::store::{self, Media};

/// Where the files are served, through the gateway.
pub const FILES: &str = "/media";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(upload))
        .routes(routes!(media))
}

/// Reads the body up to `limit` bytes; past it, 413 with the JSON error body.
async fn read_limited(body: Body, limit: usize) -> Result<bytes::Bytes> {
    let limited = http_body_util::Limited::new(body, limit);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::PayloadTooLarge(
            format!("an image is at most {limit} bytes"),
        )),
        Err(e) => Err(ApiError::BadRequest(
            "body_unreadable",
            format!("the upload was cut off: {e}"),
        )),
    }
}

/// Upload an image (JPEG, PNG, WebP or GIF) as the raw request body. Its kind is read
/// from its bytes, whatever its name or declared type. Answered once the original is in
/// the object store and its row in PostgreSQL; thumbnails follow (`status: pending`,
/// then `ready`).
#[utoipa::path(post, path = "/api/media", tag = "media",
    security(("bearer" = [])),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "the file's bytes"),
    responses(
        (status = 201, description = "stored; processing follows", body = Media),
        (status = 400, description = "the body could not be read", body = common::ErrorBody),
        (status = 401, description = "missing, expired or invalid access token", body = common::ErrorBody),
        (status = 413, description = "larger than the limit", body = common::ErrorBody),
        (status = 415, description = "not an image this service takes (read from its bytes)", body = common::ErrorBody),
        (status = 422, description = "an image that is truncated, unreadable, or larger than the decode limits", body = common::ErrorBody),
        (status = 503, description = "the object store or the database is unavailable; nothing was stored", body = common::ErrorBody)))]
async fn upload(
    State(state): State<AppState>,
    user: AuthUser,
    body: Body,
) -> Result<(StatusCode, Json<Media>)> {
    let bytes = read_limited(body, state.limits.max_image_bytes).await?;
    let kind = sniff(&bytes[..bytes.len().min(16)]).ok_or_else(|| {
        ApiError::UnsupportedMediaType(
            "not an image this service takes: JPEG, PNG, WebP or GIF, recognised by its bytes"
                .into(),
        )
    })?;
    if kind.is_video() {
        return Err(ApiError::UnsupportedMediaType(
            "video uploads are not taken yet; images only (JPEG, PNG, WebP, GIF)".into(),
        ));
    }
    let (width, height) = crate::process::check(kind, &bytes, &state.limits)
        .map_err(|r| ApiError::validation(r.0))?;
    let sha = hex(&sha2::Sha256::digest(&bytes));
    let key = original_key(&sha, kind);
    // Content-addressed: bytes already stored are not sent again.
    match state.objects.head(&key).await {
        Ok(_) => {}
        Err(crate::objects::StoreError::NotFound) => state.objects.put(&key, bytes.clone()).await?,
        Err(e) => return Err(e.into()),
    }
    let (span, context) = telemetry::messaging::send("postgresql", crate::worker::QUEUE, &sha);
    let row = tracing::Instrument::instrument(
        store::create(
            &state.db,
            store::NewMedia {
                owner: &user.username,
                kind: kind.extension(),
                sha256: &sha,
                bytes: bytes.len() as i64,
                width: width as i32,
                height: height as i32,
                context: &context,
            },
        ),
        span,
    )
    .await?;
    state.wake.notify_one();
    Ok((StatusCode::CREATED, Json(row.public(FILES))))
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
