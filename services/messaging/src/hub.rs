//! Live delivery: the sockets connected to this replica, and the Redis pub/sub channel
//! that carries every event (message, typing, presence) to every replica.
//!
//! A sender's replica publishes once; each replica's subscriber hands the event to the
//! sockets of its recipients connected there. Pub/sub is at-most-once: an event published
//! while Redis is down, or while a recipient is away, is not delivered live, and the
//! client gets messages back from PostgreSQL when it syncs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use common::Cache;
use common::cache::CacheError;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_stream::StreamExt as _;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The pub/sub channel, and the `messaging.destination.name` of its spans.
pub const CHANNEL: &str = "messaging.messages";

/// Frames waiting for one slow socket; past this the socket is closed (its client syncs
/// from PostgreSQL when it comes back).
const SOCKET_QUEUE: usize = 256;

/// One event on the channel.
#[derive(Debug, Serialize, Deserialize)]
pub struct Event {
    /// `message`, `typing` or `presence`.
    pub kind: String,
    /// `messaging.message.id`: `<conversation>:<seq>` for a message.
    pub id: String,
    pub conversation_id: Option<i64>,
    pub recipients: Vec<String>,
    /// The frame each recipient's sockets receive, as JSON text.
    pub frame: String,
    /// The producer span's context, for the consumers' links.
    #[serde(default)]
    pub context: HashMap<String, String>,
}

type Outbox = mpsc::Sender<String>;

pub struct Hub {
    sockets: RwLock<HashMap<String, Vec<(u64, Outbox)>>>,
    subscribed: std::sync::atomic::AtomicBool,
    next: AtomicU64,
    cache: Cache,
    pub presence_ttl_secs: u64,
    /// This replica's name in presence sets: unique to this process.
    pub replica: String,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").finish_non_exhaustive()
    }
}

impl Hub {
    pub fn new(cache: Cache, presence_ttl_secs: u64) -> Arc<Self> {
        Arc::new(Self {
            sockets: RwLock::default(),
            subscribed: std::sync::atomic::AtomicBool::new(false),
            next: AtomicU64::new(1),
            cache,
            presence_ttl_secs,
            replica: uuid::Uuid::new_v4().simple().to_string(),
        })
    }

    /// Registers a socket of `user`: its id, and the queue of frames to write to it.
    pub fn connect(&self, user: &str) -> (u64, mpsc::Receiver<String>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(SOCKET_QUEUE);
        self.write()
            .entry(user.to_owned())
            .or_default()
            .push((id, tx));
        (id, rx)
    }

    /// Forgets a socket; true when it was `user`'s last one on this replica.
    pub fn disconnect(&self, user: &str, id: u64) -> bool {
        let mut map = self.write();
        let Some(list) = map.get_mut(user) else {
            return true;
        };
        list.retain(|(i, _)| *i != id);
        if list.is_empty() {
            map.remove(user);
            true
        } else {
            false
        }
    }

    /// The users with a socket on this replica.
    pub fn users(&self) -> Vec<String> {
        self.read().keys().cloned().collect()
    }

    /// Sockets connected to this replica.
    pub fn sockets(&self) -> usize {
        self.read().values().map(Vec::len).sum()
    }

    /// Publishes an event to every replica, in a PRODUCER span (`send messaging.messages`)
    /// whose context travels in the event.
    pub async fn publish(
        &self,
        kind: &str,
        id: String,
        conversation_id: Option<i64>,
        recipients: Vec<String>,
        frame: String,
    ) -> Result<(), CacheError> {
        let (span, context) = telemetry::messaging::send("redis", CHANNEL, &id);
        if let Some(c) = conversation_id {
            span.set_attribute(telemetry::attrs::MESSAGING_MESSAGE_CONVERSATION_ID, c);
        }
        span.set_attribute(
            telemetry::attrs::MESSAGING_RECIPIENTS,
            recipients.len() as i64,
        );
        let event = Event {
            kind: kind.to_owned(),
            id,
            conversation_id,
            recipients,
            frame,
            context,
        };
        let payload = serde_json::to_string(&event).expect("an event always serialises");
        let result = self
            .cache
            .publish(CHANNEL, &payload)
            .instrument(span.clone())
            .await;
        if let Err(e) = &result {
            telemetry::record_error(&span, "redis_unavailable", e.to_string());
        }
        result.map(|_| ())
    }

