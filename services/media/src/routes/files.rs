//! `GET /media/{sha256}/{file}`: originals and thumbnails, served like a CDN serves them.
//! Every file is content-addressed (its name never points at other bytes), so it carries
//! a strong `ETag`, `Cache-Control: public, max-age=31536000, immutable`, answers
//! `If-None-Match` with 304 without touching the store, and a single `Range` with 206
//! (video players seek with it). The gateway caches in front.

use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use common::Path;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiError, Result};
use crate::routes::uploads::{original_key, variant_key};
use crate::sniff::Kind;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(file))
}

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// The object key and content type of `file` (`original.<ext>`, `160.jpg`, `640.png`).
fn resolve(sha: &str, file: &str) -> Option<(String, &'static str)> {
    if sha.len() != 64 || !sha.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let (stem, ext) = file.split_once('.')?;
    let kind = Kind::from_extension(ext)?;
    match stem {
        "original" => Some((original_key(sha, kind), kind.content_type())),
        "160" | "640" if matches!(kind, Kind::Jpeg | Kind::Png) => {
            Some((variant_key(sha, file), kind.content_type()))
        }
        _ => None,
    }
}

/// `bytes=a-b`, `bytes=a-` or `bytes=-n` against a `size`-byte file: the half-open
/// range, `Err` when it cannot be satisfied, `None` when there is no single range to
/// honour (the whole file is sent, as the RFC allows).
fn range(headers: &HeaderMap, size: u64) -> Option<std::result::Result<(u64, u64), ()>> {
    let v = headers.get(header::RANGE)?.to_str().ok()?;
    let spec = v.strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            (size.saturating_sub(n), size)
        }
        (a, "") => (a.parse().ok()?, size),
        (a, b) => {
            let (a, b): (u64, u64) = (a.parse().ok()?, b.parse().ok()?);
            if b < a {
                return None;
            }
            (a, (b + 1).min(size))
        }
    };
    Some(if start >= size || start >= end {
        Err(())
    } else {
        Ok((start, end))
    })
}

/// A stored file: an original (`original.<ext>`) or a thumbnail (`160.jpg`, `640.jpg`,
/// or `.png` for images with transparency), as `GET /api/media/{id}` lists them.
#[utoipa::path(get, path = "/media/{sha256}/{file}", tag = "files",
    params(
        ("sha256" = String, Path, description = "the original's SHA-256, hex", pattern = "^[0-9a-f]{64}$"),
        ("file" = String, Path, description = "original.<ext>, 160.jpg, 640.jpg …")),
    responses(
        (status = 200, description = "the file", content_type = "application/octet-stream"),
        (status = 206, description = "the requested range of it"),
        (status = 304, description = "unchanged (If-None-Match)"),
        (status = 400, description = "malformed request (JSON, query or path)", body = common::ErrorBody),
        (status = 404, description = "no such file", body = common::ErrorBody),
        (status = 416, description = "the range lies outside the file", body = common::ErrorBody),
        (status = 503, description = "the object store is unavailable", body = common::ErrorBody)))]
async fn file(
    State(state): State<AppState>,
    Path((sha, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response> {
    let (key, content_type) =
        resolve(&sha, &file).ok_or_else(|| ApiError::NotFound(format!("no file {sha}/{file}")))?;
    let etag = format!("\"{sha}-{file}\"");
    let mut h = HeaderMap::new();
    h.insert(
        header::ETAG,
        HeaderValue::from_str(&etag).expect("hex and dots"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    let matches = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| {
            let t = t.trim();
            t == "*" || t.trim_start_matches("W/") == etag
        });
    if matches {
        return Ok((StatusCode::NOT_MODIFIED, h).into_response());
    }
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if headers.contains_key(header::RANGE) {
        let size = state.objects.head(&key).await?;
        match range(&headers, size) {
            Some(Ok((start, end))) => {
                let bytes = state.objects.get_range(&key, start..end).await?;
                h.insert(
                    header::CONTENT_RANGE,
                    HeaderValue::from_str(&format!("bytes {start}-{}/{size}", end - 1))
                        .expect("digits"),
                );
                return Ok((StatusCode::PARTIAL_CONTENT, h, Body::from(bytes)).into_response());
            }
            Some(Err(())) => {
                let mut r = ApiError::RangeNotSatisfiable(format!(
                    "the file is {size} bytes; the range asked for lies outside it"
                ))
                .into_response();
                r.headers_mut().insert(
                    header::CONTENT_RANGE,
                    HeaderValue::from_str(&format!("bytes */{size}")).expect("digits"),
                );
                return Ok(r);
            }
            None => {}
        }
    }
    // Streamed as it comes from the store: a 100 MiB video is never held whole.
    let (size, stream) = state.objects.get_stream(&key).await?;
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    Ok((StatusCode::OK, h, Body::from_stream(stream)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn ranges_are_read_as_the_rfc_says() {
        assert_eq!(range(&with("bytes=0-9"), 100), Some(Ok((0, 10))));
        assert_eq!(range(&with("bytes=90-"), 100), Some(Ok((90, 100))));
        assert_eq!(range(&with("bytes=-10"), 100), Some(Ok((90, 100))));
        assert_eq!(range(&with("bytes=95-200"), 100), Some(Ok((95, 100))));
        assert_eq!(range(&with("bytes=100-"), 100), Some(Err(())));
        assert_eq!(
            range(&with("bytes=0-1,5-6"), 100),
            None,
            "several: whole file"
        );
        assert_eq!(range(&with("items=0-1"), 100), None);
        assert_eq!(range(&HeaderMap::new(), 100), None);
    }

    #[test]
    fn only_real_files_resolve() {
        let sha = "a".repeat(64);
        assert!(resolve(&sha, "original.png").is_some());
        assert!(resolve(&sha, "160.jpg").is_some());
        assert!(resolve(&sha, "161.jpg").is_none());
        assert!(resolve(&sha, "original.exe").is_none());
        assert!(resolve("../etc", "original.png").is_none());
        assert!(resolve(&"A".repeat(64), "original.png").is_none());
    }
}
