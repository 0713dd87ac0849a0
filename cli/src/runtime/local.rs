//! The local runtime: the stack as host processes on loopback (PostgreSQL, Redis and
//! NGINX from the system's packages, the services and the sink from this build), each
//! started from its entry's launch recipe.
//!
//! State lives in one directory: `pids/` (pid and start time of each running instance,
//! so a reused pid is never signalled), `specs/` (how each was started, so `up` can tell
//! what changed), `logs/`, `run/<instance>/` (generated files) and `data/<name>/` (kept
//! across restarts; `down --volumes` deletes it).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

use super::{InstanceStatus, Runtime, process};
use crate::stack::recipe::{Exec, Paths, package_of};
use crate::stack::state::{RuntimeKind, StackState};
use crate::stack::{Instance, Net, Probe, Signal, Stack};

/// How one instance was started; compared on the next `up` to decide what to recreate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spec {
    pub exec: Exec,
    /// The program, resolved to a path.
    pub program: String,
    pub port: u16,
    /// [`Probe::encode`]d.
    pub probe: String,
    pub stop_signal: Signal,
    /// Position in the table: stop runs in reverse.
    pub order: usize,
}

pub struct LocalRuntime {
    root: PathBuf,
}

impl LocalRuntime {
    pub fn open(root: &Path) -> Self {
        Self {
            root: root.to_owned(),
        }
    }

    fn dirs(&self) -> anyhow::Result<()> {
        for sub in ["pids", "specs", "logs", "run", "data"] {
            std::fs::create_dir_all(self.root.join(sub)).with_context(|| {
                format!(
                    "could not create the state directory {}",
                    self.root.display()
                )
            })?;
        }
        Ok(())
    }
    fn pid_file(&self, inst: &str) -> PathBuf {
        self.root.join("pids").join(format!("{inst}.pid"))
    }
    fn spec_file(&self, inst: &str) -> PathBuf {
        self.root.join("specs").join(format!("{inst}.json"))
    }
    fn log(&self, inst: &str) -> PathBuf {
        self.root.join("logs").join(format!("{inst}.log"))
    }
    fn run_dir(&self, inst: &str) -> PathBuf {
        self.root.join("run").join(inst)
    }
    fn data_dir(&self, name: &str) -> PathBuf {
        self.root.join("data").join(name)
    }

    /// The pid of a live instance: the recorded pid, if that process is still the one
    /// started (same start time), so a pid reused by another program is never touched.
    fn running(&self, inst: &str) -> Option<u32> {
        let text = std::fs::read_to_string(self.pid_file(inst)).ok()?;
        let mut it = text.split_whitespace();
        let pid: u32 = it.next()?.parse().ok()?;
        let started: Option<u64> = it.next().and_then(|s| s.parse().ok());
        (process::alive(pid) && (started.is_none() || process::start_time(pid) == started))
            .then_some(pid)
    }

    fn spec(&self, inst: &str) -> Option<Spec> {
        serde_json::from_str(&std::fs::read_to_string(self.spec_file(inst)).ok()?).ok()
    }

    /// Instances with a pid file, whether or not they are still alive, in stop order.
    fn known(&self) -> Vec<String> {
        let mut v: Vec<(usize, String)> = std::fs::read_dir(self.root.join("pids"))
            .map(|d| {
                d.filter_map(|e| {
                    e.ok()?
                        .file_name()
                        .to_str()?
                        .strip_suffix(".pid")
                        .map(str::to_owned)
                })
                .collect::<Vec<String>>()
            })
            .unwrap_or_default()
            .into_iter()
            .map(|i: String| (self.spec(&i).map_or(usize::MAX, |s| s.order), i))
            .collect();
        v.sort();
        v.reverse();
        v.into_iter().map(|(_, i)| i).collect()
    }

    /// Whether anything runs from this state directory.
    pub fn has_instances(&self) -> bool {
        self.known().iter().any(|i| self.running(i).is_some())
    }

    fn spec_for(&self, stack: &Stack, inst: &Instance, order: usize) -> anyhow::Result<Spec> {
        let c = &inst.component;
        let paths = Paths {
            run: self.run_dir(&inst.name).display().to_string(),
            data: c
                .data
                .map(|(name, _)| self.data_dir(name).display().to_string()),
        };
        let exec = stack.exec(Net::Local, inst, &paths);
        if exec.image.is_some() || exec.program.is_none() {
            bail!(
                "{} runs only from its official image, which needs the Docker runtime; drop --images official or use --runtime docker",
                inst.name
            );
        }
        let program = resolve(exec.program.as_deref().expect("checked above"))?;
        Ok(Spec {
            program: program.display().to_string(),
            port: stack.listen_port(Net::Local, inst, 0),
            probe: c.probe.encode(),
            stop_signal: c.stop_signal,
            order,
            exec,
        })
    }