    /// Hands an event to the local sockets of its recipients, each in a `WS push` span
    /// (under the current span, the consumer's). Returns how many sockets got it.
    pub fn deliver(&self, event: &Event) -> usize {
        let mut delivered = 0;
        let mut full = Vec::new();
        {
            let map = self.read();
            for r in &event.recipients {
                for (id, tx) in map.get(r).into_iter().flatten() {
                    let span = tracing::info_span!(
                        "messaging.ws.push",
                        otel.name = "WS push",
                        otel.kind = "internal"
                    );
                    span.set_attribute(telemetry::attrs::USER_ID, r.clone());
                    span.set_attribute(telemetry::attrs::WS_SOCKET_ID, *id as i64);
                    let outcome = match tx.try_send(event.frame.clone()) {
                        Ok(()) => {
                            delivered += 1;
                            "queued"
                        }
                        Err(mpsc::error::TrySendError::Full(_)) => {
                            full.push((r.clone(), *id));
                            telemetry::record_error(
                                &span,
                                "socket_behind",
                                "the socket's queue is full; it is closed and its client syncs",
                            );
                            "full"
                        }
                        Err(mpsc::error::TrySendError::Closed(_)) => "closed",
                    };
                    span.set_attribute(telemetry::attrs::WS_PUSH_OUTCOME, outcome);
                }
            }
        }
        // A socket that cannot keep up is dropped; its client syncs when it reconnects.
        for (user, id) in full {
            tracing::warn!(%user, socket = id, "a socket fell behind; closing it");
            self.disconnect(&user, id);
        }
        delivered
    }

    /// Follows the channel for as long as the process runs, reconnecting when Redis goes
    /// away.
    pub fn follow(self: &Arc<Self>, redis_url: &str) -> anyhow::Result<()> {
        let client = redis::Client::open(redis_url)?;
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            loop {
                match me.listen(&client).await {
                    Ok(()) => backoff = Duration::from_millis(100),
                    Err(e) => {
                        tracing::warn!(error = %e, "lost the messages channel; reconnecting")
                    }
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        });
        Ok(())
    }

    async fn listen(&self, client: &redis::Client) -> redis::RedisResult<()> {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(CHANNEL).await?;
        self.subscribed.store(true, Ordering::Release);
        let mut messages = pubsub.into_on_message();
        while let Some(msg) = messages.next().await {
            let Ok(payload) = msg.get_payload::<String>() else {
                continue;
            };
            let Ok(event) = serde_json::from_str::<Event>(&payload) else {
                tracing::warn!("ignoring a malformed event on {CHANNEL}");
                continue;
            };
            let span =
                telemetry::messaging::process_linked("redis", CHANNEL, &event.id, &event.context);
            span.in_scope(|| {
                let n = self.deliver(&event);
                if let Some(c) = event.conversation_id {
                    span.set_attribute(telemetry::attrs::MESSAGING_MESSAGE_CONVERSATION_ID, c);
                }
                span.set_attribute(telemetry::attrs::MESSAGING_RECIPIENTS, n as i64);
            });
        }
        self.subscribed.store(false, Ordering::Release);
        Ok(())
    }

    /// Whether this replica is subscribed to the channel now (live delivery works).
    pub fn subscribed(&self) -> bool {
        self.subscribed.load(Ordering::Acquire)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Vec<(u64, Outbox)>>> {
        self.sockets.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Vec<(u64, Outbox)>>> {
        self.sockets.write().unwrap_or_else(|p| p.into_inner())
    }
}
