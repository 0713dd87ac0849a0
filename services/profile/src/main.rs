//! The profile service binary: parse config, start telemetry, serve. See `lib.rs`.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = profile::config::Config::parse();
    let _telemetry = match telemetry::init("profile", env!("CARGO_PKG_VERSION")) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("profile: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match profile::run(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "profile stopped");
            eprintln!("profile: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}
