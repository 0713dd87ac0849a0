//! `socialctl logs`: one instance's log, optionally followed.

use crate::runtime::Runtime as _;

#[derive(Debug, Clone, clap::Args)]
pub struct LogsArgs {
    #[command(flatten)]
    pub stack: super::StackArgs,
    /// Component name, e.g. `feed` or `feed-2` for a replica (see `socialctl status`).
    pub component: String,
    /// Keep printing new lines as they are written.
    #[arg(short, long)]
    pub follow: bool,
    /// Lines of history to print first.
    #[arg(long, default_value_t = 100)]
    pub tail: usize,
}

pub async fn run(a: &LogsArgs) -> anyhow::Result<()> {
    let rt = a.stack.target().in_use().await?;
    rt.logs(&a.component, a.follow, a.tail).await
}
