//! Receiving an upload: a raw body or the file part of a `multipart/form-data` form, its
//! kind read from its first bytes, its size held to that kind's limit as it arrives.
//! An image (at most 10 MiB by default) is kept in memory for checking; a video (at most
//! 100 MiB) is spooled to a temporary file while its SHA-256 is computed, so the service
//! never holds it whole.

use std::pin::Pin;

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt as _};
use http::{HeaderMap, header};
use sha2::Digest as _;
use tokio::io::AsyncWriteExt as _;

use crate::config::Limits;
use crate::error::ApiError;
use crate::sniff::{Kind, sniff};

type Chunks = Pin<Box<dyn Stream<Item = Result<Bytes, String>> + Send>>;

/// An upload, received whole.
pub enum Received {
    Image {
        kind: Kind,
        bytes: Bytes,
    },
    Video {
        kind: Kind,
        /// The spooled file, removed when this is dropped.
        file: tempfile::TempPath,
        sha256: String,
        len: u64,
    },
}

impl Received {
    pub fn kind(&self) -> Kind {
        match self {
            Received::Image { kind, .. } | Received::Video { kind, .. } => *kind,
        }
    }
}

fn cut_off(e: impl std::fmt::Display) -> ApiError {
    ApiError::BadRequest("body_unreadable", format!("the upload was cut off: {e}"))
}

/// The bytes of the upload: the body itself, or the first file part of a multipart
/// form (a part with a file name, or the one named `file`).
async fn chunks(headers: &HeaderMap, body: Body) -> Result<Chunks, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let stream = body.into_data_stream();
    if !content_type
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
    {
        return Ok(stream.map(|r| r.map_err(|e| e.to_string())).boxed());
    }
    let boundary = multer::parse_boundary(content_type).map_err(|e| {
        ApiError::BadRequest(
            "bad_multipart",
            format!("the multipart form's Content-Type has no usable boundary: {e}"),
        )
    })?;
    let mut form = multer::Multipart::new(stream, boundary);
    loop {
        let field = form.next_field().await.map_err(|e| {
            ApiError::BadRequest(
                "bad_multipart",
                format!("the multipart form cannot be read: {e}"),
            )
        })?;
        let Some(field) = field else {
            return Err(ApiError::BadRequest(
                "no_file",
                "the multipart form has no file part: send the file in a part named `file`".into(),
            ));
        };
        if field.file_name().is_some() || field.name() == Some("file") {
            // The form is kept alive beside its field, which reads through it.
            return Ok(field
                .map(move |r| {
                    let _form = &form;
                    r.map_err(|e| e.to_string())
                })
                .boxed());
        }
    }
}

/// Reads and drops what is left of a body, up to `cap` bytes and 30 seconds.
async fn discard_rest(stream: &mut Chunks, cap: u64) {
    let mut read = 0u64;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while let Some(Ok(c)) = stream.next().await {
            read += c.len() as u64;
            if read > cap {
                break;
            }
        }
    })
    .await;
}

/// Receives the upload, refusing it (413) as soon as it passes its kind's limit and
/// (415) when its first bytes are no kind this service takes.
pub async fn receive(
    headers: &HeaderMap,
    body: Body,
    limits: &Limits,
    spool_dir: &std::path::Path,
) -> Result<Received, ApiError> {
    let mut stream = chunks(headers, body).await?;
    let mut buf = BytesMut::new();
    let mut ended = false;
    while buf.len() < 16 {
        match stream.next().await {
            Some(Ok(c)) => buf.extend_from_slice(&c),
            Some(Err(e)) => return Err(cut_off(e)),
            None => {
                ended = true;
                break;
            }
        }
    }
    let kind = sniff(&buf[..buf.len().min(16)]).ok_or_else(|| {
        ApiError::UnsupportedMediaType(
            "not a file this service takes: JPEG, PNG, WebP, GIF, MP4 or WebM, recognised by its bytes"
                .into(),
        )
    })?;
    let (limit, what) = if kind.is_video() {
        (limits.max_video_bytes, "a video")
    } else {
        (limits.max_image_bytes, "an image")
    };
    let too_large = || ApiError::PayloadTooLarge(format!("{what} is at most {limit} bytes"));
    // The rest of a refused body is read and dropped before answering, up to the largest
    // upload the service takes: the gateway streams bodies through, and a service that
    // answered and closed while the gateway was still sending would turn its 413 into
    // the gateway's 502.
    let drain_cap = limits.max_image_bytes.max(limits.max_video_bytes) as u64;
    if buf.len() > limit {
        discard_rest(&mut stream, drain_cap).await;
        return Err(too_large());
    }
    if !kind.is_video() {
        while !ended {
            match stream.next().await {
                Some(Ok(c)) => {
                    if buf.len() + c.len() > limit {
                        discard_rest(&mut stream, drain_cap).await;
                        return Err(too_large());
                    }
                    buf.extend_from_slice(&c);
                }
                Some(Err(e)) => return Err(cut_off(e)),
                None => ended = true,
            }
        }
        return Ok(Received::Image {
            kind,
            bytes: buf.freeze(),
        });
    }
    let spool_failed = |e: std::io::Error| {
        ApiError::Unavailable(format!(
            "the upload could not be spooled to disk ({e}); nothing was stored, retry shortly"
        ))
    };
    let (file, path) = tempfile::Builder::new()
        .prefix("upload-")
        .tempfile_in(spool_dir)
        .map_err(spool_failed)?
        .into_parts();
    let mut file = tokio::fs::File::from_std(file);
    let mut sha = sha2::Sha256::new();
    let mut len = buf.len() as u64;
    sha.update(&buf);
    file.write_all(&buf).await.map_err(spool_failed)?;
    drop(buf);
    while !ended {
        match stream.next().await {
            Some(Ok(c)) => {
                len += c.len() as u64;
                if len > limit as u64 {
                    discard_rest(&mut stream, drain_cap).await;
                    return Err(too_large());
                }
                sha.update(&c);
                file.write_all(&c).await.map_err(spool_failed)?;
            }
            Some(Err(e)) => return Err(cut_off(e)),
            None => ended = true,
        }
    }
    file.flush().await.map_err(spool_failed)?;
    Ok(Received::Video {
        kind,
        file: path,
        sha256: crate::routes::uploads::hex(&sha.finalize()),
        len,
    })
}
