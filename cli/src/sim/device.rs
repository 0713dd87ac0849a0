//! One phone: a person with the app. It starts cold, signs in, reads and writes through
//! screens with think times between them, goes to the background and comes back (a warm
//! start, a token refresh, perhaps a new session), loses the network now and then, and
//! keeps its telemetry in its own buffer until it can upload it.
//!
//! Every user-visible operation is a root span (`open timeline`, `send post`); the HTTP
//! calls it makes are CLIENT spans under it, each attempt its own span
//! (`http.request.resend_count` on retries), and each carries its context to the server
//! in `traceparent`. Idempotent calls (GET, PUT, DELETE, a message with its client id)
//! are retried with exponential backoff and jitter; the others are not, and are counted
//! as such.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use scenarios::sim::{DeviceModel, Network, Screen};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::bad;
use super::session::Session;
use super::spans::{Buffer, DeviceSpan, export_body, kv};
use super::{Sent, Shared, hex};

/// How many times an idempotent call is tried in all.
const ATTEMPTS: u32 = 3;

/// Whether a call may be sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    Idempotent,
    /// No idempotency key: sending it again could do it twice.
    Never,
}

/// A request body.
#[derive(Debug, Clone)]
pub enum Body {
    None,
    Json(Value),
    Raw {
        content_type: &'static str,
        bytes: Vec<u8>,
    },
}

/// What a call came to.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The last attempt's status; `None` when no answer came.
    pub status: Option<u16>,
    pub json: Value,
    /// Why there was no answer (`offline`, `connect_failed`, `timeout`).
    pub failure: Option<&'static str>,
    /// The answer came from the gateway, not a service (no `traceparent` came back).
    pub gateway_only: bool,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// The trace context of the screen a call belongs to.
#[derive(Debug, Clone, Copy)]
pub struct Ctx {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
}

/// The phone and its app's state.
pub struct Device {
    pub index: usize,
    pub model: DeviceModel,
    pub network: Network,
    /// Its clock's error, in nanoseconds (positive: fast).
    pub skew_ns: i64,
    pub resource: Vec<KeyValue>,
    pub username: String,
    access: Option<String>,
    refresh: Option<String>,
    /// A refresh token already used once: replaying it is one of the bad requests.
    spent_refresh: Option<String>,
    pub session: Session,
    pub buffer: Buffer,
    rng: StdRng,
    /// (from, until) of the next time without network.
    offline: Option<(Instant, Instant)>,
    /// Inside an offline period now (as last seen).
    in_offline: bool,
    next_upload: Instant,
    /// Posts this phone has seen, to open, like and comment on.
    seen_posts: Vec<i64>,
    conversation: Option<i64>,
    messages: u64,
}

fn now_unix_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or_default()
}

