//! `socialctl load`: drive the running stack with a social network's day (the load
//! generator is `load/`), then report per endpoint and judge the thresholds.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use anyhow::{Context as _, bail};
use goose::client::GooseClientBuilder;
use goose::prelude::*;
use opentelemetry::trace::TracerProvider as _;
use scenarios::workload::{Threshold, Workload, parse_duration};

use super::StackArgs;
use crate::load::pace::{Control, Pacer};
use crate::load::record::{self, ClientSpans, Recorder, Report};
use crate::load::{increase_rate, install_logger, kept_warnings, live, user};

#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = "\
Examples:
  socialctl load --users 500 --duration 60s          a busy hour, compressed
  socialctl load --rate 300 --users 100 --duration 2m  open model: 300 arrivals/s
  socialctl load --users 20 --duration 10s --json     a smoke run, machine-readable
  socialctl verify-traces --sent <record>             then account for every request

Latency counts from when each request was meant to start, so a stalled server shows in
the percentiles: closed model (default) with coordinated-omission correction from each
user's think time; open model (--rate) from each arrival slot.")]
pub struct LoadArgs {
    #[command(flatten)]
    pub stack: StackArgs,
    /// Virtual users (closed model), or the most requests in flight (with --rate).
    #[arg(long, default_value_t = 50)]
    pub users: usize,
    /// Length of the measured day: 30s, 2m, 1.5m. It begins once every user has started
    /// (--ramp) and finished its first sign-in: that sign-in phase is reported as its own
    /// row, as k6's setup comes before its measured window.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Time to start every user; all of them, however many, are running after it
    /// [default: 2s, or a fifth of --duration when that is shorter].
    #[arg(long, value_parser = parse_duration)]
    pub ramp: Option<Duration>,
    /// Open model: this many requests per second, whatever the server's speed.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Workload file (default: the built-in scenarios/load/social-day.workload).
    #[arg(long)]
    pub workload: Option<PathBuf>,
    /// Pass/fail rule, e.g. `p99<500ms`, `error-rate<1%`, or for one endpoint
    /// `"p99<300ms GET /api/feed/timeline"` (repeatable; replaces the workload file's
    /// thresholds). Exit 1 when one is not met.
    #[arg(long)]
    pub threshold: Vec<Threshold>,
    /// The stack's gateway [default: the running stack's, else http://127.0.0.1:8080].
    #[arg(long)]
    pub gateway: Option<String>,
    /// On the Docker runtime, send through the published ports (127.0.0.1, the engine's
    /// userland proxy) instead of to the gateway's and sink's container addresses.
    #[arg(long)]
    pub via_published_ports: bool,
    /// OTLP/HTTP endpoint for socialctl's own CLIENT spans; the sink's query API there
    /// also gives the live trace completeness.
    /// [default: the running stack's sink, else http://127.0.0.1:4318]
    #[arg(long)]
    pub otlp: Option<String>,
    /// Where to write one JSON line per request (default: in the state directory).
    #[arg(long)]
    pub record: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Print the report as CSV.
    #[arg(long, conflicts_with = "json")]
    pub csv: bool,
    /// Plain progress lines even on a terminal (no full-screen view).
    #[arg(long)]
    pub no_tui: bool,
    /// Do not seed the population when the stack has none.
    #[arg(long)]
    pub no_seed: bool,
    /// After the run, check the trace of every request sent (as `verify-traces --sent`)
    /// and print its table; exit 1 unless all are complete.
    #[arg(long, conflicts_with_all = ["json", "csv"])]
    pub verify: bool,
    /// PostgreSQL of the stack, used only to seed a missing population [default: the
    /// running stack's].
    #[arg(long)]
    pub database_url: Option<String>,
    /// Redis of the stack, emptied of caches when seeding [default: the running
    /// stack's].
    #[arg(long)]
    pub redis_url: Option<String>,
}

/// The stack a run drives: flags, else what `up` recorded, else a default stack.
#[derive(Debug, Clone)]
pub struct Aim {
    pub gateway: String,
    pub otlp: String,
    pub servers: crate::seed::Servers,
    /// Which path to the stack is measured, for the report.
    pub path: String,
}

