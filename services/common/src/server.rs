//! What every service router gets: tracing, JSON fallbacks, a body limit, panic
//! containment, health and readiness, span-accounting metrics, and graceful shutdown.

use std::net::SocketAddr;

use anyhow::Context as _;
use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use http::StatusCode;
use serde_json::json;
use tower_http::catch_panic::CatchPanicLayer;

use crate::{Cache, Db, error};

/// Largest JSON body a service accepts by default; bigger ones get a 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The variable that moves it: the stack sets it from the component table, so the
/// gateway (which enforces the same limit on the route) and the service agree.
pub const MAX_BODY_ENV: &str = "SOCIALNET_MAX_BODY";

/// The body limit in force: [`MAX_BODY_ENV`] when it is a number, else the default.
pub fn max_body_bytes() -> usize {
    std::env::var(MAX_BODY_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(MAX_BODY_BYTES)
}

/// Wraps a service's routes with the standard layers. Call last, after all routes.
pub fn finish(router: Router) -> Router {
    router
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body_bytes()))
        // Inside the trace layer, so a panic still ends its span as a recorded 500.
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(axum::middleware::from_fn(
            telemetry::http_server::trace_requests,
        ))
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    error::ApiError::Internal(anyhow::anyhow!("handler panicked")).into_response()
}

/// `/healthz` (liveness), `/readyz` (PostgreSQL and Redis), `/metrics` and
/// `/openapi.json` (the service's generated document) for a service whose state holds a
/// [`Db`] and a [`Cache`]. These are operations endpoints, not API: they are not in the
/// document and not traced.
pub fn ops_routes<S>(openapi: utoipa::openapi::OpenApi) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Db: FromRef<S>,
    Cache: FromRef<S>,
{
    let doc: String = openapi.to_json().expect("an OpenAPI document serialises");
    Router::new()
        .route(
            "/healthz",
            get(|| async { axum::Json(json!({"status": "ok"})) }),
        )
        .route("/readyz", get(readyz::<S>))
        .route(
            telemetry::http_server::FAULTS_PATH,
            get(faults).put(set_faults).delete(clear_faults),
        )
        .route(
            telemetry::http_server::TEACHING_PATH,
            get(teaching).delete(teaching_all_off),
        )
        .route(
            &format!("{}/{{name}}", telemetry::http_server::TEACHING_PATH),
            put(teaching_on).delete(teaching_off),
        )
        .route(
            "/metrics",
            get(|| async { telemetry::export_stats().to_prometheus() }),
        )
        .route(
            "/openapi.json",
            get(move || {
                let doc = doc.clone();
                async move { ([(http::header::CONTENT_TYPE, "application/json")], doc) }
            }),
        )
}

/// The application faults in force (`socialctl chaos`), or `null`.
async fn faults() -> axum::Json<Option<telemetry::faults::AppFaults>> {
    axum::Json(telemetry::faults::current())
}

/// Switches application faults on (replacing any); they lapse after `ttl_secs`.
async fn set_faults(
    crate::Json(f): crate::Json<telemetry::faults::AppFaults>,
) -> Result<axum::Json<Option<telemetry::faults::AppFaults>>, error::ApiError> {
    if !(0.0..=1.0).contains(&f.error_rate) {
        return Err(error::ApiError::validation(
            "error_rate is a share, from 0 to 1",
        ));
    }
    tracing::warn!(faults = ?f, "chaos: application faults switched on");
    telemetry::faults::set(Some(f));
    Ok(axum::Json(telemetry::faults::current()))
}

async fn clear_faults() -> StatusCode {
    if telemetry::faults::current().is_some() {
        tracing::warn!("chaos: application faults switched off");
    }
    telemetry::faults::set(None);
    StatusCode::NO_CONTENT
}

/// The teaching faults on in this process (`socialctl fault list`).
async fn teaching() -> axum::Json<serde_json::Value> {
    axum::Json(json!({ "on": telemetry::teaching::active() }))
}

async fn teaching_switch(
    name: &str,
    on: bool,
) -> Result<axum::Json<serde_json::Value>, error::ApiError> {
    if !telemetry::teaching::switch(name, on) {
        let known: Vec<&str> = telemetry::teaching::CATALOGUE
            .iter()
            .map(|t| t.name)
            .collect();
        return Err(error::ApiError::NotFound(format!(
            "no teaching fault {name:?}; the faults are {}",
            known.join(", ")
        )));
    }
    tracing::warn!(fault = name, on, "teaching fault switched");
    Ok(teaching().await)
}