impl Device {
    /// Phone `index` of the population, drawn from the profile with its own seed.
    pub fn new(index: usize, shared: &Shared) -> Device {
        let p = &shared.profile;
        let mut rng = StdRng::seed_from_u64(shared.seed ^ (index as u64).wrapping_mul(0x9e37_79b9));
        let model = pick(&mut rng, &p.devices, |d| d.weight).clone();
        let network = pick(&mut rng, &p.networks, |n| n.weight).clone();
        let skew_ns = if rng.random::<f64>() < p.skew_share {
            let (lo, hi) = p.skew_offset;
            ((lo + rng.random::<f64>() * (hi - lo)) * 1e9) as i64
        } else {
            0
        };
        let app = p
            .app(model.os)
            .expect("the profile names every platform's app");
        let installation = uuid::Uuid::from_u128(rng.random::<u128>()).to_string();
        let mut resource = vec![
            kv("service.name", app.name.clone()),
            kv("service.version", app.version.clone()),
            kv("service.instance.id", format!("device-{index}")),
            kv("app.installation.id", installation),
            kv("device.model.identifier", model.identifier.clone()),
            kv("device.model.name", model.name.clone()),
            kv("device.manufacturer", model.manufacturer.clone()),
            kv("os.name", model.os.name()),
            kv("os.version", model.os_version.clone()),
            kv("os.type", model.os.os_type()),
            kv(
                "os.description",
                format!(
                    "{} {} ({})",
                    model.os.name(),
                    model.os_version,
                    model.identifier
                ),
            ),
            kv("telemetry.sdk.name", "socialctl-sim"),
            kv("telemetry.sdk.language", "rust"),
            kv("telemetry.sdk.version", env!("CARGO_PKG_VERSION")),
        ];
        resource.push(kv("socialnet.sim.run", shared.run_tag.clone()));
        let now = Instant::now();
        let offline = (rng.random::<f64>() < p.offline_share).then(|| {
            let from = now + p.offline_every.at(rng.random());
            (from, from + p.offline_for.at(rng.random()))
        });
        let username = crate::seed::username(rng.random_range(0..p.users.max(1)));
        Device {
            index,
            model,
            network,
            skew_ns,
            resource,
            username,
            access: None,
            refresh: None,
            spent_refresh: None,
            session: Session::new(now, p.session_background, p.session_max),
            buffer: Buffer::new(p.buffer_spans),
            rng,
            offline,
            in_offline: false,
            next_upload: now + p.upload_every,
            seen_posts: Vec::new(),
            conversation: None,
            messages: 0,
        }
    }

    /// The phone's clock, in Unix nanoseconds.
    fn clock(&self) -> u64 {
        (now_unix_ns() + i128::from(self.skew_ns)).max(0) as u64
    }

