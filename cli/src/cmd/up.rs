//! `socialctl up`: start the stack (or some of its components) on a runtime,
//! health-gated, in table order; record its addresses for the other verbs.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Instant;

use crate::runtime::{AnyRuntime, Runtime as _};
use crate::stack::state::StackState;
use crate::stack::{self, ImageMode, Stack, StackConfig};

/// Which images the Docker runtime uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImagesChoice {
    /// Official images when a registry answers, else local ones.
    Auto,
    /// Everything built here from a debootstrap base: works offline.
    Local,
    /// Pinned official images plus the OpenTelemetry Collector and Jaeger (needs a
    /// registry).
    Official,
}

#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = "\
Examples:
  socialctl up                                   the whole stack, Docker when an engine answers
  socialctl up --runtime local --scale feed=2    host processes, two feed replicas
  socialctl up --gateway-port 18080 --project demo   a second stack beside the first
  socialctl up --only postgres,redis --ephemeral     just the databases (what ./dev.sh test uses)
  socialctl up --external feed=127.0.0.1:9000    route to a feed you run yourself (e.g. in a debugger)
  socialctl up --fault-proxy                     network faults: `socialctl chaos latency feed postgres`

Every later verb (load, top, seed, traces, verify-traces, bench) finds this stack through
its state directory, so ports moved here need no flags there.")]
pub struct UpArgs {
    #[command(flatten)]
    pub stack: super::StackArgs,
    /// Gateway port on 127.0.0.1.
    #[arg(long)]
    pub gateway_port: Option<u16>,
    /// PostgreSQL port on 127.0.0.1 [default: 15432, so a system PostgreSQL keeps 5432].
    #[arg(long)]
    pub postgres_port: Option<u16>,
    /// Redis port on 127.0.0.1 [default: 16379].
    #[arg(long)]
    pub redis_port: Option<u16>,
    /// OTLP/gRPC port of the sink [default: 4317].
    #[arg(long)]
    pub otlp_grpc_port: Option<u16>,
    /// OTLP/HTTP port of the sink, also its query API [default: 4318].
    #[arg(long)]
    pub otlp_http_port: Option<u16>,
    /// First service port on the local runtime; every service's port moves with it
    /// (replicas add 100), and so does the object store's (base + 9).
    #[arg(long, default_value_t = stack::DEFAULT_SERVICE_BASE)]
    pub service_base_port: u16,
    /// Jaeger's UI port on 127.0.0.1 (official images only) [default: 16686].
    #[arg(long)]
    pub jaeger_ui_port: Option<u16>,
    /// Replicas of a service, e.g. `--scale feed=3` (repeatable).
    #[arg(long, value_parser = stack::parse_scale)]
    pub scale: Vec<(String, u32)>,
    /// Extra environment for every service, e.g. `--env RUST_LOG=debug` (repeatable).
    #[arg(long, value_parser = stack::parse_env)]
    pub env: Vec<(String, String)>,
    /// Docker images: `official` (pinned official images plus the OpenTelemetry
    /// Collector and Jaeger; needs a registry), `local` (everything built here,
    /// offline), or `auto` (official when a registry answers).
    #[arg(long, value_enum, default_value_t = ImagesChoice::Auto)]
    pub images: ImagesChoice,
    /// Start only these components (comma-separated); the others are left as they are.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// A component that runs elsewhere, `NAME=HOST:PORT`: routed to, never started
    /// (repeatable).
    #[arg(long, value_parser = stack::parse_external)]
    pub external: Vec<(String, String)>,
    /// A throwaway stack (tests, demos): PostgreSQL skips flushing to disk, so a crash
    /// can lose its data.
    #[arg(long)]
    pub ephemeral: bool,
    /// For a workshop room: auth also offers its built-in OAuth identity provider, so
    /// the login redirect dance works offline. It signs anyone in as anyone: never use
    /// this on a machine others can reach.
    #[arg(long)]
    pub workshop: bool,
    /// Put the fault-injecting proxy on every path between components (services to
    /// PostgreSQL, Redis, the object store and each other; the gateway to each replica),
    /// so `socialctl chaos latency|loss|bandwidth|timeout|reset|partition` can act on
    /// them. Each hop then costs a copy through the proxy; `--workshop` turns it on.
    #[arg(long)]
    pub fault_proxy: bool,
    /// The fault proxy's control port on 127.0.0.1; its links listen on the ports after
    /// it [default: 8474].
    #[arg(long)]
    pub fault_proxy_port: Option<u16>,
    /// Print the recorded state (runtime, addresses) as JSON at the end.
    #[arg(long)]
    pub json: bool,
}