/// Whether something accepts connections at `host:port` within a second.
pub(crate) async fn answers(host_port: &str) -> bool {
    matches!(
        tokio::time::timeout(
            Duration::from_secs(1),
            tokio::net::TcpStream::connect(host_port)
        )
        .await,
        Ok(Ok(_))
    )
}

/// The gateway's and sink's base URLs and a description of the path: on Docker, their
/// container addresses when the host reaches them (Linux), so figures measure the stack
/// and not the engine's userland proxy in front of the published ports; else (or with
/// `via_published_ports`) the published ports.
pub(crate) async fn direct_or_published(
    stack: &super::StackArgs,
    via_published_ports: bool,
) -> (String, String, String) {
    let addr = stack.addresses();
    let direct = |name: &str| addr.direct.get(name).cloned();
    let (mut gateway, mut otlp) = (addr.gateway.clone(), addr.otlp_http.clone());
    let mut path = match stack.recorded().map(|s| s.runtime) {
        Some(crate::stack::state::RuntimeKind::Docker) => {
            "the published ports (through docker-proxy)".to_owned()
        }
        _ => "loopback".to_owned(),
    };
    if !via_published_ports
        && let (Some(g), Some(o)) = (direct("gateway"), direct("sink"))
        && answers(&g).await
        && answers(&o).await
    {
        gateway = format!("http://{g}");
        otlp = format!("http://{o}");
        path = "the gateway's and sink's container addresses on the project network (not the published ports' docker-proxy; --via-published-ports measures that path)".into();
    }
    (gateway, otlp, path)
}

impl LoadArgs {
    /// Where the run sends: the flags; else, on Docker, the gateway's and sink's
    /// container addresses when the host reaches them (Linux), so the figures measure the
    /// stack and not the engine's userland proxy in front of the published ports; else
    /// the published ports.
    pub async fn aim(&self) -> Aim {
        let addr = self.stack.addresses();
        let (gateway, otlp, mut path) =
            direct_or_published(&self.stack, self.via_published_ports).await;
        if self.gateway.is_some() || self.otlp.is_some() {
            path = "the addresses given with --gateway/--otlp".into();
        }
        Aim {
            gateway: self.gateway.clone().unwrap_or(gateway),
            otlp: self.otlp.clone().unwrap_or(otlp),
            servers: crate::seed::Servers {
                database_url: self.database_url.clone().unwrap_or(addr.postgres),
                redis_url: self.redis_url.clone().unwrap_or(addr.redis),
            },
            path,
        }
    }
}

impl LoadArgs {
    pub fn ramp(&self) -> Duration {
        self.ramp
            .unwrap_or_else(|| Duration::from_secs(2).min(self.duration / 5))
    }
}

fn load_workload(a: &LoadArgs) -> anyhow::Result<Workload> {
    let mut w = match &a.workload {
        None => Workload::social_day(),
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("could not read the workload file {}", p.display()))?;
            Workload::parse(&text).map_err(|e| {
                anyhow::anyhow!(
                    "{}: {e} (see scenarios/load/social-day.workload)",
                    p.display()
                )
            })?
        }
    };
    if !a.threshold.is_empty() {
        w.thresholds.clone_from(&a.threshold);
    }
    for t in &w.thresholds {
        if let Some(e) = &t.endpoint
            && !record::Endpoint::ALL.iter().any(|k| k.name() == e)
        {
            let known: Vec<&str> = record::Endpoint::ALL.iter().map(|k| k.name()).collect();
            bail!(
                "threshold `{t}` names an endpoint the workload never calls; known: {}",
                known.join(", ")
            );
        }
    }
    Ok(w)
}

fn check_args(a: &LoadArgs, t: &Aim) -> anyhow::Result<()> {
    if a.users == 0 {
        bail!("--users must be at least 1");
    }
    if a.duration.is_zero() {
        bail!("--duration must be longer than 0s");
    }
    if a.ramp() >= a.duration {
        bail!(
            "--ramp ({:?}) must be shorter than --duration ({:?}), which includes it",
            a.ramp(),
            a.duration
        );
    }
    if let Some(r) = a.rate
        && !(r > 0.0 && r.is_finite())
    {
        bail!("--rate must be a positive number of requests per second");
    }
    for url in [&t.gateway, &t.otlp] {
        reqwest::Url::parse(url)
            .with_context(|| format!("{url} is not a URL (e.g. http://127.0.0.1:8080)"))?;
    }
    Ok(())
}

