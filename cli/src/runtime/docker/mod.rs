//! The Docker runtime: the stack as labelled containers on one project network, each
//! made from its entry's launch recipe, from locally built images or, where a registry
//! answers, pinned official ones (see `images.rs`). Started in table order and gated on
//! socialctl's own probes over the project network (no in-container health checks, so
//! an idle stack spends nothing on probing).
//!
//! Every object it creates carries `io.socialnet.project=<project>`; `down` and `status`
//! only ever act on objects with that label, so nothing else on the engine is touched.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, NetworkConnectRequest, NetworkCreateRequest,
    NetworkDisconnectRequest, NetworkingConfig, PortBinding, VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, InspectContainerOptions, KillContainerOptionsBuilder,
    ListContainersOptionsBuilder, ListVolumesOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, RestartContainerOptions, StartContainerOptions,
    StatsOptionsBuilder,
};
use futures_util::StreamExt;

mod plan;

pub use plan::{Want, wants};

use super::{InstanceStatus, Runtime};
use crate::stack::state::{RuntimeKind, StackState};
use crate::stack::{ImageMode, Probe, Signal, Stack};

pub const LABEL_PROJECT: &str = "io.socialnet.project";
const LABEL_INSTANCE: &str = "io.socialnet.instance";
const LABEL_SPEC: &str = "io.socialnet.spec";
const LABEL_PROBE: &str = "io.socialnet.probe";
const LABEL_PORT: &str = "io.socialnet.port";
const LABEL_ORDER: &str = "io.socialnet.order";
const LABEL_SERVICE: &str = "io.socialnet.service";

/// Where generated files go inside a container.
pub const RUN_DIR: &str = "/tmp/socialnet";

/// Connects and negotiates the API version, turning the usual failures into advice.
pub async fn connect() -> anyhow::Result<Docker> {
    let docker =
        Docker::connect_with_local_defaults().context("could not set up a Docker client")?;
    let docker = match tokio::time::timeout(Duration::from_secs(5), docker.negotiate_version())
        .await
    {
        Ok(Ok(d)) => d,
        Ok(Err(e)) => {
            let msg = e.to_string();
            if msg.contains("Permission denied") || msg.contains("permission denied") {
                bail!(
                    "permission denied on the Docker socket; add yourself to the `docker` group (then log in again), or use --runtime local"
                );
            }
            bail!(
                "no Docker engine answers ({msg}); start it (e.g. `systemctl start docker`), or use --runtime local"
            );
        }
        Err(_) => {
            bail!("the Docker engine did not answer within 5 s; check it, or use --runtime local")
        }
    };
    Ok(docker)
}

/// Whether an engine answers (for `--runtime auto`).
pub async fn available() -> bool {
    connect().await.is_ok()
}

struct Existing {
    id: String,
    spec: String,
    running: bool,
    order: usize,
}

pub struct DockerRuntime {
    docker: Docker,
    project: String,
    dir: PathBuf,
    /// Why no registry answered, when `up` already probed (saves probing again before
    /// building images).
    pub registry_note: Option<String>,
}

impl DockerRuntime {
    pub fn engine(&self) -> &Docker {
        &self.docker
    }

    pub async fn connect(dir: &Path, project: &str) -> anyhow::Result<Self> {
        Ok(Self {
            docker: connect().await?,
            project: project.to_owned(),
            dir: dir.to_owned(),
            registry_note: None,
        })
    }

