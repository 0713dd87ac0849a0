//! `socialctl bench`: requests/s and latency of `GET /api/feed/timeline` through the
//! gateway on a seeded data set, with tracing on (100 % sampling, exporting to the sink)
//! and off (`OTEL_SDK_DISABLED=true`), measured in the same run, and the overhead ratio.
//!
//! A closed loop of `--concurrency` workers, each reading a random logged-in user's
//! timeline back to back for `--duration` after a warm-up. Both the load generator and
//! the stack share this machine's cores, so the figures are the system's throughput
//! with its own client, not the server's alone.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use hdrhistogram::Histogram;
use rand::Rng;
use rand::seq::SliceRandom;

use super::StackArgs;
use crate::load::conn::{Conn, Outgoing};
use crate::runtime::{AnyRuntime, Runtime as _};
use crate::stack::{Stack, StackConfig};

const TIMELINE: &str = "/api/feed/timeline";

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub stack: StackArgs,
    /// Concurrent connections of the closed-loop load.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Measured seconds per mode and round.
    #[arg(long, default_value_t = 20)]
    pub duration: u64,
    /// Unmeasured seconds before each measurement (connections, caches, JIT-free warm-up).
    #[arg(long, default_value_t = 5)]
    pub warmup: u64,
    /// Distinct users whose timelines are read.
    #[arg(long, default_value_t = 200)]
    pub sample_users: usize,
    /// Rounds; each measures both modes (alternating which goes first), and the report
    /// gives each mode's median and spread.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Measure the data as it is instead of a fresh copy of the fixed data set. Figures
    /// then depend on what ran before (a load run adds posts and fills caches).
    #[arg(long)]
    pub reuse_data: bool,
    /// Print the figures (every round, the medians, the overhead) as one JSON document on
    /// stdout; progress and the table go to stderr.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub seed: crate::seed::SeedArgs,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Figures {
    pub mode: &'static str,
    pub requests: u64,
    pub errors: u64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// The running stack's settings (or a default stack's), with tracing on or off.
fn base_config(recorded: &StackConfig, tracing: bool) -> StackConfig {
    let mut cfg = recorded.clone();
    // The benchmark logs in hundreds of users from one address.
    cfg.env
        .insert("AUTH_LOGIN_IP_LIMIT".into(), "1000000".into());
    cfg.env
        .insert("AUTH_LOGIN_ACCOUNT_LIMIT".into(), "1000000".into());
    cfg.env
        .insert("AUTH_REGISTER_IP_LIMIT".into(), "1000000".into());
    cfg.env.insert("RUST_LOG".into(), "warn".into());
    if tracing {
        cfg.env.remove("OTEL_SDK_DISABLED");
    } else {
        cfg.env.insert("OTEL_SDK_DISABLED".into(), "true".into());
    }
    cfg
}

/// Restarts what changed (the services' environment) on the stack's own runtime.
async fn apply(
    rt: &AnyRuntime,
    a: &BenchArgs,
    recorded: &StackConfig,
    tracing: bool,
) -> anyhow::Result<()> {
    let stack = Stack::new(base_config(recorded, tracing));
    rt.up(&stack).await?;
    crate::runtime::record(rt, &stack, &a.stack.dir(), &a.stack.project).await?;
    Ok(())
}

async fn login(
    client: &reqwest::Client,
    base: &str,
    user: &str,
    password: &str,
) -> anyhow::Result<String> {
    let res = client
        .post(format!("{base}/api/auth/login"))
        .json(&serde_json::json!({"username": user, "password": password}))
        .send()
        .await
        .context("login request failed; is the gateway up?")?;
    if !res.status().is_success() {
        bail!(
            "login as {user} failed: HTTP {} {}",
            res.status(),
            res.text().await.unwrap_or_default()
        );
    }
    let v: serde_json::Value = res.json().await?;
    v["access_token"]
        .as_str()
        .map(str::to_owned)
        .context("login answered without an access token")
}

/// The closed loop: `concurrency` workers, each on one kept-alive connection of its own
/// (the load generator's lean HTTP/1.1 client, not reqwest's pool, so the client takes as
/// little of the machine's two cores as it can), reading random users' timelines back to
/// back until `secs` have passed.
async fn load(
    base: &str,
    tokens: &Arc<Vec<String>>,
    concurrency: usize,
    secs: u64,
) -> anyhow::Result<(Histogram<u64>, u64, u64, f64)> {
    let url = reqwest::Url::parse(base).with_context(|| format!("bad gateway address {base}"))?;
    let host = url.host_str().unwrap_or("127.0.0.1").to_owned();
    let port = url.port_or_known_default().unwrap_or(80);
    let stop = Instant::now() + Duration::from_secs(secs);
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let tokens = tokens.clone();
        let mut conn = Conn::new(&host, port, Duration::from_secs(30))?;
        tasks.push(tokio::spawn(async move {
            let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)
                .expect("valid histogram bounds");
            let (mut ok, mut err) = (0u64, 0u64);
            while Instant::now() < stop {
                let token = &tokens[rand::rng().random_range(0..tokens.len())];
                let t = Instant::now();
                let res = conn
                    .send(Outgoing {
                        method: http::Method::GET,
                        path: TIMELINE,
                        bearer: Some(token),
                        body: None,
                        traceparent: None,
                    })
                    .await;
                let _ = h.record(t.elapsed().as_micros() as u64);
                match res {
                    Ok(r) if (200..300).contains(&r.status) => ok += 1,
                    _ => err += 1,
                }
            }
            (h, ok, err)
        }));
    }
    let mut all =
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds");
    let (mut ok, mut err) = (0, 0);
    for t in tasks {
        if let Ok((h, o, e)) = t.await {
            let _ = all.add(&h);
            ok += o;
            err += e;
        }
    }
    Ok((all, ok, err, t0.elapsed().as_secs_f64()))
}