    fn start(&self, inst: &str, spec: &Spec) -> anyhow::Result<u32> {
        let run = self.run_dir(inst);
        std::fs::create_dir_all(&run)
            .with_context(|| format!("could not create {}", run.display()))?;
        for (name, content) in &spec.exec.files {
            std::fs::write(run.join(name), content)
                .with_context(|| format!("could not write {}", run.join(name).display()))?;
        }
        if let Some(data) = &spec.exec.data {
            // Readable by the user a server switches to (PostgreSQL runs as `postgres`).
            std::fs::create_dir_all(self.data_dir(data))?;
        }
        let mut cmd = Command::new(&spec.program);
        cmd.args(&spec.exec.args).envs(&spec.exec.env);
        let pid = process::spawn_detached(cmd, &self.log(inst))?;
        let started = process::start_time(pid).unwrap_or(0);
        std::fs::write(self.pid_file(inst), format!("{pid} {started}"))?;
        std::fs::write(self.spec_file(inst), serde_json::to_string_pretty(spec)?)?;
        Ok(pid)
    }

    async fn start_healthy(&self, inst: &str, spec: &Spec) -> anyhow::Result<()> {
        let line = super::progress::Line::start(inst, "starting");
        let pid = match self.start(inst, spec) {
            Ok(pid) => pid,
            Err(e) => {
                line.fail("failed to start");
                return Err(e);
            }
        };
        line.set("waiting for health");
        let probe = Probe::decode(&spec.probe);
        let waited = super::wait_until_healthy(
            inst,
            Duration::from_secs(60),
            || {
                let secret = super::postgres_secret(
                    spec.exec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                );
                async move { super::probe(probe, "127.0.0.1", spec.port, secret.as_deref()).await }
            },
            || async move { (!process::alive(pid)).then(|| "it is no longer running".to_owned()) },
        )
        .await;
        match waited {
            Ok(()) => {
                line.finish("healthy");
                Ok(())
            }
            Err(e) => {
                line.fail("not healthy");
                Err(anyhow::anyhow!(
                    "{e:#}; its last log lines:\n{}",
                    process::tail(&self.log(inst), 20)
                ))
            }
        }
    }

    fn stop_instance(&self, inst: &str) -> anyhow::Result<()> {
        if let Some(pid) = self.running(inst) {
            let sig = self.spec(inst).map_or(Signal::Term, |s| s.stop_signal);
            process::stop(pid, sig.name(), Duration::from_secs(15))?;
        }
        let _ = std::fs::remove_file(self.pid_file(inst));
        Ok(())
    }

    fn live_pid(&self, inst: &str) -> anyhow::Result<u32> {
        self.running(inst).ok_or_else(|| {
            let known = self.known().join(", ");
            anyhow::anyhow!(
                "{inst:?} is not running in {}; running instances: {}",
                self.root.display(),
                if known.is_empty() {
                    "none".into()
                } else {
                    known
                }
            )
        })
    }
}

/// Finds a program: next to socialctl first (a cargo build puts them together), then on
/// PATH, then in the system directories; socialctl itself is this executable.
fn resolve(program: &str) -> anyhow::Result<PathBuf> {
    if program == "socialctl" {
        return std::env::current_exe().context("cannot locate the socialctl executable");
    }
    process::find_program(program, &["/usr/sbin", "/usr/local/sbin", "/sbin"]).ok_or_else(|| {
        if program == "socialnet" {
            anyhow::anyhow!(
                "cannot find the `socialnet` services binary next to socialctl or on PATH; build it with `cargo build --release -p socialnet`"
            )
        } else {
            anyhow::anyhow!(
                "`{program}` is not installed; install it with `apt-get install {}` (or run ./dev.sh up, which does)",
                package_of(program)
            )
        }
    })
}

fn port_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

