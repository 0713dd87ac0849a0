//! One virtual user of `socialctl load`: signs in, then thinks and acts as the workload
//! says. Every request starts its trace here, in a CLIENT span whose context travels as
//! `traceparent`, and is recorded with its trace id and outcome.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use goose::prelude::*;
use http::Method;
use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, SpanKind, Status, Tracer as _};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use scenarios::workload::{ActionKind, Workload};
use tokio::time::Instant;

use super::conn::{Conn, Outgoing};
use super::pace::{Control, Halt, Pacer};
use super::record::{Endpoint, RecorderHandle, Sample};
use super::socket::{self, Live};
use crate::seed::Zipf;

/// Everything the users share.
pub struct Shared {
    pub workload: Workload,
    pub control: Arc<Control>,
    /// Open model (`--rate`): arrivals come from here instead of think times.
    pub pacer: Option<Arc<Pacer>>,
    pub recorder: RecorderHandle,
    pub tracer: opentelemetry_sdk::trace::SdkTracer,
    pub zipf: Zipf,
    pub next_user: AtomicUsize,
    /// Makes registered usernames unique per run.
    pub run_tag: String,
    pub server_address: String,
    pub server_port: u16,
    /// `http://host:port`, for the spans' `url.full`.
    pub gateway: String,
}

/// How long one request may take, connecting included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// A JSON request body and its content type.
fn json_body(v: &serde_json::Value) -> (&'static str, bytes::Bytes) {
    (
        "application/json",
        bytes::Bytes::from(serde_json::to_vec(v).unwrap_or_default()),
    )
}

/// How often, and how many times, an image post asks whether its upload is processed.
const MEDIA_POLL_EVERY: Duration = Duration::from_millis(200);
const MEDIA_POLLS: usize = 25;

/// One user's state, kept in goose's session data: its connection, and whether it has
/// signed in yet.
#[derive(Clone)]
struct UserState {
    conn: Conn,
    phase: Phase,
}

#[derive(Clone)]
enum Phase {
    /// Its sign-in has not succeeded yet: who it is, and how often it tried.
    Pending {
        n: usize,
        attempts: u32,
    },
    Signed(Box<Session>),
}

/// A signed-in user's state.
#[derive(Clone)]
struct Session {
    username: String,
    access: String,
    refresh: String,
    expires_at: Instant,
    /// Post ids seen lately (likes, comments and post views pick from them).
    seen: Vec<i64>,
    followed: Vec<String>,
    /// Closed model: when the next action is due.
    next_at: Instant,
    rng: StdRng,
    /// The messaging socket, once a `message` action opened it.
    live: Option<Arc<Live>>,
    /// Conversation ids by the other member's username.
    conversations: std::collections::HashMap<String, i64>,
    /// Messages sent, for client message ids unique to this run.
    messages: u64,
}

/// A response as far as the workload cares.
struct Reply {
    status: Option<u16>,
    body: bytes::Bytes,
}

impl Reply {
    fn ok(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }

    fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

fn method(ep: Endpoint) -> Method {
    match ep.method() {
        "POST" => Method::POST,
        "PUT" => Method::PUT,
        "DELETE" => Method::DELETE,
        _ => Method::GET,
    }
}

/// The run is over or stopped: end the transaction. goose notices the stop between
/// transactions; the short pause keeps a stopped user from spinning until it does.
async fn halted(_: Halt) -> TransactionResult {
    tokio::time::sleep(Duration::from_millis(50)).await;
    Ok(())
}

impl Shared {
    /// The goose scenario: sign in once, then act until the run ends.
    pub fn scenario(self: &Arc<Self>) -> Scenario {
        let s1 = self.clone();
        let s2 = self.clone();
        scenario!("social day")
            .register_transaction(
                Transaction::new(Arc::new(move |u| Box::pin(s1.clone().sign_in(u))))
                    .set_name("sign in")
                    .set_on_start(),
            )
            .register_transaction(
                Transaction::new(Arc::new(move |u| Box::pin(s2.clone().act(u)))).set_name("act"),
            )
    }

    fn think(&self, rng: &mut StdRng) -> Duration {
        self.workload.think.at(rng.random())
    }

