//! The Docker runtime: the stack as labelled containers on one project network, from
//! locally made images or, where a registry answers, pinned official ones (see
//! `images.rs`), started in dependency order and gated on Docker health checks (or, for
//! images with no probe tool inside, on running).
//!
//! Every object it creates carries `io.socialnet.project=<project>`; `down` and
//! `status` only ever act on objects with that label, so nothing else on the engine is
//! touched.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, EndpointSettings, HealthConfig, HostConfig, NetworkCreateRequest,
    NetworkingConfig, PortBinding,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, InspectContainerOptions, ListContainersOptionsBuilder,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, StartContainerOptions, StatsOptionsBuilder,
};
use futures_util::StreamExt;
use serde::Serialize;

use crate::stack::{self, ImageMode, Net, Role, StackConfig};

pub const LABEL_PROJECT: &str = "io.socialnet.project";
const LABEL_INSTANCE: &str = "io.socialnet.instance";
const LABEL_SPEC: &str = "io.socialnet.spec";

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

/// One container the stack wants.
#[derive(Debug, Clone, Serialize)]
pub struct Want {
    pub instance: String,
    pub role: Role,
    pub cmd: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// (host port on 127.0.0.1, container port)
    pub publish: Vec<(u16, u16)>,
    pub health: Vec<String>,
    pub volume: Option<(String, String)>,
    pub image: String,
}

impl Want {
    fn spec_hash(&self) -> String {
        let json = serde_json::to_vec(self).expect("a container spec serialises");
        let mut h: u64 = 0xcbf29ce484222325;
        for b in json {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100000001b3);
        }
        format!("{h:016x}")
    }
}

const PG_SCRIPT: &str = r#"set -e
BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
D=/var/lib/postgresql/data
mkdir -p $D && chown postgres $D && chmod 700 $D
if [ ! -s $D/PG_VERSION ]; then
  su postgres -s /bin/sh -c "$BIN/initdb -D $D -U postgres --auth=trust -E UTF8" >/dev/null
  echo "host all all 0.0.0.0/0 trust" >> $D/pg_hba.conf
fi
exec su postgres -s /bin/sh -c "exec $BIN/postgres -D $D -c listen_addresses=* -c unix_socket_directories=/tmp -c max_connections=400 -c synchronous_commit=off""#;

fn nginx_conf(cfg: &StackConfig) -> String {
    format!(
        "worker_processes 2;\nerror_log /dev/stderr warn;\npid /tmp/nginx/nginx.pid;\nevents {{ worker_connections 4096; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path /tmp/nginx/body;\n  proxy_temp_path /tmp/nginx/proxy;\n  \
         fastcgi_temp_path /tmp/nginx/fcgi;\n  uwsgi_temp_path /tmp/nginx/uwsgi;\n  scgi_temp_path /tmp/nginx/scgi;\n{}\n}}\n",
        stack::gateway_conf_on(cfg, Net::Docker)
    )
}

fn probe(url: String) -> Vec<String> {
    vec!["CMD".into(), "socialctl".into(), "probe".into(), url]
}

