//! Helpers for tests against the real PostgreSQL, Redis and NGINX.
//!
//! `TEST_DATABASE_URL` and `TEST_REDIS_URL` name the servers the test command starts
//! (`./dev.sh test`). A test that cannot reach them fails loudly; it never passes
//! without having run. Tests that need to stop a server (Redis down) or a gateway start
//! a private one with `socialctl`, from the same component table as the real stack.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::tokens::{Claims, ISSUER, Jwks, SigningKey, TokenVerifier};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests through `./dev.sh test`, which starts PostgreSQL and Redis and sets it")
    })
}

/// Installs the in-memory span exporter (once per test binary).
pub fn init_tracing() {
    telemetry::testing::init();
}

/// Creates an empty database with a unique name and returns its URL.
pub async fn fresh_database(label: &str) -> String {
    let admin_url = env("TEST_DATABASE_URL");
    let name = format!("t_{label}_{}", Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|e| panic!("cannot reach test PostgreSQL at {admin_url}: {e}"));
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("create test database");
    let mut url = reqwest::Url::parse(&admin_url).expect("TEST_DATABASE_URL parses");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

/// The shared test Redis; pair it with [`unique_prefix`] so tests do not collide.
pub fn redis_url() -> String {
    env("TEST_REDIS_URL")
}

/// A key prefix no other test uses.
pub fn unique_prefix(service: &str) -> String {
    format!("t{}:{service}:", Uuid::new_v4().simple())
}

/// A TCP port free at the time of the call.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}

/// Polls `probe` until it returns true or `timeout` passes.
pub async fn wait_until<F, Fut>(timeout: Duration, what: &str, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !probe().await {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Serves `router` on an ephemeral loopback port in the background.
pub async fn spawn_app(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("test server");
    });
    addr
}

/// The `socialctl` binary, which starts every piece of infrastructure from the stack's
/// component table: tests start Redis and NGINX through it, so there is one way to
/// start each thing. `./dev.sh test` builds it and names it in `SOCIALCTL`.
fn socialctl() -> PathBuf {
    let path = std::env::var_os("SOCIALCTL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../target/debug/socialctl"
            ))
        });
    assert!(
        path.is_file(),
        "socialctl is not built at {}: run the tests through `./dev.sh test`, which builds it and sets SOCIALCTL",
        path.display()
    );
    path
}

/// Components started by `socialctl up --runtime local --only …` in a private state
/// directory, stopped (`socialctl down`) when dropped.
struct Private {
    dir: PathBuf,
    /// What `up --json` recorded (its addresses carry the generated credentials).
    state: serde_json::Value,
}

