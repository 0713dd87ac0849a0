//! `socialctl sim`: thousands of phones with sessions, flaky networks, offline buffers
//! and wrong clocks (the simulator is `sim/`), then a report per screen, per network
//! and per kind of bad request, and the trace of every request accounted for.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use anyhow::Context as _;
use scenarios::sim::Profile;
use scenarios::workload::parse_duration;

use super::StackArgs;
use crate::sim;

#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = "\
Examples:
  socialctl sim --devices 50 --duration 20s        a short run against the running stack
  socialctl sim --devices 2000 --duration 5m       a crowd, mostly thinking
  socialctl sim --profile my-phones.profile --json  an edited population (see scenarios/sim/phones.profile)

Each phone is a person with the app: a cold start and sign-in, screens (timeline with
paging, posts, profiles, likes, comments, posts, messages) with think times, trips to
the background (a warm start and a token refresh; the session id rotates after 15
minutes away or 4 hours), a network of its own (wifi or cell: latency, timeouts, failed
connections; idempotent calls retried with backoff, others not), periods offline (its
spans wait in a bounded on-device buffer and arrive late), sometimes a wrong clock, and
a share of deliberately bad requests, each of which must get a 4xx with the JSON error
body. Exit 1 when one did not, or when a trace is incomplete. On a terminal a live view
shows screens per second, latency per network, phones online and offline, spans waiting
on phones and trace completeness; q or Ctrl-C ends the run early, and the report still
comes.")]
pub struct SimArgs {
    #[command(flatten)]
    pub stack: StackArgs,
    /// Phones to simulate.
    #[arg(long, default_value_t = 50)]
    pub devices: usize,
    /// Length of the run: 30s, 5m.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Time to start every phone [default: a fifth of --duration, at most 10s].
    #[arg(long, value_parser = parse_duration)]
    pub ramp: Option<Duration>,
    /// Population file (default: the built-in scenarios/sim/phones.profile).
    #[arg(long)]
    pub profile: Option<PathBuf>,
    /// Seed of the population's draws (device models, networks, clocks): the same seed
    /// makes the same phones.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The stack's gateway [default: the running stack's].
    #[arg(long)]
    pub gateway: Option<String>,
    /// Where the phones upload their spans (OTLP/HTTP) [default: the running stack's sink].
    #[arg(long)]
    pub otlp: Option<String>,
    /// Where to write one JSON line per request sent [default: in the state directory].
    #[arg(long)]
    pub record: Option<PathBuf>,
    /// Skip checking every request's trace at the end.
    #[arg(long)]
    pub no_verify: bool,
    /// Plain progress lines even on a terminal (no full-screen view).
    #[arg(long)]
    pub no_tui: bool,
    /// Do not seed the population when the stack has none.
    #[arg(long)]
    pub no_seed: bool,
    /// Print the report as JSON (alone on stdout: the traces are then not checked here;
    /// `socialctl verify-traces --sent RECORD` checks them).
    #[arg(long)]
    pub json: bool,
}

fn load_profile(a: &SimArgs) -> anyhow::Result<Profile> {
    match &a.profile {
        None => Ok(Profile::phones()),
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("could not read {}", p.display()))?;
            Profile::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))
        }
    }
}