pub fn wants(cfg: &StackConfig, image: &str, project: &str) -> Vec<Want> {
    let mut out = Vec::new();
    for c in stack::components(cfg) {
        for r in 0..c.replicas {
            let instance = stack::instance_name(c.name, r);
            let mut w = Want {
                instance: instance.clone(),
                role: c.role,
                cmd: Vec::new(),
                env: BTreeMap::new(),
                publish: Vec::new(),
                health: Vec::new(),
                volume: None,
                image: image.to_owned(),
            };
            let official = cfg.images == ImageMode::Official;
            match c.role {
                Role::Postgres if official => {
                    w.image = stack::POSTGRES_IMAGE.into();
                    w.env = BTreeMap::from([(
                        "POSTGRES_HOST_AUTH_METHOD".to_owned(),
                        "trust".to_owned(),
                    )]);
                    w.cmd = [
                        "postgres",
                        "-c",
                        "max_connections=400",
                        "-c",
                        "synchronous_commit=off",
                    ]
                    .map(String::from)
                    .to_vec();
                    w.health = vec![
                        "CMD".into(),
                        "pg_isready".into(),
                        "-U".into(),
                        "postgres".into(),
                    ];
                    w.publish = vec![(cfg.postgres_port, 5432)];
                    // Its own volume: the official image's PostgreSQL major differs from
                    // Debian bookworm's, so the data directories are not interchangeable.
                    w.volume = Some((
                        format!("{project}-pgdata-official"),
                        "/var/lib/postgresql/data".into(),
                    ));
                }
                Role::Postgres => {
                    w.cmd = vec!["sh".into(), "-c".into(), PG_SCRIPT.into()];
                    w.health = vec![
                        "CMD-SHELL".into(),
                        "pg_isready -h 127.0.0.1 -U postgres".into(),
                    ];
                    w.publish = vec![(cfg.postgres_port, 5432)];
                    w.volume = Some((
                        format!("{project}-pgdata"),
                        "/var/lib/postgresql/data".into(),
                    ));
                }
                Role::Redis => {
                    w.cmd = [
                        "redis-server",
                        "--bind",
                        "0.0.0.0",
                        "--protected-mode",
                        "no",
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                    ]
                    .map(String::from)
                    .to_vec();
                    w.health = vec!["CMD".into(), "redis-cli".into(), "ping".into()];
                    w.publish = vec![(cfg.redis_port, 6379)];
                    if official {
                        w.image = stack::REDIS_IMAGE.into();
                    }
                }
                Role::Collector => {
                    w.image = stack::COLLECTOR_IMAGE.into();
                    w.cmd = vec!["--config=env:OTELCOL_CONFIG".into()];
                    w.env = BTreeMap::from([(
                        "OTELCOL_CONFIG".to_owned(),
                        stack::COLLECTOR_CONFIG.to_owned(),
                    )]);
                }
                Role::Jaeger => {
                    w.image = stack::JAEGER_IMAGE.into();
                    w.env =
                        BTreeMap::from([("COLLECTOR_OTLP_ENABLED".to_owned(), "true".to_owned())]);
                    w.publish = vec![(cfg.jaeger_ui_port, 16686)];
                }
                Role::Sink => {
                    w.cmd = [
                        "socialctl",
                        "sink",
                        "--grpc",
                        "0.0.0.0:4317",
                        "--http",
                        "0.0.0.0:4318",
                    ]
                    .map(String::from)
                    .to_vec();
                    w.health = probe("http://127.0.0.1:4318/healthz".into());
                    w.publish = vec![(cfg.otlp_grpc_port, 4317), (cfg.otlp_http_port, 4318)];
                }
                Role::Service => {
                    let (_, port) = Net::Docker.addr(cfg, c.name, r);
                    w.cmd = vec![c.name.to_owned()];
                    w.env = stack::service_env_on(cfg, Net::Docker, c.name, r);
                    w.health = probe(format!("http://127.0.0.1:{port}/readyz"));
                }
                Role::Gateway => {
                    w.cmd = vec![
                        "sh".into(),
                        "-c".into(),
                        "mkdir -p /tmp/nginx && printf '%s' \"$NGINX_CONF\" > /tmp/nginx/nginx.conf && exec nginx -p /tmp/nginx -c /tmp/nginx/nginx.conf -g 'daemon off;'".into(),
                    ];
                    w.env = BTreeMap::from([("NGINX_CONF".to_owned(), nginx_conf(cfg))]);
                    w.health = probe("http://127.0.0.1:8080/healthz".into());
                    w.publish = vec![(cfg.gateway_port, 8080)];
                    if official {
                        w.image = stack::NGINX_IMAGE.into();
                        w.health = vec![
                            "CMD-SHELL".into(),
                            "curl -fsS http://127.0.0.1:8080/healthz >/dev/null || exit 1".into(),
                        ];
                    }
                }
            }
            out.push(w);
        }
    }
    out
}

struct Existing {
    id: String,
    spec: String,
    running: bool,
}

async fn existing(docker: &Docker, project: &str) -> anyhow::Result<HashMap<String, Existing>> {
    let filters = HashMap::from([("label", vec![format!("{LABEL_PROJECT}={project}")])]);
    let list = docker
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
                },
            ))
        })
        .collect())
}

async fn remove(docker: &Docker, id: &str) -> anyhow::Result<()> {
    docker
        .remove_container(
            id,
            Some(RemoveContainerOptionsBuilder::default().force(true).build()),
        )
        .await
        .with_context(|| format!("could not remove container {id}"))
}

async fn last_logs(docker: &Docker, id: &str, n: usize) -> String {
    let opts = LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .tail(&n.to_string())
        .build();
    let mut s = docker.logs(id, Some(opts));
    let mut out = String::new();
    while let Ok(Some(Ok(chunk))) = tokio::time::timeout(Duration::from_secs(2), s.next()).await {
        out.push_str(&chunk.to_string());
    }
    out
}

