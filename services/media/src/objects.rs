//! The object store, through `object_store`'s S3 client: every call is a CLIENT span with
//! the AWS S3 attributes (`telemetry::s3`).
//!
//! Keys: `originals/<sha256>.<ext>` for uploads, `thumbs/<sha256>/<variant>` for what the
//! worker makes. Both are content-addressed, so writing one twice writes the same bytes.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{StreamExt as _, TryStreamExt as _};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{
    ClientOptions, MultipartUpload as _, ObjectStore as _, ObjectStoreExt as _, PutPayload,
    RetryConfig,
};
use telemetry::s3::S3Spans;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::config::StoreConfig;

/// The part size of a multipart upload (S3's smallest is 5 MiB): what one upload holds
/// in memory at a time.
pub const PART: usize = 8 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct Objects {
    store: Arc<AmazonS3>,
    bucket: String,
    spans: S3Spans,
}

/// What went wrong with a call, as the service answers it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no such object")]
    NotFound,
    #[error("the object store is unavailable: {0}")]
    Unavailable(String),
}

fn classify(e: &object_store::Error) -> Option<&'static str> {
    Some(match e {
        object_store::Error::NotFound { .. } => "not_found",
        _ => "unavailable",
    })
}

/// For an existence check, "not found" is an answer, not a failure.
fn classify_exists(e: &object_store::Error) -> Option<&'static str> {
    match e {
        object_store::Error::NotFound { .. } => None,
        other => classify(other),
    }
}

impl From<object_store::Error> for StoreError {
    fn from(e: object_store::Error) -> Self {
        match e {
            object_store::Error::NotFound { .. } => StoreError::NotFound,
            other => StoreError::Unavailable(other.to_string()),
        }
    }
}

impl From<StoreError> for common::ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => common::ApiError::NotFound("no such media file".into()),
            // The detail (the store's address, the key) is on the S3 span, not in the
            // client's message.
            StoreError::Unavailable(_) => common::ApiError::Unavailable(
                "the object store is unavailable right now; nothing was stored, retry shortly"
                    .into(),
            ),
        }
    }
}

impl Objects {
    pub fn new(c: &StoreConfig) -> anyhow::Result<Self> {
        // A store that is down answers within seconds, not after minutes of retries: an
        // upload is refused (503) and the client retries.
        let retry = RetryConfig {
            max_retries: 2,
            retry_timeout: Duration::from_secs(5),
            ..RetryConfig::default()
        };
        let store = AmazonS3Builder::new()
            .with_endpoint(&c.endpoint)
            .with_bucket_name(&c.bucket)
            .with_access_key_id(&c.access_key)
            .with_secret_access_key(&c.secret_key)
            .with_region("us-east-1")
            .with_virtual_hosted_style_request(false)
            .with_retry(retry)
            .with_client_options(
                // (Client options replace the builder's: plain HTTP is allowed here.)
                ClientOptions::new()
                    .with_allow_http(true)
                    .with_connect_timeout(Duration::from_secs(2))
                    .with_timeout(Duration::from_secs(60)),
            )
            .build()?;
        Ok(Self {
            store: Arc::new(store),
            bucket: c.bucket.clone(),
            spans: S3Spans::from_url(&c.endpoint),
        })
    }

    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<(), StoreError> {
        let path = Path::from(key);
        self.spans
            .run("PutObject", &self.bucket, key, classify, async {
                self.store.put(&path, PutPayload::from_bytes(bytes)).await
            })
            .await?;
        Ok(())
    }

    /// The object's size, or `NotFound` (not recorded as a failure: callers ask in order
    /// to know).
    pub async fn head(&self, key: &str) -> Result<u64, StoreError> {
        let path = Path::from(key);
        let meta = self
            .spans
            .run("HeadObject", &self.bucket, key, classify_exists, async {
                self.store.head(&path).await
            })
            .await?;
        Ok(meta.size)
    }

