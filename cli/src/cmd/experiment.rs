//! `socialctl chaos run FILE`: a chaos experiment (`scenarios/chaos/*.experiment`,
//! parsed by `scenarios::experiment`). Checks the steady-state hypothesis on a short
//! load, runs the method (the load, and each fault at its time, as `socialctl chaos`
//! itself), rolls back, checks the hypothesis again, and writes a journal (JSON).
//! Exit 0 when the steady state held before, during (the `during` tolerances) and
//! after; 1 when it deviated, with each reason.
//!
//! Every phase runs `socialctl` itself as a child process (`load --json`,
//! `verify-traces --sent --json`, `chaos VERB`), so an experiment is exactly what a user
//! could type, and its journal keeps each command line with what it printed.

use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};
use chrono::{DateTime, Utc};
use clap::Parser as _;
use scenarios::experiment::{Experiment, Probe, Step};
use serde::Serialize;

#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = "\
Shipped experiments (scenarios/chaos/):
  feed-replica-killed    a feed replica dies; the gateway's retries hide it (needs --scale feed=2)
  postgres-slow          feed's database answers 150 ms late: the timeline slows, nothing fails
  redis-gone             Redis killed: caches are bypassed, timelines come from PostgreSQL
  feed-profile-partition feed cannot reach profile: its calls time out, its answers degrade
Network faults need a stack started with `socialctl up --fault-proxy`.")]
pub struct RunArgs {
    #[command(flatten)]
    pub stack: super::StackArgs,
    /// The experiment file, or the name of a shipped one (`feed-replica-killed`).
    pub file: String,
    /// Where to write the journal [default: experiments/ in the state directory].
    #[arg(long)]
    pub journal: Option<PathBuf>,
    /// Check the file (and the stack's fitness for it) without running anything.
    #[arg(long)]
    pub check: bool,
}

/// The experiments compiled in: (name, text).
pub const SHIPPED: &[(&str, &str)] = &[
    (
        "feed-replica-killed",
        include_str!("../../../scenarios/chaos/feed-replica-killed.experiment"),
    ),
    (
        "postgres-slow",
        include_str!("../../../scenarios/chaos/postgres-slow.experiment"),
    ),
    (
        "redis-gone",
        include_str!("../../../scenarios/chaos/redis-gone.experiment"),
    ),
    (
        "feed-profile-partition",
        include_str!("../../../scenarios/chaos/feed-profile-partition.experiment"),
    ),
];

/// The experiment's text and a name for it: a file, else a shipped experiment.
fn read(file: &str) -> anyhow::Result<(String, String)> {
    let path = Path::new(file);
    if path.exists() {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("could not read {}", path.display()))?;
        return Ok((path.display().to_string(), text));
    }
    let name = file.trim_end_matches(".experiment");
    match SHIPPED.iter().find(|(n, _)| *n == name) {
        Some((n, text)) => Ok((
            format!("scenarios/chaos/{n}.experiment"),
            (*text).to_owned(),
        )),
        None => bail!(
            "no file {file:?}, and no shipped experiment of that name; shipped: {}",
            SHIPPED
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// One probe's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub probe: String,
    pub actual: String,
    pub held: bool,
}

/// One load run and what the hypothesis made of it.
#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    pub name: String,
    pub started: DateTime<Utc>,
    pub ended: DateTime<Utc>,
    pub requests: u64,
    pub failures: u64,
    pub verdicts: Vec<Verdict>,
    /// The load's report and the verification's, as they printed them.
    pub load_report: serde_json::Value,
    pub verification: serde_json::Value,
}

/// A command the experiment ran (a fault, a rollback).
#[derive(Debug, Clone, Serialize)]
pub struct Ran {
    pub command: String,
    pub line: usize,
    pub started: DateTime<Utc>,
    pub exit_code: Option<i32>,
    pub output: String,
}

/// The journal.
#[derive(Debug, Clone, Serialize)]
pub struct Journal {
    pub experiment: String,
    pub title: String,
    pub started: DateTime<Utc>,
    pub ended: DateTime<Utc>,
    pub phases: Vec<Phase>,
    pub method: Vec<Ran>,
    pub rollbacks: Vec<Ran>,
    /// `held`, or `deviated`.
    pub result: String,
    pub deviations: Vec<String>,
}