async fn create_and_start(docker: &Docker, project: &str, w: &Want) -> anyhow::Result<String> {
    let name = format!("{project}-{}", w.instance);
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
    let second = 1_000_000_000i64;
    let body = ContainerCreateBody {
        image: Some(w.image.clone()),
        cmd: Some(w.cmd.clone()),
        env: Some(w.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        labels: Some(HashMap::from([
            (LABEL_PROJECT.to_owned(), project.to_owned()),
            (LABEL_INSTANCE.to_owned(), w.instance.clone()),
            (LABEL_SPEC.to_owned(), w.spec_hash()),
        ])),
        exposed_ports: Some(exposed),
        // Images without a shell or probe tool (the Collector, Jaeger) get no Docker
        // health check; `up` then gates on them running.
        healthcheck: (!w.health.is_empty()).then(|| HealthConfig {
            test: Some(w.health.clone()),
            interval: Some(second / 2),
            timeout: Some(3 * second),
            retries: Some(120),
            start_period: Some(0),
            ..Default::default()
        }),
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
                project.to_owned(),
                EndpointSettings {
                    aliases: Some(vec![w.instance.clone()]),
                    ..Default::default()
                },
            )])),
        }),
        ..Default::default()
    };
    let c = docker
        .create_container(
            Some(CreateContainerOptionsBuilder::default().name(&name).build()),
            body,
        )
        .await
        .with_context(|| format!("could not create container {name}"))?;
    docker
        .start_container(&c.id, None::<StartContainerOptions>)
        .await
        .with_context(|| format!("could not start {name}"))?;
    Ok(c.id)
}

