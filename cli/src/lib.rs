//! socialctl boots, drives and checks the socialnet stack.
//!
//! Exit codes: **0** success; **1** a check fell short (a benchmark or verification goal);
//! **2** usage or runtime error (the message says what went wrong and what to do).

pub mod bench;
pub mod bench_sink;
pub mod compose;
pub mod dashboard;
pub mod docker;
pub mod images;
pub mod load;
pub mod local;
pub mod process;
pub mod progress;
pub mod seed;
pub mod stack;
pub mod top;
pub mod verify_cmd;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Boot, drive, break and verify socialnet, a small social network built to teach
/// distributed tracing.
#[derive(Debug, Parser)]
#[command(name = "socialctl", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the whole stack and wait until every component is healthy.
    ///
    /// Idempotent: components already running with the same settings are left alone.
    Up(UpArgs),
    /// Stop every component socialctl started (data is kept unless --volumes).
    Down(DownArgs),
    /// Show each component's state, health, pid, uptime and memory.
    Status(StatusArgs),
    /// Print a component's log (`-f` to follow).
    Logs(LogsArgs),
    /// Run the OTLP trace sink on its own (gRPC and HTTP receivers plus query API).
    Sink(SinkArgs),
    /// Fill the running stack's databases with a realistic data set.
    Seed(seed::SeedArgs),
    /// Drive the running stack with a social network's day: users who sign in, read
    /// timelines, view profiles, search, follow, post, like and comment.
    ///
    /// Every request starts its trace here (a CLIENT span sent as traceparent) and is
    /// recorded with its trace id, so `verify-traces --sent` accounts for each one. On a
    /// terminal a live view shows throughput, latency, errors, components and trace
    /// completeness (q quits, p pauses); elsewhere, progress lines. Ends with a
    /// per-endpoint report; exit 1 when a threshold is not met.
    Load(Box<load::LoadArgs>),
    /// Watch the running stack: component health, traffic and trace completeness (no load).
    Top(top::TopArgs),
    /// Benchmark GET /api/feed/timeline through the gateway, tracing on vs off.
    Bench(bench::BenchArgs),
    /// Benchmark the sink: OTLP ingest rate (HTTP, gRPC), verification time, memory per span.
    BenchSink(bench_sink::BenchSinkArgs),
    /// Check that every trace in the sink (or Jaeger, or a file) arrived whole.
    ///
    /// Waits until the services' span queues are drained, then checks each trace: one
    /// root, no orphans, client/server pairs, timing, ends, error propagation, required
    /// attributes, and the endpoint's expected spans (trace specs). Exit 0 at or above
    /// --min-completeness, 1 below, 2 on error.
    VerifyTraces(verify_cmd::VerifyArgs),
    /// Show recent traces (or one trace) from the sink as trees.
    Traces(verify_cmd::TracesArgs),
    /// Build, export or import the stack's images (offline workshop rooms).
    #[command(subcommand)]
    Images(images::ImagesCommand),
    /// Print the stack as a Compose file (what compose/docker-compose.yml holds).
    Compose(UpArgs),
    /// Exit 0 when URL answers 2xx within 2 s (the containers' health check).
    #[command(hide = true)]
    Probe { url: String },
}

/// Options every stack command shares.
#[derive(Debug, Clone, clap::Args)]
pub struct StackArgs {
    /// Where the local runtime keeps data, logs and pid files.
    #[arg(long, env = "SOCIALNET_STATE_DIR", default_value_os_t = local::default_state_dir())]
    pub state_dir: PathBuf,
    /// Runtime: `docker` (containers), `local` (host processes on loopback), or `auto`
    /// (Docker when an engine answers, else local).
    #[arg(long, env = "SOCIALNET_RUNTIME", default_value = "auto", value_parser = ["auto", "docker", "local"])]
    pub runtime: String,
    /// Docker project name: prefixes containers, the network and the volume, and labels
    /// everything socialctl creates.
    #[arg(long, default_value = "socialnet")]
    pub project: String,
}