    pub async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        let path = Path::from(key);
        let bytes = self
            .spans
            .run("GetObject", &self.bucket, key, classify, async {
                self.store.get(&path).await?.bytes().await
            })
            .await?;
        Ok(bytes)
    }

    /// Stores a file from disk without holding it in memory: one PutObject when it is
    /// small, otherwise a multipart upload of `PART`-byte parts, one at a time (each its
    /// own span), aborted if a part fails.
    pub async fn put_file(&self, key: &str, file: &std::path::Path) -> Result<(), StoreError> {
        let unavailable =
            |e: std::io::Error| StoreError::Unavailable(format!("reading the spooled upload: {e}"));
        let mut f = tokio::fs::File::open(file).await.map_err(unavailable)?;
        let size = f.metadata().await.map_err(unavailable)?.len();
        if size <= PART as u64 {
            let mut buf = Vec::with_capacity(size as usize);
            f.read_to_end(&mut buf).await.map_err(unavailable)?;
            return self.put(key, buf.into()).await;
        }
        let path = Path::from(key);
        let mut upload = self
            .spans
            .run(
                "CreateMultipartUpload",
                &self.bucket,
                key,
                classify,
                async { self.store.put_multipart(&path).await },
            )
            .await?;
        let mut sent = 0u64;
        while sent < size {
            let n = PART.min((size - sent) as usize);
            let mut buf = vec![0u8; n];
            if let Err(e) = f.read_exact(&mut buf).await {
                self.abort(&mut upload, key).await;
                return Err(unavailable(e));
            }
            let part = upload.put_part(PutPayload::from(buf));
            if let Err(e) = self
                .spans
                .run("UploadPart", &self.bucket, key, classify, part)
                .await
            {
                self.abort(&mut upload, key).await;
                return Err(e.into());
            }
            sent += n as u64;
        }
        self.spans
            .run(
                "CompleteMultipartUpload",
                &self.bucket,
                key,
                classify,
                async { upload.complete().await },
            )
            .await?;
        Ok(())
    }

    async fn abort(&self, upload: &mut Box<dyn object_store::MultipartUpload>, key: &str) {
        let _ = self
            .spans
            .run("AbortMultipartUpload", &self.bucket, key, classify, async {
                upload.abort().await
            })
            .await;
    }

    /// Copies an object to a file on disk as it arrives (a video for ffmpeg).
    pub async fn get_to_file(&self, key: &str, file: &std::path::Path) -> Result<u64, StoreError> {
        let path = Path::from(key);
        let unavailable =
            |e: std::io::Error| StoreError::Unavailable(format!("writing {}: {e}", file.display()));
        let mut out = tokio::fs::File::create(file).await.map_err(unavailable)?;
        let mut stream = self
            .spans
            .run("GetObject", &self.bucket, key, classify, async {
                Ok::<_, object_store::Error>(self.store.get(&path).await?.into_stream())
            })
            .await?;
        let mut n = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            n += chunk.len() as u64;
            out.write_all(&chunk).await.map_err(unavailable)?;
        }
        out.flush().await.map_err(unavailable)?;
        Ok(n)
    }

    /// The whole object as a stream of chunks, for serving it without holding it: the
    /// span covers the request up to the first byte.
    pub async fn get_stream(
        &self,
        key: &str,
    ) -> Result<
        (
            u64,
            futures_util::stream::BoxStream<'static, std::io::Result<Bytes>>,
        ),
        StoreError,
    > {
        let path = Path::from(key);
        let got = self
            .spans
            .run("GetObject", &self.bucket, key, classify, async {
                self.store.get(&path).await
            })
            .await?;
        let size = got.meta.size;
        Ok((
            size,
            got.into_stream().map_err(std::io::Error::other).boxed(),
        ))
    }

    /// Keys under `prefix` with their age: what the sweeper looks at.
    pub async fn list(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, chrono::DateTime<chrono::Utc>)>, StoreError> {
        let path = Path::from(prefix);
        let metas: Vec<object_store::ObjectMeta> = self
            .spans
            .run("ListObjectsV2", &self.bucket, prefix, classify, async {
                self.store.list(Some(&path)).try_collect().await
            })
            .await?;
        Ok(metas
            .into_iter()
            .map(|m| (m.location.to_string(), m.last_modified))
            .collect())
    }

    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = Path::from(key);
        self.spans
            .run("DeleteObject", &self.bucket, key, classify_exists, async {
                self.store.delete(&path).await
            })
            .await
            .or_else(|e| match e {
                object_store::Error::NotFound { .. } => Ok(()),
                other => Err(other),
            })?;
        Ok(())
    }

    pub async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes, StoreError> {
        let path = Path::from(key);
        let bytes = self
            .spans
            .run("GetObject", &self.bucket, key, classify, async {
                self.store.get_range(&path, range).await
            })
            .await?;
        Ok(bytes)
    }
}

