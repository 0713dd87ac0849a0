//! Messaging's integration tests, against the real PostgreSQL, Redis and NGINX started by
//! `./dev.sh test`: two replicas share one database and one Redis, as in the stack.

mod http;
mod live;

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use common::testkit::{self, Req, TestKeys};
use common::{Cache, Db};
use futures_util::{SinkExt as _, StreamExt as _};
use messaging::AppState;
use tokio_tungstenite::tungstenite::Message as Frame;
use uuid::Uuid;

/// Replicas of messaging on one fresh database and one Redis, each served on a port.
pub struct Harness {
    pub keys: TestKeys,
    pub replicas: Vec<(Router, SocketAddr)>,
    pub hubs: Vec<std::sync::Arc<messaging::hub::Hub>>,
    pub db: Db,
    /// Makes this test's usernames its own: every test's replicas share one channel.
    tag: String,
}

impl Harness {
    pub async fn new(replicas: usize) -> Self {
        Self::with_redis(replicas, &testkit::redis_url()).await
    }

    pub async fn with_redis(replicas: usize, redis_url: &str) -> Self {
        testkit::init_tracing();
        let url = testkit::fresh_database("messaging").await;
        let db = Db::connect(&url, 4, &messaging::MIGRATOR)
            .await
            .expect("connect and migrate");
        let keys = TestKeys::default();
        // One key prefix for every replica (they share tickets and presence), fresh per test.
        let prefix = testkit::unique_prefix("messaging");
        let mut out = Vec::new();
        let mut hubs = Vec::new();
        for _ in 0..replicas {
            let cache = Cache::new(redis_url, &prefix).expect("redis url");
            let hub = messaging::hub::Hub::new(cache.clone(), 3);
            hub.follow(redis_url).expect("follow");
            hubs.push(hub.clone());
            let state = AppState {
                db: db.clone(),
                cache,
                verifier: keys.verifier(),
                hub,
            };
            messaging::presence::heartbeat(state.clone());
            let app = messaging::app(state);
            let addr = testkit::spawn_app(app.clone()).await;
            out.push((app, addr));
        }
        Self {
            keys,
            replicas: out,
            hubs,
            db,
            tag: Uuid::new_v4().simple().to_string()[..8].to_owned(),
        }
    }

    /// `base`, made unique to this test.
    pub fn name(&self, base: &str) -> String {
        format!("{base}_{}", self.tag)
    }

    /// Waits until every replica follows the channel.
    pub async fn subscribed(&self) {
        testkit::wait_until(Duration::from_secs(10), "replicas subscribed", || async {
            self.hubs.iter().all(|h| h.subscribed())
        })
        .await;
    }

    pub fn app(&self) -> &Router {
        &self.replicas[0].0
    }

    pub fn token(&self, username: &str) -> String {
        self.keys.token(Uuid::new_v4(), username)
    }

    /// A conversation of `me` and `others`; its id.
    pub async fn conversation(&self, token: &str, others: &[&str]) -> i64 {
        let r = Req::post("/api/messages/conversations")
            .token(token)
            .json(serde_json::json!({ "members": others }))
            .send(self.app())
            .await;
        assert!(r.status.is_success(), "{}", r.text);
        r.json["id"].as_i64().expect("id")
    }

    /// A socket opened with a fresh ticket, at `base` (a replica or the gateway).
    pub async fn socket(&self, token: &str, base: SocketAddr) -> Socket {
        self.socket_with(token, base, "").await
    }

    /// A socket opened with a fresh ticket and more of the URL's query (`since=…`).
    pub async fn socket_with(&self, token: &str, base: SocketAddr, query: &str) -> Socket {
        let query = if query.is_empty() {
            String::new()
        } else {
            format!("&{query}")
        };
        let t = Req::post("/api/messages/ws-ticket")
            .token(token)
            .send(self.app())
            .await
            .expect(200);
        let ticket = t.json["ticket"].as_str().expect("ticket").to_owned();
        let (ws, _) = tokio_tungstenite::connect_async(format!(
            "ws://{base}/api/messages/ws?ticket={ticket}{query}"
        ))
        .await
        .expect("websocket upgrade");
        Socket { ws }
    }
}

pub struct Socket {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl Socket {
    pub async fn send(&mut self, v: serde_json::Value) {
        self.ws
            .send(Frame::Text(v.to_string().into()))
            .await
            .expect("send frame");
    }

    pub async fn send_text(&mut self, t: String) {
        self.ws
            .send(Frame::Text(t.into()))
            .await
            .expect("send frame");
    }

    /// The next JSON frame of `kind` (others are skipped), within five seconds.
    pub async fn next(&mut self, kind: &str) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let f = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("no {kind:?} frame within 5 s"))
                .expect("socket open")
                .expect("frame");
            if let Frame::Text(t) = f {
                let v: serde_json::Value = serde_json::from_str(t.as_str()).expect("JSON frame");
                if v["type"] == kind {
                    return v;
                }
            }
        }
    }

    /// The next JSON frame of any type, within five seconds.
    pub async fn next_any(&mut self) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let f = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("no frame within 5 s"))
                .expect("socket open")
                .expect("frame");
            if let Frame::Text(t) = f {
                return serde_json::from_str(t.as_str()).expect("JSON frame");
            }
        }
    }

    /// The sequence numbers of a `sync`'s backfilled messages, up to its `synced` frame,
    /// and the `last_seq` it names (live frames in between are skipped).
    pub async fn backfill(&mut self) -> (Vec<i64>, i64) {
        let mut seqs = Vec::new();
        loop {
            let f = self.next_any().await;
            match f["type"].as_str() {
                Some("message") if f["backfill"] == true => {
                    seqs.push(f["message"]["seq"].as_i64().expect("seq"));
                }
                Some("synced") => return (seqs, f["last_seq"].as_i64().expect("last_seq")),
                _ => {}
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}