async fn wait_healthy(
    docker: &Docker,
    id: &str,
    instance: &str,
    has_check: bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(90);
    let started = Instant::now();
    loop {
        let info = docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await?;
        let state = info.state.unwrap_or_default();
        let health = state
            .health
            .and_then(|h| h.status)
            .map(|s| s.to_string())
            .unwrap_or_default();
        let status = state.status.map(|s| s.to_string()).unwrap_or_default();
        if health == "healthy"
            || (!has_check && status == "running" && started.elapsed() >= Duration::from_secs(2))
        {
            return Ok(());
        }
        if status == "exited" || status == "dead" || Instant::now() > deadline {
            let why = if Instant::now() > deadline {
                "did not become healthy within 90 s"
            } else {
                "exited during start-up"
            };
            bail!(
                "{instance} {why}; its last log lines:\n{}",
                last_logs(docker, id, 20).await
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `socialctl up` on Docker.
/// `auto_images`: use official images when a registry answers (`--images auto`),
/// instead of the mode `cfg` names.
pub async fn up(project: &str, cfg: &StackConfig, auto_images: bool) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let docker = connect().await?;
    let version = docker
        .version()
        .await
        .ok()
        .and_then(|v| v.version)
        .unwrap_or_else(|| "?".into());
    println!("socialctl up: Docker runtime (engine {version}), project {project}");
    let say = |m: &str| println!("  {m}");
    // One registry probe decides `auto` and, when it fails, says why images are built here.
    let mut cfg = cfg.clone();
    let mut why_local = None;
    if auto_images {
        match crate::images::registry_probe(&docker).await {
            Ok(()) => cfg.images = ImageMode::Official,
            Err(why) => {
                cfg.images = ImageMode::Local;
                why_local = Some(why);
            }
        }
    }
    let cfg = &cfg;
    let official = cfg.images == ImageMode::Official;
    if official {
        say(&format!(
            "images: official, pinned ({}), with the OpenTelemetry Collector and Jaeger; the services' image is built from this build's binaries",
            stack::OFFICIAL_IMAGES.join(", ")
        ));
        for image in stack::OFFICIAL_IMAGES {
            crate::images::pull(&docker, image, &say).await?;
        }
    }
    let image = crate::images::ensure_stack(&docker, &say, official, why_local).await?;
    if docker
        .inspect_network(
            project,
            None::<bollard::query_parameters::InspectNetworkOptions>,
        )
        .await
        .is_err()
    {
        docker
            .create_network(NetworkCreateRequest {
                name: project.to_owned(),
                labels: Some(HashMap::from([(
                    LABEL_PROJECT.to_owned(),
                    project.to_owned(),
                )])),
                ..Default::default()
            })
            .await
            .context("could not create the project network")?;
    }
    let want = wants(cfg, &image, project);
    let mut have = existing(&docker, project).await?;
    for (inst, e) in &have {
        if !want.iter().any(|w| &w.instance == inst) {
            println!("  {inst:<12} removing (no longer in the stack)");
            remove(&docker, &e.id).await?;
        }
    }
    let mut changed = 0;
    for w in &want {
        if let Some(e) = have.remove(&w.instance) {
            if e.running && e.spec == w.spec_hash() {
                println!("  {:<12} unchanged", w.instance);
                continue;
            }
            println!("  {:<12} settings changed: recreating", w.instance);
            remove(&docker, &e.id).await?;
        }
        let line = crate::progress::Line::start(&w.instance, "starting");
        let id = match create_and_start(&docker, project, w).await {
            Ok(id) => id,
            Err(e) => {
                line.fail("failed to start");
                return Err(e);
            }
        };
        line.set("waiting for health");
        if let Err(e) = wait_healthy(&docker, &id, &w.instance, !w.health.is_empty()).await {
            line.fail("not healthy");
            return Err(e);
        }
        line.finish("healthy");
        changed += 1;
    }
    stack::print_up_summary(cfg, changed, t0.elapsed());
    Ok(())
}

/// `socialctl down` on Docker: only labelled objects.
pub async fn down(project: &str, volumes: bool) -> anyhow::Result<()> {
    let docker = connect().await?;
    let have = existing(&docker, project).await?;
    if have.is_empty() {
        println!("no {project} containers on this engine");
    }
    for (inst, e) in have {
        print!("  {inst:<12} removing … ");
        remove(&docker, &e.id).await?;
        println!("removed");
    }
    if let Ok(n) = docker
        .inspect_network(
            project,
            None::<bollard::query_parameters::InspectNetworkOptions>,
        )
        .await
        && n.labels
            .unwrap_or_default()
            .get(LABEL_PROJECT)
            .map(String::as_str)
            == Some(project)
    {
        docker
            .remove_network(project)
            .await
            .context("could not remove the project network")?;
    }
    if volumes {
        for v in [
            format!("{project}-pgdata"),
            format!("{project}-pgdata-official"),
        ] {
            if docker
                .remove_volume(&v, None::<bollard::query_parameters::RemoveVolumeOptions>)
                .await
                .is_ok()
            {
                println!("removed volume {v}");
            }
        }
    }
    Ok(())
}

/// Status rows for the Docker runtime.
pub async fn status(project: &str) -> anyhow::Result<Vec<crate::local::InstanceStatus>> {
    let docker = connect().await?;
    let mut rows = Vec::new();
    let mut have: Vec<(String, Existing)> = existing(&docker, project).await?.into_iter().collect();
    have.sort_by(|a, b| a.0.cmp(&b.0));
    for (inst, e) in have {
        let info = docker
            .inspect_container(&e.id, None::<InspectContainerOptions>)
            .await?;
        let state = info.state.unwrap_or_default();
        let health = state
            .health
            .and_then(|h| h.status)
            .map(|s| s.to_string())
            .unwrap_or_else(|| "-".into());
        let uptime = state
            .started_at
            .as_deref()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map(|t| {
                (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
                    .num_seconds()
                    .max(0) as u64
            });
        let mut stats = docker.stats(
            &e.id,
            Some(StatsOptionsBuilder::default().stream(false).build()),
        );
        let (mem, cpu) = match tokio::time::timeout(Duration::from_secs(5), stats.next()).await {
            Ok(Some(Ok(s))) => {
                let mem = s.memory_stats.and_then(|m| m.usage);
                let cpu = s
                    .cpu_stats
                    .and_then(|c| c.cpu_usage)
                    .and_then(|u| u.total_usage)
                    .map(|ns| ns as f64 / 1e9);
                (mem, cpu)
            }
            _ => (None, None),
        };
        rows.push(crate::local::InstanceStatus {
            name: inst,
            state: if e.running { "running" } else { "exited" },
            health: leak(health),
            pid: state
                .pid
                .and_then(|p| u32::try_from(p).ok())
                .filter(|p| *p > 0),
            uptime_secs: if e.running { uptime } else { None },
            memory_bytes: mem,
            cpu_seconds: cpu,
            restarts: info.restart_count.map(|r| r as u64),
        });
    }
    Ok(rows)
}

/// Health strings come from a small fixed set; map them to statics.
fn leak(s: String) -> &'static str {
    match s.as_str() {
        "healthy" => "healthy",
        "unhealthy" => "unhealthy",
        "starting" => "starting",
        _ => "-",
    }
}

/// `socialctl logs` on Docker.
pub async fn logs(project: &str, instance: &str, follow: bool, tail: usize) -> anyhow::Result<()> {
    let docker = connect().await?;
    let have = existing(&docker, project).await?;
    let Some(e) = have.get(instance) else {
        let mut names: Vec<&String> = have.keys().collect();
        names.sort();
        bail!("no container for {instance:?} in project {project}; components: {names:?}");
    };
    let opts = LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .follow(follow)
        .tail(&tail.to_string())
        .build();
    let mut s = docker.logs(&e.id, Some(opts));
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