    fn filters(&self) -> HashMap<&'static str, Vec<String>> {
        HashMap::from([("label", vec![format!("{LABEL_PROJECT}={}", self.project)])])
    }

    async fn existing(&self) -> anyhow::Result<BTreeMap<String, Existing>> {
        let filters = self.filters();
        let list = self
            .docker
            .list_containers(Some(
                ListContainersOptionsBuilder::default()
                    .all(true)
                    .filters(&filters)
                    .build(),
            ))
            .await
            .context("could not list containers")?;
        Ok(list
            .into_iter()
            .filter_map(|c| {
                let labels = c.labels.unwrap_or_default();
                let instance = labels.get(LABEL_INSTANCE)?.clone();
                Some((
                    instance,
                    Existing {
                        id: c.id.unwrap_or_default(),
                        spec: labels.get(LABEL_SPEC).cloned().unwrap_or_default(),
                        running: c.state.map(|s| s.to_string()).as_deref() == Some("running"),
                        order: labels
                            .get(LABEL_ORDER)
                            .and_then(|o| o.parse().ok())
                            .unwrap_or(usize::MAX),
                    },
                ))
            })
            .collect())
    }

    async fn id_of(&self, instance: &str) -> anyhow::Result<String> {
        let have = self.existing().await?;
        match have.get(instance) {
            Some(e) => Ok(e.id.clone()),
            None => bail!(
                "no container for {instance:?} in project {}; components: {}",
                self.project,
                have.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        }
    }

    async fn remove(&self, id: &str) -> anyhow::Result<()> {
        self.docker
            .remove_container(
                id,
                Some(RemoveContainerOptionsBuilder::default().force(true).build()),
            )
            .await
            .with_context(|| format!("could not remove container {id}"))
    }

    async fn last_logs(&self, id: &str, n: usize) -> String {
        let opts = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .tail(&n.to_string())
            .build();
        let mut s = self.docker.logs(id, Some(opts));
        let mut out = String::new();
        while let Ok(Some(Ok(chunk))) = tokio::time::timeout(Duration::from_secs(2), s.next()).await
        {
            out.push_str(&chunk.to_string());
        }
        out
    }

    /// The container's address on the project network, how it is probed and what it
    /// serves, from its labels; `None` when it is not running.
    async fn reach(&self, id: &str) -> Option<(String, Probe, u16, bool, bool)> {
        let info = self
            .docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
            .ok()?;
        let running = info.state.as_ref().and_then(|s| s.running).unwrap_or(false);
        let labels = info.config.and_then(|c| c.labels).unwrap_or_default();
        let ip = info
            .network_settings
            .and_then(|n| n.networks)
            .and_then(|n| n.get(&self.project).cloned())
            .and_then(|e| e.ip_address)
            .filter(|ip| !ip.is_empty())
            .unwrap_or_default();
        Some((
            ip,
            Probe::decode(labels.get(LABEL_PROBE).map_or("running", String::as_str)),
            labels
                .get(LABEL_PORT)
                .and_then(|p| p.parse().ok())
                .unwrap_or(0),
            running,
            labels.get(LABEL_SERVICE).is_some_and(|s| s == "true"),
        ))
    }

    async fn healthy(&self, id: &str) -> bool {
        match self.reach(id).await {
            Some((ip, probe, port, true, _)) if !ip.is_empty() => {
                super::probe(probe, &ip, port).await
            }
            _ => false,
        }
    }

    async fn wait_healthy(&self, id: &str, instance: &str) -> anyhow::Result<()> {
        let waited = super::wait_until_healthy(
            instance,
            Duration::from_secs(90),
            || self.healthy(id),
            || async move {
                let info = self
                    .docker
                    .inspect_container(id, None::<InspectContainerOptions>)
                    .await
                    .ok()?;
                let status = info.state?.status?.to_string();
                (status == "exited" || status == "dead").then(|| format!("its state is {status}"))
            },
        )
        .await;
        match waited {
            Ok(()) => Ok(()),
            Err(e) => Err(anyhow::anyhow!(
                "{e:#}; its last log lines:\n{}",
                self.last_logs(id, 20).await
            )),
        }
    }

    async fn ensure_network(&self) -> anyhow::Result<()> {
        if self
            .docker
            .inspect_network(
                &self.project,
                None::<bollard::query_parameters::InspectNetworkOptions>,
            )
            .await
            .is_err()
        {
            self.docker
                .create_network(NetworkCreateRequest {
                    name: self.project.clone(),
                    labels: Some(HashMap::from([(
                        LABEL_PROJECT.to_owned(),
                        self.project.clone(),
                    )])),
                    ..Default::default()
                })
                .await
                .context("could not create the project network")?;
        }
        Ok(())
    }

    /// Volumes are created before their container, with the project label, so `down
    /// --volumes` can tell them from anyone else's.
    async fn ensure_volume(&self, name: &str) -> anyhow::Result<()> {
        if self.docker.inspect_volume(name).await.is_err() {
            self.docker
                .create_volume(VolumeCreateRequest {
                    name: Some(name.to_owned()),
                    labels: Some(HashMap::from([(
                        LABEL_PROJECT.to_owned(),
                        self.project.clone(),
                    )])),
                    ..Default::default()
                })
                .await
                .with_context(|| format!("could not create volume {name}"))?;
        }
        Ok(())
    }

    async fn create_and_start(&self, w: &Want, order: usize) -> anyhow::Result<String> {
        let name = format!("{}-{}", self.project, w.instance);
        let mut port_bindings = HashMap::new();
        let mut exposed = Vec::new();
        for (host, inner) in &w.publish {
            if std::net::TcpListener::bind(("127.0.0.1", *host)).is_err() {
                bail!(
                    "port {host} (for {}) is taken on 127.0.0.1; stop what uses it, or choose another port",
                    w.instance
                );
            }
            exposed.push(format!("{inner}/tcp"));
            port_bindings.insert(
                format!("{inner}/tcp"),
                Some(vec![PortBinding {
                    host_ip: Some("127.0.0.1".into()),
                    host_port: Some(host.to_string()),
                }]),
            );
        }
        if let Some((v, _)) = &w.volume {
            self.ensure_volume(v).await?;
        }
        let body = ContainerCreateBody {
            image: Some(w.image.clone()),
            // No command: the image's own.
            cmd: (!w.cmd.is_empty()).then(|| w.cmd.clone()),
            env: Some(w.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            labels: Some(HashMap::from([
                (LABEL_PROJECT.to_owned(), self.project.clone()),
                (LABEL_INSTANCE.to_owned(), w.instance.clone()),
                (LABEL_SPEC.to_owned(), w.spec_hash()),
                (LABEL_PROBE.to_owned(), w.probe.clone()),
                (LABEL_PORT.to_owned(), w.port.to_string()),
                (LABEL_ORDER.to_owned(), order.to_string()),
                (LABEL_SERVICE.to_owned(), w.service.to_string()),
            ])),
            exposed_ports: Some(exposed),
            stop_signal: Some(w.stop_signal.clone()),
            host_config: Some(HostConfig {
                port_bindings: Some(port_bindings),
                binds: w.volume.as_ref().map(|(v, p)| vec![format!("{v}:{p}")]),
                restart_policy: Some(bollard::models::RestartPolicy {
                    name: Some(bollard::models::RestartPolicyNameEnum::UNLESS_STOPPED),
                    maximum_retry_count: None,
                }),
                ..Default::default()
            }),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    self.project.clone(),
                    EndpointSettings {
                        aliases: Some(vec![w.instance.clone()]),
                        ..Default::default()
                    },
                )])),
            }),
            ..Default::default()
        };
        let c = self
            .docker
            .create_container(
                Some(CreateContainerOptionsBuilder::default().name(&name).build()),
                body,
            )
            .await
            .with_context(|| format!("could not create container {name}"))?;
        self.docker
            .start_container(&c.id, None::<StartContainerOptions>)
            .await
            .with_context(|| format!("could not start {name}"))?;
        Ok(c.id)
    }
}

