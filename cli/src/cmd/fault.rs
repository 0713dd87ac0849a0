//! `socialctl fault`: the teaching faults (realistic bugs a learner finds in the traces),
//! listed from the catalogue in `telemetry::teaching` and switched in the running
//! services through their `/chaos/teaching` operations endpoint, with no restart.
//!
//! A fault switched on here stays on until `fault off` (or until the process restarts);
//! `socialctl up --env SOCIALNET_FAULTS=NAME` switches one on from the start instead.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, bail};
use telemetry::teaching::{CATALOGUE, Teaching};

use crate::runtime::AnyRuntime;
use crate::stack::Stack;

#[derive(Debug, clap::Args)]
pub struct FaultArgs {
    #[command(subcommand)]
    pub verb: Verb,
}

#[derive(Debug, clap::Subcommand)]
pub enum Verb {
    /// Every teaching fault: its name, where it is on now, and the bug it plants
    /// (`--explain` adds the symptom to look for and the fix).
    List(ListArgs),
    /// Switch a teaching fault on in the running service (every replica), now.
    On(SwitchArgs),
    /// Switch a teaching fault off (everywhere it is on, unless --target), or --all.
    Off(OffArgs),
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub stack: super::StackArgs,
    /// Also print each fault's symptom in the traces and its fix (the debugging guide).
    #[arg(long)]
    pub explain: bool,
    /// Print JSON instead of the table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct SwitchArgs {
    #[command(flatten)]
    pub stack: super::StackArgs,
    /// The fault's name, as `socialctl fault list` prints it.
    pub name: String,
    /// The service to plant it in (a component such as `profile`, or one replica,
    /// `feed#2`) [default: the service the catalogue names for it].
    #[arg(long)]
    pub target: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct OffArgs {
    #[command(flatten)]
    pub stack: super::StackArgs,
    /// The fault's name; omit it with --all.
    #[arg(required_unless_present = "all")]
    pub name: Option<String>,
    /// Only in this service (or replica) [default: wherever it is on].
    #[arg(long)]
    pub target: Option<String>,
    /// Switch every teaching fault off everywhere.
    #[arg(long, conflicts_with_all = ["name", "target"])]
    pub all: bool,
}

pub async fn run(a: &FaultArgs) -> anyhow::Result<()> {
    match &a.verb {
        Verb::List(l) => list(l).await,
        Verb::On(s) => switch_on(s).await,
        Verb::Off(o) => switch_off(o).await,
    }
}

/// The catalogue entry `name`, or an error listing the names there are.
pub fn known(name: &str) -> anyhow::Result<&'static Teaching> {
    telemetry::teaching::find(name).with_context(|| {
        let names: Vec<&str> = CATALOGUE.iter().map(|t| t.name).collect();
        format!(
            "no teaching fault {name:?}; the faults are: {}",
            names.join(", ")
        )
    })
}

/// Every instance that has a teaching endpoint, with the faults on in it now.
pub async fn switches(rt: &AnyRuntime) -> BTreeMap<String, Vec<String>> {
    let client = client();
    let mut out = BTreeMap::new();
    for (instance, base) in super::chaos::ops_urls(rt).await {
        let url = format!("{base}{}", telemetry::http_server::TEACHING_PATH);
        let Ok(r) = client.get(&url).send().await else {
            continue;
        };
        // Stores and the fault proxy have no teaching faults: they answer 404.
        if !r.status().is_success() {
            continue;
        }
        let on: Vec<String> = r
            .json::<serde_json::Value>()
            .await
            .ok()
            .and_then(|v| serde_json::from_value(v["on"].clone()).ok())
            .unwrap_or_default();
        out.insert(instance, on);
    }
    out
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("a client with a timeout builds")
}