/// A `socialctl` child for the stack of `a`.
fn child(a: &super::StackArgs) -> anyhow::Result<tokio::process::Command> {
    let exe = std::env::current_exe().context("could not find socialctl's own executable")?;
    let mut c = tokio::process::Command::new(exe);
    c.env("SOCIALNET_STATE_DIR", a.dir())
        .env("SOCIALNET_PROJECT", &a.project)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    Ok(c)
}

/// `socialctl chaos`'s own command line, to check a step as it will be parsed.
#[derive(clap::Parser)]
#[command(name = "chaos")]
struct ChaosLine {
    #[command(flatten)]
    _chaos: super::chaos::ChaosArgs,
}

/// Checks each step as `socialctl chaos` would parse it, naming the line.
fn check_steps(name: &str, steps: &[Step]) -> anyhow::Result<()> {
    for s in steps {
        let argv = std::iter::once("chaos".to_owned()).chain(s.argv.iter().cloned());
        if let Err(e) = ChaosLine::try_parse_from(argv) {
            let first = e.to_string();
            let first = first
                .lines()
                .next()
                .unwrap_or_default()
                .trim_start_matches("error: ");
            bail!("{name}: line {}: `{}`: {first}", s.line, s.argv.join(" "));
        }
        if matches!(s.argv[0].as_str(), "run" | "status" | "links") {
            bail!("{name}: line {}: `{}` is not a fault", s.line, s.argv[0]);
        }
    }
    Ok(())
}

/// Whether the running stack can run the experiment; why not, if not.
fn check_stack(e: &Experiment, a: &super::StackArgs) -> anyhow::Result<()> {
    let state = a.recorded().with_context(|| {
        format!(
            "no stack is up from {}; start one with `socialctl up`",
            a.dir().display()
        )
    })?;
    let stack = crate::stack::Stack::new(state.config);
    for (name, n) in &e.requires {
        let c = stack
            .component(name)
            .with_context(|| format!("the experiment requires {name}, which this stack has not"))?;
        let have = stack.replicas(c);
        if have < *n {
            bail!(
                "the experiment needs {n} replicas of {name}; this stack runs {have}: `socialctl up --scale {name}={n}` (after `socialctl down`)"
            );
        }
    }
    if e.needs_fault_proxy() && stack.component(crate::stack::FAULT_PROXY).is_none() {
        bail!(
            "the method has network faults, which need the fault proxy: `socialctl down && socialctl up --fault-proxy`"
        );
    }
    Ok(())
}

fn probe_args(probes: &[Probe]) -> Vec<String> {
    probes
        .iter()
        .filter_map(|p| match p {
            Probe::Threshold(t) => Some(t.to_string()),
            Probe::Complete(_) => None,
        })
        .flat_map(|t| ["--threshold".to_owned(), t])
        .collect()
}

