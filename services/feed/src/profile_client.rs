//! Feed's view of the follow graph: HTTP calls to profile, made with the caller's token
//! and the current trace context, so each one shows up as a CLIENT span with profile's
//! SERVER span beneath it.

use serde::Deserialize;
use telemetry::HttpClient;
use uuid::Uuid;

use crate::error::{ApiError, Result};

/// What feed needs to know about a user.
#[derive(Debug, Clone, Deserialize)]
pub struct UserRef {
    pub id: Uuid,
    pub username: String,
    pub follower_count: i64,
}

#[derive(Deserialize)]
struct Page {
    items: Vec<UserRef>,
    next_cursor: Option<Uuid>,
}

#[derive(Debug, Clone)]
pub struct ProfileClient {
    http: HttpClient,
    base: String,
}

fn unavailable(e: impl std::fmt::Display) -> ApiError {
    tracing::warn!(error = %e, "profile service call failed");
    ApiError::Unavailable("the profile service did not answer; retry shortly".into())
}

impl ProfileClient {
    pub fn new(http: HttpClient, base: String) -> Self {
        Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    /// One profile; `None` when profile says 404.
    pub async fn get(&self, username: &str, token: &str) -> Result<Option<UserRef>> {
        let url = format!("{}/api/profiles/{}", self.base, username);
        let res = self
            .http
            .send(self.http.reqwest().get(url).bearer_auth(token))
            .await
            .map_err(unavailable)?;
        if res.status() == http::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !res.status().is_success() {
            return Err(unavailable(format!("HTTP {}", res.status())));
        }
        res.json().await.map(Some).map_err(unavailable)
    }

    /// Every page of `/followers` or `/following`, 1000 at a time.
    pub async fn list_all(
        &self,
        username: &str,
        which: &str,
        min_followers: i64,
        token: &str,
    ) -> Result<Vec<UserRef>> {
        let mut out = Vec::new();
        let mut cursor: Option<Uuid> = None;
        loop {
            let url = format!("{}/api/profiles/{}/{}", self.base, username, which);
            let mut query = vec![
                ("limit", "1000".to_owned()),
                ("min_followers", min_followers.to_string()),
            ];
            if let Some(c) = cursor {
                query.push(("cursor", c.to_string()));
            }
            let res = self
                .http
                .send(
                    self.http
                        .reqwest()
                        .get(url)
                        .query(&query)
                        .bearer_auth(token),
                )
                .await
                .map_err(unavailable)?;
            if res.status() == http::StatusCode::NOT_FOUND {
                return Ok(out);
            }
            if !res.status().is_success() {
                return Err(unavailable(format!("HTTP {}", res.status())));
            }
            let page: Page = res.json().await.map_err(unavailable)?;
            out.extend(page.items);
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => return Ok(out),
            }
        }
    }
}
