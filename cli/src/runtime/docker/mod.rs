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
    ContainerCreateBody, EndpointSettings, HostConfig, NetworkCreateRequest, NetworkingConfig,
    PortBinding, VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, InspectContainerOptions, ListContainersOptionsBuilder,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, StartContainerOptions,
};
use futures_util::StreamExt;

mod ops;
mod plan;

pub use plan::{Want, wants};

use crate::stack::Probe;

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
                let secret = match probe {
                    Probe::Postgres => self.postgres_secret(id).await,
                    _ => None,
                };
                super::probe(probe, &ip, port, secret.as_deref()).await
            }
            _ => false,
        }
    }

    /// The password in a PostgreSQL container's environment, for its probe.
    async fn postgres_secret(&self, id: &str) -> Option<String> {
        let info = self
            .docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
            .ok()?;
        let env = info.config.and_then(|c| c.env).unwrap_or_default();
        super::postgres_secret(env.iter().filter_map(|kv| kv.split_once('=')))
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