impl Runtime for DockerRuntime {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Docker
    }

    async fn up(&self, stack: &Stack) -> anyhow::Result<usize> {
        let version = self
            .docker
            .version()
            .await
            .ok()
            .and_then(|v| v.version)
            .unwrap_or_else(|| "?".into());
        println!(
            "socialctl up: Docker runtime (engine {version}), project {}",
            self.project
        );
        let say = |m: &str| println!("  {m}");
        let official = stack.cfg.images == ImageMode::Official;
        if official {
            say(&format!(
                "images: official, pinned ({}), with the OpenTelemetry Collector and Jaeger; the services' image is built from this build's binaries",
                crate::stack::official::OFFICIAL_IMAGES.join(", ")
            ));
            for image in crate::stack::official::OFFICIAL_IMAGES {
                super::images::pull(&self.docker, image, &say).await?;
            }
        }
        let image =
            super::images::ensure_stack(&self.docker, &say, official, self.registry_note.clone())
                .await?;
        self.ensure_network().await?;
        let want = wants(stack, &image, &self.project);
        let mut have = self.existing().await?;
        if stack.cfg.only.is_empty() {
            for (inst, e) in &have {
                if !want.iter().any(|w| &w.instance == inst) {
                    println!("  {inst:<12} removing (no longer in the stack)");
                    self.remove(&e.id).await?;
                }
            }
        }
        let mut changed = 0;
        for (order, w) in want.iter().enumerate() {
            if let Some(e) = have.remove(&w.instance) {
                if e.running && e.spec == w.spec_hash() {
                    println!("  {:<12} unchanged", w.instance);
                    continue;
                }
                println!("  {:<12} settings changed: recreating", w.instance);
                self.remove(&e.id).await?;
            }
            let line = super::progress::Line::start(&w.instance, "starting");
            let id = match self.create_and_start(w, order).await {
                Ok(id) => id,
                Err(e) => {
                    line.fail("failed to start");
                    return Err(e);
                }
            };
            line.set("waiting for health");
            if let Err(e) = self.wait_healthy(&id, &w.instance).await {
                line.fail("not healthy");
                return Err(e);
            }
            line.finish("healthy");
            changed += 1;
        }
        Ok(changed)
    }

    async fn down(&self, volumes: bool) -> anyhow::Result<()> {
        let have = self.existing().await?;
        if have.is_empty() {
            println!("no {} containers on this engine", self.project);
        }
        let mut ordered: Vec<(&String, &Existing)> = have.iter().collect();
        ordered.sort_by_key(|(_, e)| std::cmp::Reverse(e.order));
        for (inst, e) in ordered {
            print!("  {inst:<12} removing … ");
            self.remove(&e.id).await?;
            println!("removed");
        }
        if let Ok(n) = self
            .docker
            .inspect_network(
                &self.project,
                None::<bollard::query_parameters::InspectNetworkOptions>,
            )
            .await
            && n.labels
                .unwrap_or_default()
                .get(LABEL_PROJECT)
                .is_some_and(|p| *p == self.project)
        {
            self.docker
                .remove_network(&self.project)
                .await
                .context("could not remove the project network")?;
        }
        StackState::remove(&self.dir);
        if volumes {
            let filters = self.filters();
            let list = self
                .docker
                .list_volumes(Some(
                    ListVolumesOptionsBuilder::default()
                        .filters(&filters)
                        .build(),
                ))
                .await
                .context("could not list volumes")?;
            for v in list.volumes.unwrap_or_default() {
                self.docker
                    .remove_volume(
                        &v.name,
                        None::<bollard::query_parameters::RemoveVolumeOptions>,
                    )
                    .await
                    .with_context(|| format!("could not remove volume {}", v.name))?;
                println!("deleted volume {} (PostgreSQL's databases)", v.name);
            }
        }
        Ok(())
    }

    async fn status(&self) -> anyhow::Result<Vec<InstanceStatus>> {
        let mut have: Vec<(String, Existing)> = self.existing().await?.into_iter().collect();
        have.sort_by_key(|(_, e)| e.order);
        let rows = have.iter().map(|(inst, e)| self.status_of(inst, e));
        Ok(futures_util::future::join_all(rows)
            .await
            .into_iter()
            .flatten()
            .collect())
    }

    async fn logs(&self, instance: &str, follow: bool, tail: usize) -> anyhow::Result<()> {
        let id = self.id_of(instance).await?;
        let opts = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .follow(follow)
            .tail(&tail.to_string())
            .build();
        let mut s = self.docker.logs(&id, Some(opts));
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return Ok(()),
                item = s.next() => match item {
                    Some(Ok(chunk)) => print!("{chunk}"),
                    Some(Err(e)) => return Err(e).context("log stream failed"),
                    None => return Ok(()),
                },
            }
        }
    }

    async fn signal(&self, instance: &str, signal: Signal) -> anyhow::Result<()> {
        let id = self.id_of(instance).await?;
        self.docker
            .kill_container(
                &id,
                Some(
                    KillContainerOptionsBuilder::default()
                        .signal(&format!("SIG{}", signal.name()))
                        .build(),
                ),
            )
            .await
            .with_context(|| format!("could not send SIG{} to {instance}", signal.name()))
    }

    async fn pause(&self, instance: &str) -> anyhow::Result<()> {
        let id = self.id_of(instance).await?;
        self.docker
            .pause_container(&id)
            .await
            .with_context(|| format!("could not pause {instance}"))
    }

    async fn resume(&self, instance: &str) -> anyhow::Result<()> {
        let id = self.id_of(instance).await?;
        self.docker
            .unpause_container(&id)
            .await
            .with_context(|| format!("could not resume {instance}"))
    }

    async fn restart(&self, instance: &str) -> anyhow::Result<()> {
        let id = self.id_of(instance).await?;
        self.docker
            .restart_container(&id, None::<RestartContainerOptions>)
            .await
            .with_context(|| format!("could not restart {instance}"))?;
        self.wait_healthy(&id, instance).await
    }

    async fn disconnect(&self, instance: &str) -> anyhow::Result<()> {
        let id = self.id_of(instance).await?;
        self.docker
            .disconnect_network(
                &self.project,
                NetworkDisconnectRequest {
                    container: id,
                    force: Some(true),
                },
            )
            .await
            .with_context(|| format!("could not disconnect {instance} from {}", self.project))
    }

    async fn connect(&self, instance: &str) -> anyhow::Result<()> {
        let id = self.id_of(instance).await?;
        self.docker
            .connect_network(
                &self.project,
                NetworkConnectRequest {
                    container: id,
                    endpoint_config: Some(EndpointSettings {
                        aliases: Some(vec![instance.to_owned()]),
                        ..Default::default()
                    }),
                },
            )
            .await
            .with_context(|| format!("could not connect {instance} to {}", self.project))
    }

    async fn metrics(&self) -> Vec<(String, String)> {
        let Ok(have) = self.existing().await else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (inst, e) in &have {
            if let Some((ip, _, port, true, true)) = self.reach(&e.id).await
                && !ip.is_empty()
            {
                out.push((inst.clone(), format!("http://{ip}:{port}/metrics")));
            }
        }
        out
    }
}

