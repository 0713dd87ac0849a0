//! Images for the Docker runtime without a registry.
//!
//! - `socialnet-base:RECIPE`: a Debian bookworm root filesystem made with debootstrap
//!   (PostgreSQL, Redis, NGINX, CA certificates, ffmpeg) and imported through the Docker API
//!   (`docker import`, i.e. `create_image` from a tar body).
//! - `socialnet-stack:HASH`: the base plus this build's binaries (`socialnet`, the
//!   services in one multi-call binary, and socialctl, which is also the sink), made by uploading them into
//!   a stopped container and committing it, so no builder and no registry are involved.
//!   The tag is a hash of the binaries, so a rebuild makes a new image and `up` notices.
//!
//! In official-image mode (a registry answers) the infrastructure images are pulled,
//! pinned, and the stack image is built the same way on the official Debian slim image
//! (`socialnet-stack:HASH-slim`) instead of the debootstrap base.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context as _, bail};
use bollard::Docker;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    CommitContainerOptionsBuilder, CreateImageOptionsBuilder, RemoveContainerOptionsBuilder,
    UploadToContainerOptionsBuilder,
};
use futures_util::StreamExt;

/// Bump when the package list or build steps change.
pub const BASE_RECIPE: &str = "bookworm-2";
pub const BASE_REPO: &str = "socialnet-base";
pub const STACK_REPO: &str = "socialnet-stack";
/// ffmpeg is media's video tool (posters, durations, container checks).
const PACKAGES: &str = "postgresql,redis-server,nginx-light,ca-certificates,ffmpeg";
/// The services (one multi-call binary) and socialctl (also the sink).
const BINARIES: &[&str] = &["socialnet", "socialctl"];

pub async fn exists(docker: &Docker, image: &str) -> bool {
    docker.inspect_image(image).await.is_ok()
}