    /// Whether it has a network now; moves its next offline period along once passed.
    fn online(&mut self, shared: &Shared) -> bool {
        let now = Instant::now();
        let Some((from, until)) = self.offline else {
            return true;
        };
        if now < from {
            return true;
        }
        if now < until {
            if !self.in_offline {
                self.in_offline = true;
                shared
                    .counters
                    .offline_now
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            return false;
        }
        if self.in_offline {
            self.in_offline = false;
            shared
                .counters
                .offline_now
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
        let p = &shared.profile;
        let next = until + p.offline_every.at(self.rng.random());
        self.offline = Some((next, next + p.offline_for.at(self.rng.random())));
        shared
            .counters
            .offline_periods
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        true
    }

    fn ids(&mut self) -> ([u8; 16], [u8; 8]) {
        (self.rng.random(), self.rng.random())
    }

    fn finish(&mut self, span: DeviceSpan, shared: &Shared) {
        use std::sync::atomic::Ordering::Relaxed;
        shared.counters.spans.fetch_add(1, Relaxed);
        shared.pending(span.trace_id, 1);
        let before = self.buffer.dropped;
        self.buffer.push(span);
        if self.buffer.dropped > before {
            shared.counters.dropped.fetch_add(1, Relaxed);
            if let Some(t) = self.buffer.dropped_traces.last() {
                shared.pending(*t, -1);
                shared.dropped(*t);
            }
        }
    }

    /// Uploads the buffer when it is time and the phone is online (`force`: now, if
    /// online: the end of the run).
    pub async fn upload(&mut self, shared: &Shared, force: bool) {
        if self.buffer.is_empty()
            || (!force && Instant::now() < self.next_upload)
            || !self.online(shared)
        {
            return;
        }
        self.next_upload = Instant::now() + shared.profile.upload_every;
        let spans = self.buffer.drain();
        let n = spans.len() as u64;
        let traces: Vec<[u8; 16]> = spans.iter().map(|s| s.trace_id).collect();
        let kept = spans.clone();
        let body = export_body(&self.resource, self.clock(), spans);
        let sent = shared
            .client
            .post(format!("{}/v1/traces", shared.sink))
            .header("content-type", "application/x-protobuf")
            .timeout(Duration::from_secs(10))
            .body(body)
            .send()
            .await;
        use std::sync::atomic::Ordering::Relaxed;
        if matches!(&sent, Ok(r) if r.status().is_success()) {
            shared.counters.uploaded.fetch_add(n, Relaxed);
            for t in traces {
                shared.pending(t, -1);
            }
        } else {
            // Back into the buffer; what no longer fits is dropped, oldest first.
            let before = self.buffer.dropped;
            self.buffer.restore(kept);
            let dropped = (self.buffer.dropped - before) as usize;
            let lost: Vec<[u8; 16]> = self
                .buffer
                .dropped_traces
                .iter()
                .rev()
                .take(dropped)
                .copied()
                .collect();
            for t in lost {
                shared.counters.dropped.fetch_add(1, Relaxed);
                shared.pending(t, -1);
                shared.dropped(t);
            }
        }
    }

    /// Starts a screen: its root span's context and start time.
    fn open(&mut self) -> (Ctx, u64) {
        let (trace_id, span_id) = self.ids();
        (Ctx { trace_id, span_id }, self.clock())
    }

    /// Ends a screen's root span.
    fn close(
        &mut self,
        shared: &Shared,
        ctx: Ctx,
        start_ns: u64,
        name: &str,
        extra: Vec<KeyValue>,
        error: Option<String>,
    ) {
        let session = self.session.id(Instant::now()).to_owned();
        let mut attributes = vec![kv("session.id", session)];
        attributes.extend(extra);
        let span = DeviceSpan {
            trace_id: ctx.trace_id,
            span_id: ctx.span_id,
            parent: None,
            name: name.to_owned(),
            kind: SpanKind::Internal,
            start_ns,
            end_ns: self.clock(),
            attributes,
            error,
        };
        self.finish(span, shared);
    }

    /// One HTTP call of a screen, with the network's latency and failures, retried when
    /// it may be. `route` is its endpoint's template (`GET /api/feed/posts/{id}`).
    #[allow(clippy::too_many_arguments)]
    pub async fn call(
        &mut self,
        shared: &Shared,
        ctx: Ctx,
        method: reqwest::Method,
        path: &str,
        route: &str,
        body: Body,
        retry: Retry,
        token: Option<String>,
    ) -> Outcome {
        let mut last = Outcome {
            status: None,
            json: Value::Null,
            failure: None,
            gateway_only: false,
        };
        let url = format!("{}{path}", shared.gateway);
        for attempt in 0..ATTEMPTS {
            let (_, span_id) = self.ids();
            let start_ns = self.clock();
            let started = Instant::now();
            let mut attributes = vec![
                kv("http.request.method", method.as_str()),
                kv("url.full", url.clone()),
                kv("server.address", shared.server.0.clone()),
                kv("server.port", i64::from(shared.server.1)),
                kv("network.connection.type", self.network.kind.clone()),
                kv("session.id", self.session.id(Instant::now()).to_owned()),
            ];
            if let Some(s) = &self.network.subtype {
                attributes.push(kv("network.connection.subtype", s.clone()));
            }
            if attempt > 0 {
                attributes.push(kv("http.request.resend_count", i64::from(attempt)));
            }
            let outcome = if !self.online(shared) {
                Outcome {
                    status: None,
                    json: Value::Null,
                    failure: Some("offline"),
                    gateway_only: false,
                }
            } else {
                tokio::time::sleep(self.network.latency.at(self.rng.random())).await;
                if self.rng.random::<f64>() < self.network.fail {
                    Outcome {
                        status: None,
                        json: Value::Null,
                        failure: Some("connect_failed"),
                        gateway_only: false,
                    }
                } else {
                    let o = self
                        .send(shared, ctx, span_id, &method, &url, &body, token.as_deref())
                        .await;
                    tokio::time::sleep(self.network.latency.at(self.rng.random())).await;
                    if o.failure != Some("connect_failed") {
                        shared.sent(Sent {
                            trace_id: hex(&ctx.trace_id),
                            parent_span_id: hex(&span_id),
                            endpoint: route.to_owned(),
                            status: o.status,
                            gateway_only: o.gateway_only,
                            device: self.index,
                        });
                    }
                    o
                }
            };
            if let Some(s) = outcome.status {
                attributes.push(kv("http.response.status_code", i64::from(s)));
            }
            if outcome.gateway_only {
                attributes.push(kv(verify::checks::ANSWERED_BY, "gateway"));
            }
            let error = match (outcome.failure, outcome.status) {
                (Some(f), _) => {
                    attributes.push(kv("error.type", f));
                    Some(f.to_owned())
                }
                (None, Some(s)) if s >= 400 => {
                    attributes.push(kv("error.type", s.to_string()));
                    Some(format!("HTTP {s}"))
                }
                _ => None,
            };
            let span = DeviceSpan {
                trace_id: ctx.trace_id,
                span_id,
                parent: Some(ctx.span_id),
                name: method.as_str().to_owned(),
                kind: SpanKind::Client,
                start_ns,
                end_ns: self.clock(),
                attributes,
                error,
            };
            self.finish(span, shared);
            shared.observe_call(
                &self.network.label(),
                started.elapsed(),
                &outcome,
                attempt > 0,
            );
            let retryable =
                outcome.failure.is_some() || outcome.status.is_some_and(|s| s >= 500 || s == 429);
            last = outcome;
            if !retryable || attempt + 1 == ATTEMPTS {
                break;
            }
            if retry == Retry::Never {
                shared
                    .counters
                    .not_retried
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                break;
            }
            // Exponential backoff with full jitter: up to 250 ms, 500 ms, …
            let cap = 250u64 << attempt;
            tokio::time::sleep(Duration::from_millis(self.rng.random_range(0..=cap))).await;
        }
        last
    }

    /// The request itself, with the screen's context in `traceparent`.
    #[allow(clippy::too_many_arguments)]
    async fn send(
        &self,
        shared: &Shared,
        ctx: Ctx,
        span_id: [u8; 8],
        method: &reqwest::Method,
        url: &str,
        body: &Body,
        token: Option<&str>,
    ) -> Outcome {
        let mut rb = shared
            .client
            .request(method.clone(), url)
            .timeout(self.network.timeout)
            .header(
                "traceparent",
                format!("00-{}-{}-01", hex(&ctx.trace_id), hex(&span_id)),
            );
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        rb = match body {
            Body::None => rb,
            Body::Json(v) => rb.json(v),
            Body::Raw {
                content_type,
                bytes,
            } => rb.header("content-type", *content_type).body(bytes.clone()),
        };
        match rb.send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                // The gateway answered itself (a body over the limit, no replica up).
                let gateway_only = r
                    .headers()
                    .get("x-answered-by")
                    .is_some_and(|v| v.as_bytes() == b"gateway");
                let json = r.json().await.unwrap_or(Value::Null);
                Outcome {
                    status: Some(status),
                    json,
                    failure: None,
                    gateway_only,
                }
            }
            Err(e) => Outcome {
                status: None,
                json: Value::Null,
                gateway_only: false,
                failure: Some(if e.is_timeout() {
                    "timeout"
                } else if e.is_connect() {
                    "connect_failed"
                } else {
                    "no_response"
                }),
            },
        }
    }