/// Creating the bucket, which `object_store` cannot do: one `CreateBucket` request signed
/// with AWS Signature Version 4 by hand (an empty body, path-style URL). An object store
/// that starts empty (MinIO in official-image mode) gets its bucket from the service
/// that uses it; one that has it already answers 409, which is fine.
mod create_bucket {
    use sha2::{Digest as _, Sha256};

    use crate::routes::uploads::hex;

    const REGION: &str = "us-east-1";

    fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
        let mut k = [0u8; 64];
        if key.len() > 64 {
            k[..32].copy_from_slice(&Sha256::digest(key));
        } else {
            k[..key.len()].copy_from_slice(key);
        }
        let pad = |b: u8| k.iter().map(|x| x ^ b).collect::<Vec<u8>>();
        let inner = Sha256::new()
            .chain_update(pad(0x36))
            .chain_update(data)
            .finalize();
        Sha256::new()
            .chain_update(pad(0x5c))
            .chain_update(inner)
            .finalize()
            .into()
    }

    /// The `Authorization` value of `PUT /{bucket}` on `host` at `now`, with the
    /// `x-amz-date` and `x-amz-content-sha256` values it signs.
    pub fn authorization(
        host: &str,
        bucket: &str,
        access: &str,
        secret: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> (String, String, String) {
        let amz_date = now.format("%Y%m%dT%H%M%SZ").to_string();
        let day = now.format("%Y%m%d").to_string();
        let payload = hex(&Sha256::digest(b""));
        let signed = "host;x-amz-content-sha256;x-amz-date";
        let canonical = format!(
            "PUT\n/{bucket}\n\nhost:{host}\nx-amz-content-sha256:{payload}\nx-amz-date:{amz_date}\n\n{signed}\n{payload}"
        );
        let scope = format!("{day}/{REGION}/s3/aws4_request");
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
            hex(&Sha256::digest(canonical.as_bytes()))
        );
        let mut key = hmac(format!("AWS4{secret}").as_bytes(), day.as_bytes());
        for part in [REGION, "s3", "aws4_request"] {
            key = hmac(&key, part.as_bytes());
        }
        let signature = hex(&hmac(&key, to_sign.as_bytes()));
        (
            format!(
                "AWS4-HMAC-SHA256 Credential={access}/{scope}, SignedHeaders={signed}, Signature={signature}"
            ),
            amz_date,
            payload,
        )
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn hmac_matches_rfc_4231() {
            // RFC 4231, test case 2.
            assert_eq!(
                hex(&hmac(b"Jefe", b"what do ya want for nothing?")),
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
            );
        }
    }
}

impl Objects {
    /// Makes the bucket unless it exists (a `CreateBucket` CLIENT span).
    pub async fn ensure_bucket(&self, c: &StoreConfig) -> Result<(), StoreError> {
        let url = reqwest::Url::parse(&c.endpoint)
            .map_err(|e| StoreError::Unavailable(format!("bad endpoint {}: {e}", c.endpoint)))?;
        let host = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_owned(),
        };
        let (auth, date, payload) = create_bucket::authorization(
            &host,
            &c.bucket,
            &c.access_key,
            &c.secret_key,
            chrono::Utc::now(),
        );
        let target = format!("{}/{}", c.endpoint.trim_end_matches('/'), c.bucket);
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        self.spans
            .run(
                "CreateBucket",
                &self.bucket,
                "",
                |e: &String| {
                    Some(if e.contains("403") {
                        "forbidden"
                    } else {
                        "unavailable"
                    })
                },
                async {
                    let r = client
                        .put(&target)
                        .header("authorization", auth)
                        .header("x-amz-date", date)
                        .header("x-amz-content-sha256", payload)
                        .send()
                        .await
                        .map_err(|e| e.to_string())?;
                    match r.status().as_u16() {
                        200..=299 | 409 => Ok(()),
                        s => Err(format!("{s}: {}", r.text().await.unwrap_or_default())),
                    }
                },
            )
            .await
            .map_err(StoreError::Unavailable)
    }
}
