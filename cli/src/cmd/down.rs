//! `socialctl down`: stop and remove what `up` started, for this stack only.

use crate::runtime::Runtime as _;

#[derive(Debug, Clone, clap::Args)]
pub struct DownArgs {
    #[command(flatten)]
    pub stack: super::StackArgs,
    /// Also delete the stack's data (PostgreSQL's databases: the Docker volumes labelled
    /// with this project, or the state directory's data), its logs and generated files.
    /// Each deletion is printed.
    #[arg(long)]
    pub volumes: bool,
}

pub async fn run(a: &DownArgs) -> anyhow::Result<()> {
    let target = a.stack.target();
    let rt = target.in_use().await?;
    rt.down(a.volumes).await?;
    if a.volumes {
        // The data they protected is gone; the next `up` makes new ones.
        crate::stack::secrets::Secrets::forget(&target.dir);
    }
    Ok(())
}