impl Runtime for LocalRuntime {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Local
    }

    async fn up(&self, stack: &Stack) -> anyhow::Result<usize> {
        self.dirs()?;
        crate::say!(
            "socialctl up: local runtime (host processes on 127.0.0.1), state in {}",
            self.root.display()
        );
        let mut wanted = Vec::new();
        for (order, inst) in stack.instances().iter().enumerate() {
            wanted.push((inst.name.clone(), self.spec_for(stack, inst, order)?));
        }
        // Replicas no longer wanted (scaled down) go first. With --only, the others are
        // left as they are.
        if stack.cfg.only.is_empty() {
            for inst in self.known() {
                if !wanted.iter().any(|(w, _)| *w == inst) {
                    crate::say!("  {inst:<12} removing (no longer in the stack)");
                    self.stop_instance(&inst)?;
                }
            }
        }
        let mut changed = 0;
        for (inst, spec) in &wanted {
            let running = self.running(inst);
            if running.is_some() && self.spec(inst).as_ref() == Some(spec) {
                crate::say!("  {inst:<12} unchanged");
                continue;
            }
            if running.is_some() {
                crate::say!("  {inst:<12} settings changed: recreating");
                self.stop_instance(inst)?;
            } else if !port_free(spec.port) {
                bail!(
                    "port {} (for {inst}) is taken by another program; stop it, or pick other ports (e.g. --gateway-port)",
                    spec.port
                );
            }
            self.start_healthy(inst, spec).await?;
            changed += 1;
        }
        Ok(changed)
    }

    async fn down(&self, volumes: bool) -> anyhow::Result<()> {
        let known = self.known();
        if known.is_empty() {
            crate::say!("nothing is running from {}", self.root.display());
        }
        for inst in known {
            crate::say_inline!("  {inst:<12} stopping … ");
            self.stop_instance(&inst)?;
            crate::say!("stopped");
        }
        StackState::remove(&self.root);
        if volumes {
            for (sub, what) in [
                ("data", "data directories (PostgreSQL's databases)"),
                ("logs", "logs"),
                ("run", "generated configuration"),
                ("specs", "start-up records"),
            ] {
                let dir = self.root.join(sub);
                if dir.exists() {
                    std::fs::remove_dir_all(&dir)
                        .with_context(|| format!("could not delete {}", dir.display()))?;
                    crate::say!("deleted {} ({what})", dir.display());
                }
            }
        }
        Ok(())
    }

    async fn status(&self) -> anyhow::Result<Vec<InstanceStatus>> {
        let mut out = Vec::new();
        let mut known = self.known();
        known.reverse();
        for inst in known {
            let pid = self.running(&inst);
            let spec = self.spec(&inst);
            let health = match (&spec, pid) {
                (Some(s), Some(_)) => {
                    let secret = super::postgres_secret(
                        s.exec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                    );
                    if super::probe(
                        Probe::decode(&s.probe),
                        "127.0.0.1",
                        s.port,
                        secret.as_deref(),
                    )
                    .await
                    {
                        "healthy"
                    } else {
                        "unhealthy"
                    }
                }
                _ => "-",
            };
            let uptime = std::fs::metadata(self.pid_file(&inst))
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok());
            let usage = pid.and_then(process::tree_usage);
            out.push(InstanceStatus {
                name: inst,
                state: if pid.is_some() { "running" } else { "exited" },
                health,
                pid,
                uptime_secs: pid.and(uptime.map(|u| u.as_secs())),
                memory_bytes: usage.map(|(mem, _)| mem),
                cpu_seconds: usage.map(|(_, cpu)| cpu),
                restarts: None,
            });
        }
        Ok(out)
    }

    async fn logs(&self, instance: &str, follow: bool, tail: usize) -> anyhow::Result<()> {
        let path = self.log(instance);
        if !path.exists() {
            let mut known = self.known();
            known.reverse();
            bail!(
                "no log for {instance:?}; components: {}",
                if known.is_empty() {
                    "none (is the stack up?)".into()
                } else {
                    known.join(", ")
                }
            );
        }
        process::print_log(&path, follow, tail).await
    }

    async fn signal(&self, instance: &str, signal: Signal) -> anyhow::Result<()> {
        let pid = self.live_pid(instance)?;
        // KILL takes the whole process group (PostgreSQL's backends, NGINX's workers);
        // the others go to the main process, which manages its children.
        process::signal(pid, signal.name(), signal == Signal::Kill)
    }

    async fn pause(&self, instance: &str) -> anyhow::Result<()> {
        process::signal(self.live_pid(instance)?, "STOP", true)
    }

    async fn resume(&self, instance: &str) -> anyhow::Result<()> {
        process::signal(self.live_pid(instance)?, "CONT", true)
    }

    async fn restart(&self, instance: &str) -> anyhow::Result<()> {
        let spec = self.spec(instance).ok_or_else(|| {
            anyhow::anyhow!(
                "{instance:?} was never started from {}",
                self.root.display()
            )
        })?;
        self.stop_instance(instance)?;
        self.start_healthy(instance, &spec).await
    }

    async fn disconnect(&self, instance: &str) -> anyhow::Result<()> {
        bail!(
            "the local runtime has no network to cut {instance} from (its processes share the host's loopback); use the Docker runtime for partitions"
        )
    }

    async fn connect(&self, instance: &str) -> anyhow::Result<()> {
        self.disconnect(instance).await
    }

    async fn metrics(&self) -> Vec<(String, String)> {
        let mut known = self.known();
        known.reverse();
        known
            .into_iter()
            .filter(|i| self.running(i).is_some())
            .filter_map(|i| {
                let spec = self.spec(&i)?;
                spec.exec
                    .exports_spans()
                    .then(|| (i.clone(), format!("http://127.0.0.1:{}/metrics", spec.port)))
            })
            .collect()
    }

    /// Host processes listen on loopback already: there is no other path.
    async fn direct(&self) -> std::collections::BTreeMap<String, String> {
        std::collections::BTreeMap::new()
    }
}
