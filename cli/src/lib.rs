//! socialctl boots, drives and checks the socialnet stack. This file is the command
//! line (`Cli`) and its dispatch; each verb lives in `cmd/`.
//!
//! Layers, each using only those below it: `cmd` (verbs) → `load`, `tui` (scenarios and
//! their drawing) → `runtime` (Docker, local) and `render` (Compose) → `stack` (the
//! component table, its recipes and recorded state).
//!
//! Exit codes: **0** success; **1** a check fell short (a benchmark or verification goal);
//! **2** usage or runtime error (the message says what went wrong and what to do).

pub mod cmd;
pub mod load;
pub mod render;
pub mod runtime;
pub mod seed;
pub mod sim;
pub mod stack;
pub mod tui;

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
    Up(Box<cmd::up::UpArgs>),
    /// Stop every component socialctl started for this stack (data is kept unless
    /// --volumes).
    Down(cmd::down::DownArgs),
    /// Show each component's state, health, pid, uptime and memory.
    Status(cmd::status::StatusArgs),
    /// Print a component's log (`-f` to follow).
    Logs(cmd::logs::LogsArgs),
    /// Run the OTLP trace sink on its own (gRPC and HTTP receivers plus query API).
    Sink(cmd::sink::SinkArgs),
    /// Fill the running stack's databases with a realistic data set.
    Seed(cmd::seed::SeedCmd),
    /// Drive the running stack with a social network's day: users who sign in, read
    /// timelines, view profiles, search, follow, post, like and comment.
    ///
    /// Every request starts its trace here (a CLIENT span sent as traceparent) and is
    /// recorded with its trace id, so `verify-traces --sent` accounts for each one. On a
    /// terminal a live view shows throughput, latency, errors, components and trace
    /// completeness (q quits, p pauses); elsewhere, progress lines. Ends with a
    /// per-endpoint report; exit 1 when a threshold is not met.
    Load(Box<cmd::load::LoadArgs>),
    /// Simulate a population of phones: sessions, screens, flaky networks, offline
    /// buffers, wrong clocks and deliberately bad requests, each phone with its own
    /// telemetry resource. Ends with a report per screen, network and bad-request kind,
    /// and every request's trace checked; exit 1 on a defect.
    Sim(Box<cmd::sim::SimArgs>),
    /// Watch the running stack: component health, traffic and trace completeness (no load).
    Top(cmd::top::TopArgs),
    /// Benchmark GET /api/feed/timeline through the gateway, tracing on vs off.
    Bench(Box<cmd::bench::BenchArgs>),
    /// Benchmark messaging's live delivery: sockets through the gateway, delivery latency
    /// at a fixed message rate, memory per idle socket (needs `socialctl seed`).
    BenchMessaging(cmd::bench_messaging::BenchMessagingArgs),
    /// Benchmark a large video upload through the gateway: throughput, media's memory
    /// during it (streamed: goal under 64 MiB), time until its poster is ready.
    BenchMedia(cmd::bench_media::BenchMediaArgs),
    /// Benchmark the web frontend's home page: server time at a fixed rate (p50/p99),
    /// the page's weight, and its load time in a headless Chromium.
    BenchWeb(cmd::bench_web::BenchWebArgs),
    /// Break a component on purpose (kill, stop, pause, restart; network faults through
    /// the fault proxy; application faults) and heal it by itself after --duration;
    /// Ctrl-C or `chaos heal` heals at once. Fault windows go to the sink. `chaos run`
    /// runs an experiment file.
    Chaos(cmd::chaos::ChaosArgs),
    /// The teaching faults: realistic bugs to find in the traces (N+1 queries, a missing
    /// index, lost context, a retry storm, a swallowed error, a wrong sampler, a clock
    /// offset …), listed with their symptoms and switched on or off in the running
    /// services with no restart.
    Fault(cmd::fault::FaultArgs),
    /// The workshop (tutorials/): `lab check N` says whether lab N is done and what is
    /// still missing; `lab answer`, `lab env`, `lab token` and `lab oncall` serve the labs.
    Lab(cmd::lab::LabArgs),
    /// Benchmark the sink: OTLP ingest rate (HTTP, gRPC), verification time, memory per span.
    BenchSink(cmd::bench_sink::BenchSinkArgs),
    /// Check that every trace in the sink (or Jaeger, or a file) arrived whole.
    ///
    /// Waits until the services' span queues are drained, then checks each trace: one
    /// root, no orphans, client/server pairs, timing, ends, error propagation, required
    /// attributes, and the endpoint's expected spans (trace specs). Exit 0 at or above
    /// --min-completeness, 1 below, 2 on error.
    VerifyTraces(cmd::verify::VerifyArgs),
    /// Show recent traces (or one trace) from the sink as trees.
    Traces(cmd::verify::TracesArgs),
    /// Build, export or import the stack's images (offline workshop rooms).
    #[command(subcommand)]
    Images(cmd::images::ImagesCommand),
    /// Print the stack as a Compose file (what compose/docker-compose.yml holds).
    Compose(Box<cmd::compose::ComposeArgs>),
    /// Print a shell completion script (bash, zsh, fish).
    Completions(cmd::completions::CompletionsArgs),
    /// Exit 0 when URL answers 2xx within 2 s (the Compose file's health check).
    #[command(hide = true)]
    Probe { url: String },
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
    let done = |r: anyhow::Result<()>| r.map(|()| ExitCode::SUCCESS);
    match cli.command {
        Command::Up(a) => cmd::up::run(&a).await,
        Command::Down(a) => done(cmd::down::run(&a).await),
        Command::Status(a) => done(cmd::status::run(&a).await),
        Command::Logs(a) => done(cmd::logs::run(&a).await),
        Command::Images(c) => done(cmd::images::run(&c).await),
        Command::Compose(a) => {
            cmd::compose::run(&a);
            Ok(ExitCode::SUCCESS)
        }
        Command::Completions(a) => {
            cmd::completions::run(&a);
            Ok(ExitCode::SUCCESS)
        }
        Command::Probe { url } => cmd::probe::run(&url).await,
        Command::Sink(a) => done(cmd::sink::run(&a).await),
        Command::Seed(a) => done(cmd::seed::run(&a).await),
        Command::Load(a) => cmd::load::run(&a).await,
        Command::Sim(a) => cmd::sim::run(&a).await,
        Command::Top(a) => cmd::top::run(&a).await,
        Command::Bench(a) => cmd::bench::run(&a).await,
        Command::BenchSink(a) => cmd::bench_sink::run(&a).await,
        Command::BenchMessaging(a) => done(cmd::bench_messaging::run(&a).await),
        Command::BenchMedia(a) => done(cmd::bench_media::run(&a).await),
        Command::BenchWeb(a) => done(cmd::bench_web::run(&a).await),
        Command::Chaos(a) => cmd::chaos::run(&a).await,
        Command::Fault(a) => done(cmd::fault::run(&a).await),
        Command::Lab(a) => cmd::lab::run(&a).await,
        Command::VerifyTraces(a) => cmd::verify::verify_traces(&a).await,
        Command::Traces(a) => done(cmd::verify::traces(&a).await),
    }
}
