//! One runtime interface, two implementations: `docker` (labelled containers through
//! the Docker API, images from `images`) and `local` (host processes on loopback, with
//! `process`). Both translate the component table's entries (`stack/`) and offer the
//! same operations, so the verbs above them (and chaos, next) never ask which one runs.

pub mod docker;
pub mod images;
pub mod local;
pub mod process;
pub mod progress;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::stack::state::{RuntimeKind, StackState};
use crate::stack::{Probe, Signal, Stack};

/// One instance's state, as `status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InstanceStatus {
    pub name: String,
    pub state: &'static str,
    pub health: &'static str,
    pub pid: Option<u32>,
    pub uptime_secs: Option<u64>,
    pub memory_bytes: Option<u64>,
    pub cpu_seconds: Option<f64>,
    /// Restarts by the runtime (Docker's restart count; local processes are not restarted).
    pub restarts: Option<u64>,
}

/// The operations every runtime offers on a stack it runs.
#[allow(async_fn_in_trait)] // used through the concrete types and [`AnyRuntime`] only
pub trait Runtime {
    fn kind(&self) -> RuntimeKind;
    /// Starts (or updates) every instance of `stack`, health-gated, in table order;
    /// returns how many were started or recreated. Idempotent.
    async fn up(&self, stack: &Stack) -> anyhow::Result<usize>;
    /// Stops and removes everything it started for this project; with `volumes`, also
    /// the data it kept, saying what it deletes.
    async fn down(&self, volumes: bool) -> anyhow::Result<()>;
    async fn status(&self) -> anyhow::Result<Vec<InstanceStatus>>;
    async fn logs(&self, instance: &str, follow: bool, tail: usize) -> anyhow::Result<()>;
    /// Sends a signal to one instance (all of its processes for `Kill`).
    async fn signal(&self, instance: &str, signal: Signal) -> anyhow::Result<()>;
    /// Freezes one instance (every process in it).
    async fn pause(&self, instance: &str) -> anyhow::Result<()>;
    async fn resume(&self, instance: &str) -> anyhow::Result<()>;
    /// Stops and starts one instance again with the same settings, health-gated.
    async fn restart(&self, instance: &str) -> anyhow::Result<()>;
    /// Cuts one instance off the project network (it keeps running).
    async fn disconnect(&self, instance: &str) -> anyhow::Result<()>;
    async fn connect(&self, instance: &str) -> anyhow::Result<()>;
    /// `(instance, URL)` of each running service's `/metrics`, reachable from here.
    async fn metrics(&self) -> Vec<(String, String)>;
    /// `host:port` of each published instance as reached without the published port
    /// (a container's address on the project network), where that is another path.
    async fn direct(&self) -> std::collections::BTreeMap<String, String>;
}

/// Whichever runtime runs the stack.
pub enum AnyRuntime {
    Docker(docker::DockerRuntime),
    Local(local::LocalRuntime),
}

macro_rules! each {
    ($self:ident, $r:ident => $e:expr) => {
        match $self {
            AnyRuntime::Docker($r) => $e,
            AnyRuntime::Local($r) => $e,
        }
    };
}

impl Runtime for AnyRuntime {
    fn kind(&self) -> RuntimeKind {
        each!(self, r => r.kind())
    }
    async fn up(&self, stack: &Stack) -> anyhow::Result<usize> {
        each!(self, r => r.up(stack).await)
    }
    async fn down(&self, volumes: bool) -> anyhow::Result<()> {
        each!(self, r => r.down(volumes).await)
    }
    async fn status(&self) -> anyhow::Result<Vec<InstanceStatus>> {
        each!(self, r => r.status().await)
    }
    async fn logs(&self, instance: &str, follow: bool, tail: usize) -> anyhow::Result<()> {
        each!(self, r => r.logs(instance, follow, tail).await)
    }
    async fn signal(&self, instance: &str, signal: Signal) -> anyhow::Result<()> {
        each!(self, r => r.signal(instance, signal).await)
    }
    async fn pause(&self, instance: &str) -> anyhow::Result<()> {
        each!(self, r => r.pause(instance).await)
    }
    async fn resume(&self, instance: &str) -> anyhow::Result<()> {
        each!(self, r => r.resume(instance).await)
    }
    async fn restart(&self, instance: &str) -> anyhow::Result<()> {
        each!(self, r => r.restart(instance).await)
    }
    async fn disconnect(&self, instance: &str) -> anyhow::Result<()> {
        each!(self, r => r.disconnect(instance).await)
    }
    async fn connect(&self, instance: &str) -> anyhow::Result<()> {
        each!(self, r => r.connect(instance).await)
    }
    async fn metrics(&self) -> Vec<(String, String)> {
        each!(self, r => r.metrics().await)
    }

