//! `socialctl chaos`: break a component on purpose, heal it by itself, and leave the
//! break in the traces.
//!
//! Application faults (`errors`, `slow`, `fail-calls`) are switched on at run time in
//! the service through its `/chaos/faults` operations endpoint (not routed by the
//! gateway); the spans they touch carry `chaos.injected=true` and a `chaos.fault` event.
//!
//! Process faults, on both runtimes through the runtime interface: `kill` (SIGKILL),
//! `stop` (its graceful stop signal), `pause` (frozen) each last `--duration` and are
//! healed by socialctl at its end (a killed or stopped instance is started again, a
//! paused one resumed); Ctrl-C heals at once, and so does `socialctl chaos heal` from
//! another terminal. `restart` is a fault of its own, with no duration.
//!
//! Network faults (`latency`, `bandwidth`, `loss`, `timeout`, `reset`, `partition`)
//! put a toxic on the links of the stack's fault proxy (`socialnet chaosproxy`, started
//! with `socialctl up --fault-proxy`) between a caller and a callee, and remove it when
//! they heal; the proxy's own spans (`chaosproxy <toxic>`) say which connections each
//! toxic acted on.
//!
//! Active faults are recorded in the stack's state directory (`chaos.json`), which is
//! what `chaos status` lists and `chaos heal` heals, so a fault outlives neither its
//! duration nor a lost terminal. Each fault window, when it ends, is sent to the sink as
//! one span of the service `socialctl.chaos` (`chaos.kind`, `chaos.target`,
//! `chaos.instances`, `chaos.healed_by`), from the fault's start to its healing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use chrono::{DateTime, Utc};

use crate::runtime::{AnyRuntime, Runtime as _};
#[cfg(test)]
use crate::stack::faults::journal;
pub use crate::stack::faults::{Fault, Kind, active, summary};
use crate::stack::faults::{save, take};
use crate::stack::{Signal, Stack};

#[derive(Debug, clap::Args)]
pub struct ChaosArgs {
    #[command(subcommand)]
    pub verb: Verb,
}

#[derive(Debug, clap::Subcommand)]
pub enum Verb {
    /// SIGKILL every process of the target; it is started again when the fault heals
    /// (Docker's restart policy may bring it back sooner: `chaos status` says so).
    Kill(FaultArgs),
    /// Stop the target gracefully (its own stop signal); started again when it heals.
    Stop(FaultArgs),
    /// Freeze the target (SIGSTOP on the local runtime, the cgroup freezer on Docker):
    /// it holds its connections and answers nothing until it heals.
    Pause(FaultArgs),
    /// Restart the target now (stop, start, wait until healthy).
    Restart(TargetArgs),
    /// Application fault: a share of the service's API requests answered 500
    /// `injected_fault` (their spans carry `chaos.injected=true`), switched on at run time.
    Errors(ErrorsArgs),
    /// Application fault: milliseconds added before the service handles each API request.
    Slow(SlowArgs),
    /// Application fault: the service's HTTP calls to another component fail as if it
    /// were unreachable (connection refused), inside their CLIENT spans.
    FailCalls(FailCallsArgs),
    /// Network fault: each chunk of data between FROM and TO waits `--ms` (± `--jitter`).
    Latency(LatencyArgs),
    /// Network fault: the bytes between FROM and TO are held to `--kib-per-s`.
    Bandwidth(BandwidthArgs),
    /// Network fault: FROM's connections to TO are lost: reset as they open, or at
    /// their next data when pooled (a share of them with `--toxicity 0.3`).
    Loss(NetArgs),
    /// Network fault: data between FROM and TO stops; connections are closed after
    /// `--ms` (0: held open, never answered).
    Timeout(TimeoutArgs),
    /// Network fault: FROM's connections to TO are cut with a TCP reset after
    /// `--after-ms`.
    Reset(ResetArgs),
    /// Network fault: A and B cannot reach each other (both ways); both stay up.
    Partition(PartitionArgs),
    /// Run a chaos experiment: check the steady state, run load with faults on a
    /// timeline, roll back, check again; exit 0 when it held, 1 when it deviated.
    Run(super::experiment::RunArgs),
    /// List the fault proxy's links (the paths network faults can act on), with their
    /// connections and toxics.
    Links(StackOnly),
    /// List the active faults and the time each has left.
    Status(StackOnly),
    /// Heal every active fault now.
    Heal(StackOnly),
}

#[derive(Debug, Clone, clap::Args)]
pub struct TargetArgs {
    #[command(flatten)]
    pub stack: super::StackArgs,
    /// A component (`feed`: every replica of it) or one replica (`feed#2`).
    pub target: String,
}