    /// The app starts: `cold` (launched) or warm (back from the background), with a
    /// sign-in (cold) or a token refresh (warm) inside.
    pub async fn start(&mut self, shared: &Shared, cold: bool) -> bool {
        let (ctx, t0) = self.open();
        let ok = if cold || self.refresh.is_none() {
            let o = self
                .call(
                    shared,
                    ctx,
                    reqwest::Method::POST,
                    "/api/auth/login",
                    "POST /api/auth/login",
                    Body::Json(
                        json!({"username": self.username, "password": shared.profile.password}),
                    ),
                    Retry::Never,
                    None,
                )
                .await;
            self.take_tokens(&o)
        } else {
            let token = self.refresh.clone();
            let o = self
                .call(
                    shared,
                    ctx,
                    reqwest::Method::POST,
                    "/api/auth/refresh",
                    "POST /api/auth/refresh",
                    Body::Json(json!({"refresh_token": token})),
                    Retry::Never,
                    None,
                )
                .await;
            let ok = self.take_tokens(&o);
            if ok {
                self.spent_refresh = token;
            }
            ok
        };
        let kind = if cold { "cold" } else { "warm" };
        self.close(
            shared,
            ctx,
            t0,
            "app start",
            vec![kv("app.start.type", kind)],
            (!ok).then(|| "sign-in failed".to_owned()),
        );
        shared.screen(
            if cold {
                "app start (cold)"
            } else {
                "app start (warm)"
            },
            t0,
            self.clock(),
            ok,
        );
        ok
    }

