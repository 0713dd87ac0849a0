//! The stack's fault-injecting TCP proxy, `socialnet chaosproxy`: the network faults of
//! `socialctl chaos` (latency with jitter, bandwidth, lost connections, timeouts,
//! resets, partitions) on a kernel without netem and with no helper image to pull.
//!
//! The model is toxiproxy's, which users know: **links** (a listener forwarding to one
//! upstream, named for the path it stands on: `feed:postgres`, `gateway:feed-2`,
//! `feed:profile`) carry **toxics** (a named effect on the upstream or downstream bytes
//! of a share of the link's connections). The component table puts a link on every
//! path chaos can target when the stack is started with `--fault-proxy`; with no toxic
//! a link only copies bytes.
//!
//! Control API (on the operations port, never routed by the gateway):
//! `GET /links`, `POST /links/{link}/toxics` (a [`Toxic`]), `DELETE
//! /links/{link}/toxics/{name}`, `DELETE /toxics` (all), `GET /healthz`, `GET /metrics`
//! (span accounting, as every service's).

pub mod link;
pub mod toxics;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};

pub use link::Link;
pub use toxics::{Effect, LinkSpec, LinkStatus, Stream, Toxic};

/// The proxy's settings, from flags or environment variables.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "chaosproxy", version)]
pub struct Config {
    /// Address of the control API.
    #[arg(long, env = "CHAOSPROXY_LISTEN", default_value = "127.0.0.1:8474")]
    pub listen: SocketAddr,
    /// The links, space-separated, each `NAME@LISTEN>UPSTREAM`
    /// (`feed:postgres@0.0.0.0:8475>postgres:5432`).
    #[arg(long, env = "CHAOSPROXY_LINKS", default_value = "")]
    pub links: String,
}

/// The links by name.
pub type Links = Arc<BTreeMap<String, Arc<Link>>>;

/// The links of `config`, parsed.
pub fn links(config: &Config) -> anyhow::Result<Vec<LinkSpec>> {
    config
        .links
        .split_whitespace()
        .map(|s| LinkSpec::parse(s).map_err(anyhow::Error::msg))
        .collect()
}

/// Binds every link's listener and starts forwarding; the links by name.
pub async fn start(specs: Vec<LinkSpec>) -> anyhow::Result<Links> {
    let mut out = BTreeMap::new();
    for spec in specs {
        let listener = tokio::net::TcpListener::bind(&spec.listen)
            .await
            .with_context(|| format!("link {}: could not listen on {}", spec.name, spec.listen))?;
        let name = spec.name.clone();
        let link = Link::new(spec);
        tokio::spawn(link.clone().serve(listener));
        out.insert(name, link);
    }
    Ok(Arc::new(out))
}

fn refuse(status: StatusCode, error: &str, message: String) -> Response {
    (
        status,
        Json(serde_json::json!({"error": error, "message": message, "trace_id": ""})),
    )
        .into_response()
}

async fn list(State(links): State<Links>) -> Json<Vec<LinkStatus>> {
    Json(links.values().map(|l| l.status()).collect())
}

async fn add(
    State(links): State<Links>,
    Path(name): Path<String>,
    body: Result<Json<Toxic>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Some(link) = links.get(&name) else {
        return refuse(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no link {name:?}; GET /links lists them"),
        );
    };
    let Json(toxic) = match body {
        Ok(b) => b,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, "validation", e.body_text()),
    };
    if let Err(e) = toxic.check() {
        return refuse(StatusCode::BAD_REQUEST, "validation", e);
    }
    match link.add(toxic.clone()) {
        Ok(()) => (StatusCode::CREATED, Json(toxic)).into_response(),
        Err(e) => refuse(StatusCode::CONFLICT, "conflict", e),
    }
}

async fn remove(
    State(links): State<Links>,
    Path((name, toxic)): Path<(String, String)>,
) -> Response {
    match links.get(&name) {
        Some(l) if l.remove(&toxic) => StatusCode::NO_CONTENT.into_response(),
        Some(_) => refuse(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("link {name} has no toxic {toxic:?}"),
        ),
        None => refuse(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no link {name:?}"),
        ),
    }
}

async fn clear(State(links): State<Links>) -> StatusCode {
    for l in links.values() {
        for t in l.toxics().iter() {
            l.remove(&t.name);
        }
    }
    StatusCode::NO_CONTENT
}

/// The control API.
pub fn router(links: Links) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        // Its spans are accounted like every process's (verify-traces' pipeline table).
        .route(
            "/metrics",
            get(|| async { telemetry::export_stats().to_prometheus() }),
        )
        .route("/links", get(list))
        .route("/links/{name}/toxics", post(add))
        .route("/links/{name}/toxics/{toxic}", delete(remove))
        .route("/toxics", delete(clear))
        .with_state(links)
}

/// Forwards every link and serves the control API until Ctrl-C or SIGTERM.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let links = start(links(&config)?).await?;
    tracing::info!(links = links.len(), "chaosproxy: forwarding");
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| {
            format!(
                "could not listen on {} (pick another with --listen)",
                config.listen
            )
        })?;
    axum::serve(listener, router(links))
        .with_graceful_shutdown(telemetry::shutdown_signal())
        .await
        .context("control API failed")
}

/// The entry point, as `socialnet chaosproxy [FLAGS]` runs it: exit 2 on bad settings,
/// 1 when it stops with an error. (Not `common`'s: the proxy has no database, no
/// cache and no API of the network, and socialctl uses its types without the rest.)
pub async fn main(argv: Vec<std::ffi::OsString>) -> std::process::ExitCode {
    use clap::Parser as _;
    let config = match Config::try_parse_from(argv) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return std::process::ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let _telemetry = match telemetry::init("chaosproxy", env!("CARGO_PKG_VERSION")) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("chaosproxy: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match run(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "chaosproxy stopped");
            eprintln!("chaosproxy: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}