async fn teaching_on(
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Result<axum::Json<serde_json::Value>, error::ApiError> {
    teaching_switch(&name, true).await
}

async fn teaching_off(
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Result<axum::Json<serde_json::Value>, error::ApiError> {
    teaching_switch(&name, false).await
}

async fn teaching_all_off() -> axum::Json<serde_json::Value> {
    if !telemetry::teaching::active().is_empty() {
        tracing::warn!("every teaching fault switched off");
    }
    telemetry::teaching::all_off();
    teaching().await
}

/// Ready when PostgreSQL answers; `degraded` (still 200) when only Redis is down,
/// because every read falls back to PostgreSQL; 503 when PostgreSQL is down.
async fn readyz<S>(State(state): State<S>) -> Response
where
    Db: FromRef<S>,
    Cache: FromRef<S>,
{
    let db = Db::from_ref(&state);
    let cache = Cache::from_ref(&state);
    let (pg, redis) = tokio::join!(db.ping(), cache.ping());
    let pg_ok = pg.is_ok();
    let redis_ok = redis.is_ok();
    let status = match (pg_ok, redis_ok) {
        (true, true) => "ready",
        (true, false) => "degraded",
        _ => "unavailable",
    };
    let code = if pg_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let show = |r: Result<(), String>| match r {
        Ok(()) => "ok".to_owned(),
        Err(e) => e,
    };
    (
        code,
        axum::Json(json!({
            "status": status,
            "checks": {
                "postgres": show(pg.map_err(|e| e.to_string())),
                "redis": show(redis.map_err(|e| e.to_string())),
            }
        })),
    )
        .into_response()
}

/// Binds `addr`, naming it in the error when it is taken.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("could not listen on {addr} (is another process using that port? pick another with --listen)"))
}

/// Serves until Ctrl-C or SIGTERM, then lets in-flight requests finish.
pub async fn serve(listener: tokio::net::TcpListener, router: Router) -> anyhow::Result<()> {
    let addr = listener.local_addr().context("listener has no address")?;
    tracing::info!(%addr, "listening");
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(telemetry::shutdown_signal())
    .await
    .context("server failed")
}

/// A service's `main`: parse its configuration from `argv` (flags or environment),
/// start telemetry, run until shut down. Exit 2 on bad configuration or telemetry set-up,
/// 1 when the service stops with an error. The `socialnet` binary calls this for the
/// service it is asked to run.
pub async fn main<C, F, Fut>(
    name: &'static str,
    argv: Vec<std::ffi::OsString>,
    run: F,
) -> std::process::ExitCode
where
    C: clap::Parser,
    F: FnOnce(C) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let config = match C::try_parse_from(argv) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return std::process::ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let _telemetry = match telemetry::init(name, env!("CARGO_PKG_VERSION")) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("{name}: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match run(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "{name} stopped");
            eprintln!("{name}: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Reads one HTTP/1.1 response (headers and a Content-Length body) off `conn`, and
    /// returns its status code.
    async fn read_response(conn: &mut tokio::net::TcpStream) -> u16 {
        let mut buf = Vec::new();
        let mut byte = [0u8; 1];
        while !buf.ends_with(b"\r\n\r\n") {
            let n = conn.read(&mut byte).await.expect("the response's headers");
            assert_eq!(n, 1, "connection closed inside a response: {buf:?}");
            buf.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&buf).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        conn.read_exact(&mut body)
            .await
            .expect("the response's body");
        head[9..12].parse().expect("a status code")
    }

    /// A refused request's body is read before the refusal, so a client (the gateway)
    /// still sending it gets the 4xx and keeps its connection, instead of a reset.
    #[tokio::test]
    async fn a_refused_requests_body_is_read_and_the_connection_kept() {
        let app = super::finish(axum::Router::new().route("/thing", super::get(|| async { "ok" })));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        let body = vec![b'x'; super::MAX_BODY_BYTES];
        for (method, path, status) in [("PATCH", "/thing", 405), ("POST", "/nothing", 404)] {
            let head = format!(
                "{method} {path} HTTP/1.1\r\nhost: t\r\ncontent-length: {}\r\n\r\n",
                body.len()
            );
            conn.write_all(head.as_bytes()).await.unwrap();
            conn.write_all(&body).await.unwrap();
            assert_eq!(read_response(&mut conn).await, status, "{method} {path}");
        }
        conn.write_all(b"GET /thing HTTP/1.1\r\nhost: t\r\n\r\n")
            .await
            .unwrap();
        assert_eq!(
            read_response(&mut conn).await,
            200,
            "the same connection serves on"
        );
    }
}