    async fn direct(&self) -> std::collections::BTreeMap<String, String> {
        each!(self, r => r.direct().await)
    }
}

/// The memory of every replica of `component` (`feed`, `feed-2`, …), summed, as the
/// runtime reports it; 0 when it cannot say.
pub async fn component_memory(rt: &AnyRuntime, component: &str) -> u64 {
    let replica_of = |name: &str| {
        name == component
            || name
                .strip_prefix(component)
                .and_then(|r| r.strip_prefix('-'))
                .is_some_and(|n| n.parse::<u32>().is_ok())
    };
    rt.status()
        .await
        .map(|rows| {
            rows.iter()
                .filter(|r| replica_of(&r.name))
                .filter_map(|r| r.memory_bytes)
                .sum()
        })
        .unwrap_or(0)
}

/// Which stack a command acts on: its state directory and project, and the runtime the
/// user named (if any).
#[derive(Debug, Clone)]
pub struct Target {
    pub dir: PathBuf,
    /// Whether the user named the state directory (then nothing else is considered).
    pub dir_explicit: bool,
    pub project: String,
    pub runtime: Option<RuntimeKind>,
}

impl Target {
    /// The runtime for `up`: the one named, else Docker when an engine answers.
    pub async fn for_up(&self) -> anyhow::Result<AnyRuntime> {
        let kind = match self.runtime {
            Some(k) => k,
            None if docker::available().await => RuntimeKind::Docker,
            None => {
                crate::say!("no Docker engine answers: using the local runtime (host processes)");
                RuntimeKind::Local
            }
        };
        self.open(kind).await
    }

    /// The runtime that runs this target's stack, for down/status/logs and the rest:
    /// the one named, else the one `up` recorded in the state directory. With nothing
    /// recorded, a named state directory means the local runtime (so a `down` aimed at
    /// a directory never falls through to someone's Docker project); otherwise local
    /// processes, then a Docker project of this name.
    pub async fn in_use(&self) -> anyhow::Result<AnyRuntime> {
        let kind = match (self.runtime, StackState::read(&self.dir)) {
            (Some(k), _) => k,
            (None, Some(s)) => s.runtime,
            (None, None) if self.dir_explicit => RuntimeKind::Local,
            (None, None) if local::LocalRuntime::open(&self.dir).has_instances() => {
                RuntimeKind::Local
            }
            (None, None) if docker::available().await => RuntimeKind::Docker,
            (None, None) => RuntimeKind::Local,
        };
        self.open(kind).await
    }

    async fn open(&self, kind: RuntimeKind) -> anyhow::Result<AnyRuntime> {
        // A recorded project wins over the default name, so a state directory leads to
        // the project that was started from it.
        let project = StackState::read(&self.dir)
            .filter(|s| s.runtime == kind)
            .map(|s| s.project)
            .unwrap_or_else(|| self.project.clone());
        Ok(match kind {
            RuntimeKind::Docker => {
                AnyRuntime::Docker(docker::DockerRuntime::connect(&self.dir, &project).await?)
            }
            RuntimeKind::Local => AnyRuntime::Local(local::LocalRuntime::open(&self.dir)),
        })
    }
}

/// Records the state of a stack that `up` started.
pub async fn record(
    rt: &AnyRuntime,
    stack: &Stack,
    dir: &Path,
    project: &str,
) -> anyhow::Result<StackState> {
    let mut addresses = crate::stack::state::Addresses::of(stack);
    addresses.metrics = rt.metrics().await;
    addresses.direct = rt.direct().await;
    let state = StackState {
        runtime: rt.kind(),
        project: project.to_owned(),
        config: stack.cfg.clone(),
        addresses,
    };
    state.write(dir)?;
    Ok(state)
}

/// The password a PostgreSQL probe signs in with, from the server's own environment
/// (`PG_PASSWORD` from our recipe, `POSTGRES_PASSWORD` for the official image).
pub fn postgres_secret<'a>(mut env: impl Iterator<Item = (&'a str, &'a str)>) -> Option<String> {
    env.find(|(k, _)| *k == "PG_PASSWORD" || *k == "POSTGRES_PASSWORD")
        .map(|(_, v)| v.to_owned())
        .filter(|v| !v.is_empty())
}

