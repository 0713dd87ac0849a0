//! `socialctl lab`: the workshop's side of the command line. Each lab in `tutorials/`
//! ends with `socialctl lab check N`, which looks at the learner's stack (the sink's
//! traces, the faults switched on, the answers given with `lab answer`) and says what is
//! done and what is still wrong; `lab env` and `lab token` save the typing the labs
//! would otherwise need; `lab oncall` starts the exercise where a fault is planted
//! unnamed.
//!
//! What the learner gave is kept in the stack's state directory under `lab/`, so a
//! check can be run again at any time and `down --volumes` clears it.

mod checks;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};

pub use checks::{LABS, Lab};

#[derive(Debug, clap::Args)]
pub struct LabArgs {
    #[command(subcommand)]
    pub verb: Verb,
}

#[derive(Debug, clap::Subcommand)]
pub enum Verb {
    /// The labs, in order, with the file each lives in.
    List,
    /// Check lab N: exit 0 when it is done, 1 with what is still missing.
    Check(CheckArgs),
    /// Record your answer to lab N's question (the check judges it).
    Answer(AnswerArgs),
    /// Print `export GW=… SINK=… STATE=…` for the running stack (its gateway, its sink's
    /// query API, its state directory): `eval "$(socialctl lab env)"`.
    Env(StackOnly),
    /// Print an access token for USER, registering the account on first use (password
    /// `workshop-password`); tokens are reused while they are valid.
    Token(TokenArgs),
    /// Start the on-call exercise (lab 13): a teaching fault is switched on at random and
    /// hidden from `fault list` until `lab check 13` is given its name.
    Oncall(OncallArgs),
    /// For instructors: print the on-call exercise's fault.
    Reveal(StackOnly),
}

#[derive(Debug, clap::Args)]
pub struct StackOnly {
    #[command(flatten)]
    pub stack: super::StackArgs,
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub stack: super::StackArgs,
    /// The lab's number.
    pub lab: u32,
}

#[derive(Debug, clap::Args)]
pub struct AnswerArgs {
    #[command(flatten)]
    pub stack: super::StackArgs,
    /// The lab's number.
    pub lab: u32,
    /// Your answer (quote it when it has spaces).
    pub answer: String,
}

#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    #[command(flatten)]
    pub stack: super::StackArgs,
    /// The account: 3 to 32 lowercase letters, digits or `_`.
    pub user: String,
}

#[derive(Debug, clap::Args)]
pub struct OncallArgs {
    #[command(flatten)]
    pub stack: super::StackArgs,
    /// Choose the fault from this seed instead of the clock (the same seed, the same
    /// fault: for an instructor who wants the whole room on one).
    #[arg(long)]
    pub seed: Option<u64>,
}

/// The password `lab token` gives the accounts it makes.
pub const PASSWORD: &str = "workshop-password";

/// The faults the on-call exercise draws from: each visible with the traffic of a short
/// load run and no other fault.
pub const ONCALL_POOL: &[&str] = &[
    telemetry::teaching::BROKEN_PROPAGATION,
    telemetry::teaching::N_PLUS_ONE,
    telemetry::teaching::MISSING_INDEX,
    telemetry::teaching::UNPIPELINED_FANOUT,
    telemetry::teaching::LOST_CONTEXT,
    telemetry::teaching::WRONG_SAMPLER,
    telemetry::teaching::CLOCK_OFFSET,
];