/// Runs one load, verifies its traces, and judges `probes`.
async fn phase(
    a: &super::StackArgs,
    e: &Experiment,
    name: &str,
    duration: Duration,
    probes: &[Probe],
    dir: &Path,
    base: &Path,
) -> anyhow::Result<Phase> {
    let record = dir.join(format!("{name}.jsonl"));
    let started = Utc::now();
    let mut cmd = child(a)?;
    cmd.args(["load", "--json", "--no-tui"])
        .args(["--users", &e.load.users.to_string()])
        .args(["--duration", &format!("{}ms", duration.as_millis())])
        .arg("--record")
        .arg(&record);
    if let Some(r) = e.load.rate {
        cmd.args(["--rate", &r.to_string()]);
    }
    if let Some(w) = &e.load.workload {
        cmd.arg("--workload").arg(base.join(w));
    }
    if probe_args(probes).is_empty() {
        // Without rules of its own, the load would judge its workload's defaults.
        cmd.args(["--threshold", "error-rate<100%"]);
    }
    cmd.args(probe_args(probes));
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .await
        .context("could not run socialctl load")?;
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "socialctl load printed no report (exit {:?}); its messages are above",
            out.status.code()
        )
    })?;
    let ended = Utc::now();
    let verification: serde_json::Value = {
        let out = child(a)?
            .args(["verify-traces", "--json", "--sent"])
            .arg(&record)
            .stderr(Stdio::null())
            .output()
            .await
            .context("could not run socialctl verify-traces")?;
        serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
    };
    let mut verdicts: Vec<Verdict> = report["thresholds"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["rule"].as_str() != Some("error-rate<100%"))
        .map(|t| Verdict {
            probe: t["rule"].as_str().unwrap_or("?").to_owned(),
            actual: t["actual"].as_str().unwrap_or("?").to_owned(),
            held: t["passed"].as_bool().unwrap_or(false),
        })
        .collect();
    for p in probes {
        if let Probe::Complete(min) = p {
            // The verification's completeness is a ratio; the probe's a percentage.
            let got = verification["completeness"].as_f64().map(|c| c * 100.0);
            verdicts.push(Verdict {
                probe: p.to_string(),
                actual: got.map_or("no verification".into(), |c| format!("{c:.3}%")),
                held: got.is_some_and(|c| c + 1e-9 >= *min),
            });
        }
    }
    Ok(Phase {
        name: name.to_owned(),
        started,
        ended,
        requests: report["total"]["requests"].as_u64().unwrap_or(0),
        failures: report["total"]["failures"].as_u64().unwrap_or(0),
        verdicts,
        load_report: report,
        verification,
    })
}

