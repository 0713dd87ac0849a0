//! Feed's view of media: before a post names an upload, feed asks media (through the
//! gateway, with the caller's token and the current trace context: a CLIENT span with
//! media's SERVER span beneath it) that it exists, is the author's, and is ready.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use telemetry::HttpClient;
use uuid::Uuid;

use crate::error::{ApiError, Result};
use crate::service_client::ServiceClient;

/// An image of a post, as media described it when the post was made.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct PostMedia {
    pub id: Uuid,
    /// The original.
    pub url: String,
    /// Thumbnail size (`160`, `640`) → URL.
    pub thumbnails: BTreeMap<String, String>,
    pub width: Option<i32>,
    pub height: Option<i32>,
}

#[derive(Deserialize)]
struct Media {
    id: Uuid,
    owner: String,
    status: String,
    reason: Option<String>,
    url: String,
    variants: BTreeMap<String, String>,
    width: Option<i32>,
    height: Option<i32>,
}

#[derive(Debug, Clone)]
pub struct MediaClient {
    service: ServiceClient,
}

impl MediaClient {
    pub fn new(http: HttpClient, base: String) -> Self {
        Self {
            service: ServiceClient::new(http, base, "media"),
        }
    }

    /// The upload `id`, when `author` may attach it to a post now.
    pub async fn attachable(&self, id: Uuid, author: &str, token: &str) -> Result<PostMedia> {
        let m: Media = self
            .service
            .get_json(&format!("/api/media/{id}"), &[], token)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("there is no media {id}")))?;
        if m.owner != author {
            return Err(ApiError::Forbidden(format!(
                "media {id} was uploaded by someone else; attach your own uploads"
            )));
        }
        match m.status.as_str() {
            "ready" => Ok(PostMedia {
                id: m.id,
                url: m.url,
                thumbnails: m.variants,
                width: m.width,
                height: m.height,
            }),
            "pending" => Err(ApiError::Conflict(format!(
                "media {id} is still being processed; post it when GET /api/media/{id} says ready"
            ))),
            _ => Err(ApiError::validation(format!(
                "media {id} could not be processed: {}",
                m.reason.unwrap_or_default()
            ))),
        }
    }
}
