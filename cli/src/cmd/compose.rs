//! `socialctl compose`: the stack as a Compose file (`compose/docker-compose*.yml` are
//! its output).

#[derive(Debug, Clone, clap::Args)]
pub struct ComposeArgs {
    #[command(flatten)]
    pub up: super::up::UpArgs,
}

pub fn run(a: &ComposeArgs) {
    let mut cfg = a.up.config();
    // Compose users choose their passwords through the environment.
    cfg.secrets = crate::stack::secrets::Secrets::compose();
    print!(
        "{}",
        crate::render::compose::render(&crate::stack::Stack::new(cfg))
    );
}