pub async fn run(a: &SimArgs) -> anyhow::Result<ExitCode> {
    if a.devices == 0 || a.devices > 100_000 {
        anyhow::bail!("--devices is 1 to 100000");
    }
    let profile = load_profile(a)?;
    let (gateway, otlp, path) = super::load::direct_or_published(&a.stack, false).await;
    let gateway = a.gateway.clone().unwrap_or(gateway);
    let otlp = a.otlp.clone().unwrap_or(otlp);
    let addr = a.stack.addresses();
    let aim = super::load::Aim {
        gateway: gateway.clone(),
        otlp: otlp.clone(),
        servers: crate::seed::Servers {
            database_url: addr.postgres,
            redis_url: addr.redis,
        },
        path: path.clone(),
    };
    let say = |m: &str| eprintln!("sim: {m}");
    super::load::preflight(&aim, profile.users, &profile.password, a.no_seed, &say).await?;
    let ramp = a
        .ramp
        .unwrap_or_else(|| (a.duration / 5).min(Duration::from_secs(10)));
    say(&format!(
        "{} phones for {} s (started over {:.1} s) against {gateway} via {path}; spans uploaded to {otlp}",
        a.devices,
        a.duration.as_secs(),
        ramp.as_secs_f64()
    ));
    let shared = Arc::new(sim::Shared::new(profile, &gateway, &otlp, a.seed)?);
    let devices = a.devices;
    let tui =
        !a.no_tui && !a.json && std::io::stdout().is_terminal() && std::io::stderr().is_terminal();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let view = if tui {
        let traces =
            crate::load::live::LiveTraces::new(&otlp, crate::load::live::sink_answers(&otlp).await);
        Some(sim::view::show(
            shared.clone(),
            devices,
            a.duration,
            a.stack.target(),
            traces,
            done.clone(),
        ))
    } else {
        None
    };
    let plain = view.is_none();
    // The traces still waiting on phones, and those that lost a span, for a
    // `verify-traces` run meanwhile or later.
    let dir = a.stack.dir();
    let pending_file = sim::pending_file(&dir);
    let lists = {
        let (shared, dir) = (shared.clone(), dir.clone());
        tokio::spawn(async move {
            loop {
                shared.write_lists(&dir);
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        })
    };
    // Ctrl-C (or q in the live view) ends the run early; the report still comes.
    let interrupt = {
        let shared = shared.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!(
                    "sim: stopping early; the phones upload what they kept and the report follows"
                );
                shared.quit();
            }
        })
    };
    let (phones, sent, seconds) = sim::run(shared.clone(), devices, a.duration, ramp, |c, t| {
        if !plain {
            return;
        }
        let spans = c.spans.load(Relaxed);
        let up = c.uploaded.load(Relaxed);
        let dropped = c.dropped.load(Relaxed);
        eprintln!(
            "sim: {:>4.0} s  {} phones started, {} screens, {} sessions, {} offline periods; spans: {} made, {} uploaded, {} waiting on phones, {} dropped",
            t.as_secs_f64(),
            c.started.load(Relaxed),
            c.screens.load(Relaxed),
            c.sessions.load(Relaxed),
            c.offline_periods.load(Relaxed),
            spans,
            up,
            spans.saturating_sub(up + dropped),
            dropped
        );
    })
    .await;
    interrupt.abort();
    lists.abort();
    shared.write_lists(&dir);
    let _ = std::fs::remove_file(&pending_file);
    if let Some((screen, tasks)) = view {
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        let drawn = tokio::task::spawn_blocking(move || screen.join()).await;
        for t in tasks {
            t.abort();
        }
        if !matches!(drawn, Ok(Ok(Ok(())))) {
            eprintln!("sim: the live view stopped unexpectedly; the run went on");
        }
    }

    // Requests whose phone dropped one of their spans from a full buffer cannot have a
    // whole trace: they are reported with the phone's drop count, not checked.
    let lost = shared.dropped_traces();
    let record = a.record.clone().unwrap_or_else(|| {
        a.stack.dir().join("runs").join(format!(
            "sim-{}.jsonl",
            chrono::Local::now().format("%Y%m%d-%H%M%S")
        ))
    });
    if let Some(dir) = record.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("could not create {}", dir.display()))?;
    }
    let mut lines = String::new();
    for s in sent.iter().filter(|s| !lost.contains(&s.trace_id)) {
        lines.push_str(&serde_json::to_string(s)?);
        lines.push('\n');
    }
    std::fs::write(&record, lines)
        .with_context(|| format!("could not write {}", record.display()))?;
    let report = sim::report(
        &shared,
        &phones,
        seconds,
        lost.len(),
        record.display().to_string(),
    );
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    let mut ok = report.defects.is_empty();
    if !a.no_verify && !a.json {
        let v = super::verify::VerifyArgs {
            sink: Some(otlp.clone()),
            jaeger: None,
            file: None,
            specs: None,
            sent: Some(record.clone()),
            min_completeness: 100.0,
            clock_skew_ms: 5.0,
            timeout: 30,
            settle_ms: 2000,
            raw_clocks: false,
            json: false,
            stack: a.stack.clone(),
        };
        eprintln!("sim: checking the trace of every request sent");
        ok &= super::verify::verify_traces(&v).await? == ExitCode::SUCCESS;
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
