//! The runtime operations on a Docker project: up (create, start and health-gate each
//! container of the plan), down, status, logs, and the per-instance operations chaos
//! drives (signal, pause, resume, restart, network disconnect and connect).

use std::time::Duration;

use anyhow::Context as _;
use bollard::models::{EndpointSettings, NetworkConnectRequest, NetworkDisconnectRequest};
use bollard::query_parameters::{
    InspectContainerOptions, KillContainerOptionsBuilder, ListVolumesOptionsBuilder,
    LogsOptionsBuilder, RestartContainerOptions, StatsOptionsBuilder,
};
use futures_util::StreamExt;

use super::{DockerRuntime, Existing, LABEL_PROJECT, wants};
use crate::runtime::{InstanceStatus, Runtime};
use crate::stack::state::{RuntimeKind, StackState};
use crate::stack::{ImageMode, Signal, Stack};

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
        crate::say!(
            "socialctl up: Docker runtime (engine {version}), project {}",
            self.project
        );
        let say = |m: &str| crate::say!("  {m}");
        let official = stack.cfg.images == ImageMode::Official;
        if official {
            say(&format!(
                "images: official, pinned ({}), with the OpenTelemetry Collector and Jaeger; the services' image is built from this build's binaries",
                crate::stack::official::OFFICIAL_IMAGES.join(", ")
            ));
            for image in crate::stack::official::OFFICIAL_IMAGES {
                crate::runtime::images::pull(&self.docker, image, &say).await?;
            }
        }
        let image = crate::runtime::images::ensure_stack(
            &self.docker,
            &say,
            official,
            self.registry_note.clone(),
        )
        .await?;
        self.ensure_network().await?;
        let want = wants(stack, &image, &self.project);
        let mut have = self.existing().await?;
        if stack.cfg.only.is_empty() {
            for (inst, e) in &have {
                if !want.iter().any(|w| &w.instance == inst) {
                    crate::say!("  {inst:<12} removing (no longer in the stack)");
                    self.remove(&e.id).await?;
                }
            }
        }
        let mut changed = 0;
        for (order, w) in want.iter().enumerate() {
            if let Some(e) = have.remove(&w.instance) {
                if e.running && e.spec == w.spec_hash() {
                    crate::say!("  {:<12} unchanged", w.instance);
                    continue;
                }
                crate::say!("  {:<12} settings changed: recreating", w.instance);
                self.remove(&e.id).await?;
            }
            let line = crate::runtime::progress::Line::start(&w.instance, "starting");
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
            crate::say!("no {} containers on this engine", self.project);
        }
        let mut ordered: Vec<(&String, &Existing)> = have.iter().collect();
        ordered.sort_by_key(|(_, e)| std::cmp::Reverse(e.order));
        for (inst, e) in ordered {
            crate::say_inline!("  {inst:<12} removing … ");
            self.remove(&e.id).await?;
            crate::say!("removed");
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
                crate::say!("deleted volume {} (PostgreSQL's databases)", v.name);
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

    /// The gateway and the sink at their container addresses: on Linux the host reaches
    /// the project network directly, while the published ports go through the engine's
    /// userland proxy (`docker-proxy`), which costs a load generator throughput.
    async fn direct(&self) -> std::collections::BTreeMap<String, String> {
        let mut out = std::collections::BTreeMap::new();
        let Ok(have) = self.existing().await else {
            return out;
        };
        for name in ["gateway", "sink"] {
            if let Some(e) = have.get(name)
                && let Some((ip, _, port, true, _)) = self.reach(&e.id).await
                && !ip.is_empty()
            {
                out.insert(name.to_owned(), format!("{ip}:{port}"));
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
                    s.memory_stats.and_then(|m| {
                        // As `docker stats` counts it: the page cache the kernel can drop
                        // at will (inactive file pages) is not the container's memory.
                        let cache = m.stats.as_ref().and_then(|st| {
                            st.get("inactive_file")
                                .or_else(|| st.get("total_inactive_file"))
                                .copied()
                        });
                        m.usage.map(|u| u.saturating_sub(cache.unwrap_or(0)))
                    }),
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