#[derive(Debug, Clone, clap::Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub stack: StackArgs,
    /// Gateway port on 127.0.0.1.
    #[arg(long, default_value_t = 8080)]
    pub gateway_port: u16,
    /// PostgreSQL port on 127.0.0.1 (not 5432, so a system PostgreSQL can keep it).
    #[arg(long, default_value_t = 15432)]
    pub postgres_port: u16,
    /// Redis port on 127.0.0.1.
    #[arg(long, default_value_t = 16379)]
    pub redis_port: u16,
    /// OTLP/gRPC port of the sink.
    #[arg(long, default_value_t = 4317)]
    pub otlp_grpc_port: u16,
    /// OTLP/HTTP port of the sink (also its query API).
    #[arg(long, default_value_t = 4318)]
    pub otlp_http_port: u16,
    /// First service port: auth, then profile, then feed (replicas add 100).
    #[arg(long, default_value_t = 8081)]
    pub service_base_port: u16,
    /// Replicas of a service, e.g. `--scale feed=3` (repeatable).
    #[arg(long, value_parser = stack::parse_scale)]
    pub scale: Vec<(String, u32)>,
    /// Extra environment for every service, e.g. `--env RUST_LOG=debug` (repeatable).
    #[arg(long, value_parser = stack::parse_env)]
    pub env: Vec<(String, String)>,
    /// Docker images: `official` (pinned official images plus the OpenTelemetry
    /// Collector and Jaeger; needs a registry), `local` (everything built here, offline),
    /// or `auto` (official when a registry answers).
    #[arg(long, default_value = "auto", value_parser = ["auto", "local", "official"])]
    pub images: String,
    /// Jaeger's UI port on 127.0.0.1 (official images only).
    #[arg(long, default_value_t = 16686)]
    pub jaeger_ui_port: u16,
}

#[derive(Debug, Clone, clap::Args)]
pub struct DownArgs {
    #[command(flatten)]
    pub stack: StackArgs,
    /// Also delete the database and logs.
    #[arg(long)]
    pub volumes: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub stack: StackArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct LogsArgs {
    #[command(flatten)]
    pub stack: StackArgs,
    /// Component name, e.g. `feed` or `feed-2` for a replica (see `socialctl status`).
    pub component: String,
    /// Keep printing new lines as they are written.
    #[arg(short, long)]
    pub follow: bool,
    /// Lines of history to print first.
    #[arg(long, default_value_t = 100)]
    pub tail: usize,
}

#[derive(Debug, Clone, clap::Args)]
pub struct SinkArgs {
    /// OTLP/gRPC listen address.
    #[arg(long, default_value = "127.0.0.1:4317")]
    pub grpc: SocketAddr,
    /// OTLP/HTTP listen address (also serves the query API under /api/).
    #[arg(long, default_value = "127.0.0.1:4318")]
    pub http: SocketAddr,
    /// Most spans kept in memory; the oldest traces are evicted (and counted) past it.
    #[arg(long, default_value_t = 2_000_000)]
    pub max_spans: usize,
}

/// Parses arguments, runs the command, maps the result to an exit code.
pub fn main() -> ExitCode {
    quiet_on_closed_pipe();
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// `socialctl status | head` closes the pipe early; `println!` then panics. A reader
/// that stopped reading is not an error, so exit quietly as other Unix tools do.
fn quiet_on_closed_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.contains("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Up(a) => {
            let cfg = a.config();
            let up = async {
                match runtime_for_up(&a.stack).await {
                    Runtime::Docker => docker::up(&a.stack.project, &cfg, a.images == "auto").await,
                    Runtime::Local => local::up_with(&a.stack, &cfg).await,
                }
            };
            // Ctrl-C stops between steps: what already started keeps running, and
            // `status` shows it.
            tokio::select! {
                r = up => r.map(|_| ExitCode::SUCCESS),
                _ = tokio::signal::ctrl_c() => {
                    eprintln!(
                        "\nup interrupted: components already started keep running. \
                         `socialctl status` shows them; `socialctl up` finishes the job, `socialctl down` removes them."
                    );
                    Ok(ExitCode::from(130))
                }
            }
        }
        Command::Down(a) => match runtime_in_use(&a.stack).await {
            Runtime::Docker => docker::down(&a.stack.project, a.volumes).await,
            Runtime::Local => local::down(&a.stack, a.volumes).await,
        }
        .map(|_| ExitCode::SUCCESS),
        Command::Status(a) => {
            let (rows, name) = component_status(&a.stack).await?;
            local::print_status(&rows, a.json, name)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Logs(a) => match runtime_in_use(&a.stack).await {
            Runtime::Docker => docker::logs(&a.stack.project, &a.component, a.follow, a.tail).await,
            Runtime::Local => local::logs(&a).await,
        }
        .map(|_| ExitCode::SUCCESS),
        Command::Images(c) => images::run(&c).await.map(|_| ExitCode::SUCCESS),
        Command::Compose(a) => {
            print!("{}", compose::render(&a.config()));
            Ok(ExitCode::SUCCESS)
        }
        Command::Probe { url } => {
            let client = reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(2))
                .build()?;
            Ok(match client.get(&url).send().await {
                Ok(r) if r.status().is_success() => ExitCode::SUCCESS,
                _ => ExitCode::from(1),
            })
        }
        Command::Sink(a) => sink(a).await.map(|_| ExitCode::SUCCESS),
        Command::Seed(a) => seed::run(&a).await.map(|_| ExitCode::SUCCESS),
        Command::Load(a) => load::run(&a).await,
        Command::Top(a) => top::run(&a).await,
        Command::Bench(a) => bench::run(&a).await,
        Command::BenchSink(a) => bench_sink::run(&a).await,
        Command::VerifyTraces(a) => verify_cmd::verify_traces(&a).await,
        Command::Traces(a) => verify_cmd::traces(&a).await.map(|_| ExitCode::SUCCESS),
    }
}