/// Runs one `socialctl chaos` command to its end.
async fn run_step(a: &super::StackArgs, s: &Step, started: DateTime<Utc>) -> Ran {
    let command = format!("socialctl chaos {}", s.argv.join(" "));
    let out = match child(a) {
        Ok(mut c) => c.arg("chaos").args(&s.argv).output().await.ok(),
        Err(_) => None,
    };
    let (exit_code, output) = match out {
        Some(o) => (
            o.status.code(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        ),
        None => (None, "could not start socialctl".into()),
    };
    Ran {
        command,
        line: s.line,
        started,
        exit_code,
        output,
    }
}

/// Prints a phase's verdicts and adds each probe that failed to `deviations` (`when`:
/// `before the method`, …); whether every probe held.
fn judge(p: &Phase, when: &str, deviations: &mut Vec<String>) -> bool {
    println!(
        "  {}: {} requests, {} failed",
        p.name, p.requests, p.failures
    );
    for v in &p.verdicts {
        println!(
            "    {} {:<40} {}",
            if v.held { "ok  " } else { "FAIL" },
            v.probe,
            v.actual
        );
        if !v.held {
            deviations.push(format!("{when}: {} was {}", v.probe, v.actual));
        }
    }
    p.verdicts.iter().all(|v| v.held)
}

pub async fn run(r: &RunArgs) -> anyhow::Result<ExitCode> {
    let (name, text) = read(&r.file)?;
    let e = Experiment::parse(&text).map_err(|err| anyhow::anyhow!("{name}: {err}"))?;
    check_steps(&name, &e.method)?;
    check_steps(&name, &e.rollbacks)?;
    check_stack(&e, &r.stack)?;
    if r.check {
        println!(
            "{name}: {} — {} fault(s), {} steady tolerance(s), {} during; this stack can run it",
            e.title,
            e.method.len(),
            e.steady.len(),
            e.during.len()
        );
        return Ok(ExitCode::SUCCESS);
    }
    if !crate::stack::faults::active(&r.stack.dir()).is_empty() {
        bail!(
            "faults are active already (`socialctl chaos status`); heal them first with `socialctl chaos heal`"
        );
    }
    // A workload named in the file is found beside it.
    let base = Path::new(&r.file)
        .parent()
        .filter(|p| Path::new(&r.file).exists() && !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let started = Utc::now();
    let stem = Path::new(&name)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("experiment")
        .to_owned();
    let work = r
        .stack
        .dir()
        .join("experiments")
        .join(format!("{}-{stem}", started.format("%Y%m%dT%H%M%S")));
    std::fs::create_dir_all(&work)
        .with_context(|| format!("could not create {}", work.display()))?;
    println!("experiment: {}  ({name})", e.title);
    let mut deviations = Vec::new();
    let mut phases = Vec::new();

    println!(
        "1/4 steady state before: {} users for {} s",
        e.load.users,
        e.load.steady.as_secs()
    );
    let before = phase(
        &r.stack,
        &e,
        "before",
        e.load.steady,
        &e.steady,
        &work,
        &base,
    )
    .await?;
    let before_held = judge(&before, "before the method", &mut deviations);
    phases.push(before);

    let mut method = Vec::new();
    let mut rollbacks = Vec::new();
    if before_held {
        println!(
            "2/4 method: {} users for {} s, {} fault(s)",
            e.load.users,
            e.load.duration.as_secs(),
            e.method.len()
        );
        let t0 = tokio::time::Instant::now();
        let steps: Vec<_> = e
            .method
            .iter()
            .cloned()
            .map(|s| {
                let stack = r.stack.clone();
                tokio::spawn(async move {
                    tokio::time::sleep_until(t0 + s.at).await;
                    println!(
                        "    at {:>5.1} s: socialctl chaos {}",
                        s.at.as_secs_f64(),
                        s.argv.join(" ")
                    );
                    run_step(&stack, &s, Utc::now()).await
                })
            })
            .collect();
        let during = phase(
            &r.stack,
            &e,
            "during",
            e.load.duration,
            &e.during,
            &work,
            &base,
        )
        .await;
        for s in steps {
            if let Ok(ran) = s.await {
                if ran.exit_code != Some(0) {
                    deviations.push(format!(
                        "line {}: `{}` failed: {}",
                        ran.line,
                        ran.command,
                        ran.output.lines().last().unwrap_or_default()
                    ));
                }
                method.push(ran);
            }
        }
        println!("3/4 rollback");
        for s in &e.rollbacks {
            let ran = run_step(&r.stack, s, Utc::now()).await;
            let code = ran.exit_code.map_or("killed".into(), |c| c.to_string());
            println!("    {} (exit {code})", ran.command);
            rollbacks.push(ran);
        }
        let during = during?;
        judge(&during, "during the method", &mut deviations);
        phases.push(during);
        println!(
            "4/4 steady state after: {} users for {} s",
            e.load.users,
            e.load.steady.as_secs()
        );
        let after = phase(
            &r.stack,
            &e,
            "after",
            e.load.steady,
            &e.steady,
            &work,
            &base,
        )
        .await?;
        judge(&after, "after the method", &mut deviations);
        phases.push(after);
    } else {
        println!("the steady state does not hold before the method: the faults are not run");
    }
    let journal = Journal {
        experiment: name,
        title: e.title.clone(),
        started,
        ended: Utc::now(),
        phases,
        method,
        rollbacks,
        result: if deviations.is_empty() {
            "held"
        } else {
            "deviated"
        }
        .into(),
        deviations: deviations.clone(),
    };
    let path = r
        .journal
        .clone()
        .unwrap_or_else(|| work.join("journal.json"));
    std::fs::write(&path, serde_json::to_vec_pretty(&journal)?)
        .with_context(|| format!("could not write the journal {}", path.display()))?;
    println!("journal: {}", path.display());
    if deviations.is_empty() {
        println!("steady state held");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("steady state deviated:");
        for d in &deviations {
            println!("  - {d}");
        }
        Ok(ExitCode::from(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_experiments_parse_and_their_faults_are_chaos_command_lines() {
        for (name, text) in SHIPPED {
            let e = Experiment::parse(text).unwrap_or_else(|err| panic!("{name}: {err}"));
            check_steps(name, &e.method).unwrap();
            check_steps(name, &e.rollbacks).unwrap();
            assert!(!e.steady.is_empty(), "{name}");
        }
        let bad = Experiment::parse(
            "title t\nload users=5 duration=20s steady=5s\nsteady error-rate<1%\nat 2s kill feed --durration 3s\n",
        )
        .unwrap();
        let err = check_steps("x.experiment", &bad.method)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 4") && err.contains("--durration"),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        assert!(
            read("no-such-experiment")
                .unwrap_err()
                .to_string()
                .contains("feed-replica-killed")
        );
        let file = dir.path().join("mine.experiment");
        std::fs::write(&file, "title mine\n").unwrap();
        assert_eq!(read(file.to_str().unwrap()).unwrap().1, "title mine\n");
    }
}
