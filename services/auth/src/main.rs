//! The auth service binary: parse config, start telemetry, serve. See `lib.rs`.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = auth::config::Config::parse();
    let _telemetry = match telemetry::init("auth", env!("CARGO_PKG_VERSION")) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("auth: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match auth::run(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "auth stopped");
            eprintln!("auth: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}
