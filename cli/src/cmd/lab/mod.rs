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
    /// Open one of the site's pages in a headless Chromium signed in as USER (a real
    /// browser running the site's tracer, for a machine with no screen; any browser
    /// does the same by hand), then print the page's trace id.
    Browse(BrowseArgs),
    /// Start the on-call exercise (lab 14): a teaching fault is switched on at random and
    /// hidden from `fault list` until `lab check 14` is given its name.
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
pub struct BrowseArgs {
    #[command(flatten)]
    pub stack: super::StackArgs,
    /// The page, as a path on the gateway (`/`, `/u/alice`, `/search?q=a`).
    #[arg(default_value = "/")]
    pub page: String,
    /// Whom to sign in as (the account is made on first use, as `lab token` makes it).
    #[arg(long = "as", value_name = "USER")]
    pub user: String,
}

/// The page `lab browse` opened last, for lab 13's check.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Browsed {
    pub page: String,
    pub user: String,
    pub trace_id: String,
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
        Verb::Browse(b) => browse(b).await.map(|()| ExitCode::SUCCESS),
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
            "an on-call exercise is already running (started earlier, still unsolved); answer it with `socialctl lab answer 14 NAME` and `socialctl lab check 14`, or end it with `socialctl fault off --all` and remove {}",
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
        "  then name the fault: `socialctl lab answer 14 NAME` and `socialctl lab check 14` (the names: `socialctl fault list`)"
    );
    Ok(())
}

/// `lab browse`: the page opened in a real browser, and its trace id once the browser's
/// own spans (sent as the page is left) have reached the sink.
async fn browse(a: &BrowseArgs) -> anyhow::Result<()> {
    if !a.page.starts_with('/') {
        bail!("the page is a path on the gateway, starting with `/` (`/`, `/u/alice`)");
    }
    // The account exists, with the labs' password, before the browser signs in.
    token(&a.stack, &a.user).await?;
    let state = recorded(&a.stack)?;
    let gw = state.addresses.gateway.trim_end_matches('/');
    let sink = state.addresses.otlp_http.trim_end_matches('/').to_owned();
    eprintln!(
        "opening {gw}{} in a headless Chromium, signed in as {}",
        a.page, a.user
    );
    let browser = super::browser::Browser::start().await?;
    let b = &browser.client;
    let opened = async {
        browser.sign_in(gw, &a.user, PASSWORD).await?;
        b.goto(&format!("{gw}{}", a.page)).await?;
        let meta = b
            .find(fantoccini::Locator::Css("meta[name=traceparent]"))
            .await
            .context("the page has no <meta name=traceparent>: is it one of the site's pages?")?
            .attr("content")
            .await?
            .unwrap_or_default();
        // Leaving the page sends what its tracer still holds (sendBeacon on pagehide).
        b.goto("about:blank").await?;
        Ok::<_, anyhow::Error>(meta)
    }
    .await;
    let _ = b.clone().close().await;
    let meta = opened?;
    let trace_id = meta
        .split('-')
        .nth(1)
        .filter(|t| t.len() == 32)
        .with_context(|| format!("the page's traceparent {meta:?} is not one"))?
        .to_owned();
    let client = reqwest::Client::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let from_browser = loop {
        let spans: Vec<verify::Span> = match client
            .get(format!("{sink}/api/traces/{trace_id}"))
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => r.json().await.unwrap_or_default(),
            _ => Vec::new(),
        };
        let n = spans
            .iter()
            .filter(|s| s.service == BROWSER_SERVICE)
            .count();
        if n > 0 || std::time::Instant::now() >= deadline {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    if from_browser == 0 {
        bail!(
            "the browser's spans for trace {trace_id} never reached the sink at {sink}: is the gateway's /v1/traces answering?"
        );
    }
    write_json(
        &lab_dir(&a.stack)?.join("browsed.json"),
        &Browsed {
            page: a.page.clone(),
            user: a.user.clone(),
            trace_id: trace_id.clone(),
        },
    )?;
    eprintln!(
        "the page's trace, with {from_browser} span(s) from the browser: `socialctl traces {trace_id}`"
    );
    println!("{trace_id}");
    Ok(())
}

/// The `service.name` the site's browser tracer reports.
pub const BROWSER_SERVICE: &str = "socialnet-web";

fn read_browsed(dir: &Path) -> Option<Browsed> {
    read_json(&dir.join("browsed.json"))
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