/// Probes one instance at `host:port` once. A PostgreSQL probe signs in with `secret`
/// when it has it (so the server's log does not fill with refused logins).
pub async fn probe(p: Probe, host: &str, port: u16, secret: Option<&str>) -> bool {
    let timeout = Duration::from_secs(2);
    match p {
        Probe::Running => true,
        Probe::Tcp => matches!(
            tokio::time::timeout(timeout, tokio::net::TcpStream::connect((host, port))).await,
            Ok(Ok(_))
        ),
        Probe::Postgres => {
            use sqlx::Connection as _;
            // Ready once it answers the protocol: a sign-in, or refusing a wrong or
            // missing password (a server of the user's own, whose password the probe
            // does not hold); "starting up" is not ready.
            let url = format!(
                "postgres://{}{host}:{port}/postgres",
                crate::stack::secrets::Secrets::userinfo("postgres", secret.unwrap_or(""))
            );
            match tokio::time::timeout(timeout, sqlx::PgConnection::connect(&url)).await {
                Ok(Ok(_)) => true,
                Ok(Err(sqlx::Error::Database(e))) => {
                    matches!(e.code().as_deref(), Some("28P01" | "28000"))
                }
                _ => false,
            }
        }
        Probe::Http(path) => {
            let Ok(client) = reqwest::Client::builder().timeout(timeout).build() else {
                return false;
            };
            client
                .get(format!("http://{host}:{port}{path}"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        }
    }
}

impl Probe {
    /// A label value that survives a round trip through a string (Docker labels, specs).
    pub fn encode(self) -> String {
        match self {
            Probe::Running => "running".into(),
            Probe::Tcp => "tcp".into(),
            Probe::Postgres => "postgres".into(),
            Probe::Http(p) => format!("http:{p}"),
        }
    }

    /// The reverse of [`Probe::encode`]; HTTP paths are leaked once per distinct path
    /// (a handful per process).
    pub fn decode(s: &str) -> Probe {
        match s {
            "tcp" => Probe::Tcp,
            "postgres" => Probe::Postgres,
            s => match s.strip_prefix("http:") {
                Some(p) => Probe::Http(leak_path(p)),
                None => Probe::Running,
            },
        }
    }
}

fn leak_path(p: &str) -> &'static str {
    use std::sync::Mutex;
    static PATHS: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    let mut g = PATHS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(found) = g.iter().find(|x| **x == p) {
        return found;
    }
    let leaked: &'static str = Box::leak(p.to_owned().into_boxed_str());
    g.push(leaked);
    leaked
}

/// Polls `healthy` until it is true, failing with `why_not` when it says the instance
/// is gone, or after `limit`.
pub async fn wait_until_healthy<H, F, W, G>(
    instance: &str,
    limit: Duration,
    mut healthy: H,
    mut gone: W,
) -> anyhow::Result<()>
where
    H: FnMut() -> F,
    F: std::future::Future<Output = bool>,
    W: FnMut() -> G,
    G: std::future::Future<Output = Option<String>>,
{
    let deadline = std::time::Instant::now() + limit;
    loop {
        if healthy().await {
            return Ok(());
        }
        if let Some(why) = gone().await {
            anyhow::bail!("{instance} exited during start-up; {why}");
        }
        if std::time::Instant::now() > deadline {
            anyhow::bail!(
                "{instance} did not become healthy within {} s",
                limit.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The latest component rows and a note (runtime, or why status is unavailable).
pub type SharedComponents = std::sync::Arc<std::sync::Mutex<(Vec<InstanceStatus>, Option<String>)>>;

/// Component status, refreshed in the background every two seconds.
pub fn follow_status(target: Target) -> (SharedComponents, tokio::task::JoinHandle<()>) {
    let shared = std::sync::Arc::new(std::sync::Mutex::new((Vec::new(), None)));
    let out = shared.clone();
    let task = tokio::spawn(async move {
        // Opened once; when the runtime cannot be reached yet, tried again next round.
        let mut rt = None;
        loop {
            if rt.is_none() {
                match target.in_use().await {
                    Ok(r) => rt = Some(r),
                    Err(e) => {
                        out.lock().unwrap_or_else(|e| e.into_inner()).1 =
                            Some(format!(" status unavailable: {e} "));
                    }
                }
            }
            if let Some(r) = &rt {
                let rows = r.status().await;
                let mut g = out.lock().unwrap_or_else(|e| e.into_inner());
                match rows {
                    Ok(rows) => {
                        // Active chaos faults beside the runtime's name, so a kill lines up
                        // with the drop it causes on the live view's timeline.
                        let chaos = crate::stack::faults::summary(&target.dir)
                            .map(|c| format!("· chaos: {c} "))
                            .unwrap_or_default();
                        *g = (rows, Some(format!(" {} runtime {chaos}", r.kind().name())))
                    }
                    Err(e) => g.1 = Some(format!(" status unavailable: {e} ")),
                }
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    });
    (shared, task)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_survive_a_round_trip_through_a_label() {
        for p in [
            Probe::Running,
            Probe::Tcp,
            Probe::Postgres,
            Probe::Http("/readyz"),
        ] {
            assert_eq!(Probe::decode(&p.encode()), p);
        }
    }
}