impl UpArgs {
    /// The stack settings these flags describe (`auto` images count as local here;
    /// `up` decides once it knows whether a registry answers).
    pub fn config(&self) -> StackConfig {
        let mut ports = BTreeMap::new();
        for (key, v) in [
            ("gateway", self.gateway_port),
            ("postgres", self.postgres_port),
            ("redis", self.redis_port),
            ("sink", self.otlp_http_port),
            ("sink.grpc", self.otlp_grpc_port),
            ("jaeger", self.jaeger_ui_port),
            ("chaosproxy", self.fault_proxy_port),
        ] {
            if let Some(p) = v {
                ports.insert(key.to_owned(), p);
            }
        }
        StackConfig {
            ports,
            service_base_port: self.service_base_port,
            scale: self.scale.iter().cloned().collect(),
            env: self.env.iter().cloned().collect(),
            images: if self.images == ImagesChoice::Official {
                ImageMode::Official
            } else {
                ImageMode::Local
            },
            ephemeral: self.ephemeral,
            workshop: self.workshop,
            fault_proxy: self.fault_proxy || self.workshop,
            only: self.only.iter().cloned().collect(),
            external: self.external.iter().cloned().collect(),
            // `up` fills in the project's own; see `stack::secrets`.
            secrets: Default::default(),
        }
    }
}

pub async fn run(a: &UpArgs) -> anyhow::Result<ExitCode> {
    if a.json {
        crate::runtime::progress::to_stderr();
    }
    let up = async {
        let target = a.stack.target();
        let mut rt = target.for_up().await?;
        let mut cfg = a.config();
        cfg.secrets = crate::stack::secrets::Secrets::load_or_create(&target.dir)?;
        match &mut rt {
            AnyRuntime::Docker(d) if a.images == ImagesChoice::Auto => {
                // One registry probe decides `auto` and, when it fails, says why images
                // are built here.
                match crate::runtime::images::registry_probe(d.engine()).await {
                    Ok(()) => cfg.images = ImageMode::Official,
                    Err(why) => d.registry_note = Some(why),
                }
            }
            AnyRuntime::Local(_) if cfg.images == ImageMode::Official => anyhow::bail!(
                "--images official needs the Docker runtime (the local runtime runs host binaries); drop --images or use --runtime docker"
            ),
            _ => {}
        }
        let stack = Stack::new(cfg);
        stack.validate().map_err(anyhow::Error::msg)?;
        if stack.cfg.workshop {
            crate::say!(
                "WORKSHOP MODE: auth's built-in identity provider signs anyone in as any user, \
                 with no password. Use this stack only in a closed room; `socialctl up` without \
                 --workshop turns it off."
            );
        }
        let t0 = Instant::now();
        let changed = rt.up(&stack).await?;
        let state = crate::runtime::record(&rt, &stack, &target.dir, &a.stack.project).await?;
        if a.json {
            println!("{}", serde_json::to_string_pretty(&state)?);
        } else {
            print_summary(&state, &stack, changed, t0.elapsed());
        }
        anyhow::Ok(())
    };
    // Ctrl-C stops between steps: what already started keeps running, and `status`
    // shows it.
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

/// What `up` prints last on either runtime: what changed, and the URLs a learner needs.
fn print_summary(state: &StackState, stack: &Stack, changed: usize, elapsed: std::time::Duration) {
    if changed == 0 {
        println!("nothing to do: the stack is already up with these settings");
    } else {
        println!("all healthy in {:.1} s", elapsed.as_secs_f64());
    }
    let started: Vec<String> = stack.instances().into_iter().map(|i| i.name).collect();
    let has = |name: &str| started.iter().any(|s| s == name);
    let a = &state.addresses;
    println!();
    if has("gateway") {
        if has("web") {
            println!(
                "  web          {}/  (sign in or register in a browser)",
                a.gateway
            );
        }
        println!("  gateway      {}/api/", a.gateway);
    }
    if has("sink") {
        println!("  OTLP         grpc {}  http {}", a.otlp_grpc, a.otlp_http);
        println!("  traces       {}/api/traces", a.otlp_http);
    }
    if !stack.cfg.only.is_empty() {
        if has("postgres") {
            println!("  PostgreSQL   {}", a.postgres);
        }
        if has("redis") {
            println!("  Redis        {}", a.redis);
        }
    }
    if let Some(ui) = &a.jaeger_ui {
        println!("  Jaeger UI    {ui} (the Collector sends every span to Jaeger and to the sink)");
    }
    let project = if state.project == "socialnet" {
        String::new()
    } else {
        format!(" --project {}", state.project)
    };
    println!("  stop with    socialctl down{project}");
}