    fn take_tokens(&mut self, o: &Outcome) -> bool {
        match (o.ok(), o.json["access_token"].as_str()) {
            (true, Some(a)) => {
                self.access = Some(a.to_owned());
                self.refresh = o.json["refresh_token"].as_str().map(str::to_owned);
                true
            }
            _ => false,
        }
    }

    fn post_to_use(&mut self) -> i64 {
        if self.seen_posts.is_empty() {
            return 1 + self.rng.random_range(0..1000);
        }
        let i = self.rng.random_range(0..self.seen_posts.len());
        self.seen_posts[i]
    }

    /// One screen, chosen by the profile's weights.
    pub async fn screen(&mut self, shared: &Shared, screen: Screen) {
        use reqwest::Method;
        let (ctx, t0) = self.open();
        let tok = self.access.clone();
        let mut ok = true;
        match screen {
            Screen::Timeline => {
                let pages = {
                    let (lo, hi) = shared.profile.pages;
                    self.rng.random_range(lo..=hi)
                };
                let mut cursor: Option<String> = None;
                for _ in 0..pages {
                    let path = match &cursor {
                        Some(c) => format!("/api/feed/timeline?limit=20&cursor={c}"),
                        None => "/api/feed/timeline?limit=20".to_owned(),
                    };
                    let o = self
                        .call(
                            shared,
                            ctx,
                            Method::GET,
                            &path,
                            "GET /api/feed/timeline",
                            Body::None,
                            Retry::Idempotent,
                            tok.clone(),
                        )
                        .await;
                    ok &= o.ok();
                    for p in o.json["items"].as_array().into_iter().flatten() {
                        if let Some(id) = p["id"].as_i64() {
                            if self.seen_posts.len() >= 200 {
                                self.seen_posts.remove(0);
                            }
                            self.seen_posts.push(id);
                        }
                    }
                    cursor = o.json["next_cursor"].as_i64().map(|c| c.to_string());
                    if cursor.is_none() || !o.ok() {
                        break;
                    }
                    let think = Duration::from_millis(self.rng.random_range(200..800));
                    tokio::time::sleep(think).await;
                }
            }
            Screen::PostDetail => {
                let post = self.post_to_use();
                let o = self
                    .call(
                        shared,
                        ctx,
                        Method::GET,
                        &format!("/api/feed/posts/{post}"),
                        "GET /api/feed/posts/{id}",
                        Body::None,
                        Retry::Idempotent,
                        tok.clone(),
                    )
                    .await;
                ok &= o.ok() || o.status == Some(404);
                let o = self
                    .call(
                        shared,
                        ctx,
                        Method::GET,
                        &format!("/api/feed/posts/{post}/comments"),
                        "GET /api/feed/posts/{id}/comments",
                        Body::None,
                        Retry::Idempotent,
                        tok,
                    )
                    .await;
                ok &= o.ok() || o.status == Some(404);
            }
            Screen::Profile => {
                let name =
                    crate::seed::username(self.rng.random_range(0..shared.profile.users.max(1)));
                let o = self
                    .call(
                        shared,
                        ctx,
                        Method::GET,
                        &format!("/api/profiles/{name}"),
                        "GET /api/profiles/{username}",
                        Body::None,
                        Retry::Idempotent,
                        tok.clone(),
                    )
                    .await;
                ok &= o.ok();
                let o = self
                    .call(
                        shared,
                        ctx,
                        Method::GET,
                        &format!("/api/feed/users/{name}/posts?limit=20"),
                        "GET /api/feed/users/{username}/posts",
                        Body::None,
                        Retry::Idempotent,
                        tok,
                    )
                    .await;
                ok &= o.ok();
            }
            Screen::Like => {
                let post = self.post_to_use();
                let o = self
                    .call(
                        shared,
                        ctx,
                        Method::PUT,
                        &format!("/api/feed/posts/{post}/like"),
                        "PUT /api/feed/posts/{id}/like",
                        Body::None,
                        Retry::Idempotent,
                        tok,
                    )
                    .await;
                ok &= o.ok() || o.status == Some(404);
            }
            Screen::Comment => {
                let post = self.post_to_use();
                let o = self
                    .call(
                        shared,
                        ctx,
                        Method::POST,
                        &format!("/api/feed/posts/{post}/comments"),
                        "POST /api/feed/posts/{id}/comments",
                        Body::Json(json!({"body": "from my phone"})),
                        Retry::Never,
                        tok,
                    )
                    .await;
                ok &= o.ok() || o.status == Some(404);
            }
            Screen::Compose => {
                let o = self
                    .call(
                        shared,
                        ctx,
                        Method::POST,
                        "/api/feed/posts",
                        "POST /api/feed/posts",
                        Body::Json(json!({"body": format!("posted from {}", self.model.name)})),
                        Retry::Never,
                        tok,
                    )
                    .await;
                ok &= o.ok();
                if let Some(id) = o.json["id"].as_i64() {
                    self.seen_posts.push(id);
                }
            }
            Screen::Photo => {
                // Fresh bytes each time, so media stores and processes every one.
                let png = crate::load::png::noise(48, 48, &mut self.rng).to_vec();
                let up = self
                    .call(
                        shared,
                        ctx,
                        Method::POST,
                        "/api/media",
                        "POST /api/media",
                        Body::Raw {
                            content_type: "application/octet-stream",
                            bytes: png,
                        },
                        Retry::Never,
                        tok.clone(),
                    )
                    .await;
                ok &= up.ok();
                if let Some(id) = up.json["id"].as_str().map(str::to_owned) {
                    // The app waits (a spinner) until the thumbnails are made.
                    let mut ready = false;
                    for _ in 0..20 {
                        tokio::time::sleep(Duration::from_millis(250)).await;
                        let o = self
                            .call(
                                shared,
                                ctx,
                                Method::GET,
                                &format!("/api/media/{id}"),
                                "GET /api/media/{id}",
                                Body::None,
                                Retry::Idempotent,
                                tok.clone(),
                            )
                            .await;
                        match o.json["status"].as_str() {
                            Some("pending") => continue,
                            Some("ready") => {
                                ready = true;
                                break;
                            }
                            _ => break,
                        }
                    }
                    ok &= ready;
                    if ready {
                        let o = self
                            .call(
                                shared,
                                ctx,
                                Method::POST,
                                "/api/feed/posts",
                                "POST /api/feed/posts",
                                Body::Json(json!({"body": "a photo from my phone", "media": [id]})),
                                Retry::Never,
                                tok,
                            )
                            .await;
                        ok &= o.ok();
                        if let Some(id) = o.json["id"].as_i64() {
                            self.seen_posts.push(id);
                        }
                    }
                }
            }
            Screen::Message => {
                let conversation = match self.conversation {
                    Some(c) => Some(c),
                    None => {
                        let peer = crate::seed::username(
                            self.rng.random_range(0..shared.profile.users.max(1)),
                        );
                        let o = if peer == self.username {
                            None
                        } else {
                            Some(
                                self.call(
                                    shared,
                                    ctx,
                                    Method::POST,
                                    "/api/messages/conversations",
                                    "POST /api/messages/conversations",
                                    Body::Json(json!({"members": [peer]})),
                                    Retry::Idempotent,
                                    tok.clone(),
                                )
                                .await,
                            )
                        };
                        ok &= o.as_ref().is_none_or(Outcome::ok);
                        self.conversation = o.and_then(|o| o.json["id"].as_i64());
                        self.conversation
                    }
                };
                if let Some(c) = conversation {
                    self.messages += 1;
                    // The client id makes a resend harmless: this call may be retried.
                    let client_id = format!("{}-d{}-{}", shared.run_tag, self.index, self.messages);
                    let o = self
                        .call(
                            shared,
                            ctx,
                            Method::POST,
                            &format!("/api/messages/conversations/{c}/messages"),
                            "POST /api/messages/conversations/{id}/messages",
                            Body::Json(json!({"body": "hi from my phone", "client_id": client_id})),
                            Retry::Idempotent,
                            tok,
                        )
                        .await;
                    ok &= o.ok();
                }
            }
        }
        let end = self.clock();
        self.close(
            shared,
            ctx,
            t0,
            screen.operation(),
            vec![kv("app.screen.name", screen.key())],
            (!ok).then(|| "the screen could not load".to_owned()),
        );
        shared.screen(screen.operation(), t0, end, ok);
    }

