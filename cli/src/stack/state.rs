//! The recorded state of a running stack: which runtime and project run it, its
//! settings, and the addresses clients need (gateway, OTLP, the sink's query API,
//! PostgreSQL, Redis, each service's `/metrics`). `up` writes it into the state
//! directory; `load`, `top`, `seed`, `traces`, `verify-traces` and `bench` read it, so
//! `up --gateway-port 18080` followed by `load` drives that stack. Explicit flags win.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use super::{Net, Stack, StackConfig};

/// Which runtime runs a stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum RuntimeKind {
    /// Containers through the Docker API.
    Docker,
    /// Host processes on loopback.
    Local,
}

impl RuntimeKind {
    pub fn name(self) -> &'static str {
        match self {
            RuntimeKind::Docker => "docker",
            RuntimeKind::Local => "local",
        }
    }
}

/// What `up` records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StackState {
    pub runtime: RuntimeKind,
    pub project: String,
    pub config: StackConfig,
    pub addresses: Addresses,
}

/// Where clients reach a stack from the host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Addresses {
    /// The gateway's base URL, e.g. `http://127.0.0.1:8080`.
    pub gateway: String,
    /// The sink's OTLP/HTTP endpoint and query API, e.g. `http://127.0.0.1:4318`.
    pub otlp_http: String,
    /// The sink's OTLP/gRPC address, e.g. `127.0.0.1:4317`.
    pub otlp_grpc: String,
    /// The PostgreSQL server, without a database, with the project's credentials:
    /// `postgres://postgres:PASSWORD@127.0.0.1:15432`.
    pub postgres: String,
    /// Redis with the project's password, e.g. `redis://:PASSWORD@127.0.0.1:16379/0`.
    pub redis: String,
    /// `(instance, URL)` of every service's `/metrics`, for drain detection.
    #[serde(default)]
    pub metrics: Vec<(String, String)>,
    /// Jaeger's UI (official-image mode).
    #[serde(default)]
    pub jaeger_ui: Option<String>,
    /// `host:port` of published components reached without their published port (the
    /// Docker runtime: container addresses on the project network).
    #[serde(default)]
    pub direct: std::collections::BTreeMap<String, String>,
}

impl Addresses {
    /// The host-side addresses of `stack` (metrics are the runtime's to add).
    pub fn of(stack: &Stack) -> Self {
        let host = |name: &str, index: usize| {
            stack
                .component(name)
                .map(|c| stack.host_port(c, index, 0))
                .unwrap_or(0)
        };
        let at = |name: &str| {
            let (h, p) = stack.addr(Net::Local, name, 0);
            format!("{h}:{p}")
        };
        Self {
            gateway: format!("http://{}", at("gateway")),
            otlp_http: format!("http://{}", at("sink")),
            otlp_grpc: format!("127.0.0.1:{}", host("sink", 1)),
            postgres: stack.postgres_url(Net::Local),
            redis: stack.redis_url(Net::Local),
            metrics: Vec::new(),
            direct: Default::default(),
            jaeger_ui: (stack.cfg.images == super::ImageMode::Official)
                .then(|| format!("http://127.0.0.1:{}/", host("jaeger", 0))),
        }
    }

    /// The addresses of a default stack: what clients try when nothing is recorded.
    pub fn defaults() -> Self {
        Self::of(&Stack::new(StackConfig::default()))
    }
}

fn file(dir: &Path) -> PathBuf {
    dir.join("stack.json")
}

impl StackState {
    /// The state recorded in `dir`, if a stack was started from it.
    pub fn read(dir: &Path) -> Option<Self> {
        serde_json::from_str(&std::fs::read_to_string(file(dir)).ok()?).ok()
    }

    /// Records the state in `dir` (written whole, then renamed, so a reader never sees
    /// half a file).
    /// It holds URLs with credentials: the directory and file are its owner's only.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        super::secrets::private_dir(dir)?;
        let tmp = dir.join("stack.json.tmp");
        super::secrets::write_private(&tmp, &serde_json::to_vec_pretty(self)?)?;
        std::fs::rename(&tmp, file(dir))
            .with_context(|| format!("could not write {}", file(dir).display()))
    }

    /// Forgets the stack (after `down`).
    pub fn remove(dir: &Path) {
        let _ = std::fs::remove_file(file(dir));
    }
}

/// The default state directory of a project: `$TMPDIR/socialnet-<uid>/<project>`.
pub fn default_dir(project: &str) -> PathBuf {
    std::env::temp_dir()
        .join(format!("socialnet-{}", uid()))
        .join(project)
}

/// The current user's id, from /proc (no libc call, so no unsafe).
pub fn uid() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        })
        .unwrap_or_else(|| "user".into())
}

pub fn is_root() -> bool {
    uid() == "0"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_follow_the_ports_a_user_moved() {
        let mut cfg = StackConfig::default();
        cfg.ports.insert("gateway".into(), 18080);
        cfg.ports.insert("sink.grpc".into(), 24317);
        let a = Addresses::of(&Stack::new(cfg.clone()));
        assert_eq!(a.gateway, "http://127.0.0.1:18080");
        assert_eq!(a.otlp_grpc, "127.0.0.1:24317");
        assert_eq!(a.otlp_http, "http://127.0.0.1:4318");
        let dir = tempfile::tempdir().expect("temp dir");
        assert_eq!(StackState::read(dir.path()), None);
        let s = StackState {
            runtime: RuntimeKind::Local,
            project: "p".into(),
            config: cfg,
            addresses: a,
        };
        s.write(dir.path()).expect("write");
        assert_eq!(StackState::read(dir.path()), Some(s));
        StackState::remove(dir.path());
        assert_eq!(StackState::read(dir.path()), None);
    }
}
