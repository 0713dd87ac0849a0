//! `socialctl images`: build, export or import the stack's images (offline rooms).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use futures_util::StreamExt;

use crate::runtime::images::{BASE_RECIPE, BASE_REPO, STACK_REPO, ensure_stack};

/// The images a stack needs, as one archive, for rooms without a registry or internet:
/// build on one machine, copy the file, import on the others.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum ImagesCommand {
    /// Build the base and stack images now (what `up --runtime docker` does on first use).
    Build,
    /// Write the base and stack images to one tar archive (`docker save` format).
    Export {
        /// Archive to write.
        file: PathBuf,
    },
    /// Load images from an archive written by `socialctl images export`.
    Import {
        /// Archive to read.
        file: PathBuf,
    },
}

pub async fn run(cmd: &ImagesCommand) -> anyhow::Result<()> {
    use tokio::io::AsyncWriteExt;
    let docker = crate::runtime::docker::connect().await?;
    let say = |m: &str| println!("  {m}");
    match cmd {
        ImagesCommand::Build => {
            let name = ensure_stack(&docker, &say, false, None).await?;
            println!("ready: {name} (also tagged {STACK_REPO}:local)");
        }
        ImagesCommand::Export { file } => {
            let stack = ensure_stack(&docker, &say, false, None).await?;
            let base = format!("{BASE_REPO}:{BASE_RECIPE}");
            let local = format!("{STACK_REPO}:local");
            let names = [base.as_str(), stack.as_str(), local.as_str()];
            let mut out = tokio::fs::File::create(file)
                .await
                .with_context(|| format!("could not create {}", file.display()))?;
            let mut stream = docker.export_images(&names);
            let mut written: u64 = 0;
            let t0 = Instant::now();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.context("the engine failed while exporting")?;
                out.write_all(&chunk)
                    .await
                    .with_context(|| format!("could not write {}", file.display()))?;
                written += chunk.len() as u64;
            }
            out.flush().await?;
            println!(
                "wrote {} ({:.0} MiB: {}) in {:.1} s",
                file.display(),
                written as f64 / 1048576.0,
                names.join(", "),
                t0.elapsed().as_secs_f64()
            );
        }
        ImagesCommand::Import { file } => {
            let f = tokio::fs::File::open(file)
                .await
                .with_context(|| format!("could not open {}", file.display()))?;
            let body = futures_util::stream::unfold(f, |mut f| async move {
                use tokio::io::AsyncReadExt;
                let mut buf = vec![0u8; 1 << 20];
                match f.read(&mut buf).await {
                    Ok(0) => None,
                    Ok(n) => {
                        buf.truncate(n);
                        Some((Ok(bytes::Bytes::from(buf)), f))
                    }
                    Err(e) => Some((Err(e), f)),
                }
            });
            let t0 = Instant::now();
            let opts = bollard::query_parameters::ImportImageOptionsBuilder::default()
                .quiet(true)
                .build();
            let mut stream = docker.import_image(opts, bollard::body_try_stream(body), None);
            while let Some(item) = stream.next().await {
                item.with_context(|| format!("the engine could not load {}; is it an archive from `socialctl images export`?", file.display()))?;
            }
            println!(
                "loaded {} in {:.1} s; `socialctl up --runtime docker` will use it",
                file.display(),
                t0.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}