pub async fn run(a: &LabArgs) -> anyhow::Result<ExitCode> {
    match &a.verb {
        Verb::List => {
            for l in LABS {
                println!("{:>2}  {:<44} tutorials/{}.md", l.n, l.title, l.file);
            }
            Ok(ExitCode::SUCCESS)
        }
        Verb::Check(c) => checks::check(&c.stack, c.lab).await,
        Verb::Answer(a) => {
            lab(a.lab)?;
            let dir = lab_dir(&a.stack)?;
            let mut answers = read_answers(&dir);
            answers.insert(a.lab.to_string(), a.answer.clone());
            write_json(&dir.join("answers.json"), &answers)?;
            println!(
                "lab {}: answer recorded; `socialctl lab check {}` judges it",
                a.lab, a.lab
            );
            Ok(ExitCode::SUCCESS)
        }
        Verb::Env(s) => {
            let state = recorded(&s.stack)?;
            println!(
                "export GW={} SINK={} STATE={}",
                state.addresses.gateway.trim_end_matches('/'),
                state.addresses.otlp_http.trim_end_matches('/'),
                shell_quote(
                    &std::path::absolute(s.stack.dir())
                        .unwrap_or_else(|_| s.stack.dir())
                        .display()
                        .to_string()
                )
            );
            Ok(ExitCode::SUCCESS)
        }
        Verb::Token(t) => {
            println!("{}", token(&t.stack, &t.user).await?);
            Ok(ExitCode::SUCCESS)
        }
        Verb::Oncall(o) => oncall(o).await.map(|()| ExitCode::SUCCESS),
        Verb::Reveal(s) => {
            let dir = lab_dir(&s.stack)?;
            match read_oncall(&dir) {
                Some(o) => println!("{}", o.fault),
                None => {
                    bail!("no on-call exercise has been started; `socialctl lab oncall` starts one")
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `s` as one word for a POSIX shell: single-quoted, with its own single quotes escaped.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Lab `n`, or an error listing the labs there are.
pub fn lab(n: u32) -> anyhow::Result<&'static Lab> {
    LABS.iter().find(|l| l.n == n).with_context(|| {
        format!(
            "there is no lab {n}; the labs are 1 to {} (`socialctl lab list`)",
            LABS.len()
        )
    })
}

fn recorded(stack: &super::StackArgs) -> anyhow::Result<crate::stack::state::StackState> {
    stack.recorded().with_context(|| {
        format!(
            "no stack is up from {}; start one with `socialctl up` (or `./dev.sh up`)",
            stack.dir().display()
        )
    })
}

/// Where the learner's answers, tokens and the on-call record are kept.
fn lab_dir(stack: &super::StackArgs) -> anyhow::Result<PathBuf> {
    let dir = stack.dir().join("lab");
    std::fs::create_dir_all(&dir).with_context(|| format!("could not create {}", dir.display()))?;
    Ok(dir)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

fn write_json<T: serde::Serialize>(path: &Path, v: &T) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(v).expect("lab records serialise");
    std::fs::write(path, text).with_context(|| format!("could not write {}", path.display()))
}

fn read_answers(dir: &Path) -> BTreeMap<String, String> {
    read_json(&dir.join("answers.json")).unwrap_or_default()
}

/// The on-call exercise in progress (or solved).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Oncall {
    pub fault: String,
    pub instances: Vec<String>,
    pub solved: bool,
}

fn read_oncall(dir: &Path) -> Option<Oncall> {
    read_json(&dir.join("oncall.json"))
}

/// The fault `fault list` must not show: the unsolved on-call exercise's.
pub fn sealed_fault(state_dir: &Path) -> Option<String> {
    read_oncall(&state_dir.join("lab"))
        .filter(|o| !o.solved)
        .map(|o| o.fault)
}

async fn oncall(a: &OncallArgs) -> anyhow::Result<()> {
    let (stack, rt, _) = super::chaos::open(&a.stack).await?;
    let dir = lab_dir(&a.stack)?;
    if read_oncall(&dir).is_some_and(|o| !o.solved) {
        bail!(
            "an on-call exercise is already running (started earlier, still unsolved); answer it with `socialctl lab answer 13 NAME` and `socialctl lab check 13`, or end it with `socialctl fault off --all` and remove {}",
            dir.join("oncall.json").display()
        );
    }
    let seed = a.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    // A small mix so neighbouring seeds pick different faults.
    let pick = (seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize % ONCALL_POOL.len();
    let fault = ONCALL_POOL[pick];
    let instances = super::fault::plant(&stack, &rt, fault, None).await?;
    write_json(
        &dir.join("oncall.json"),
        &Oncall {
            fault: fault.to_owned(),
            instances,
            solved: false,
        },
    )?;
    println!("you are on call: something in the stack has just gone wrong, and nobody says what.");
    println!(
        "  drive it (`socialctl load --users 10 --duration 15s --verify`), read its traces (`socialctl traces`, `socialctl verify-traces`),"
    );
    println!(
        "  then name the fault: `socialctl lab answer 13 NAME` and `socialctl lab check 13` (the names: `socialctl fault list`)"
    );
    Ok(())
}

/// An access token for `user`: a valid one kept from before, else a sign-in, else a
/// new account.
async fn token(stack: &super::StackArgs, user: &str) -> anyhow::Result<String> {
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Kept {
        token: String,
        until: u64,
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let dir = lab_dir(stack)?;
    let path = dir.join("tokens.json");
    let mut kept: BTreeMap<String, Kept> = read_json(&path).unwrap_or_default();
    if let Some(k) = kept.get(user).filter(|k| k.until > now + 60) {
        return Ok(k.token.clone());
    }
    let gw = recorded(stack)?.addresses.gateway;
    let gw = gw.trim_end_matches('/');
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()?;
    let body = serde_json::json!({"username": user, "password": PASSWORD});
    let mut r = client
        .post(format!("{gw}/api/auth/login"))
        .json(&body)
        .send()
        .await
        .with_context(|| format!("could not reach the gateway at {gw}; is the stack up?"))?;
    if r.status() == reqwest::StatusCode::UNAUTHORIZED {
        r = client
            .post(format!("{gw}/api/auth/register"))
            .json(&body)
            .send()
            .await
            .with_context(|| format!("could not reach the gateway at {gw}"))?;
    }
    let status = r.status();
    let v: serde_json::Value = r.json().await.unwrap_or_default();
    if !status.is_success() {
        bail!(
            "{user} could not sign in or register: {status} {}",
            v["message"].as_str().unwrap_or("")
        );
    }
    let token = v["access_token"]
        .as_str()
        .context("auth's answer carries no access_token")?
        .to_owned();
    let until = now + v["expires_in"].as_u64().unwrap_or(900);
    kept.insert(
        user.to_owned(),
        Kept {
            token: token.clone(),
            until,
        },
    );
    write_json(&path, &kept)?;
    Ok(token)
}
