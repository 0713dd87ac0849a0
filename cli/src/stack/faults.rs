//! The journal of active chaos faults (`chaos.json` in a stack's state directory):
//! written by `socialctl chaos`, read by `chaos status` and `chaos heal`, and by the live
//! views, which name active faults beside the runtime.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use anyhow::Context as _;

/// What a fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Kill,
    Stop,
    Pause,
    Restart,
    Errors,
    Slow,
    FailCalls,
    Latency,
    Bandwidth,
    Loss,
    Timeout,
    Reset,
    Partition,
}

impl Kind {
    /// Whether the fault acts on links of the fault proxy (its `instances` are link
    /// names, `feed:postgres`).
    pub fn is_network(self) -> bool {
        matches!(
            self,
            Kind::Latency
                | Kind::Bandwidth
                | Kind::Loss
                | Kind::Timeout
                | Kind::Reset
                | Kind::Partition
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Kill => "kill",
            Kind::Stop => "stop",
            Kind::Pause => "pause",
            Kind::Restart => "restart",
            Kind::Errors => "errors",
            Kind::Slow => "slow",
            Kind::FailCalls => "fail-calls",
            Kind::Latency => "latency",
            Kind::Bandwidth => "bandwidth",
            Kind::Loss => "loss",
            Kind::Timeout => "timeout",
            Kind::Reset => "reset",
            Kind::Partition => "partition",
        }
    }

    pub fn heal_plan(self) -> &'static str {
        match self {
            Kind::Kill | Kind::Stop => "start it again and wait until it is healthy",
            Kind::Pause => "resume it",
            Kind::Restart => "nothing (a restart heals itself)",
            Kind::Errors | Kind::Slow | Kind::FailCalls => {
                "switch the fault off (it also lapses by itself in the service)"
            }
            _ => "remove the toxic from the fault proxy's links",
        }
    }
}

/// An active fault, as recorded in `chaos.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    pub id: String,
    pub kind: Kind,
    pub target: String,
    pub instances: Vec<String>,
    pub started: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// The `socialctl chaos` process that heals it when its time is up.
    pub owner: u32,
    /// An application fault's settings, as sent to each instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<telemetry::faults::AppFaults>,
    /// A network fault's toxic, as put on each link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub toxic: Option<chaosproxy::Toxic>,
}

pub fn journal(dir: &Path) -> PathBuf {
    dir.join("chaos.json")
}

pub fn active(dir: &Path) -> Vec<Fault> {
    std::fs::read_to_string(journal(dir))
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default()
}

pub fn save(dir: &Path, faults: &[Fault]) -> anyhow::Result<()> {
    let path = journal(dir);
    if faults.is_empty() {
        let _ = std::fs::remove_file(&path);
        return Ok(());
    }
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(faults)?)
        .with_context(|| format!("could not write {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("could not write {}", path.display()))
}

/// Removes fault `id` from the journal; whether it was still there (not healed by
/// someone else meanwhile).
pub fn take(dir: &Path, id: &str) -> anyhow::Result<bool> {
    let mut faults = active(dir);
    let before = faults.len();
    faults.retain(|f| f.id != id);
    save(dir, &faults)?;
    Ok(faults.len() != before)
}

/// The active faults in one line (`kill feed 12 s left, slow profile 3 s left`), for the
/// live views; `None` when there are none.
pub fn summary(dir: &Path) -> Option<String> {
    let now = Utc::now();
    let faults: Vec<String> = active(dir)
        .iter()
        .filter(|f| f.until > now)
        .map(|f| {
            format!(
                "{} {} {} s left",
                f.kind.name(),
                f.target,
                (f.until - now).num_seconds().max(0)
            )
        })
        .collect();
    (!faults.is_empty()).then(|| faults.join(", "))
}