/// Builds the base image unless it exists; returns its name.
pub async fn ensure_base(docker: &Docker, say: &dyn Fn(&str)) -> anyhow::Result<String> {
    let name = format!("{BASE_REPO}:{BASE_RECIPE}");
    if exists(docker, &name).await {
        return Ok(name);
    }
    let debootstrap = super::process::find_program("debootstrap", &["/usr/sbin"])
        .context("no registry is reachable from here, so socialctl builds its images itself, and that needs debootstrap: install it with `apt-get install debootstrap`")?;
    if !crate::stack::state::is_root() {
        bail!(
            "building the offline base image runs debootstrap, which needs root; run `socialctl up` once as root (later runs reuse the image)"
        );
    }
    let t0 = Instant::now();
    let dir = std::env::temp_dir().join(format!("socialnet-rootfs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    say(&format!(
        "building {name}: debootstrap of Debian bookworm with {PACKAGES} (about a minute)"
    ));
    let out = Command::new(debootstrap)
        .args([
            "--variant=minbase",
            &format!("--include={PACKAGES}"),
            "bookworm",
        ])
        .arg(&dir)
        .arg("http://deb.debian.org/debian")
        .output()
        .context("could not run debootstrap")?;
    if !out.status.success() {
        let log = String::from_utf8_lossy(&out.stderr);
        let _ = std::fs::remove_dir_all(&dir);
        bail!(
            "debootstrap failed (is the Debian mirror reachable?):\n{}",
            log.lines()
                .rev()
                .take(15)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    // The package cache is not needed at run time and is a third of the size.
    let _ = std::fs::remove_dir_all(dir.join("var/cache/apt/archives"));
    say(&format!("importing {name} through the Docker API"));
    let tar = Command::new("tar")
        .arg("-C")
        .arg(&dir)
        .args(["-c", "."])
        .output()
        .context("could not run tar")?;
    let _ = std::fs::remove_dir_all(&dir);
    if !tar.status.success() {
        bail!(
            "tar of the root filesystem failed: {}",
            String::from_utf8_lossy(&tar.stderr)
        );
    }
    let opts = CreateImageOptionsBuilder::default()
        .from_src("-")
        .repo(BASE_REPO)
        .tag(BASE_RECIPE)
        .build();
    let mut stream = docker.create_image(
        Some(opts),
        Some(bollard::body_full(tar.stdout.into())),
        None,
    );
    while let Some(item) = stream.next().await {
        item.context("the Docker engine refused the base image import")?;
    }
    say(&format!(
        "built {name} in {:.0} s",
        t0.elapsed().as_secs_f64()
    ));
    Ok(name)
}

fn binary_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot locate socialctl")?;
    let dir = exe
        .parent()
        .context("socialctl has no directory")?
        .to_owned();
    for b in BINARIES {
        if !dir.join(b).is_file() {
            bail!(
                "cannot find the `{b}` binary next to socialctl in {}; build them with `cargo build --release -p socialnet -p socialctl`",
                dir.display()
            );
        }
    }
    Ok(dir)
}

/// FNV-1a over the binaries' bytes: a content tag for the stack image.
fn content_tag(dir: &Path) -> anyhow::Result<String> {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in BINARIES {
        for byte in std::fs::read(dir.join(b))? {
            h ^= u64::from(byte);
            h = h.wrapping_mul(0x100000001b3);
        }
    }
    Ok(format!("{h:016x}"))
}

/// Builds the stack image for this build's binaries unless it exists; returns its name.
///
/// With `official`, the base is the pinned official Debian image (pulled) instead of the
/// debootstrap one; the tag then ends in `-slim`. `no_registry` is why no registry
/// answered, when the caller already probed (otherwise this probes before building).
pub async fn ensure_stack(
    docker: &Docker,
    say: &dyn Fn(&str),
    official: bool,
    no_registry: Option<String>,
) -> anyhow::Result<String> {
    let base = if official {
        pull(docker, crate::stack::official::DEBIAN_IMAGE, say).await?;
        crate::stack::official::DEBIAN_IMAGE.to_owned()
    } else {
        ensure_base(docker, say).await?
    };
    let dir = binary_dir()?;
    let tag = content_tag(&dir)?;
    let name = if official {
        format!("{STACK_REPO}:{tag}-slim")
    } else {
        format!("{STACK_REPO}:{tag}")
    };
    if exists(docker, &name).await {
        tag_local(docker, &name).await?;
        return Ok(name);
    }
    if !official {
        say(&registry_reason(docker, no_registry).await);
    }
    say(&format!(
        "building {name} from {base} and the binaries in {}",
        dir.display()
    ));
    let staging = std::env::temp_dir().join(format!("socialnet-bin-{}", std::process::id()));
    let bin = staging.join("usr/local/bin");
    std::fs::create_dir_all(&bin)?;
    for b in BINARIES {
        std::fs::copy(dir.join(b), bin.join(b)).with_context(|| format!("copying {b}"))?;
    }
    let tar = Command::new("tar")
        .arg("-C")
        .arg(&staging)
        .args(["-c", "usr"])
        .output()
        .context("could not run tar")?;
    let _ = std::fs::remove_dir_all(&staging);
    // The official Debian image lacks media's ffmpeg: the building container installs it
    // from Debian's mirror before the binaries go in (the debootstrap base has it).
    let cmd = if official {
        say("installing ffmpeg into the services' image (apt-get, in the building container)");
        vec!["sh".into(), "-c".into(), OFFICIAL_SETUP.into()]
    } else {
        vec!["true".into()]
    };
    let body = ContainerCreateBody {
        image: Some(base.clone()),
        cmd: Some(cmd.clone()),
        ..Default::default()
    };
    let c = docker
        .create_container(None, body)
        .await
        .context("could not create the image-building container")?;
    let result = async {
        if official {
            run_to_end(docker, &c.id).await?;
        }
        docker
            .upload_to_container(
                &c.id,
                Some(UploadToContainerOptionsBuilder::default().path("/").build()),
                bollard::body_full(tar.stdout.into()),
            )
            .await
            .context("could not copy the binaries into the image")?;
        docker
            .commit_container(
                CommitContainerOptionsBuilder::default()
                    .container(&c.id)
                    .repo(STACK_REPO)
                    .tag(&tag)
                    .build(),
                bollard::models::ContainerConfig::default(),
            )
            .await
            .context("could not commit the stack image")?;
        anyhow::Ok(())
    }
    .await;
    let _ = docker
        .remove_container(
            &c.id,
            Some(RemoveContainerOptionsBuilder::default().force(true).build()),
        )
        .await;
    result?;
    tag_local(docker, &name).await?;
    prune_old(docker, &name).await;
    Ok(name)
}

/// What the building container runs on the official Debian image.
const OFFICIAL_SETUP: &str = "apt-get update -qq && \
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ffmpeg ca-certificates && \
    rm -rf /var/lib/apt/lists/*";

/// Starts a container and waits for its command to end; an error if it failed.
async fn run_to_end(docker: &Docker, id: &str) -> anyhow::Result<()> {
    docker
        .start_container(id, None::<bollard::query_parameters::StartContainerOptions>)
        .await
        .context("could not start the image-building container")?;
    let mut wait =
        docker.wait_container(id, None::<bollard::query_parameters::WaitContainerOptions>);
    while let Some(r) = wait.next().await {
        match r {
            Ok(status) if status.status_code == 0 => {}
            Ok(status) => bail!(
                "installing ffmpeg in the services' image failed (exit {})",
                status.status_code
            ),
            Err(bollard::errors::Error::DockerContainerWaitError { code, error }) => {
                bail!("installing ffmpeg in the services' image failed (exit {code}): {error}")
            }
            Err(e) => return Err(e).context("waiting for the image-building container"),
        }
    }
    Ok(())
}

/// Also tags the stack image `socialnet-stack:local`, the name the Compose file uses.
async fn tag_local(docker: &Docker, name: &str) -> anyhow::Result<()> {
    let opts = bollard::query_parameters::TagImageOptionsBuilder::default()
        .repo(STACK_REPO)
        .tag("local")
        .build();
    docker
        .tag_image(name, Some(opts))
        .await
        .context("could not tag the stack image as socialnet-stack:local")
}

/// Removes stack images of earlier builds. An image a container still uses is refused
/// by the engine and kept.
async fn prune_old(docker: &Docker, current: &str) {
    let filters = std::collections::HashMap::from([("reference", vec![format!("{STACK_REPO}:*")])]);
    let opts = bollard::query_parameters::ListImagesOptionsBuilder::default()
        .filters(&filters)
        .build();
    let Ok(images) = docker.list_images(Some(opts)).await else {
        return;
    };
    for img in images {
        for tag in img.repo_tags {
            if tag != current && tag != format!("{STACK_REPO}:local") {
                let _ = docker
                    .remove_image(
                        &tag,
                        None::<bollard::query_parameters::RemoveImageOptions>,
                        None,
                    )
                    .await;
            }
        }
    }
}

/// Why images are built here rather than pulled, probed without pulling anything. Only
/// asked when an image must be built: the probe can take seconds on an offline machine.
/// Whether the engine can reach a registry (it resolves one pinned official image), or
/// why not.
pub async fn registry_probe(docker: &Docker) -> Result<(), String> {
    let probe = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        docker.inspect_registry_image(crate::stack::official::POSTGRES_IMAGE, None),
    )
    .await;
    match probe {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => {
            // The engine wraps the resolver's error; its last clause says why.
            let msg = e.to_string();
            Err(format!(
                "no registry is reachable: {}",
                msg.rsplit(": ").next().unwrap_or(&msg).trim()
            ))
        }
        Err(_) => Err("no registry answered within 5 s".to_owned()),
    }
}

async fn registry_reason(docker: &Docker, known: Option<String>) -> String {
    let why = match known {
        Some(why) => why,
        None => match registry_probe(docker).await {
            Ok(()) => "--images local asks for locally built images".to_owned(),
            Err(why) => why,
        },
    };
    format!("{why}; socialctl builds the images locally (debootstrap base + this build's binaries)")
}

/// Pulls `image` unless the engine has it, saying so.
pub async fn pull(docker: &Docker, image: &str, say: &dyn Fn(&str)) -> anyhow::Result<()> {
    if exists(docker, image).await {
        return Ok(());
    }
    let t0 = Instant::now();
    say(&format!("pulling {image}"));
    let opts = CreateImageOptionsBuilder::default()
        .from_image(image)
        .build();
    let mut stream = docker.create_image(Some(opts), None, None);
    while let Some(item) = stream.next().await {
        if let Err(e) = item {
            bail!(
                "pulling {image} failed: {e}; retry, or use `socialctl up --images local` to build everything offline"
            );
        }
    }
    say(&format!(
        "pulled {image} in {:.0} s",
        t0.elapsed().as_secs_f64()
    ));
    Ok(())
}