/// Fails fast, with the fix, when the target cannot take load; seeds a missing population.
/// ` (trace <id>)` from a response's `traceparent` (every service returns its server
/// span's), so a failed check leads to its trace; empty without one.
fn trace_of(r: &reqwest::Response) -> String {
    r.headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split('-').nth(1))
        .map(|id| format!(" (trace {id})"))
        .unwrap_or_default()
}

/// The workload visits users across its whole population: a stack seeded with fewer
/// would answer a share of its requests 404 and fail the error-rate threshold for no
/// reason the report could show. Says so before any load.
async fn whole_population(t: &Aim, users: usize, say: &dyn Fn(&str)) -> anyhow::Result<()> {
    let last = crate::seed::username(users.saturating_sub(1));
    match crate::seed::has_account(&t.servers.database_url, &last).await {
        Ok(true) => Ok(()),
        Ok(false) => {
            let n = crate::seed::count_users(&t.servers.database_url)
                .await
                .unwrap_or(0);
            bail!(
                "the workload's population is {} users ({} … {last}), but {last} does not exist: this stack was \
                 seeded with fewer ({n} accounts in all), so requests for the missing users would answer 404. \
                 Run a copy of the workload whose `population users=` matches the stack (--workload FILE), \
                 or reseed with `socialctl seed --reset --users {}` (this replaces all data)",
                users,
                crate::seed::username(0),
                users
            )
        }
        Err(e) => {
            say(&format!(
                "load: could not check that {last} exists ({e}); requests for missing users would answer 404"
            ));
            Ok(())
        }
    }
}

/// Checks that the gateway and auth answer and that the population (`users` seeded
/// accounts with `password`) is there, seeding it beside existing accounts when it is
/// missing (unless `no_seed`). `socialctl sim` uses it too.
pub(crate) async fn preflight(
    t: &Aim,
    users: usize,
    password: &str,
    no_seed: bool,
    say: &dyn Fn(&str),
) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let gw = t.gateway.trim_end_matches('/');
    match client.get(format!("{gw}/api/auth/jwks")).send().await {
        Err(e) if e.is_connect() => bail!(
            "nothing answers at {gw} (connection refused). Start the stack with `socialctl up`, or point --gateway at it"
        ),
        Err(e) if e.is_timeout() => {
            bail!("{gw} did not answer within 5 s; check `socialctl status`")
        }
        Err(e) => bail!("could not reach {gw}: {e}"),
        Ok(r) if !r.status().is_success() => bail!(
            "the gateway at {gw} answers, but auth does not (GET /api/auth/jwks: HTTP {}{}); check `socialctl status` and `socialctl logs auth`",
            r.status(),
            trace_of(&r)
        ),
        Ok(_) => {}
    }
    let login = || async {
        client
            .post(format!("{gw}/api/auth/login"))
            .json(&serde_json::json!({"username": crate::seed::username(0), "password": password}))
            .send()
            .await
            .map(|r| (r.status().as_u16(), trace_of(&r)))
    };
    let (status, trace) = login().await.context("the trial login failed")?;
    match status {
        200 => whole_population(t, users, say).await,
        401 => {
            let first = crate::seed::username(0);
            let db = &t.servers.database_url;
            let why = || {
                format!(
                    "login as {first} failed (HTTP 401{trace}) and the database at {db} could not be read to tell why; \
                     on a fresh stack run `socialctl seed`"
                )
            };
            let n = crate::seed::count_users(db).await.with_context(why)?;
            if crate::seed::has_account(db, &first)
                .await
                .with_context(why)?
            {
                bail!(
                    "login as {first} with the workload's password failed (HTTP 401{trace}): the account exists, so the \
                     workload's password differs from the one it was seeded with. Fix `population … password=` in the \
                     workload, or `socialctl seed --reset` to replace all data with a fresh population"
                );
            }
            if no_seed {
                bail!(
                    "the stack has no accounts to sign in as. Run `socialctl seed` (or drop --no-seed)"
                );
            }
            say(&format!(
                "no seeded population (no {first}); seeding {users} users beside the {n} accounts there, as `socialctl seed` would"
            ));
            let defaults = crate::seed::SeedArgs::default();
            let s = crate::seed::seed(
                &crate::seed::SeedArgs {
                    users,
                    // The seed command's posts per user, for this population's size.
                    posts: defaults.posts * users / defaults.users,
                    password: password.to_owned(),
                    ..defaults
                },
                &t.servers,
            )
            .await
            .context("seeding failed; run `socialctl seed` yourself to see why")?;
            say(&format!(
                "seeded {} users, {} follows, {} posts in {:.1} s",
                s.users, s.follows, s.posts, s.seconds
            ));
            match login().await? {
                (200, _) => Ok(()),
                (s, trace) => bail!(
                    "login still fails after seeding (HTTP {s}{trace}); check `socialctl logs auth`"
                ),
            }
        }
        429 => bail!(
            "auth is rate-limiting logins from this address (HTTP 429{trace}). Wait a minute, or start the stack with a higher AUTH_LOGIN_IP_LIMIT (`socialctl up --env AUTH_LOGIN_IP_LIMIT=100000`)"
        ),
        s => bail!("the trial login answered HTTP {s}{trace}; check `socialctl logs auth`"),
    }
}

