//! The local runtime: the stack as host processes on loopback (PostgreSQL, Redis and
//! NGINX from the system's packages, the services and the sink from this build).
//!
//! State lives in one directory: `pids/` (one file per running instance), `specs/` (the
//! command and environment each was started with, so `up` can tell what changed),
//! `logs/`, `pg/` (the database cluster) and `nginx/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

use crate::process;
use crate::stack::{self, Component, Role, StackConfig};
use crate::{LogsArgs, StackArgs};

pub fn default_state_dir() -> PathBuf {
    std::env::temp_dir()
        .join(format!("socialnet-{}", whoami_uid()))
        .join("local")
}

fn whoami_uid() -> String {
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
    whoami_uid() == "0"
}

/// How one instance was started; compared on the next `up` to decide what to recreate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spec {
    pub role: Role,
    pub program: String,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub port: u16,
}

struct Dirs {
    root: PathBuf,
}

impl Dirs {
    fn open(root: &Path) -> anyhow::Result<Self> {
        for sub in ["pids", "specs", "logs", "nginx"] {
            std::fs::create_dir_all(root.join(sub)).with_context(|| {
                format!("could not create the state directory {}", root.display())
            })?;
        }
        Ok(Self {
            root: root.to_owned(),
        })
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
    fn pg(&self) -> PathBuf {
        self.root.join("pg")
    }
    fn pid(&self, inst: &str) -> Option<u32> {
        std::fs::read_to_string(self.pid_file(inst))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
    fn running(&self, inst: &str) -> Option<u32> {
        self.pid(inst).filter(|&p| process::alive(p))
    }
    fn spec(&self, inst: &str) -> Option<Spec> {
        serde_json::from_str(&std::fs::read_to_string(self.spec_file(inst)).ok()?).ok()
    }
    /// Instances with a pid file, whether or not they are still alive.
    fn known(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.root.join("pids"))
            .map(|d| {
                d.filter_map(|e| {
                    e.ok()?
                        .file_name()
                        .to_str()?
                        .strip_suffix(".pid")
                        .map(str::to_owned)
                })
                .collect()
            })
            .unwrap_or_default();
        v.sort_by_key(|i| stop_rank(self.spec(i).map(|s| s.role)));
        v
    }
}

/// Stop order: gateway first, databases last.
fn stop_rank(role: Option<Role>) -> u8 {
    match role {
        Some(Role::Gateway) => 0,
        Some(Role::Service) | None => 1,
        Some(Role::Sink) | Some(Role::Collector) | Some(Role::Jaeger) => 2,
        Some(Role::Redis) => 3,
        Some(Role::Postgres) => 4,
    }
}

fn need(name: &str, package: &str) -> anyhow::Result<PathBuf> {
    process::find_program(name, &["/usr/sbin", "/usr/local/sbin"]).ok_or_else(|| {
        anyhow::anyhow!("`{name}` is not installed; install it with `apt-get install {package}` (or run ./dev.sh up, which does)")
    })
}

fn service_binary(name: &str) -> anyhow::Result<PathBuf> {
    process::find_program(name, &[]).ok_or_else(|| {
        anyhow::anyhow!("cannot find the `{name}` service binary next to socialctl or on PATH; build it with `cargo build --release -p {name}`")
    })
}

fn spec_for(c: &Component, replica: u32, cfg: &StackConfig, dirs: &Dirs) -> anyhow::Result<Spec> {
    let port = if c.role == Role::Service {
        stack::service_port(cfg, c.name, replica)
    } else {
        c.port
    };
    let (program, args, env) = match c.role {
        Role::Collector | Role::Jaeger => anyhow::bail!(
            "{} runs only in official-image mode, which needs the Docker runtime",
            c.name
        ),
        Role::Postgres => {
            let bin = process::postgres_bin_dir().ok_or_else(|| {
                anyhow::anyhow!("PostgreSQL is not installed; install it with `apt-get install postgresql postgresql-contrib`")
            })?;
            (
                bin.display().to_string(),
                vec![port.to_string()],
                BTreeMap::new(),
            )
        }
        Role::Redis => (
            need("redis-server", "redis-server")?.display().to_string(),
            [
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ]
            .map(String::from)
            .to_vec(),
            BTreeMap::new(),
        ),
        Role::Sink => (
            std::env::current_exe()
                .context("cannot locate the socialctl executable")?
                .display()
                .to_string(),
            vec![
                "sink".into(),
                "--grpc".into(),
                format!("127.0.0.1:{}", cfg.otlp_grpc_port),
                "--http".into(),
                format!("127.0.0.1:{port}"),
            ],
            BTreeMap::new(),
        ),
        Role::Service => (
            service_binary(c.name)?.display().to_string(),
            Vec::new(),
            stack::service_env(cfg, c.name, replica),
        ),
        Role::Gateway => {
            let nginx = need("nginx", "nginx-light")?;
            let dir = dirs.root.join("nginx");
            let conf = dir.join("nginx.conf");
            (
                nginx.display().to_string(),
                vec![
                    "-p".into(),
                    dir.display().to_string(),
                    "-c".into(),
                    conf.display().to_string(),
                    "-g".into(),
                    "daemon off;".into(),
                ],
                BTreeMap::from([("GATEWAY_CONF".to_owned(), stack::gateway_conf(cfg))]),
            )
        }
    };
    Ok(Spec {
        role: c.role,
        program,
        args,
        env,
        port,
    })
}

fn as_postgres(program: PathBuf) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn start(inst: &str, spec: &Spec, dirs: &Dirs) -> anyhow::Result<u32> {
    let log = dirs.log(inst);
    match spec.role {
        Role::Postgres => start_postgres(spec, dirs, &log),
        Role::Gateway => {
            let dir = dirs.root.join("nginx");
            for sub in ["logs", "tmp"] {
                std::fs::create_dir_all(dir.join(sub))?;
            }
            let d = dir.display();
            let conf = format!(
                "worker_processes 2;\nerror_log {d}/logs/error.log warn;\npid {d}/nginx.pid;\nevents {{ worker_connections 4096; }}\n\
                 http {{\n  access_log off;\n  client_body_temp_path {d}/tmp/body;\n  proxy_temp_path {d}/tmp/proxy;\n  \
                 fastcgi_temp_path {d}/tmp/fcgi;\n  uwsgi_temp_path {d}/tmp/uwsgi;\n  scgi_temp_path {d}/tmp/scgi;\n{}\n}}\n",
                spec.env["GATEWAY_CONF"]
            );
            std::fs::write(dir.join("nginx.conf"), conf)?;
            let mut cmd = Command::new(&spec.program);
            cmd.args(&spec.args);
            process::spawn_detached(cmd, &log)
        }
        _ => {
            let mut cmd = Command::new(&spec.program);
            cmd.args(&spec.args).envs(&spec.env);
            process::spawn_detached(cmd, &log)
        }
    }
}

fn start_postgres(spec: &Spec, dirs: &Dirs, log: &Path) -> anyhow::Result<u32> {
    let bin = PathBuf::from(&spec.program);
    let data = dirs.pg();
    if !data.join("PG_VERSION").exists() {
        std::fs::create_dir_all(&data)?;
        if is_root() {
            chown_postgres(&data)?;
        }
        let out = as_postgres(bin.join("initdb"))
            .args([
                "-D",
                &data.display().to_string(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            ])
            .output()
            .context("could not run initdb")?;
        if !out.status.success() {
            bail!("initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
    std::fs::File::create(log)?;
    if is_root() {
        chown_postgres(log)?;
    }
    let opts = format!(
        "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=400 -c shared_buffers=256MB -c synchronous_commit=off",
        spec.port,
        data.display()
    );
    let out = as_postgres(bin.join("pg_ctl"))
        .args([
            "-D",
            &data.display().to_string(),
            "-l",
            &log.display().to_string(),
            "-w",
            "-t",
            "60",
            "-o",
            &opts,
            "start",
        ])
        .output()
        .context("could not run pg_ctl")?;
    if !out.status.success() {
        bail!(
            "PostgreSQL did not start: {}\n{}",
            String::from_utf8_lossy(&out.stderr).trim(),
            process::tail(log, 15)
        );
    }
    let pid = std::fs::read_to_string(data.join("postmaster.pid"))?
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .context("postmaster.pid has no pid")?;
    Ok(pid)
}

fn chown_postgres(path: &Path) -> anyhow::Result<()> {
    let ok = Command::new("chown")
        .arg("postgres:")
        .arg(path)
        .status()
        .context("could not run chown")?
        .success();
    if !ok {
        bail!(
            "could not give {} to the postgres user (does the user exist? install postgresql)",
            path.display()
        );
    }
    Ok(())
}

fn stop_instance(inst: &str, dirs: &Dirs) -> anyhow::Result<()> {
    let spec = dirs.spec(inst);
    if let Some(pid) = dirs.running(inst) {
        match spec.as_ref().map(|s| s.role) {
            Some(Role::Postgres) => {
                let bin = PathBuf::from(&spec.as_ref().expect("matched Some").program);
                let _ = as_postgres(bin.join("pg_ctl"))
                    .args([
                        "-D",
                        &dirs.pg().display().to_string(),
                        "-m",
                        "fast",
                        "-w",
                        "stop",
                    ])
                    .output();
                process::stop(pid, "TERM", Duration::from_secs(10))?;
            }
            // QUIT lets NGINX finish in-flight requests and take its workers down with it.
            Some(Role::Gateway) => process::stop(pid, "QUIT", Duration::from_secs(10))?,
            _ => process::stop(pid, "TERM", Duration::from_secs(15))?,
        }
    }
    let _ = std::fs::remove_file(dirs.pid_file(inst));
    Ok(())
}

/// Probes one instance's health once.
pub async fn healthy(spec: &Spec, gateway_port: u16) -> bool {
    let http = |url: String| async move {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .ok();
        match client {
            Some(c) => c
                .get(url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success()),
            None => false,
        }
    };
    match spec.role {
        Role::Postgres | Role::Redis => tokio::net::TcpStream::connect(("127.0.0.1", spec.port))
            .await
            .is_ok(),
        Role::Sink => http(format!("http://127.0.0.1:{}/healthz", spec.port)).await,
        Role::Service => http(format!("http://127.0.0.1:{}/readyz", spec.port)).await,
        Role::Gateway => http(format!("http://127.0.0.1:{gateway_port}/healthz")).await,
        // Never started by this runtime (official-image mode is Docker-only).
        Role::Collector | Role::Jaeger => false,
    }
}

fn port_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// `/metrics` URLs of every running service instance (for drain detection).
pub fn metrics_urls(args: &StackArgs) -> Vec<(String, String)> {
    let Ok(dirs) = Dirs::open(&args.state_dir) else {
        return Vec::new();
    };
    dirs.known()
        .into_iter()
        .filter(|i| dirs.running(i).is_some())
        .filter_map(|i| {
            let spec = dirs.spec(&i)?;
            (spec.role == Role::Service)
                .then(|| (i.clone(), format!("http://127.0.0.1:{}/metrics", spec.port)))
        })
        .collect()
}

pub async fn up_with(args: &StackArgs, cfg: &StackConfig) -> anyhow::Result<()> {
    if cfg.images == stack::ImageMode::Official {
        anyhow::bail!(
            "--images official needs the Docker runtime (the local runtime runs host binaries); drop --images or use --runtime docker"
        );
    }
    let dirs = Dirs::open(&args.state_dir)?;
    let t0 = Instant::now();
    println!(
        "socialctl up: local runtime (host processes on 127.0.0.1), state in {}",
        dirs.root.display()
    );
    let mut wanted = Vec::new();
    for c in stack::components(cfg) {
        for r in 0..c.replicas {
            wanted.push((
                stack::instance_name(c.name, r),
                spec_for(&c, r, cfg, &dirs)?,
            ));
        }
    }
    // Replicas no longer wanted (scaled down) go first.
    for inst in dirs.known() {
        if !wanted.iter().any(|(w, _)| *w == inst) {
            println!("  {inst:<12} removing (no longer in the stack)");
            stop_instance(&inst, &dirs)?;
        }
    }
    let mut changed = 0;
    for (inst, spec) in &wanted {
        let running = dirs.running(inst);
        if running.is_some() && dirs.spec(inst).as_ref() == Some(spec) {
            println!("  {inst:<12} unchanged");
            continue;
        }
        if running.is_some() {
            println!("  {inst:<12} settings changed: recreating");
            stop_instance(inst, &dirs)?;
        } else if spec.role != Role::Postgres && !port_free(spec.port) {
            bail!(
                "port {} (for {inst}) is taken by another program; stop it, or pick other ports (e.g. --gateway-port)",
                spec.port
            );
        }
        let line = crate::progress::Line::start(inst, "starting");
        let pid = match start(inst, spec, &dirs) {
            Ok(pid) => pid,
            Err(e) => {
                line.fail("failed to start");
                return Err(e);
            }
        };
        std::fs::write(dirs.pid_file(inst), pid.to_string())?;
        std::fs::write(dirs.spec_file(inst), serde_json::to_string_pretty(spec)?)?;
        line.set("waiting for health");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !healthy(spec, cfg.gateway_port).await {
            let why = if !process::alive(pid) {
                Some("exited during start-up")
            } else if Instant::now() > deadline {
                Some("did not become healthy within 60 s")
            } else {
                None
            };
            if let Some(why) = why {
                line.fail(why);
                bail!(
                    "{inst} {why}; its last log lines:\n{}",
                    process::tail(&dirs.log(inst), 20)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        line.finish("healthy");
        changed += 1;
    }
    stack::print_up_summary(cfg, changed, t0.elapsed());
    Ok(())
}

/// `socialctl down`.
pub async fn down(args: &StackArgs, volumes: bool) -> anyhow::Result<()> {
    let dirs = Dirs::open(&args.state_dir)?;
    let known = dirs.known();
    if known.is_empty() {
        println!("nothing is running from {}", dirs.root.display());
    }
    for inst in known {
        print!("  {inst:<12} stopping … ");
        stop_instance(&inst, &dirs)?;
        println!("stopped");
    }
    if volumes {
        std::fs::remove_dir_all(&dirs.root)
            .with_context(|| format!("could not delete {}", dirs.root.display()))?;
        println!("deleted {} (database, logs)", dirs.root.display());
    }
    Ok(())
}

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

/// The status of every instance socialctl started.
pub async fn collect_status(args: &StackArgs) -> anyhow::Result<Vec<InstanceStatus>> {
    let dirs = Dirs::open(&args.state_dir)?;
    let gateway_port = dirs.spec("gateway").map(|s| s.port).unwrap_or(8080);
    let mut out = Vec::new();
    let mut known = dirs.known();
    known.reverse();
    for inst in known {
        let pid = dirs.running(&inst);
        let spec = dirs.spec(&inst);
        let health = match (&spec, pid) {
            (Some(s), Some(_)) => {
                if healthy(s, gateway_port).await {
                    "healthy"
                } else {
                    "unhealthy"
                }
            }
            _ => "-",
        };
        let uptime = std::fs::metadata(dirs.pid_file(&inst))
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok());
        out.push(InstanceStatus {
            name: inst,
            state: if pid.is_some() { "running" } else { "exited" },
            health,
            pid,
            uptime_secs: pid.and(uptime.map(|u| u.as_secs())),
            memory_bytes: pid.and_then(process::rss_bytes),
            cpu_seconds: pid.and_then(process::cpu_seconds),
            restarts: None,
        });
    }
    Ok(out)
}

/// Whether the local runtime has anything running from this state directory.
pub fn has_instances(args: &StackArgs) -> bool {
    Dirs::open(&args.state_dir)
        .map(|d| d.known().iter().any(|i| d.running(i).is_some()))
        .unwrap_or(false)
}

/// Prints `socialctl status` for either runtime.
pub fn print_status(rows: &[InstanceStatus], json: bool, runtime: &str) -> anyhow::Result<()> {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "runtime": runtime, "components": rows })
            )?
        );
        return Ok(());
    }
    if rows.is_empty() {
        println!("nothing is running; start the stack with `socialctl up`");
        return Ok(());
    }
    println!(
        "{:<12} {:<8} {:<10} {:>8} {:>9} {:>10} {:>8} {:>8}",
        "COMPONENT", "STATE", "HEALTH", "PID", "UPTIME", "MEMORY", "CPU s", "RESTARTS"
    );
    let dash = || "-".to_owned();
    for r in rows {
        println!(
            "{:<12} {:<8} {:<10} {:>8} {:>9} {:>10} {:>8} {:>8}",
            r.name,
            r.state,
            r.health,
            r.pid.map(|p| p.to_string()).unwrap_or_else(dash),
            r.uptime_secs
                .map(|s| format!("{}m{:02}s", s / 60, s % 60))
                .unwrap_or_else(dash),
            r.memory_bytes
                .map(|b| format!("{:.1} MiB", b as f64 / 1048576.0))
                .unwrap_or_else(dash),
            r.cpu_seconds
                .map(|c| format!("{c:.1}"))
                .unwrap_or_else(dash),
            r.restarts.map(|c| c.to_string()).unwrap_or_else(dash),
        );
    }
    Ok(())
}

/// `socialctl logs`.
pub async fn logs(a: &LogsArgs) -> anyhow::Result<()> {
    let dirs = Dirs::open(&a.stack.state_dir)?;
    let path = dirs.log(&a.component);
    if !path.exists() {
        let known = dirs.known().join(", ");
        bail!(
            "no log for {:?}; components: {}",
            a.component,
            if known.is_empty() {
                "none (is the stack up?)".into()
            } else {
                known
            }
        );
    }
    print!("{}", process::tail(&path, a.tail));
    println!();
    if !a.follow {
        return Ok(());
    }
    let mut offset = std::fs::metadata(&path)?.len();
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            () = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
        let len = std::fs::metadata(&path)?.len();
        if len > offset {
            use std::io::{Read, Seek, SeekFrom, Write};
            let mut f = std::fs::File::open(&path)?;
            f.seek(SeekFrom::Start(offset))?;
            let mut buf = Vec::new();
            f.read_to_end(&mut buf)?;
            std::io::stdout().write_all(&buf)?;
            offset = len;
        } else if len < offset {
            offset = 0;
        }
    }
}
