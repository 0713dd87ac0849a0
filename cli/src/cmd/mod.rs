//! The verbs: one file each, its clap arguments beside its `run`. [`StackArgs`] is what
//! every verb that acts on a stack shares: which stack (state directory, project) and
//! which runtime; the addresses of a running stack come from what `up` recorded.

pub mod bench;
pub mod bench_media;
pub mod bench_messaging;
pub mod bench_sink;
pub mod bench_web;
pub mod browser;
pub mod chaos;
pub mod completions;
pub mod compose;
pub mod down;
pub mod experiment;
pub mod fault;
pub mod images;
pub mod lab;
pub mod load;
pub mod logs;
pub mod probe;
pub mod seed;
pub mod sim;
pub mod sink;
pub mod status;
pub mod top;
pub mod up;
pub mod verify;

use std::path::PathBuf;

use crate::runtime::Target;
use crate::stack::state::{Addresses, RuntimeKind, StackState};

/// A runtime choice on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RuntimeChoice {
    /// The one running the stack; for `up`, Docker when an engine answers, else local.
    Auto,
    /// Containers through the Docker API.
    Docker,
    /// Host processes on loopback.
    Local,
}

/// Options every stack command shares.
#[derive(Debug, Clone, clap::Args)]
pub struct StackArgs {
    /// Where the stack's state lives: the addresses `up` recorded, and the local
    /// runtime's data, logs and pid files [default: $TMPDIR/socialnet-<uid>/<project>].
    #[arg(long, env = "SOCIALNET_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Runtime: `docker` (containers), `local` (host processes on loopback), or `auto`.
    #[arg(long, env = "SOCIALNET_RUNTIME", value_enum, default_value_t = RuntimeChoice::Auto)]
    pub runtime: RuntimeChoice,
    /// Project name: names the state directory, and prefixes and labels every Docker
    /// container, network and volume socialctl creates.
    #[arg(long, env = "SOCIALNET_PROJECT", default_value = "socialnet", value_parser = parse_project)]
    pub project: String,
}

impl Default for StackArgs {
    fn default() -> Self {
        Self {
            state_dir: None,
            runtime: RuntimeChoice::Auto,
            project: "socialnet".into(),
        }
    }
}

fn parse_project(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 40
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(s.to_owned())
    } else {
        Err("a project name is 1 to 40 letters, digits, `-` or `_`, starting with a letter or digit".into())
    }
}

impl StackArgs {
    pub fn dir(&self) -> PathBuf {
        self.state_dir
            .clone()
            .unwrap_or_else(|| crate::stack::state::default_dir(&self.project))
    }

    pub fn target(&self) -> Target {
        Target {
            dir: self.dir(),
            dir_explicit: self.state_dir.is_some(),
            project: self.project.clone(),
            runtime: match self.runtime {
                RuntimeChoice::Auto => None,
                RuntimeChoice::Docker => Some(RuntimeKind::Docker),
                RuntimeChoice::Local => Some(RuntimeKind::Local),
            },
        }
    }

    /// What `up` recorded for this stack, if it is up.
    pub fn recorded(&self) -> Option<StackState> {
        StackState::read(&self.dir())
    }

    /// The running stack's addresses, or a default stack's when nothing is recorded.
    pub fn addresses(&self) -> Addresses {
        self.recorded()
            .map(|s| s.addresses)
            .unwrap_or_else(Addresses::defaults)
    }
}

/// `flag`, else the recorded value: explicit flags always win.
pub fn or_recorded(flag: &Option<String>, recorded: impl FnOnce() -> String) -> String {
    flag.clone().unwrap_or_else(recorded)
}