impl DockerRuntime {
    async fn status_of(&self, inst: &str, e: &Existing) -> anyhow::Result<InstanceStatus> {
        let info = self
            .docker
            .inspect_container(&e.id, None::<InspectContainerOptions>)
            .await?;
        let state = info.state.unwrap_or_default();
        let health = if e.running {
            if self.healthy(&e.id).await {
                "healthy"
            } else {
                "unhealthy"
            }
        } else {
            "-"
        };
        let uptime = state
            .started_at
            .as_deref()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map(|t| {
                (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
                    .num_seconds()
                    .max(0) as u64
            });
        let (mem, cpu) = if e.running {
            let mut stats = self.docker.stats(
                &e.id,
                Some(
                    StatsOptionsBuilder::default()
                        .stream(false)
                        .one_shot(true)
                        .build(),
                ),
            );
            match tokio::time::timeout(Duration::from_secs(5), stats.next()).await {
                Ok(Some(Ok(s))) => (
                    s.memory_stats.and_then(|m| m.usage),
                    s.cpu_stats
                        .and_then(|c| c.cpu_usage)
                        .and_then(|u| u.total_usage)
                        .map(|ns| ns as f64 / 1e9),
                ),
                _ => (None, None),
            }
        } else {
            (None, None)
        };
        Ok(InstanceStatus {
            name: inst.to_owned(),
            state: if e.running { "running" } else { "exited" },
            health,
            pid: state
                .pid
                .and_then(|p| u32::try_from(p).ok())
                .filter(|p| *p > 0),
            uptime_secs: if e.running { uptime } else { None },
            memory_bytes: mem,
            cpu_seconds: cpu,
            restarts: info.restart_count.map(|r| r as u64),
        })
    }
}