    /// A deliberately wrong request, as real clients send: each must get a 4xx with the
    /// JSON error body.
    pub async fn bad_request(&mut self, shared: &Shared) {
        let kind = bad::ALL[self.rng.random_range(0..bad::ALL.len())];
        let (ctx, t0) = self.open();
        let req = bad::request(kind, self.access.as_deref(), self.spent_refresh.as_deref());
        let started = Instant::now();
        let (_, span_id) = self.ids();
        // Over the phone's network like any call (so its span brackets the server's).
        tokio::time::sleep(self.network.latency.at(self.rng.random())).await;
        let url = format!("{}{}", shared.gateway, req.path);
        let o = self
            .send(
                shared,
                ctx,
                span_id,
                &req.method,
                &url,
                &req.body,
                req.token.as_deref(),
            )
            .await;
        tokio::time::sleep(self.network.latency.at(self.rng.random())).await;
        shared.sent(Sent {
            trace_id: hex(&ctx.trace_id),
            parent_span_id: hex(&span_id),
            endpoint: req.route.to_owned(),
            status: o.status,
            gateway_only: o.gateway_only,
            device: self.index,
        });
        let mut attributes = vec![
            kv("http.request.method", req.method.as_str()),
            kv("url.full", url),
            kv("server.address", shared.server.0.clone()),
            kv("server.port", i64::from(shared.server.1)),
            kv("socialnet.sim.bad_request", kind.name()),
        ];
        if let Some(s) = o.status {
            attributes.push(kv("http.response.status_code", i64::from(s)));
        }
        if o.gateway_only {
            attributes.push(kv(verify::checks::ANSWERED_BY, "gateway"));
        }
        let span = DeviceSpan {
            trace_id: ctx.trace_id,
            span_id,
            parent: Some(ctx.span_id),
            name: req.method.as_str().to_owned(),
            kind: SpanKind::Client,
            start_ns: t0,
            end_ns: self.clock(),
            attributes,
            error: Some(o.status.map_or("no answer".into(), |s| format!("HTTP {s}"))),
        };
        self.finish(span, shared);
        self.close(
            shared,
            ctx,
            t0,
            "bad request",
            vec![kv("socialnet.sim.bad_request", kind.name())],
            None,
        );
        shared.bad(kind, &o, started.elapsed(), hex(&ctx.trace_id));
    }

