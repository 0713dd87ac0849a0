//! `socialctl status`: each instance's state, health, pid, uptime, memory and CPU.

use crate::runtime::{InstanceStatus, Runtime as _};

#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub stack: super::StackArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(a: &StatusArgs) -> anyhow::Result<()> {
    let rt = a.stack.target().in_use().await?;
    let rows = rt.status().await?;
    print(&rows, a.json, rt.kind().name())
}

/// Prints `socialctl status` for either runtime.
pub fn print(rows: &[InstanceStatus], json: bool, runtime: &str) -> anyhow::Result<()> {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "runtime": runtime, "components": rows })
            )?
        );
        return Ok(());
    }
    if rows.is_empty() {
        println!("nothing is running; start the stack with `socialctl up`");
        return Ok(());
    }
    println!(
        "{:<12} {:<8} {:<10} {:>8} {:>9} {:>10} {:>8} {:>8}",
        "COMPONENT", "STATE", "HEALTH", "PID", "UPTIME", "MEMORY", "CPU s", "RESTARTS"
    );
    let dash = || "-".to_owned();
    for r in rows {
        println!(
            "{:<12} {:<8} {:<10} {:>8} {:>9} {:>10} {:>8} {:>8}",
            r.name,
            r.state,
            r.health,
            r.pid.map(|p| p.to_string()).unwrap_or_else(dash),
            r.uptime_secs
                .map(|s| format!("{}m{:02}s", s / 60, s % 60))
                .unwrap_or_else(dash),
            r.memory_bytes
                .map(|b| format!("{:.1} MiB", b as f64 / 1048576.0))
                .unwrap_or_else(dash),
            r.cpu_seconds
                .map(|c| format!("{c:.1}"))
                .unwrap_or_else(dash),
            r.restarts.map(|c| c.to_string()).unwrap_or_else(dash),
        );
    }
    Ok(())
}