/// Every component's status, from whichever runtime runs the stack, and its name.
pub async fn component_status(
    stack: &StackArgs,
) -> anyhow::Result<(Vec<local::InstanceStatus>, &'static str)> {
    Ok(match runtime_in_use(stack).await {
        Runtime::Docker => (docker::status(&stack.project).await?, "docker"),
        Runtime::Local => (local::collect_status(stack).await?, "local"),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Runtime {
    Docker,
    Local,
}

async fn runtime_for_up(a: &StackArgs) -> Runtime {
    match a.runtime.as_str() {
        "docker" => Runtime::Docker,
        "local" => Runtime::Local,
        _ if docker::available().await => Runtime::Docker,
        _ => {
            println!("no Docker engine answers: using the local runtime (host processes)");
            Runtime::Local
        }
    }
}

/// For down/status/logs with `auto`: whichever runtime has something running.
async fn runtime_in_use(a: &StackArgs) -> Runtime {
    match a.runtime.as_str() {
        "docker" => Runtime::Docker,
        "local" => Runtime::Local,
        _ if local::has_instances(a) => Runtime::Local,
        _ if docker::available().await => Runtime::Docker,
        _ => Runtime::Local,
    }
}

impl UpArgs {
    /// The stack settings these flags describe.
    pub fn config(&self) -> stack::StackConfig {
        let mut cfg = stack::StackConfig {
            gateway_port: self.gateway_port,
            postgres_port: self.postgres_port,
            redis_port: self.redis_port,
            otlp_grpc_port: self.otlp_grpc_port,
            otlp_http_port: self.otlp_http_port,
            service_base_port: self.service_base_port,
            images: if self.images == "official" {
                stack::ImageMode::Official
            } else {
                stack::ImageMode::Local
            },
            jaeger_ui_port: self.jaeger_ui_port,
            ..Default::default()
        };
        cfg.scale.extend(self.scale.iter().cloned());
        cfg.env.extend(self.env.iter().cloned());
        cfg
    }
}

async fn sink(a: SinkArgs) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let store = std::sync::Arc::new(verify::SpanStore::new(a.max_spans));
    eprintln!(
        "sink: OTLP/gRPC on {}, OTLP/HTTP and query API on http://{}",
        a.grpc, a.http
    );
    verify::sink::serve(store, a.grpc, a.http, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
    .with_context(|| {
        format!(
            "the sink could not listen on {} / {} (is another sink or collector running?)",
            a.grpc, a.http
        )
    })
}