impl Private {
    fn up(args: &[String]) -> Self {
        let dir = std::env::temp_dir().join(format!("socialnet-test-{}", Uuid::new_v4().simple()));
        let out = Command::new(socialctl())
            .args([
                "up",
                "--runtime",
                "local",
                "--ephemeral",
                "--json",
                "--state-dir",
            ])
            .arg(&dir)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run socialctl up");
        let state = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let me = Self { dir, state };
        assert!(
            out.status.success(),
            "socialctl up {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        me
    }

    fn address(&self, name: &str) -> String {
        self.state["addresses"][name]
            .as_str()
            .unwrap_or_else(|| panic!("socialctl up --json recorded no {name} address"))
            .to_owned()
    }

    fn down(&self) {
        let _ = Command::new(socialctl())
            .args(["down", "--runtime", "local", "--volumes", "--state-dir"])
            .arg(&self.dir)
            .stdin(Stdio::null())
            .output();
    }
}

impl Drop for Private {
    fn drop(&mut self) {
        self.down();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A private Redis, for tests that stop Redis.
pub struct RedisServer {
    pub url: String,
    server: Option<Private>,
}

impl RedisServer {
    pub async fn start() -> Self {
        let port = free_port();
        let server = Private::up(&[
            "--only".into(),
            "redis".into(),
            "--redis-port".into(),
            port.to_string(),
        ]);
        Self {
            url: server.address("redis"),
            server: Some(server),
        }
    }

    /// Stops the server (and waits for it to be gone).
    pub fn stop(&mut self) {
        self.server.take();
    }
}

/// A private gateway (NGINX with the stack's configuration) routing to services that
/// run elsewhere, e.g. in the test process.
pub struct Gateway {
    pub port: u16,
    _server: Private,
}

impl Gateway {
    /// Starts the gateway on a free port; `routes` names where each service is served.
    pub async fn start(routes: &[(&str, SocketAddr)]) -> Self {
        let port = free_port();
        let mut args = vec![
            "--only".to_owned(),
            "gateway".into(),
            "--gateway-port".into(),
            port.to_string(),
        ];
        for (name, addr) in routes {
            args.push("--external".into());
            args.push(format!("{name}={addr}"));
        }
        Self {
            port,
            _server: Private::up(&args),
        }
    }
}

/// Checks that a service's router and its generated OpenAPI document agree, both ways:
/// every documented operation is routed (it never reaches the unknown-path fallback or a
/// 405), and on every documented path the methods the document leaves out answer 405.
/// Each request carries no token and no body, so it changes nothing. (Paths that are
/// routed but nowhere documented cannot exist: the tidy test allows routes only through
/// `utoipa_axum::routes!`.)
pub async fn check_openapi(app: &axum::Router, api: &utoipa::openapi::OpenApi) -> usize {
    let ops = crate::openapi::operations(api);
    assert!(!ops.is_empty(), "the document has no operations");
    let paths: std::collections::BTreeSet<&String> = ops.iter().map(|(_, p)| p).collect();
    for path in paths {
        let concrete = path
            .replace("{id}", "1")
            .replace("{username}", "nobody_here")
            .replace("{provider}", "dev");
        for method in ["GET", "PUT", "POST", "DELETE", "PATCH"] {
            let documented = ops.contains(&(method.to_owned(), path.clone()));
            let m: http::Method = method.parse().expect("a method");
            let res = Req::new(m, &concrete).send(app).await;
            let fallback = res.status == 404
                && res.json["message"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("no such endpoint"));
            if documented {
                assert!(
                    !fallback && res.status != 405,
                    "{method} {path} is in the document but not routed ({}: {})",
                    res.status,
                    res.text
                );
            } else {
                assert_eq!(
                    res.status, 405,
                    "{method} {path} is routed but not in the document: {}",
                    res.text
                );
            }
        }
    }
    ops.len()
}

/// Signs tokens the way auth does, for services tested without auth running.
pub struct TestKeys {
    pub key: SigningKey,
}

impl Default for TestKeys {
    fn default() -> Self {
        Self {
            key: SigningKey::generate(),
        }
    }
}

impl TestKeys {
    pub fn verifier(&self) -> Arc<TokenVerifier> {
        TokenVerifier::from_jwks(&Jwks {
            keys: vec![self.key.jwk()],
        })
    }

    /// A token valid for `ttl_secs` (negative: already expired).
    pub fn token_with_ttl(&self, user: Uuid, username: &str, ttl_secs: i64) -> String {
        let now = chrono::Utc::now().timestamp();
        self.key.sign(&Claims {
            sub: user,
            username: username.to_owned(),
            sid: Uuid::new_v4(),
            iss: ISSUER.into(),
            iat: now,
            exp: now + ttl_secs,
        })
    }

    pub fn token(&self, user: Uuid, username: &str) -> String {
        self.token_with_ttl(user, username, 300)
    }
}

/// A request to drive an `app()` router in-process with `oneshot` (no sockets).
#[derive(Debug, Clone)]
pub struct Req {
    method: http::Method,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// A response, with its body parsed as JSON when it is JSON.
#[derive(Debug)]
pub struct Resp {
    pub status: http::StatusCode,
    pub headers: http::HeaderMap,
    pub text: String,
    pub json: serde_json::Value,
}

impl Req {
    pub fn new(method: http::Method, path: &str) -> Self {
        Self {
            method,
            path: path.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
    pub fn get(path: &str) -> Self {
        Self::new(http::Method::GET, path)
    }
    pub fn post(path: &str) -> Self {
        Self::new(http::Method::POST, path)
    }
    pub fn put(path: &str) -> Self {
        Self::new(http::Method::PUT, path)
    }
    pub fn patch(path: &str) -> Self {
        Self::new(http::Method::PATCH, path)
    }
    pub fn delete(path: &str) -> Self {
        Self::new(http::Method::DELETE, path)
    }
    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.to_owned(), v.to_owned()));
        self
    }
    pub fn token(self, t: &str) -> Self {
        self.header("authorization", &format!("Bearer {t}"))
    }
    pub fn traceparent(self, tp: &telemetry::testing::Traceparent) -> Self {
        self.header("traceparent", &tp.header())
    }
    pub fn json(mut self, v: serde_json::Value) -> Self {
        self.body = serde_json::to_vec(&v).expect("json");
        self.header("content-type", "application/json")
    }
    pub fn raw(mut self, content_type: &str, body: Vec<u8>) -> Self {
        self.body = body;
        self.header("content-type", content_type)
    }

    /// Sends through the router in-process.
    pub async fn send(self, app: &axum::Router) -> Resp {
        use tower::ServiceExt;
        let mut b = http::Request::builder().method(self.method).uri(self.path);
        for (k, v) in &self.headers {
            b = b.header(k, v);
        }
        let req = b
            .body(axum::body::Body::from(self.body))
            .expect("request builds");
        let res = app
            .clone()
            .oneshot(req)
            .await
            .expect("router is infallible");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = axum::body::to_bytes(res.into_body(), 16 << 20)
            .await
            .expect("body");
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        Resp {
            status,
            headers,
            text,
            json,
        }
    }

    /// Sends over real HTTP to `base` (e.g. through NGINX).
    pub async fn send_http(self, client: &reqwest::Client, base: &str) -> Resp {
        let mut rb = client.request(self.method, format!("{base}{}", self.path));
        for (k, v) in &self.headers {
            rb = rb.header(k, v);
        }
        let res = rb.body(self.body).send().await.expect("http request");
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.expect("body");
        let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        Resp {
            status,
            headers,
            text,
            json,
        }
    }
}

impl Resp {
    /// Asserts the status, showing the body when it differs.
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.text
        );
        self
    }

    /// Asserts an error response: status, `error` code, a message, and a trace id.
    pub fn expect_error(self, status: u16, code: &str) -> Self {
        let s = self.expect(status);
        assert_eq!(s.json["error"], code, "error code; body: {}", s.text);
        assert!(
            s.json["message"].as_str().is_some_and(|m| !m.is_empty()),
            "message; body: {}",
            s.text
        );
        let tid = s.json["trace_id"].as_str().unwrap_or_default();
        assert!(
            tid.len() == 32 && tid.chars().all(|c| c.is_ascii_hexdigit()),
            "trace_id; body: {}",
            s.text
        );
        s
    }
}