#[derive(Debug, Clone, clap::Args)]
pub struct FaultArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// How long the fault lasts before socialctl heals it.
    #[arg(long, default_value = "30s", value_parser = scenarios::workload::parse_duration)]
    pub duration: Duration,
    /// A command to run while the fault is on, after `--` (e.g. `-- curl -s URL`): the
    /// fault is put on first, heals as soon as the command exits (or at --duration),
    /// and socialctl fails when the command does.
    #[arg(last = true, value_name = "COMMAND")]
    pub during: Vec<String>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ErrorsArgs {
    #[command(flatten)]
    pub fault: FaultArgs,
    /// Share of requests to fail, from 0 to 1.
    #[arg(long, default_value_t = 0.3)]
    pub rate: f64,
    /// Only routes starting with this (e.g. `/api/feed/timeline`); all when absent.
    #[arg(long, default_value = "")]
    pub route: String,
}

#[derive(Debug, Clone, clap::Args)]
pub struct SlowArgs {
    #[command(flatten)]
    pub fault: FaultArgs,
    /// Milliseconds added to each request.
    #[arg(long, default_value_t = 300)]
    pub ms: u64,
    /// Only routes starting with this; all when absent.
    #[arg(long, default_value = "")]
    pub route: String,
}

#[derive(Debug, Clone, clap::Args)]
pub struct FailCallsArgs {
    #[command(flatten)]
    pub fault: FaultArgs,
    /// The component whose calls fail (e.g. `profile`, or `gateway` for calls made
    /// through it).
    #[arg(long)]
    pub to: String,
}

