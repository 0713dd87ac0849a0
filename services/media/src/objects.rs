//! The object store, through `object_store`'s S3 client: every call is a CLIENT span with
//! the AWS S3 attributes (`telemetry::s3`).
//!
//! Keys: `originals/<sha256>.<ext>` for uploads, `thumbs/<sha256>/<variant>` for what the
//! worker makes. Both are content-addressed, so writing one twice writes the same bytes.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{ClientOptions, ObjectStoreExt as _, PutPayload, RetryConfig};
use telemetry::s3::S3Spans;

use crate::config::StoreConfig;

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