    /// The phone's life until `until`: a cold start, then screens and think times, trips
    /// to the background, and an upload whenever one is due.
    pub async fn live(mut self, shared: Arc<Shared>, start_at: Instant, until: Instant) -> Device {
        use std::sync::atomic::Ordering::Relaxed;
        tokio::time::sleep_until(start_at).await;
        shared.counters.started.fetch_add(1, Relaxed);
        let mut signed_in = self.start(&shared, true).await;
        // A sign-in that failed (auth overwhelmed, the network down) is tried again, as
        // a person would, a little later each time.
        let mut wait = Duration::from_secs(2);
        while !signed_in && Instant::now() + wait < until && !shared.stopping() {
            let jitter = Duration::from_millis(self.rng.random_range(0..=wait.as_millis() as u64));
            shared.nap(Instant::now() + wait + jitter).await;
            signed_in = self.start(&shared, true).await;
            wait = (wait * 2).min(Duration::from_secs(30));
        }
        shared.counters.sessions.fetch_add(1, Relaxed);
        let p = &shared.profile;
        let mut next_background = Instant::now() + p.background_every.at(self.rng.random());
        if signed_in {
            while Instant::now() < until && !shared.stopping() {
                if Instant::now() >= next_background {
                    let away = p.background_for.at(self.rng.random());
                    self.session.to_background(Instant::now());
                    self.upload(&shared, true).await;
                    shared.nap((Instant::now() + away).min(until)).await;
                    if Instant::now() >= until {
                        break;
                    }
                    if self.session.to_foreground(Instant::now()) {
                        shared.counters.sessions.fetch_add(1, Relaxed);
                    }
                    self.start(&shared, false).await;
                    next_background = Instant::now() + p.background_every.at(self.rng.random());
                    continue;
                }
                if self.rng.random::<f64>() < p.bad_share {
                    self.bad_request(&shared).await;
                } else {
                    let screen = pick(&mut self.rng, &p.screens, |(_, w)| *w).0;
                    self.screen(&shared, screen).await;
                }
                self.upload(&shared, false).await;
                // Quieter hours of a compressed day mean longer pauses.
                let think = p
                    .think
                    .at(self.rng.random())
                    .div_f64(p.activity(shared.elapsed()));
                shared.nap((Instant::now() + think).min(until)).await;
            }
        }
        self
    }