#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = "\
Paths (with `socialctl up --fault-proxy`; `socialctl chaos links` lists them):
  SERVICE postgres|redis|objects     a service's database, cache, object store
  SERVICE auth|profile|media         a service's calls to another service
  gateway SERVICE[#N]                the gateway to a service (or one replica)")]
pub struct NetArgs {
    #[command(flatten)]
    pub stack: super::StackArgs,
    /// The caller: a service, or `gateway`.
    pub from: String,
    /// The callee: `postgres`, `redis`, `objects`, a service, or one replica (`feed#2`).
    pub to: String,
    /// How long the fault lasts before socialctl heals it.
    #[arg(long, default_value = "30s", value_parser = scenarios::workload::parse_duration)]
    pub duration: Duration,
    /// Which bytes: `upstream` (FROM to TO), `downstream` (the answers), or `both`.
    #[arg(long, value_enum, default_value_t = StreamArg::Both)]
    pub stream: StreamArg,
    /// Share of connections it acts on, 0 to 1, decided per connection.
    #[arg(long, default_value_t = 1.0)]
    pub toxicity: f64,
    /// A command to run while the fault is on, after `--` (e.g. `-- curl -s URL`): the
    /// fault is put on first, heals as soon as the command exits (or at --duration),
    /// and socialctl fails when the command does.
    #[arg(last = true, value_name = "COMMAND")]
    pub during: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StreamArg {
    Upstream,
    Downstream,
    Both,
}

#[derive(Debug, Clone, clap::Args)]
pub struct LatencyArgs {
    #[command(flatten)]
    pub net: NetArgs,
    /// Milliseconds added to each chunk of data.
    #[arg(long, default_value_t = 200)]
    pub ms: u64,
    /// Up to this many milliseconds more or less, evenly spread.
    #[arg(long, default_value_t = 0)]
    pub jitter: u64,
}

#[derive(Debug, Clone, clap::Args)]
pub struct BandwidthArgs {
    #[command(flatten)]
    pub net: NetArgs,
    /// KiB per second.
    #[arg(long, default_value_t = 64)]
    pub kib_per_s: u64,
}

#[derive(Debug, Clone, clap::Args)]
pub struct TimeoutArgs {
    #[command(flatten)]
    pub net: NetArgs,
    /// Close each stalled connection after this many milliseconds (0: never).
    #[arg(long, default_value_t = 0)]
    pub ms: u64,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ResetArgs {
    #[command(flatten)]
    pub net: NetArgs,
    /// Reset each connection this many milliseconds after the fault first sees it.
    #[arg(long, default_value_t = 0)]
    pub after_ms: u64,
}

#[derive(Debug, Clone, clap::Args)]
pub struct PartitionArgs {
    #[command(flatten)]
    pub stack: super::StackArgs,
    /// One side: a service, `gateway`, or a store.
    pub a: String,
    /// The other side.
    pub b: String,
    /// How long the fault lasts before socialctl heals it.
    #[arg(long, default_value = "30s", value_parser = scenarios::workload::parse_duration)]
    pub duration: Duration,
    /// A command to run while the fault is on, after `--` (e.g. `-- curl -s URL`): the
    /// fault is put on first, heals as soon as the command exits (or at --duration),
    /// and socialctl fails when the command does.
    #[arg(last = true, value_name = "COMMAND")]
    pub during: Vec<String>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct StackOnly {
    #[command(flatten)]
    pub stack: super::StackArgs,
}

/// The instances `target` names in `stack`: every replica of a component, or one.
pub fn resolve(stack: &Stack, target: &str) -> anyhow::Result<Vec<String>> {
    let (name, replica) = match target.split_once('#') {
        Some((n, r)) => {
            let r: u32 = r
                .parse()
                .ok()
                .filter(|r| *r >= 1)
                .with_context(|| format!("{target:?}: a replica is named NAME#N, N from 1"))?;
            (n, Some(r))
        }
        None => (target, None),
    };
    let Some(c) = stack.component(name) else {
        let names: Vec<&str> = stack
            .components()
            .map(|c| c.name)
            .filter(|n| *n != "sink")
            .collect();
        bail!(
            "no component {name:?} in this stack; chaos can target: {}",
            names.join(", ")
        );
    };
    if c.name == "sink" {
        bail!("the sink records the faults and the traces they leave: chaos leaves it alone");
    }
    let replicas = stack.replicas(c);
    match replica {
        Some(r) if r > replicas => {
            bail!("{name} runs {replicas} replica(s) here; {target} is not one of them")
        }
        Some(r) => Ok(vec![crate::stack::instance_name(name, r - 1)]),
        None => Ok((0..replicas)
            .map(|r| crate::stack::instance_name(name, r))
            .collect()),
    }
}

fn hms(t: DateTime<Utc>) -> String {
    t.with_timezone(&chrono::Local)
        .format("%H:%M:%S")
        .to_string()
}

/// Runs a chaos verb: exit 0 when it did what it said; `run` exits 1 when an
/// experiment's steady state deviated.
pub async fn run(a: &ChaosArgs) -> anyhow::Result<std::process::ExitCode> {
    let done = match &a.verb {
        Verb::Run(r) => return super::experiment::run(r).await,
        Verb::Kill(f) => fault(f, Kind::Kill, None, None).await,
        Verb::Stop(f) => fault(f, Kind::Stop, None, None).await,
        Verb::Pause(f) => fault(f, Kind::Pause, None, None).await,
        Verb::Errors(e) => {
            if !(0.0..=1.0).contains(&e.rate) {
                bail!("--rate is a share of requests, from 0 to 1 (0.3 fails 30 %)");
            }
            let app = telemetry::faults::AppFaults {
                error_rate: e.rate,
                route_prefix: e.route.clone(),
                ..Default::default()
            };
            fault(&e.fault, Kind::Errors, Some(app), None).await
        }
        Verb::Slow(e) => {
            let app = telemetry::faults::AppFaults {
                latency_ms: e.ms,
                route_prefix: e.route.clone(),
                ..Default::default()
            };
            fault(&e.fault, Kind::Slow, Some(app), None).await
        }
        Verb::FailCalls(e) => {
            // The calls are named once the stack is known: see `calls_to`.
            let app = telemetry::faults::AppFaults::default();
            fault(&e.fault, Kind::FailCalls, Some(app), Some(&e.to)).await
        }
        Verb::Latency(l) => {
            network(
                &l.net,
                Kind::Latency,
                chaosproxy::Effect::Latency {
                    latency_ms: l.ms,
                    jitter_ms: l.jitter,
                },
            )
            .await
        }
        Verb::Bandwidth(b) => {
            network(
                &b.net,
                Kind::Bandwidth,
                chaosproxy::Effect::Bandwidth {
                    kib_per_s: b.kib_per_s,
                },
            )
            .await
        }
        Verb::Loss(n) => network(n, Kind::Loss, chaosproxy::Effect::Loss).await,
        Verb::Timeout(t) => {
            network(
                &t.net,
                Kind::Timeout,
                chaosproxy::Effect::Timeout { timeout_ms: t.ms },
            )
            .await
        }
        Verb::Reset(r) => {
            network(
                &r.net,
                Kind::Reset,
                chaosproxy::Effect::Reset {
                    after_ms: r.after_ms,
                },
            )
            .await
        }
        Verb::Partition(p) => partition(p).await,
        Verb::Links(s) => links(s).await,
        Verb::Restart(t) => restart(t).await,
        Verb::Status(s) => status(s).await,
        Verb::Heal(s) => heal_all(s).await,
    };
    done.map(|()| std::process::ExitCode::SUCCESS)
}

/// The running stack's table and runtime, or an error that says how to start one.
pub(crate) async fn open(stack: &super::StackArgs) -> anyhow::Result<(Stack, AnyRuntime, PathBuf)> {
    let state = stack.recorded().with_context(|| {
        format!(
            "no stack is up from {}; start one with `socialctl up` (or name its --state-dir)",
            stack.dir().display()
        )
    })?;
    let rt = stack.target().in_use().await?;
    Ok((Stack::new(state.config), rt, stack.dir()))
}

/// Each instance's operations base URL (where `/chaos/faults` is), from the runtime.
pub(crate) async fn ops_urls(rt: &AnyRuntime) -> std::collections::BTreeMap<String, String> {
    rt.metrics()
        .await
        .into_iter()
        .map(|(i, url)| (i, url.trim_end_matches("/metrics").to_owned()))
        .collect()
}

/// Sends an application fault to one instance (`None` switches it off).
async fn send_app(
    rt: &AnyRuntime,
    instance: &str,
    app: Option<&telemetry::faults::AppFaults>,
) -> anyhow::Result<()> {
    let base = ops_urls(rt).await.remove(instance).with_context(|| {
        format!("{instance} has no operations endpoint (application faults are for services)")
    })?;
    let url = format!("{base}{}", telemetry::http_server::FAULTS_PATH);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let r = match app {
        Some(a) => client.put(&url).json(a).send().await,
        None => client.delete(&url).send().await,
    }
    .with_context(|| format!("could not reach {instance}'s fault endpoint at {url}"))?;
    if !r.status().is_success() {
        bail!(
            "{instance} refused the fault: {} {}",
            r.status(),
            r.text().await.unwrap_or_default()
        );
    }
    Ok(())
}

/// Puts fault `f` on one instance (or link); `stop` is its component's graceful stop
/// signal.
async fn apply(
    stack: &Stack,
    rt: &AnyRuntime,
    f: &Fault,
    stop: Signal,
    instance: &str,
) -> anyhow::Result<()> {
    if let Some(t) = &f.toxic {
        return send_toxic(stack, instance, Some(t), &t.name).await;
    }
    match f.kind {
        Kind::Errors | Kind::Slow | Kind::FailCalls => send_app(rt, instance, f.app.as_ref()).await,
        Kind::Kill => rt.signal(instance, Signal::Kill).await,
        Kind::Stop => rt.signal(instance, stop).await,
        Kind::Pause => rt.pause(instance).await,
        Kind::Restart => rt.restart(instance).await,
        _ => bail!("{} needs a toxic", f.kind.name()),
    }
}

async fn heal_one(stack: &Stack, rt: &AnyRuntime, f: &Fault) -> anyhow::Result<()> {
    for i in &f.instances {
        if f.toxic.is_some() {
            send_toxic(stack, i, None, &f.id)
                .await
                .with_context(|| format!("could not take the toxic off {i}"))?;
            continue;
        }
        match f.kind {
            Kind::Kill | Kind::Stop => rt
                .restart(i)
                .await
                .with_context(|| format!("could not start {i} again"))?,
            Kind::Pause => rt
                .resume(i)
                .await
                .with_context(|| format!("could not resume {i}"))?,
            Kind::Restart => {}
            Kind::Errors | Kind::Slow | Kind::FailCalls => send_app(rt, i, None)
                .await
                .with_context(|| format!("could not switch the fault off in {i}"))?,
            _ => {}
        }
    }
    Ok(())
}

/// How a service reaches `callee`: its replicas' own addresses, and its routes (calls
/// between services go through the gateway, where only the path says who is called).
fn calls_to(stack: &Stack, rt: &AnyRuntime, callee: &str) -> anyhow::Result<Vec<String>> {
    let c = stack
        .component(callee)
        .with_context(|| format!("no component {callee:?} in this stack"))?;
    let net = match rt.kind() {
        crate::stack::state::RuntimeKind::Docker => crate::stack::Net::Docker,
        crate::stack::state::RuntimeKind::Local => crate::stack::Net::Local,
    };
    Ok((0..stack.replicas(c))
        .map(|r| {
            let (h, p) = stack.addr(net, callee, r);
            format!("{h}:{p}")
        })
        .chain(c.routes.iter().map(|r| r.path.to_owned()))
        .collect())
}

/// Puts a fault on the target for its duration, then heals it. `app` carries an
/// application fault's settings; `callee` names the component a `fail-calls` cuts off.
async fn fault(
    a: &FaultArgs,
    kind: Kind,
    mut app: Option<telemetry::faults::AppFaults>,
    callee: Option<&str>,
) -> anyhow::Result<()> {
    let (stack, rt, dir) = open(&a.target.stack).await?;
    let instances = resolve(&stack, &a.target.target)?;
    if let Some(app) = app.as_mut() {
        // A little past the fault's end: socialctl switches it off on time, and the
        // service drops it by itself should socialctl be gone.
        app.ttl_secs = a.duration.as_secs() + 5;
        if let Some(callee) = callee {
            app.failing_calls = calls_to(&stack, &rt, callee)?;
        }
    }
    let running: Vec<String> = rt
        .status()
        .await?
        .into_iter()
        .filter(|s| s.state == "running")
        .map(|s| s.name)
        .collect();
    for i in &instances {
        if !running.contains(i) {
            bail!("{i} is not running; `socialctl status` shows what is");
        }
    }
    // The target's component (resolved above, so it is in the table).
    let stop = a
        .target
        .target
        .split('#')
        .next()
        .and_then(|c| stack.component(c))
        .map_or(Signal::Term, |c| c.stop_signal);
    let plan = Plan {
        kind,
        target: a.target.target.clone(),
        instances,
        duration: a.duration,
        app,
        toxic: None,
        stop,
        during: a.during.clone(),
    };
    inflict(&a.target.stack, &stack, &rt, &dir, plan).await
}

/// A fault about to be put on: what `inflict` needs.
struct Plan {
    kind: Kind,
    target: String,
    /// Instances, or the fault proxy's links for a network fault.
    instances: Vec<String>,
    duration: Duration,
    app: Option<telemetry::faults::AppFaults>,
    toxic: Option<chaosproxy::Toxic>,
    /// The target component's graceful stop signal.
    stop: Signal,
    /// The command to run while the fault is on (empty: wait out the duration).
    during: Vec<String>,
}

/// Records the fault, puts it on every instance (or link), says what it did and how to
/// see it, waits out its duration and heals it.
async fn inflict(
    stack_args: &super::StackArgs,
    stack: &Stack,
    rt: &AnyRuntime,
    dir: &Path,
    plan: Plan,
) -> anyhow::Result<()> {
    let Plan {
        kind,
        target,
        instances,
        duration,
        app,
        mut toxic,
        stop,
        during,
    } = plan;
    let dir = dir.to_path_buf();
    let dir = &dir;
    for i in &instances {
        if let Some(f) = active(dir).iter().find(|f| f.instances.contains(i)) {
            bail!(
                "{i} already has an active fault ({} until {}); heal it first with `socialctl chaos heal`",
                f.kind.name(),
                hms(f.until)
            );
        }
    }
    let started = Utc::now();
    let until = started + chrono::Duration::from_std(duration)?;
    let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    if let Some(t) = toxic.as_mut() {
        t.name = id.clone();
    }
    let f = Fault {
        id,
        kind,
        target: target.clone(),
        instances: instances.clone(),
        started,
        until,
        owner: std::process::id(),
        app,
        toxic,
    };
    let mut faults = active(dir);
    faults.push(f.clone());
    save(dir, &faults)?;
    for i in &instances {
        if let Err(e) = apply(stack, rt, &f, stop, i).await {
            let _ = take(dir, &f.id);
            let _ = heal_one(stack, rt, &f).await;
            return Err(e.context(format!("could not {} {i}", kind.name())));
        }
    }
    let restarts_before = restarts(rt, &instances).await;
    let what = match &f.toxic {
        Some(t) => format!(
            " ({}, {})",
            t.effect.describe(),
            match t.stream {
                chaosproxy::Stream::Both => "both ways",
                chaosproxy::Stream::Upstream => "requests only",
                chaosproxy::Stream::Downstream => "answers only",
            }
        ),
        None => String::new(),
    };
    println!(
        "{} chaos {} {target}{what}: {}",
        hms(started),
        kind.name(),
        instances.join(", ")
    );
    println!(
        "  heals at {} (in {} s): will {}; Ctrl-C heals now, so does `socialctl chaos heal`",
        hms(until),
        duration.as_secs(),
        kind.heal_plan()
    );
    println!("  see it: {}", see_it(kind));
    let mut child = match during.split_first() {
        Some((program, args)) => Some(
            tokio::process::Command::new(program)
                .args(args)
                .kill_on_drop(true)
                .spawn()
                .with_context(|| format!("could not run {program:?} during the fault"))?,
        ),
        None => None,
    };
    let (healed_by, exited) = match child.as_mut() {
        Some(c) => tokio::select! {
            h = wait(dir, &f, duration, rt, restarts_before) => (h, None),
            s = c.wait() => ("command", Some(s)),
        },
        None => (wait(dir, &f, duration, rt, restarts_before).await, None),
    };
    if child.is_some() && exited.is_none() {
        println!(
            "{} the fault ends ({healed_by}) before the command: stopping {:?}",
            hms(Utc::now()),
            during[0]
        );
    }
    drop(child);
    let failed = match exited {
        Some(Ok(s)) if !s.success() => Some(format!("exited with {s}")),
        Some(Err(e)) => Some(format!("could not be waited for: {e}")),
        _ => None,
    };
    let outcome = match failed {
        Some(why) => Err(anyhow::anyhow!(
            "the command run during the fault ({}) {why}; the fault is healed",
            during.join(" ")
        )),
        None => Ok(()),
    };
    if healed_by == "heal" {
        println!("{} healed by `socialctl chaos heal`", hms(Utc::now()));
        return outcome;
    }
    take(dir, &f.id)?;
    heal_one(stack, rt, &f).await?;
    let ended = Utc::now();
    record_window(stack_args, &f, ended, healed_by).await;
    println!(
        "{} healed ({healed_by}): {} {target} from {} to {}",
        hms(ended),
        kind.name(),
        hms(f.started),
        hms(ended)
    );
    outcome
}

/// The trace query that shows what a fault did.
fn see_it(kind: Kind) -> &'static str {
    if kind.is_network() {
        "`socialctl traces --during-fault` (requests meanwhile, slowest first); the proxy's own spans: `socialctl traces --service chaosproxy`"
    } else if matches!(kind, Kind::Errors | Kind::Slow | Kind::FailCalls) {
        "`socialctl traces --during-fault --errors` (its spans carry chaos.injected=true)"
    } else {
        "`socialctl traces --during-fault --errors` (requests that failed meanwhile); under `socialctl load`, its report and `verify-traces --sent`"
    }
}

/// The fault proxy's control API, or an error that says how to start a stack with it.
fn proxy_url(stack: &Stack) -> anyhow::Result<String> {
    if stack.component(crate::stack::FAULT_PROXY).is_none() {
        bail!(
            "this stack runs without the fault proxy, which network faults need (this kernel has no netem); \
             start it with `socialctl down && socialctl up --fault-proxy` (or `--workshop`)"
        );
    }
    let (h, p) = stack.addr(crate::stack::Net::Local, crate::stack::FAULT_PROXY, 0);
    Ok(format!("http://{h}:{p}"))
}

/// The links from `from` to `to` (a component, or one replica `feed#2`).
pub fn links_between(stack: &Stack, from: &str, to: &str) -> anyhow::Result<Vec<String>> {
    let (to_name, replica) = match to.split_once('#') {
        Some((n, r)) => (
            n,
            Some(
                r.parse::<u32>()
                    .ok()
                    .filter(|r| *r >= 1)
                    .with_context(|| format!("{to:?}: a replica is named NAME#N, N from 1"))?
                    - 1,
            ),
        ),
        None => (to, None),
    };
    let all = stack.links();
    let found: Vec<String> = all
        .iter()
        .filter(|l| l.from == from && l.to == to_name)
        .filter(|l| replica.is_none_or(|r| l.upstream == (l.to, r)))
        .map(|l| l.name.clone())
        .collect();
    if found.is_empty() {
        let reach: Vec<String> = all
            .iter()
            .filter(|l| l.from == from)
            .map(|l| {
                l.name
                    .split_once(':')
                    .map_or(l.name.clone(), |(_, t)| t.to_owned())
            })
            .collect();
        if reach.is_empty() {
            let callers: std::collections::BTreeSet<&str> = all.iter().map(|l| l.from).collect();
            bail!(
                "{from} has no path through the fault proxy; callers: {}",
                callers.into_iter().collect::<Vec<_>>().join(", ")
            );
        }
        bail!(
            "{from} does not reach {to} through the fault proxy; {from} reaches: {}",
            reach.join(", ")
        );
    }
    Ok(found)
}

async fn network(n: &NetArgs, kind: Kind, effect: chaosproxy::Effect) -> anyhow::Result<()> {
    let (stack, rt, dir) = open(&n.stack).await?;
    proxy_url(&stack)?;
    let links = links_between(&stack, &n.from, &n.to)?;
    let toxic = chaosproxy::Toxic {
        // Named after the fault once it has an id (in `inflict`).
        name: "pending".into(),
        effect,
        stream: match n.stream {
            StreamArg::Upstream => chaosproxy::Stream::Upstream,
            StreamArg::Downstream => chaosproxy::Stream::Downstream,
            StreamArg::Both => chaosproxy::Stream::Both,
        },
        toxicity: n.toxicity,
    };
    toxic.check().map_err(anyhow::Error::msg)?;
    let plan = Plan {
        kind,
        target: format!("{}→{}", n.from, n.to),
        instances: links,
        duration: n.duration,
        app: None,
        toxic: Some(toxic),
        stop: Signal::Term,
        during: n.during.clone(),
    };
    inflict(&n.stack, &stack, &rt, &dir, plan).await
}

async fn partition(p: &PartitionArgs) -> anyhow::Result<()> {
    let (stack, rt, dir) = open(&p.stack).await?;
    proxy_url(&stack)?;
    let there = links_between(&stack, &p.a, &p.b);
    let back = links_between(&stack, &p.b, &p.a);
    let links: Vec<String> = there
        .as_ref()
        .ok()
        .into_iter()
        .chain(back.as_ref().ok())
        .flatten()
        .cloned()
        .collect();
    if links.is_empty() {
        // Neither way exists: the first error says what each side reaches.
        there?;
    }
    let plan = Plan {
        kind: Kind::Partition,
        target: format!("{}↮{}", p.a, p.b),
        instances: links,
        duration: p.duration,
        during: p.during.clone(),
        app: None,
        toxic: Some(chaosproxy::Toxic {
            // Named after the fault once it has an id (in `inflict`).
            name: "pending".into(),
            effect: chaosproxy::Effect::Partition,
            stream: chaosproxy::Stream::Both,
            toxicity: 1.0,
        }),
        stop: Signal::Term,
    };
    inflict(&p.stack, &stack, &rt, &dir, plan).await
}

async fn links(a: &StackOnly) -> anyhow::Result<()> {
    let (stack, _, _) = open(&a.stack).await?;
    let url = proxy_url(&stack)?;
    let links: Vec<chaosproxy::LinkStatus> = reqwest::Client::new()
        .get(format!("{url}/links"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .with_context(|| {
            format!(
                "the fault proxy does not answer at {url}; `socialctl status` shows whether it runs"
            )
        })?
        .json()
        .await?;
    println!(
        "{:<22} {:<22} {:>5} {:>7} {:>10} {:>10}  toxics",
        "link", "upstream", "open", "total", "bytes up", "bytes down"
    );
    for l in links {
        let toxics: Vec<String> = l
            .toxics
            .iter()
            .map(|t| format!("{} {} ({})", t.name, t.effect.kind(), t.effect.describe()))
            .collect();
        println!(
            "{:<22} {:<22} {:>5} {:>7} {:>10} {:>10}  {}",
            l.name,
            l.upstream,
            l.connections_open,
            l.connections_total,
            l.bytes_upstream,
            l.bytes_downstream,
            if toxics.is_empty() {
                "-".into()
            } else {
                toxics.join("; ")
            }
        );
    }
    Ok(())
}

/// Puts toxic `t` on link `link` (`None`: takes toxic `name` off it).
async fn send_toxic(
    stack: &Stack,
    link: &str,
    t: Option<&chaosproxy::Toxic>,
    name: &str,
) -> anyhow::Result<()> {
    let url = proxy_url(stack)?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let r = match t {
        Some(t) => {
            client
                .post(format!("{url}/links/{link}/toxics"))
                .json(t)
                .send()
                .await
        }
        None => {
            client
                .delete(format!("{url}/links/{link}/toxics/{name}"))
                .send()
                .await
        }
    }
    .with_context(|| format!("the fault proxy does not answer at {url}"))?;
    // Taking off a toxic that is gone (the proxy restarted) is done already.
    if r.status().is_success() || (t.is_none() && r.status() == reqwest::StatusCode::NOT_FOUND) {
        return Ok(());
    }
    bail!(
        "the fault proxy refused: {} {}",
        r.status(),
        r.text().await.unwrap_or_default()
    )
}

/// Restart counts the runtime reports for `instances` (Docker's restart policy).
async fn restarts(rt: &AnyRuntime, instances: &[String]) -> u64 {
    rt.status()
        .await
        .map(|rows| {
            rows.iter()
                .filter(|r| instances.contains(&r.name))
                .filter_map(|r| r.restarts)
                .sum()
        })
        .unwrap_or(0)
}

/// Waits out the fault: its duration (`timer`), Ctrl-C (`interrupt`), or its record
/// vanishing because `chaos heal` healed it (`heal`). Says when the runtime's restart
/// policy brings the target back before then.
async fn wait(
    dir: &Path,
    f: &Fault,
    duration: Duration,
    rt: &AnyRuntime,
    restarts_before: u64,
) -> &'static str {
    let deadline = tokio::time::Instant::now() + duration;
    let mut said_restart = false;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => return "timer",
            _ = tokio::signal::ctrl_c() => return "interrupt",
            _ = tokio::time::sleep(Duration::from_millis(500)) => {
                if !active(dir).iter().any(|x| x.id == f.id) {
                    return "heal";
                }
                if !said_restart && matches!(f.kind, Kind::Kill) {
                    let now = restarts(rt, &f.instances).await;
                    if now > restarts_before {
                        said_restart = true;
                        println!(
                            "{} the runtime's restart policy started {} again before the fault's end",
                            hms(Utc::now()),
                            f.instances.join(", ")
                        );
                    }
                }
            }
        }
    }
}

async fn restart(a: &TargetArgs) -> anyhow::Result<()> {
    let (stack, rt, _) = open(&a.stack).await?;
    let instances = resolve(&stack, &a.target)?;
    let started = Utc::now();
    for i in &instances {
        println!("{} chaos restart {i}", hms(Utc::now()));
        rt.restart(i).await?;
    }
    let ended = Utc::now();
    let f = Fault {
        id: String::new(),
        kind: Kind::Restart,
        target: a.target.clone(),
        instances,
        started,
        until: ended,
        owner: std::process::id(),
        app: None,
        toxic: None,
    };
    record_window(&a.stack, &f, ended, "done").await;
    println!(
        "{} restarted and healthy again after {:.1} s",
        hms(ended),
        (ended - started).num_milliseconds() as f64 / 1000.0
    );
    Ok(())
}

async fn status(a: &StackOnly) -> anyhow::Result<()> {
    let faults = active(&a.stack.dir());
    if faults.is_empty() {
        println!("no active faults");
        return Ok(());
    }
    let rt = a.stack.target().in_use().await?;
    let rows = rt.status().await.unwrap_or_default();
    println!(
        "{:<12} {:<8} {:<16} {:<9} {:<10} instances",
        "id", "fault", "target", "since", "left"
    );
    let mut orphans = false;
    for f in faults {
        let left = (f.until - Utc::now()).num_seconds().max(0);
        let owner = if crate::runtime::process::alive(f.owner) {
            format!("{left} s")
        } else {
            orphans = true;
            "orphaned".into()
        };
        let states: Vec<String> = f
            .instances
            .iter()
            .map(|i| {
                if f.kind.is_network() {
                    return format!("link {i}");
                }
                let r = rows.iter().find(|r| &r.name == i);
                let state = r.map_or("absent", |r| r.state);
                match r.and_then(|r| r.restarts) {
                    Some(n) if n > 0 => format!("{i} ({state}, restarted {n}× by the runtime)"),
                    _ => format!("{i} ({state})"),
                }
            })
            .collect();
        println!(
            "{:<12} {:<8} {:<16} {:<9} {:<10} {}",
            f.id,
            f.kind.name(),
            f.target,
            hms(f.started),
            owner,
            states.join(", ")
        );
    }
    if orphans {
        println!(
            "(`orphaned`: the chaos command that owned it is gone; `socialctl chaos heal` heals it)"
        );
    }
    Ok(())
}

async fn heal_all(a: &StackOnly) -> anyhow::Result<()> {
    let dir = a.stack.dir();
    let faults = active(&dir);
    if faults.is_empty() {
        println!("no active faults");
        return Ok(());
    }
    let rt = a.stack.target().in_use().await?;
    for f in faults {
        // Taken first: the owning command sees its record gone and stands down.
        if !take(&dir, &f.id)? {
            continue;
        }
        heal_one(
            &Stack::new(a.stack.recorded().map(|s| s.config).unwrap_or_default()),
            &rt,
            &f,
        )
        .await?;
        let ended = Utc::now();
        record_window(&a.stack, &f, ended, "heal").await;
        println!(
            "{} healed {} {} (since {})",
            hms(ended),
            f.kind.name(),
            f.target,
            hms(f.started)
        );
    }
    Ok(())
}

/// Sends the fault window to the sink as one span of `socialctl.chaos`. A stack without
/// a sink (or one that is down) only loses the record, which is said.
async fn record_window(stack: &super::StackArgs, f: &Fault, ended: DateTime<Utc>, healed_by: &str) {
    let otlp = stack.addresses().otlp_http;
    let body = window_span(f, ended, healed_by);
    let sent = reqwest::Client::new()
        .post(format!("{}/v1/traces", otlp.trim_end_matches('/')))
        .header("content-type", "application/x-protobuf")
        .timeout(Duration::from_secs(5))
        .body(body)
        .send()
        .await;
    if !matches!(&sent, Ok(r) if r.status().is_success()) {
        eprintln!("note: the fault window could not be recorded in the sink at {otlp}");
    }
}

/// The OTLP/protobuf body of a fault window's span.
pub fn window_span(f: &Fault, ended: DateTime<Utc>, healed_by: &str) -> Vec<u8> {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, span::SpanKind};
    use prost::Message as _;
    use verify::otlp::string_kv as kv;
    let nanos = |t: DateTime<Utc>| t.timestamp_nanos_opt().unwrap_or_default() as u64;
    let id = uuid::Uuid::new_v4();
    let span = Span {
        trace_id: id.as_bytes().to_vec(),
        span_id: id.as_bytes()[..8].to_vec(),
        name: format!("chaos {}", f.kind.name()),
        kind: SpanKind::Internal as i32,
        start_time_unix_nano: nanos(f.started),
        end_time_unix_nano: nanos(ended),
        attributes: vec![
            kv("chaos.kind", f.kind.name()),
            kv("chaos.target", f.target.clone()),
            kv("chaos.instances", f.instances.join(",")),
            kv("chaos.healed_by", healed_by),
            kv("chaos.planned_until", f.until.to_rfc3339()),
            kv(
                "chaos.parameters",
                match (&f.app, &f.toxic) {
                    (Some(a), _) => serde_json::to_string(a).unwrap_or_default(),
                    (_, Some(t)) => serde_json::to_string(t).unwrap_or_default(),
                    _ => String::new(),
                },
            ),
        ],
        ..Default::default()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", verify::faults::CHAOS_SERVICE)],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: vec![span],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::StackConfig;

    #[test]
    fn targets_name_components_or_one_replica() {
        let mut cfg = StackConfig::default();
        cfg.scale.insert("feed".into(), 2);
        let s = Stack::new(cfg);
        assert_eq!(resolve(&s, "feed").unwrap(), ["feed", "feed-2"]);
        assert_eq!(resolve(&s, "feed#2").unwrap(), ["feed-2"]);
        assert_eq!(resolve(&s, "postgres").unwrap(), ["postgres"]);
        let e = resolve(&s, "feed#3").unwrap_err().to_string();
        assert!(e.contains("2 replica"), "{e}");
        let e = resolve(&s, "nope").unwrap_err().to_string();
        assert!(e.contains("chaos can target") && e.contains("feed"), "{e}");
        assert!(resolve(&s, "feed#0").is_err());
        assert!(
            resolve(&s, "sink")
                .unwrap_err()
                .to_string()
                .contains("leaves it alone")
        );
    }

    #[test]
    fn the_journal_keeps_faults_until_taken() {
        let dir = tempfile::tempdir().unwrap();
        assert!(active(dir.path()).is_empty());
        let f = Fault {
            id: "abc".into(),
            kind: Kind::Pause,
            target: "feed".into(),
            instances: vec!["feed".into()],
            started: Utc::now(),
            until: Utc::now(),
            owner: 1,
            app: None,
            toxic: None,
        };
        save(dir.path(), std::slice::from_ref(&f)).unwrap();
        assert_eq!(active(dir.path()), vec![f]);
        assert!(take(dir.path(), "abc").unwrap());
        assert!(!take(dir.path(), "abc").unwrap(), "taken once");
        assert!(!journal(dir.path()).exists());
    }
}