fn default_record(state_dir: &std::path::Path) -> PathBuf {
    let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S");
    state_dir.join("runs").join(format!("load-{stamp}.jsonl"))
}

pub async fn run(a: &LoadArgs) -> anyhow::Result<ExitCode> {
    let t = a.aim().await;
    check_args(a, &t)?;
    let workload = load_workload(a)?;
    let tui = !a.no_tui
        && !a.json
        && !a.csv
        && std::io::stdout().is_terminal()
        && std::io::stderr().is_terminal();
    let say = |m: &str| eprintln!("{m}");
    preflight(&t, workload.users, &workload.password, a.no_seed, &say).await?;
    say(&format!("load: sending to {} via {}", t.gateway, t.path));
    let otlp = t.otlp.trim_end_matches('/').to_owned();
    let sink_answers = live::sink_answers(&otlp).await;
    if !sink_answers {
        say(&format!(
            "load: warning: no socialctl sink answers at {otlp}/api/stats; client spans go to {otlp}/v1/traces anyway, but live trace completeness is off"
        ));
    }
    install_logger();
    let provider = telemetry::standalone_provider(
        "socialctl",
        env!("CARGO_PKG_VERSION"),
        &format!("{otlp}/v1/traces"),
    )
    .context("could not set up span export for the load's CLIENT spans")?;
    let record_path = a
        .record
        .clone()
        .unwrap_or_else(|| default_record(&a.stack.dir()));
    let control = Arc::new(Control::with_sign_in_phase(a.duration, a.users));
    let recorder = Recorder::start(&record_path, control.started())?;
    let pacer = a
        .rate
        .map(|r| Arc::new(Pacer::new(control.started() + a.ramp(), r)));
    let gw_url = reqwest::Url::parse(&t.gateway)?;
    let shared = Arc::new(user::Shared {
        zipf: crate::seed::Zipf::new(workload.users, workload.popularity),
        workload: workload.clone(),
        control: control.clone(),
        pacer: pacer.clone(),
        recorder: recorder.handle(),
        tracer: provider.tracer("socialctl-load"),
        next_user: AtomicUsize::new(0),
        run_tag: format!("{:x}", chrono::Utc::now().timestamp() % 0xff_ffff),
        server_address: gw_url.host_str().unwrap_or("127.0.0.1").to_owned(),
        server_port: gw_url.port_or_known_default().unwrap_or(80),
        gateway: t.gateway.trim_end_matches('/').to_owned(),
    });
    let mode = match a.rate {
        Some(r) => format!("open model, {r} requests/s"),
        None => "closed model".to_owned(),
    };
    goose::reset_killswitch();
    let attack = GooseAttack::initialize_with_config(
        goose::config::GooseConfiguration::parse_args_default(&[] as &[&str])
            .map_err(|e| anyhow::anyhow!("goose configuration: {e}"))?,
    )?
    .register_scenario(shared.scenario())
    // Users send on connections of their own (load/conn.rs), never through goose's
    // client: one shared client, built once, instead of one per user (each loads the
    // system's certificates).
    .set_client_builder_without_cookies(GooseClientBuilder::new().without_cookies())?
    .set_default(GooseDefault::Host, t.gateway.as_str())?
    .set_default(GooseDefault::Users, a.users)?
    .set_default(
        GooseDefault::IncreaseRate,
        increase_rate(a.users, a.ramp()).as_str(),
    )?
    // socialctl ends the run itself, to the millisecond; goose's run time is a backstop.
    .set_default(GooseDefault::RunTime, a.duration.as_secs() as usize + 3600)?
    .set_default(GooseDefault::Quiet, 1)?
    .set_default(GooseDefault::NoMetrics, true)?
    .set_default(GooseDefault::NoPrintMetrics, true)?
    .set_default(GooseDefault::NoErrorSummary, true)?
    .set_default(GooseDefault::NoTelnet, true)?
    .set_default(GooseDefault::Timeout, "30")?;
    // The users run on one thread of their own: their requests wait on the network, not
    // on the CPU, and one event loop costs less per request than work-stealing between
    // threads (every wake-up across threads is a futex call). Spans are exported, and the
    // record written, by threads of their own.
    let attack_task = tokio::task::spawn_blocking(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(goose::GooseError::Io)?
            .block_on(attack.execute())
    });

    let live = live::LiveTraces::new(&otlp, sink_answers);
    let view = live::RunView {
        mode: mode.clone(),
        users: a.users,
        duration: a.duration,
        stats: recorder.stats.clone(),
        control: control.clone(),
        live: live.clone(),
        target: a.stack.target(),
    };
    let (ending, joined) = if tui {
        crate::load::view::run_load(&view, attack_task).await?
    } else {
        live::plain_progress(&view, attack_task).await
    };
    // Goose has stopped every user; their last requests are recorded.
    let attack_result = match joined {
        Ok(r) => r.map(|_| ()).map_err(|e| anyhow::anyhow!("goose: {e}")),
        Err(e) => Err(anyhow::anyhow!("the load task failed: {e}")),
    };
    let elapsed = control
        .elapsed()
        .saturating_sub(control.paused_total())
        .min(a.duration)
        .as_secs_f64();
    let stats = recorder.finish()?;
    let flush = tokio::task::spawn_blocking(move || {
        provider.shutdown_with_timeout(Duration::from_secs(15))
    });
    let _ = flush.await;
    let spans = telemetry::export_stats();
    let (sign_in, delivery, (endpoints, total, thresholds)) = {
        let stats = stats.lock().unwrap_or_else(|e| e.into_inner());
        (
            Report::sign_in_row(&stats, elapsed),
            Report::delivery_row(&stats, elapsed),
            Report::build(&stats, elapsed, &workload.thresholds),
        )
    };
    let unsent = pacer.map(|p| {
        let end = control.started() + Duration::from_secs_f64(elapsed) + control.paused_total();
        p.due(end, &control).saturating_sub(p.taken())
    });
    let report = Report {
        mode,
        target: format!("{} via {}", t.gateway, t.path),
        users: a.users,
        seconds: elapsed,
        stopped_by: ending.describe().into(),
        sign_in,
        sign_in_seconds: control.sign_in_phase().as_secs_f64(),
        endpoints,
        total,
        delivery,
        thresholds,
        unsent,
        client_spans: ClientSpans {
            ended: spans.ended,
            exported: spans.exported,
            failed: spans.failed,
        },
        record: record_path.display().to_string(),
    };
    attack_result?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if a.csv {
        print!("{}", report.csv());
    } else {
        print!("{}", report.render());
    }
    for w in kept_warnings() {
        eprintln!("load: {w}");
    }
    let mut ok = report.passed();
    if a.verify {
        let v = crate::cmd::verify::VerifyArgs {
            sink: Some(t.otlp.clone()),
            jaeger: None,
            file: None,
            specs: None,
            sent: Some(record_path.clone()),
            min_completeness: 100.0,
            clock_skew_ms: 5.0,
            timeout: 30,
            settle_ms: 2000,
            raw_clocks: false,
            json: false,
            stack: a.stack.clone(),
        };
        eprintln!("load: checking the trace of every request sent");
        ok &= crate::cmd::verify::verify_traces(&v).await? == ExitCode::SUCCESS;
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