    /// At the end: the phone is back online and uploads what it kept.
    pub async fn flush(&mut self, shared: &Shared) {
        self.offline = None;
        for _ in 0..3 {
            if self.buffer.is_empty() {
                break;
            }
            self.upload(shared, true).await;
        }
    }
}

/// Picks one of `items` by weight.
pub fn pick<'a, T>(rng: &mut StdRng, items: &'a [T], weight: impl Fn(&T) -> u32) -> &'a T {
    let total: u64 = items.iter().map(|i| u64::from(weight(i))).sum();
    let mut point = rng.random_range(0..total.max(1));
    for i in items {
        let w = u64::from(weight(i));
        if point < w {
            return i;
        }
        point -= w;
    }
    items.last().expect("a profile has at least one of each")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_follow_the_weights() {
        let mut rng = StdRng::seed_from_u64(7);
        let items = [("a", 90u32), ("b", 10)];
        let a = (0..10_000)
            .filter(|_| pick(&mut rng, &items, |i| i.1).0 == "a")
            .count();
        assert!((8_700..9_300).contains(&a), "{a}");
    }

    #[test]
    fn skewed_clocks_are_off_by_their_offset() {
        let shared = Shared::for_tests();
        let mut d = Device::new(3, &shared);
        d.skew_ns = -120_000_000_000;
        let off = now_unix_ns() - i128::from(d.clock());
        assert!((119_000_000_000..121_000_000_000).contains(&off), "{off}");
        assert!(
            d.resource
                .iter()
                .any(|k| k.key == "device.model.identifier")
        );
    }
}
