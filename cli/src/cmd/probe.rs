//! `socialctl probe URL` (hidden): exit 0 when URL answers 2xx within 2 s. The Compose
//! file's health checks use it; socialctl's own runtimes probe from outside instead.

use std::process::ExitCode;

pub async fn run(url: &str) -> anyhow::Result<ExitCode> {
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(2))
        .build()?;
    Ok(match client.get(url).send().await {
        Ok(r) if r.status().is_success() => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    })
}
