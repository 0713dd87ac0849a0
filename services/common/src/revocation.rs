//! Signed-out sessions, known to every service within moments.
//!
//! Access tokens are stateless JWTs that stay valid until they expire, so signing out
//! alone would leave the token working for up to its lifetime. Auth therefore records
//! each ended session in Redis: it adds the session id to a sorted set (scored by when
//! the last token of that session expires) and publishes it on a channel. Every service
//! subscribes, loads the set after subscribing (so nothing published while it was away
//! is missed), and refuses tokens of a revoked session with 401.
//!
//! Both sides are traced: the logout's trace shows `publish sessions.revoked`, each
//! service's `process sessions.revoked` continues that trace, and a request refused for a
//! revoked session has `socialnet.session.revoked = true` on its server span.
//!
//! The key and channel are shared by every service (no per-service prefix).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_stream::StreamExt as _;
use tracing::Instrument as _;
use uuid::Uuid;

use crate::Cache;
use crate::cache::CacheError;

/// The sorted set of revoked sessions and the channel announcing them.
pub const CHANNEL: &str = "socialnet:sessions:revoked";
/// The destination name spans use (low-cardinality, without the key prefix).
pub const DESTINATION: &str = "sessions.revoked";

#[derive(Debug, Serialize, Deserialize)]
struct Announcement {
    sid: Uuid,
    /// Unix time after which no token of the session is valid anyway.
    until: i64,
    /// The publishing trace's context (`traceparent`, …).
    #[serde(default)]
    context: HashMap<String, String>,
}

/// Records that session `sid` ended and tells every service (auth's side).
pub async fn revoke(cache: &Cache, sid: Uuid, until: i64) -> Result<(), CacheError> {
    let (span, context) = telemetry::messaging::producer("redis", DESTINATION);
    let payload = serde_json::to_string(&Announcement {
        sid,
        until,
        context,
    })
    .expect("an announcement always serialises");
    let now = chrono::Utc::now().timestamp();
    let mut c = cache.conn.clone();
    cache
        .spans
        .run("PIPELINE", async move {
            redis::pipe()
                .zadd(CHANNEL, sid.to_string(), until)
                .ignore()
                .zrembyscore(CHANNEL, "-inf", now)
                .ignore()
                .publish(CHANNEL, payload)
                .ignore()
                .query_async::<()>(&mut c)
                .await
        })
        .instrument(span)
        .await?;
    Ok(())
}

/// The revoked sessions a service knows of (the service's side).
#[derive(Debug, Default)]
pub struct Revoked {
    until: RwLock<HashMap<Uuid, i64>>,
}

impl Revoked {
    /// Whether `sid` was signed out (and its tokens could still be unexpired).
    pub fn contains(&self, sid: Uuid) -> bool {
        let now = chrono::Utc::now().timestamp();
        self.until
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&sid)
            .is_some_and(|&until| until >= now)
    }

    #[cfg(test)]
    pub(crate) fn insert_for_test(&self, sid: Uuid, until: i64) {
        self.insert(sid, until);
    }

    fn insert(&self, sid: Uuid, until: i64) {
        let now = chrono::Utc::now().timestamp();
        let mut map = self.until.write().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, u| *u >= now);
        map.insert(sid, until);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.until.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Follows the announcements on `redis_url` for as long as the process runs,
    /// reconnecting after a failure (a service keeps serving while Redis is down; it
    /// catches up from the sorted set when Redis returns).
    pub fn follow(self: &Arc<Self>, redis_url: &str) {
        let Ok(client) = redis::Client::open(redis_url) else {
            tracing::warn!("REDIS_URL is not a Redis URL; signed-out sessions are not followed");
            return;
        };
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(200);
            loop {
                match me.listen(&client).await {
                    Ok(()) => backoff = Duration::from_millis(200),
                    Err(e) => {
                        tracing::warn!(error = %e, "lost the signed-out sessions channel; reconnecting")
                    }
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        });
    }

    async fn listen(&self, client: &redis::Client) -> redis::RedisResult<()> {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(CHANNEL).await?;
        // Subscribed first, then loaded: an announcement made in between is in both.
        let mut conn = client.get_multiplexed_async_connection().await?;
        let now = chrono::Utc::now().timestamp();
        let known: Vec<(String, i64)> = redis::cmd("ZRANGEBYSCORE")
            .arg(CHANNEL)
            .arg(now)
            .arg("+inf")
            .arg("WITHSCORES")
            .query_async(&mut conn)
            .await?;
        for (sid, until) in known {
            if let Ok(sid) = sid.parse() {
                self.insert(sid, until);
            }
        }
        let mut messages = pubsub.into_on_message();
        while let Some(msg) = messages.next().await {
            let Ok(payload) = msg.get_payload::<String>() else {
                continue;
            };
            let Ok(a) = serde_json::from_str::<Announcement>(&payload) else {
                tracing::warn!("ignoring a malformed signed-out session announcement");
                continue;
            };
            let span = telemetry::messaging::consumer("redis", DESTINATION, &a.context);
            span.in_scope(|| self.insert(a.sid, a.until));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revocation_lasts_until_the_sessions_last_token_expires() {
        let r = Revoked::default();
        let now = chrono::Utc::now().timestamp();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        r.insert(a, now + 60);
        r.insert(b, now - 1);
        assert!(r.contains(a));
        assert!(!r.contains(b), "an expired entry no longer matters");
        assert!(!r.contains(Uuid::new_v4()));
        r.insert(Uuid::new_v4(), now + 60);
        assert_eq!(r.len(), 2, "expired entries are dropped on insert");
    }
}
