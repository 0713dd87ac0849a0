//! Feed's view of the follow graph: HTTP calls to profile, made with the caller's token
//! and the current trace context, so each one shows up as a CLIENT span with profile's
//! SERVER span beneath it.

use serde::Deserialize;
use telemetry::HttpClient;
use uuid::Uuid;

use crate::error::Result;
use crate::service_client::ServiceClient;

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
    service: ServiceClient,
}

impl ProfileClient {
    pub fn new(http: HttpClient, base: String) -> Self {
        Self {
            service: ServiceClient::new(http, base, "profile"),
        }
    }

    /// One profile; `None` when profile says 404.
    pub async fn get(&self, username: &str, token: &str) -> Result<Option<UserRef>> {
        self.service
            .get_json(&format!("/api/profiles/{username}"), &[], token)
            .await
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
        let path = format!("/api/profiles/{username}/{which}");
        loop {
            let mut query = vec![
                ("limit", "1000".to_owned()),
                ("min_followers", min_followers.to_string()),
            ];
            if let Some(c) = cursor {
                query.push(("cursor", c.to_string()));
            }
            let Some(page) = self.service.get_json::<Page>(&path, &query, token).await? else {
                return Ok(out);
            };
            out.extend(page.items);
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => return Ok(out),
            }
        }
    }
}
