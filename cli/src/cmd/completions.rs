//! `socialctl completions SHELL`: a completion script for bash, zsh or fish.

use clap::CommandFactory as _;

#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = "\
Install, for example:
  socialctl completions bash > /etc/bash_completion.d/socialctl
  socialctl completions zsh > \"${fpath[1]}/_socialctl\"
  socialctl completions fish > ~/.config/fish/completions/socialctl.fish")]
pub struct CompletionsArgs {
    /// The shell to write completions for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

pub fn run(a: &CompletionsArgs) {
    let mut cmd = crate::Cli::command();
    clap_complete::generate(a.shell, &mut cmd, "socialctl", &mut std::io::stdout());
}