fn figures(mode: &'static str, h: &Histogram<u64>, ok: u64, err: u64, secs: f64) -> Figures {
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    Figures {
        mode,
        requests: ok + err,
        errors: err,
        rps: ok as f64 / secs,
        p50_ms: ms(0.5),
        p90_ms: ms(0.9),
        p99_ms: ms(0.99),
        max_ms: h.max() as f64 / 1000.0,
    }
}

pub async fn run(a: &BenchArgs) -> anyhow::Result<ExitCode> {
    if a.json {
        crate::runtime::progress::to_stderr();
    }
    let target = a.stack.target();
    let (rt, recorded) = match a.stack.recorded() {
        Some(state) => (target.in_use().await?, state.config),
        None => (
            target.for_up().await?,
            StackConfig {
                secrets: crate::stack::secrets::Secrets::load_or_create(&target.dir)?,
                ..StackConfig::default()
            },
        ),
    };
    crate::say!(
        "bench: on the {} runtime's stack (tracing on)",
        rt.kind().name()
    );
    apply(&rt, a, &recorded, true).await?;
    let addr = a.stack.addresses();
    // On Docker, the gateway's container address when the host reaches it: the
    // published port adds the engine's userland proxy to every request.
    let base = match addr.direct.get("gateway") {
        Some(g) if super::load::answers(g).await => format!("http://{g}"),
        _ => addr.gateway.clone(),
    };
    crate::say!("bench: sending to {base}");
    let base = base.as_str();
    let servers = crate::seed::Servers::of(&a.seed, a.stack.addresses());
    let auth_users = crate::seed::count_users(&servers.database_url)
        .await
        .unwrap_or(0);
    if !a.reuse_data || auth_users < a.seed.users as i64 {
        // Every run measures the same data in the same state: a fresh copy of the fixed
        // data set (seed --reset, fixed random seed) with Redis emptied, so a load run or
        // an earlier benchmark cannot tilt the figures.
        let foreign = crate::seed::foreign_accounts(&servers.database_url).await?;
        if foreign > 0 && !a.seed.reset {
            anyhow::bail!(
                "this stack holds {foreign} account(s) socialctl did not make, and bench replaces all data with its fixed data set. \
                 Run bench on a stack of its own (`socialctl up --project bench --gateway-port 18080 --service-base-port 18081 \
                 --postgres-port 25432 --redis-port 26379 --otlp-http-port 24318 --otlp-grpc-port 24317`, then \
                 `socialctl bench --project bench`), or pass --reset to replace this stack's data"
            );
        }
        crate::say!(
            "bench: loading the fixed data set afresh: {} users / {} posts (seed {})",
            a.seed.users,
            a.seed.posts,
            a.seed.seed
        );
        let s = crate::seed::seed(
            &crate::seed::SeedArgs {
                reset: true,
                ..a.seed.clone()
            },
            &servers,
        )
        .await?;
        crate::say!(
            "bench: seeded in {:.1} s ({} follows, max followers {}, {} celebrities)",
            s.seconds,
            s.follows,
            s.max_followers,
            s.over_1000_followers
        );
    } else {
        crate::say!("bench: reusing the seeded data set ({auth_users} users)");
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(a.concurrency * 2)
        .build()?;
    let mut users: Vec<usize> = (0..a.seed.users).collect();
    users.shuffle(&mut rand::rng());
    users.truncate(a.sample_users);
    let url = format!("{base}{TIMELINE}");
    let prepare = |tracing: bool| {
        let (client, url, users) = (client.clone(), url.clone(), users.clone());
        let (rt, recorded) = (&rt, &recorded);
        async move {
            apply(rt, a, recorded, tracing).await?;
            let mut tokens = Vec::new();
            for u in &users {
                tokens.push(
                    login(&client, base, &crate::seed::username(*u), &a.seed.password).await?,
                );
            }
            // Materialise every sampled timeline, then warm up, so both modes measure
            // warm reads.
            for t in &tokens {
                let _ = client.get(&url).bearer_auth(t).send().await;
            }
            let tokens = Arc::new(tokens);
            load(base, &tokens, a.concurrency, a.warmup).await?;
            anyhow::Ok(tokens)
        }
    };
    crate::say!("bench: warm-up round (not measured)");
    prepare(true).await?;
    let mut results: Vec<Figures> = Vec::new();
    for round in 0..a.rounds {
        // Alternate the order, so drift during the run (caches, page writes) does not
        // always favour the same mode.
        let order = if round % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for tracing in order {
            let mode = if tracing { "tracing on" } else { "tracing off" };
            crate::say!("bench: round {}/{}: {mode}", round + 1, a.rounds);
            let tokens = prepare(tracing).await?;
            let (h, ok, err, secs) = load(base, &tokens, a.concurrency, a.duration).await?;
            let f = figures(mode, &h, ok, err, secs);
            crate::say!(
                "       {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, errors {}",
                f.rps,
                f.p50_ms,
                f.p99_ms,
                f.errors
            );
            results.push(f);
        }
    }
    let summary = report(&results);
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "rounds": results,
                "summary": summary,
            }))?
        );
    }
    // The stack as it was before the benchmark: its own settings, not bench's.
    let stack = Stack::new(recorded.clone());
    rt.up(&stack).await?;
    crate::runtime::record(&rt, &stack, &a.stack.dir(), &a.stack.project).await?;
    Ok(ExitCode::SUCCESS)
}

