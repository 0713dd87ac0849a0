//! `socialctl seed`: fill the running stack's databases with a realistic data set.

use crate::seed::{SeedArgs, Servers, seed};

#[derive(Debug, Clone, clap::Args)]
pub struct SeedCmd {
    #[command(flatten)]
    pub stack: super::StackArgs,
    #[command(flatten)]
    pub seed: SeedArgs,
    /// Print what was written as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(a: &SeedCmd) -> anyhow::Result<()> {
    let s = seed(&a.seed, &Servers::of(&a.seed, a.stack.addresses())).await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
    println!(
        "seeded {} users, {} follows, {} posts in {:.1} s; most-followed user has {} followers, {} users have over 1000 (celebrities)",
        s.users, s.follows, s.posts, s.seconds, s.max_followers, s.over_1000_followers
    );
    println!(
        "log in as user00000 … user{:05} with password {:?}",
        s.users.saturating_sub(1),
        a.seed.password
    );
    Ok(())
}
