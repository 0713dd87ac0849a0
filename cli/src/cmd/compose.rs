//! `socialctl compose`: the stack as a Compose file (`compose/docker-compose*.yml` are
//! its output).

#[derive(Debug, Clone, clap::Args)]
pub struct ComposeArgs {
    #[command(flatten)]
    pub up: super::up::UpArgs,
}

pub fn run(a: &ComposeArgs) {
    print!(
        "{}",
        crate::render::compose::render(&crate::stack::Stack::new(a.up.config()))
    );
}