/// Median, minimum and maximum of one figure over rounds.
fn spread(v: &[&Figures], f: impl Fn(&Figures) -> f64) -> (f64, f64, f64) {
    let mut xs: Vec<f64> = v.iter().map(|x| f(x)).collect();
    xs.sort_by(f64::total_cmp);
    if xs.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let n = xs.len();
    let median = if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    };
    (median, xs[0], xs[n - 1])
}

/// The medians the report prints, for `--json`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    pub rounds: usize,
    pub rps_on: f64,
    pub rps_on_min: f64,
    pub rps_on_max: f64,
    pub rps_off: f64,
    pub rps_off_min: f64,
    pub rps_off_max: f64,
    pub p99_on_ms: f64,
    pub p99_off_ms: f64,
    pub overhead_pct: f64,
}

fn report(results: &[Figures]) -> Summary {
    crate::say!(
        "\n{:<12} {:>9} {:>8} {:>9} {:>9} {:>9} {:>9} {:>7}",
        "mode",
        "requests",
        "req/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "errors"
    );
    for r in results {
        crate::say!(
            "{:<12} {:>9} {:>8.0} {:>9.2} {:>9.2} {:>9.2} {:>9.1} {:>7}",
            r.mode,
            r.requests,
            r.rps,
            r.p50_ms,
            r.p90_ms,
            r.p99_ms,
            r.max_ms,
            r.errors
        );
    }
    let on: Vec<&Figures> = results.iter().filter(|r| r.mode == "tracing on").collect();
    let off: Vec<&Figures> = results.iter().filter(|r| r.mode == "tracing off").collect();
    let (rps_on, on_lo, on_hi) = spread(&on, |f| f.rps);
    let (rps_off, off_lo, off_hi) = spread(&off, |f| f.rps);
    let (p99_on, p99_on_lo, p99_on_hi) = spread(&on, |f| f.p99_ms);
    let (p99_off, ..) = spread(&off, |f| f.p99_ms);
    let overhead = 100.0 * (1.0 - rps_on / rps_off);
    crate::say!(
        "\nmedian of {} round(s) [min–max]: tracing on {rps_on:.0} req/s [{on_lo:.0}–{on_hi:.0}], \
         p99 {p99_on:.2} ms [{p99_on_lo:.2}–{p99_on_hi:.2}]; off {rps_off:.0} req/s [{off_lo:.0}–{off_hi:.0}], p99 {p99_off:.2} ms",
        on.len()
    );
    crate::say!(
        "tracing overhead: {overhead:.1} % of throughput (medians); p99 ratio on/off {:.2}; \
         round-to-round spread {:.1} % (on) and {:.1} % (off) of the median",
        p99_on / p99_off,
        100.0 * (on_hi - on_lo) / rps_on,
        100.0 * (off_hi - off_lo) / rps_off
    );
    let goal = |ok: bool| if ok { "met" } else { "NOT met" };
    crate::say!(
        "goals: ≥ 3000 req/s traced: {}; p99 ≤ 50 ms traced: {}; overhead ≤ 3 %: {}",
        goal(rps_on >= 3000.0),
        goal(p99_on <= 50.0),
        goal(overhead <= 3.0)
    );
    Summary {
        rounds: on.len(),
        rps_on,
        rps_on_min: on_lo,
        rps_on_max: on_hi,
        rps_off,
        rps_off_min: off_lo,
        rps_off_max: off_hi,
        p99_on_ms: p99_on,
        p99_off_ms: p99_off,
        overhead_pct: overhead,
    }
}