    /// When the next request may start, and the gap used for coordinated-omission
    /// correction. Open model: the next arrival slot. Closed: `due`.
    async fn wait_turn(&self, due: Instant, gap: Duration) -> Result<(Instant, Duration), Halt> {
        let (mut at, interval) = match &self.pacer {
            Some(p) => (p.take(&self.control), Duration::ZERO),
            None => (due, gap),
        };
        self.control.sleep_until(at).await?;
        // A pause moves the intended start: paused time is not latency.
        let paused = self.control.wait_unpaused().await?;
        if !paused.is_zero() {
            at = Instant::now();
        }
        self.control.may_start()?;
        Ok((at, interval))
    }

    /// A request of the user's day (not of its sign-in phase).
    #[allow(clippy::too_many_arguments)]
    async fn send(
        &self,
        conn: &mut Conn,
        ep: Endpoint,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
        intended: Instant,
        interval: Duration,
    ) -> Reply {
        let body = body.as_ref().map(json_body);
        self.send_as(conn, false, ep, path, token, body, intended, interval)
            .await
    }

    /// One request in a CLIENT span, recorded; `setup` when the user is still signing in.
    #[allow(clippy::too_many_arguments)]
    async fn send_as(
        &self,
        conn: &mut Conn,
        setup: bool,
        ep: Endpoint,
        path: &str,
        token: Option<&str>,
        body: Option<(&'static str, bytes::Bytes)>,
        intended: Instant,
        interval: Duration,
    ) -> Reply {
        let url = format!("{}{}", self.gateway, path);
        let mut span = self
            .tracer
            .span_builder(ep.name())
            .with_kind(SpanKind::Client)
            .with_attributes([
                KeyValue::new("http.request.method", ep.method()),
                KeyValue::new("url.full", url),
                KeyValue::new("url.template", ep.route()),
                KeyValue::new("server.address", self.server_address.clone()),
                KeyValue::new("server.port", i64::from(self.server_port)),
            ])
            .start(&self.tracer);
        let sc = span.span_context().clone();
        let (trace_id, span_id) = (sc.trace_id(), sc.span_id());
        let traceparent = format!("00-{trace_id}-{span_id}-{:02x}", sc.trace_flags().to_u8());
        let sent = Instant::now();
        let out = Outgoing {
            method: method(ep),
            path,
            bearer: token,
            body,
            traceparent: Some(&traceparent),
        };
        let reply = match conn.send(out).await {
            Ok(r) => Reply {
                status: Some(r.status),
                body: r.body,
            },
            Err(kind) => {
                span.set_attribute(KeyValue::new("error.type", kind));
                span.set_status(Status::error(kind));
                Reply {
                    status: None,
                    body: bytes::Bytes::new(),
                }
            }
        };
        let done = Instant::now();
        if let Some(status) = reply.status {
            span.set_attribute(KeyValue::new(
                "http.response.status_code",
                i64::from(status),
            ));
            if status >= 400 {
                span.set_attribute(KeyValue::new("error.type", status.to_string()));
                span.set_status(Status::error(""));
            }
        }
        span.end();
        self.recorder.record(Sample {
            endpoint: ep,
            status: reply.status,
            intended: intended.saturating_duration_since(self.control.started()),
            latency: done.saturating_duration_since(intended),
            service: done - sent,
            interval,
            trace_id,
            span_id,
            setup,
        });
        reply
    }

    /// The on-start transaction: picks who this user is, then signs in.
    async fn sign_in(self: Arc<Self>, user: &mut GooseUser) -> TransactionResult {
        let n = self.next_user.fetch_add(1, Ordering::Relaxed);
        let conn = match Conn::new(&self.server_address, self.server_port, REQUEST_TIMEOUT) {
            Ok(c) => c,
            Err(_) => return halted(Halt::Stopped).await,
        };
        user.set_session_data(UserState {
            conn,
            phase: Phase::Pending { n, attempts: 0 },
        });
        let Some(st) = user.get_session_data_mut::<UserState>() else {
            return halted(Halt::Stopped).await;
        };
        let tried = self.try_sign_in(st, n, 0).await;
        // Signed in or not (a failed user tries again during the day), this user's part
        // of the sign-in phase is over; the day begins when every user's is.
        self.control.first_sign_in_done();
        if let Err(h) = tried {
            return halted(h).await;
        }
        if let Err(h) = self.control.day_begun().await {
            return halted(h).await;
        }
        // The first think time starts with the day: the wait at the gate is not latency.
        if let Phase::Signed(s) = &mut st.phase {
            s.next_at = Instant::now() + self.think(&mut s.rng);
        }
        Ok(())
    }

    /// Logs in as seeded user `n`, or registers a new account (`register` share). On
    /// failure the user stays pending and tries again later, as a real client would.
    async fn try_sign_in(&self, st: &mut UserState, n: usize, attempt: u32) -> Result<(), Halt> {
        let mut rng = StdRng::seed_from_u64(0x5eed ^ n as u64);
        let register = rng.random::<f64>() < self.workload.register_share;
        let (ep, username) = if register {
            (
                Endpoint::Register,
                format!("lt{}_{n}_{attempt}", self.run_tag),
            )
        } else {
            (
                Endpoint::Login,
                crate::seed::username(n % self.workload.users),
            )
        };
        let body = serde_json::json!({"username": username, "password": self.workload.password});
        // Signing in is not paced: users sign in while they ramp up, before arrivals start.
        let at = Instant::now();
        self.control.may_start()?;
        // A user with no session yet is establishing one: the sign-in phase.
        let reply = self
            .send_as(
                &mut st.conn,
                true,
                ep,
                ep.route(),
                None,
                Some(json_body(&body)),
                at,
                Duration::ZERO,
            )
            .await;
        let tokens = reply.ok().then(|| reply.json()).flatten();
        let Some(t) = tokens else {
            return Ok(());
        };
        let str_of = |k: &str| t[k].as_str().unwrap_or_default().to_owned();
        let think = self.think(&mut rng);
        st.phase = Phase::Signed(Box::new(Session {
            username,
            access: str_of("access_token"),
            refresh: str_of("refresh_token"),
            expires_at: Instant::now()
                + Duration::from_secs(t["expires_in"].as_u64().unwrap_or(900)),
            seen: Vec::new(),
            followed: Vec::new(),
            next_at: Instant::now() + think,
            rng,
            live: None,
            conversations: Default::default(),
            messages: 0,
        }));
        self.recorder.signed_in();
        Ok(())
    }

    async fn act(self: Arc<Self>, user: &mut GooseUser) -> TransactionResult {
        let Some(st) = user.get_session_data_mut::<UserState>() else {
            return halted(Halt::Stopped).await;
        };
        let r = match &mut st.phase {
            Phase::Signed(s) => self.act_once(&mut st.conn, s).await,
            Phase::Pending { n, attempts } => {
                // Not signed in yet: back off (1 s, 2 s, … up to 8 s), then try again.
                let (n, tried) = (*n, *attempts);
                *attempts += 1;
                let backoff = Duration::from_secs(1 << tried.min(3));
                match self.control.sleep_until(Instant::now() + backoff).await {
                    Ok(()) => self.try_sign_in(st, n, tried + 1).await,
                    Err(h) => Err(h),
                }
            }
        };
        match r {
            Ok(()) => Ok(()),
            Err(h) => halted(h).await,
        }
    }

    async fn act_once(&self, conn: &mut Conn, s: &mut Session) -> Result<(), Halt> {
        let gap = self.workload.think.mean();
        if s.expires_at.saturating_duration_since(Instant::now()) < self.workload.refresh_before {
            let (at, interval) = self.wait_turn(s.next_at, gap).await?;
            let body = serde_json::json!({"refresh_token": s.refresh});
            let r = self
                .send(
                    conn,
                    Endpoint::Refresh,
                    Endpoint::Refresh.route(),
                    None,
                    Some(body),
                    at,
                    interval,
                )
                .await;
            if let Some(t) = r.ok().then(|| r.json()).flatten() {
                s.access = t["access_token"].as_str().unwrap_or_default().to_owned();
                s.refresh = t["refresh_token"].as_str().unwrap_or_default().to_owned();
                s.expires_at =
                    Instant::now() + Duration::from_secs(t["expires_in"].as_u64().unwrap_or(900));
            }
            s.next_at = Instant::now() + self.think(&mut s.rng);
            return Ok(());
        }
        let action = self.workload.pick(s.rng.random()).clone();
        let mut kind = action.kind;
        let needs_post = matches!(
            kind,
            ActionKind::ViewPost | ActionKind::Like | ActionKind::Comment
        );
        if needs_post && s.seen.is_empty() {
            kind = ActionKind::Timeline;
        }
        let post = if s.seen.is_empty() {
            0
        } else {
            s.seen[s.rng.random_range(0..s.seen.len())]
        };
        let token = s.access.clone();
        let tok = Some(token.as_str());
        let (at, interval) = self.wait_turn(s.next_at, gap).await?;
        match kind {
            ActionKind::Timeline => {
                let pages = s.rng.random_range(action.pages.0..=action.pages.1);
                let mut cursor: Option<i64> = None;
                let (mut at, mut interval) = (at, interval);
                for page in 0..pages {
                    if page > 0 {
                        let pause = action.page_think.at(s.rng.random());
                        (at, interval) = self
                            .wait_turn(Instant::now() + pause, action.page_think.mean())
                            .await?;
                    }
                    let path = match cursor {
                        Some(c) => format!("/api/feed/timeline?limit=20&cursor={c}"),
                        None => "/api/feed/timeline?limit=20".to_owned(),
                    };
                    let r = self
                        .send(conn, Endpoint::Timeline, &path, tok, None, at, interval)
                        .await;
                    let page = r.json().unwrap_or_default();
                    remember_posts(s, &page["items"]);
                    cursor = page["next_cursor"].as_i64();
                    if cursor.is_none() {
                        break;
                    }
                }
            }
            ActionKind::ViewPost => {
                let path = format!("/api/feed/posts/{post}");
                self.send(conn, Endpoint::GetPost, &path, tok, None, at, interval)
                    .await;
                let (at, interval) = self.wait_turn(Instant::now(), Duration::ZERO).await?;
                let path = format!("/api/feed/posts/{post}/comments");
                self.send(conn, Endpoint::ListComments, &path, tok, None, at, interval)
                    .await;
            }
            ActionKind::Profile => {
                let name = self.someone_else(s);
                let path = format!("/api/profiles/{name}");
                self.send(conn, Endpoint::Profile, &path, tok, None, at, interval)
                    .await;
                if action.with_posts {
                    let (at, interval) = self.wait_turn(Instant::now(), Duration::ZERO).await?;
                    let path = format!("/api/feed/users/{name}/posts?limit=20");
                    let r = self
                        .send(conn, Endpoint::UserPosts, &path, tok, None, at, interval)
                        .await;
                    remember_posts(s, &r.json().unwrap_or_default()["items"]);
                }
            }
            ActionKind::Search => {
                let q = format!("user{:02}", s.rng.random_range(0..100));
                let path = format!("/api/profiles/search?q={q}");
                self.send(conn, Endpoint::Search, &path, tok, None, at, interval)
                    .await;
            }
            ActionKind::Follow => {
                let name = self.someone_else(s);
                let path = format!("/api/profiles/{name}/follow");
                let r = self
                    .send(conn, Endpoint::Follow, &path, tok, None, at, interval)
                    .await;
                if r.ok() && s.followed.len() < 50 {
                    s.followed.push(name);
                }
            }
            ActionKind::Unfollow => {
                let name = match s.followed.pop() {
                    Some(n) => n,
                    None => self.someone_else(s),
                };
                let path = format!("/api/profiles/{name}/follow");
                self.send(conn, Endpoint::Unfollow, &path, tok, None, at, interval)
                    .await;
            }
            ActionKind::Post => {
                let body = serde_json::json!({"body": format!("{} says hello #{} #load", s.username, s.rng.random::<u16>())});
                let r = self
                    .send(
                        conn,
                        Endpoint::CreatePost,
                        Endpoint::CreatePost.route(),
                        tok,
                        Some(body),
                        at,
                        interval,
                    )
                    .await;
                if let Some(id) = r.json().and_then(|p| p["id"].as_i64()) {
                    push_seen(s, id);
                }
            }
            ActionKind::Like => {
                let path = format!("/api/feed/posts/{post}/like");
                self.send(conn, Endpoint::Like, &path, tok, None, at, interval)
                    .await;
            }
            ActionKind::Message => {
                self.message(conn, s, tok, at, interval).await?;
            }
            ActionKind::PostImage => {
                self.post_image(conn, s, tok, at, interval).await?;
            }
            ActionKind::Comment => {
                let path = format!("/api/feed/posts/{post}/comments");
                let body = serde_json::json!({"body": "nice one"});
                self.send(
                    conn,
                    Endpoint::Comment,
                    &path,
                    tok,
                    Some(body),
                    at,
                    interval,
                )
                .await;
            }
        }
        s.next_at = Instant::now() + self.think(&mut s.rng);
        Ok(())
    }

    /// A message to someone followed (or someone popular) on the user's socket: opens
    /// the socket (a ticket first) and the conversation when this is the first time.
    /// An image post, as an app makes one: upload a small image (fresh bytes each time,
    /// so media stores and processes every one), ask until media has made its
    /// thumbnails, then post it. Gives up quietly (like a user) when processing takes
    /// longer than the polls allow.
    async fn post_image(
        &self,
        conn: &mut Conn,
        s: &mut Session,
        tok: Option<&str>,
        at: Instant,
        interval: Duration,
    ) -> Result<(), Halt> {
        let png = crate::load::png::noise(48, 48, &mut s.rng);
        let ep = Endpoint::Upload;
        let r = self
            .send_as(
                conn,
                false,
                ep,
                ep.route(),
                tok,
                Some(("application/octet-stream", png)),
                at,
                interval,
            )
            .await;
        let id = r
            .ok()
            .then(|| r.json())
            .flatten()
            .and_then(|v| v["id"].as_str().map(str::to_owned));
        let Some(id) = id else { return Ok(()) };
        let path = format!("/api/media/{id}");
        for _ in 0..MEDIA_POLLS {
            let (at, interval) = self
                .wait_turn(Instant::now() + MEDIA_POLL_EVERY, Duration::ZERO)
                .await?;
            let r = self
                .send(conn, Endpoint::MediaStatus, &path, tok, None, at, interval)
                .await;
            match r.json().as_ref().and_then(|v| v["status"].as_str()) {
                Some("pending") => continue,
                Some("ready") => {
                    let (at, interval) = self.wait_turn(Instant::now(), Duration::ZERO).await?;
                    let body = serde_json::json!({
                        "body": format!("{} shares a picture #load", s.username),
                        "media": [id],
                    });
                    let ep = Endpoint::CreatePost;
                    let r = self
                        .send(conn, ep, ep.route(), tok, Some(body), at, interval)
                        .await;
                    if let Some(id) = r.json().and_then(|p| p["id"].as_i64()) {
                        push_seen(s, id);
                    }
                    return Ok(());
                }
                _ => return Ok(()),
            }
        }
        Ok(())
    }

    async fn message(
        &self,
        conn: &mut Conn,
        s: &mut Session,
        tok: Option<&str>,
        at: Instant,
        interval: Duration,
    ) -> Result<(), Halt> {
        let peer = match s.followed.last() {
            Some(p) => p.clone(),
            None => self.someone_else(s),
        };
        let (mut at, mut interval) = (at, interval);
        let live = match &s.live {
            Some(l) => l.clone(),
            None => {
                let ep = Endpoint::WsTicket;
                let r = self
                    .send(conn, ep, ep.route(), tok, None, at, interval)
                    .await;
                let ticket = r
                    .ok()
                    .then(|| r.json())
                    .flatten()
                    .and_then(|v| v["ticket"].as_str().map(str::to_owned));
                let Some(ticket) = ticket else { return Ok(()) };
                let opened = Live::open(
                    &self.server_address,
                    self.server_port,
                    &ticket,
                    s.username.clone(),
                    self.control.started(),
                    self.recorder.clone(),
                )
                .await;
                let Ok(live) = opened else { return Ok(()) };
                let live = Arc::new(live);
                s.live = Some(live.clone());
                (at, interval) = self.wait_turn(Instant::now(), Duration::ZERO).await?;
                live
            }
        };
        let conversation = match s.conversations.get(&peer) {
            Some(c) => *c,
            None => {
                let ep = Endpoint::OpenConversation;
                let body = serde_json::json!({ "members": [peer] });
                let r = self
                    .send(conn, ep, ep.route(), tok, Some(body), at, interval)
                    .await;
                let id = r
                    .ok()
                    .then(|| r.json())
                    .flatten()
                    .and_then(|v| v["id"].as_i64());
                let Some(id) = id else { return Ok(()) };
                s.conversations.insert(peer, id);
                (at, interval) = self.wait_turn(Instant::now(), Duration::ZERO).await?;
                id
            }
        };
        s.messages += 1;
        let id = format!("{}-{}-{}", self.run_tag, s.username, s.messages);
        if !self
            .send_frame(&live, conversation, id, &s.username, at, interval)
            .await
        {
            // The socket is gone: the next message opens a new one.
            s.live = None;
        }
        Ok(())
    }

    /// Sends one message frame in a CLIENT span whose context the frame carries, waits
    /// for its acknowledgement, and records it like a request. False when the socket
    /// is closed.
    async fn send_frame(
        &self,
        live: &Live,
        conversation: i64,
        id: String,
        me: &str,
        intended: Instant,
        interval: Duration,
    ) -> bool {
        let ep = Endpoint::WsSend;
        let mut span = self
            .tracer
            .span_builder(ep.name())
            .with_kind(SpanKind::Client)
            .with_attributes([
                KeyValue::new("network.protocol.name", "websocket"),
                KeyValue::new("socialnet.ws.frame.type", "send"),
                KeyValue::new("messaging.message.conversation_id", conversation),
                KeyValue::new("server.address", self.server_address.clone()),
                KeyValue::new("server.port", i64::from(self.server_port)),
            ])
            .start(&self.tracer);
        let sc = span.span_context().clone();
        let (trace_id, span_id) = (sc.trace_id(), sc.span_id());
        let traceparent = format!("00-{trace_id}-{span_id}-{:02x}", sc.trace_flags().to_u8());
        // The body carries its send time, so the recipient's socket can time delivery.
        let sent_us = Instant::now()
            .saturating_duration_since(self.control.started())
            .as_micros();
        let frame = serde_json::json!({
            "type": "send",
            "id": id,
            "conversation_id": conversation,
            "body": format!("hello from {me} @{sent_us}"),
            "traceparent": traceparent,
        })
        .to_string();
        let sent = Instant::now();
        let answer = live.send(frame, id, REQUEST_TIMEOUT).await;
        let done = Instant::now();
        let (status, open) = match &answer {
            Ok(_) => (Some(200), true),
            Err(code) => {
                span.set_attribute(KeyValue::new("error.type", code.clone()));
                span.set_status(Status::error(code.clone()));
                (socket::status_of(code), code != "closed")
            }
        };
        span.end();
        self.recorder.record(Sample {
            endpoint: ep,
            status,
            intended: intended.saturating_duration_since(self.control.started()),
            latency: done.saturating_duration_since(intended),
            service: done - sent,
            interval,
            trace_id,
            span_id,
            setup: false,
        });
        open
    }

    /// A user picked by popularity, never oneself.
    fn someone_else(&self, s: &mut Session) -> String {
        loop {
            let name = crate::seed::username(self.zipf.sample(&mut s.rng));
            if name != s.username || self.workload.users < 2 {
                return name;
            }
        }
    }
}

fn push_seen(s: &mut Session, id: i64) {
    if s.seen.len() >= 64 {
        let i = s.rng.random_range(0..s.seen.len());
        s.seen[i] = id;
    } else {
        s.seen.push(id);
    }
}

fn remember_posts(s: &mut Session, items: &serde_json::Value) {
    for id in items
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["id"].as_i64())
        .take(5)
    {
        push_seen(s, id);
    }
}
