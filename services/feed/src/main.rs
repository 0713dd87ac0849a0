//! The feed service binary: parse config, start telemetry, serve. See `lib.rs`.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = feed::config::Config::parse();
    let _telemetry = match telemetry::init("feed", env!("CARGO_PKG_VERSION")) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("feed: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match feed::run(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "feed stopped");
            eprintln!("feed: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}