async fn list(a: &ListArgs) -> anyhow::Result<()> {
    let (_, rt, dir) = super::chaos::open(&a.stack).await?;
    let on = switches(&rt).await;
    let sealed = super::lab::sealed_fault(&dir);
    let where_on = |name: &str| -> Vec<String> {
        on.iter()
            .filter(|(_, faults)| faults.iter().any(|f| f == name))
            .map(|(i, _)| i.clone())
            .collect()
    };
    if a.json {
        let rows: Vec<serde_json::Value> = CATALOGUE
            .iter()
            .map(|t| {
                let mut v = serde_json::to_value(t).expect("a catalogue entry serialises");
                v["on"] = if sealed.as_deref() == Some(t.name) {
                    serde_json::json!("sealed")
                } else {
                    serde_json::json!(where_on(t.name))
                };
                v
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!("{:<20} {:<16} bug", "fault", "on in");
    for t in CATALOGUE {
        let here = if sealed.as_deref() == Some(t.name) {
            "? (on call)".to_owned()
        } else {
            let w = where_on(t.name);
            if w.is_empty() {
                "-".into()
            } else {
                w.join(",")
            }
        };
        println!("{:<20} {:<16} {}", t.name, here, t.bug);
        if a.explain {
            println!("{:<37} symptom: {}", "", t.symptom);
            println!("{:<37} fix: {}", "", t.fix);
        }
    }
    if sealed.is_some() {
        println!(
            "\nan on-call exercise is running: one fault's switches are hidden until `socialctl lab check oncall` names it"
        );
    }
    Ok(())
}

/// The instances `target` names that have a teaching endpoint.
async fn instances(
    stack: &Stack,
    rt: &AnyRuntime,
    target: &str,
) -> anyhow::Result<Vec<(String, String)>> {
    let wanted = super::chaos::resolve(stack, target)?;
    let urls = super::chaos::ops_urls(rt).await;
    let out: Vec<(String, String)> = wanted
        .iter()
        .filter_map(|i| urls.get(i).map(|u| (i.clone(), u.clone())))
        .collect();
    if out.is_empty() {
        bail!(
            "{target} has no operations endpoint: teaching faults live in the services (auth, profile, feed, messaging, media, web)"
        );
    }
    Ok(out)
}

async fn send(base: &str, instance: &str, name: Option<&str>, on: bool) -> anyhow::Result<()> {
    let path = telemetry::http_server::TEACHING_PATH;
    let url = match name {
        Some(n) => format!("{base}{path}/{n}"),
        None => format!("{base}{path}"),
    };
    let c = client();
    let r = if on { c.put(&url) } else { c.delete(&url) }
        .send()
        .await
        .with_context(|| format!("could not reach {instance}'s teaching endpoint at {url}"))?;
    if !r.status().is_success() {
        bail!(
            "{instance} refused: {} {}",
            r.status(),
            r.text().await.unwrap_or_default()
        );
    }
    Ok(())
}

/// Switches `name` on in `target` (the catalogue's home service when `None`); the
/// instances it went to.
pub async fn plant(
    stack: &Stack,
    rt: &AnyRuntime,
    name: &str,
    target: Option<&str>,
) -> anyhow::Result<Vec<String>> {
    let t = known(name)?;
    let target = target.unwrap_or(t.home);
    let mut done = Vec::new();
    for (instance, base) in instances(stack, rt, target).await? {
        send(&base, &instance, Some(t.name), true).await?;
        done.push(instance);
    }
    Ok(done)
}

/// Switches `name` off wherever it is on (or every fault, for `None`).
pub async fn clear(rt: &AnyRuntime, name: Option<&str>) -> anyhow::Result<Vec<String>> {
    let urls = super::chaos::ops_urls(rt).await;
    let mut done = Vec::new();
    for (instance, on) in switches(rt).await {
        let hit = match name {
            Some(n) => on.iter().any(|f| f == n),
            None => !on.is_empty(),
        };
        if hit && let Some(base) = urls.get(&instance) {
            send(base, &instance, name, false).await?;
            done.push(instance);
        }
    }
    Ok(done)
}

async fn switch_on(a: &SwitchArgs) -> anyhow::Result<()> {
    let (stack, rt, _) = super::chaos::open(&a.stack).await?;
    let t = known(&a.name)?;
    let done = plant(&stack, &rt, &a.name, a.target.as_deref()).await?;
    println!("{} is on in {}", t.name, done.join(", "));
    println!("  the bug: {}", t.bug);
    println!(
        "  find it in the traces (`socialctl traces`, `socialctl verify-traces`); switch it off with `socialctl fault off {}`",
        t.name
    );
    Ok(())
}

async fn switch_off(a: &OffArgs) -> anyhow::Result<()> {
    let (stack, rt, _) = super::chaos::open(&a.stack).await?;
    if a.all {
        let done = clear(&rt, None).await?;
        if done.is_empty() {
            println!("no teaching fault was on");
        } else {
            println!(
                "every teaching fault is off (was on in {})",
                done.join(", ")
            );
        }
        return Ok(());
    }
    let name = a
        .name
        .as_deref()
        .expect("clap requires a name without --all");
    let t = known(name)?;
    let done = match &a.target {
        Some(target) => {
            let mut done = Vec::new();
            for (instance, base) in instances(&stack, &rt, target).await? {
                send(&base, &instance, Some(t.name), false).await?;
                done.push(instance);
            }
            done
        }
        None => clear(&rt, Some(t.name)).await?,
    };
    if done.is_empty() {
        println!("{} was not on anywhere", t.name);
    } else {
        println!("{} is off in {}", t.name, done.join(", "));
    }
    Ok(())
}
