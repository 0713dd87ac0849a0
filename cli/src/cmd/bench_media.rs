//! `socialctl bench-media`: a large video upload through the gateway, on the running
//! stack. Makes a video of the asked size with ffmpeg (noise frames, so its size is its
//! bitrate), uploads it through the gateway while sampling media's memory, and reports
//! the throughput, media's memory before and at its peak (the goal: the upload is
//! streamed, so the peak stays under 64 MiB), and the time until its poster is ready.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::runtime::Runtime as _;

#[derive(Debug, Clone, clap::Args)]
pub struct BenchMediaArgs {
    #[command(flatten)]
    pub stack: super::StackArgs,
    /// Size of the video to upload, in MiB (media takes up to 100).
    #[arg(long, default_value_t = 95)]
    pub size_mib: u64,
    /// Print one JSON document instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Makes an MP4 of about `mib` MiB of noise frames (a new one each run: a fresh comment
/// gives it a fresh hash, so nothing is deduplicated).
fn make_video(dir: &Path, mib: u64) -> anyhow::Result<PathBuf> {
    let encode = |frames: u64, out: &Path| -> anyhow::Result<()> {
        let status = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i"])
            .arg("nullsrc=s=1280x720:r=25,geq=random(1)*255:128:128")
            .args([
                "-frames:v",
                &frames.to_string(),
                "-c:v",
                "mpeg4",
                "-q:v",
                "2",
            ])
            .args(["-metadata", &format!("comment={}", uuid::Uuid::new_v4())])
            .arg(out)
            .status()
            .context("could not run ffmpeg: install Debian's ffmpeg package")?;
        if !status.success() {
            bail!("ffmpeg could not make the test video");
        }
        Ok(())
    };
    // Ten frames give the size of one; then enough frames for the size asked.
    let probe = dir.join("probe.mp4");
    encode(10, &probe)?;
    let per_frame = (std::fs::metadata(&probe)?.len() / 10).max(1);
    let out = dir.join("upload.mp4");
    encode((mib * 1024 * 1024 / per_frame).max(1), &out)?;
    Ok(out)
}

pub async fn run(a: &BenchMediaArgs) -> anyhow::Result<()> {
    let (gateway, _, path) = super::load::direct_or_published(&a.stack, false).await;
    let base = gateway.trim_end_matches('/').to_owned();
    let say = |m: String| {
        if !a.json {
            eprintln!("{m}");
        }
    };
    let dir = tempfile::tempdir()?;
    say(format!(
        "bench-media: making a {} MiB video with ffmpeg",
        a.size_mib
    ));
    let file = make_video(dir.path(), a.size_mib)?;
    let bytes = bytes::Bytes::from(std::fs::read(&file)?);
    let size = bytes.len() as f64;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()?;
    let name = format!(
        "bench_media_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let password = "bench-media-password";
    let r = http
        .post(format!("{base}/api/auth/register"))
        .json(&serde_json::json!({"username": name, "password": password, "email": format!("{name}@example.com")}))
        .send()
        .await
        .with_context(|| format!("could not reach the gateway at {base}; is the stack up?"))?;
    if !r.status().is_success() {
        bail!("registering a benchmark user failed: {}", r.text().await?);
    }
    let r = http
        .post(format!("{base}/api/auth/login"))
        .json(&serde_json::json!({"username": name, "password": password}))
        .send()
        .await?;
    let v: serde_json::Value = r.json().await?;
    let token = v["access_token"]
        .as_str()
        .context("signing in gave no access token")?
        .to_owned();

    let rt = a.stack.target().in_use().await?;
    let memory = || crate::runtime::component_memory(&rt, "media");
    let before = memory().await;
    // The process's own peak resident memory (VmHWM), from /proc: on Docker the runtime's
    // figure is the container's cgroup, which also counts the page cache of the spooled
    // file.
    let pid = rt
        .status()
        .await?
        .into_iter()
        .find(|r| r.name == "media")
        .and_then(|r| r.pid);
    let hwm = || pid.and_then(|p| proc_kib(p, "VmHWM:")).map(|k| k * 1024);
    let hwm_before = hwm();
    say(format!(
        "bench-media: uploading {:.1} MiB through {base} ({path}), sampling media's memory",
        size / 1048576.0
    ));
    let started = Instant::now();
    let upload = http
        .post(format!("{base}/api/media"))
        .bearer_auth(&token)
        .header("content-type", "video/mp4")
        .body(bytes.clone())
        .send();
    tokio::pin!(upload);
    let mut peak = before;
    let response = loop {
        tokio::select! {
            r = &mut upload => break r?,
            m = memory() => {
                peak = peak.max(m);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let upload_secs = started.elapsed().as_secs_f64();
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    if status.as_u16() != 201 {
        bail!("the upload was answered {status}: {body}");
    }
    let id = body["id"].as_str().context("an id")?.to_owned();
    // Until ready: the worker copies it to disk and ffmpeg reads its poster frame.
    let deadline = Instant::now() + Duration::from_secs(120);
    let state = loop {
        let m = memory().await;
        peak = peak.max(m);
        let v: serde_json::Value = http
            .get(format!("{base}/api/media/{id}"))
            .send()
            .await?
            .json()
            .await?;
        if v["status"] != "pending" || Instant::now() > deadline {
            break v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let ready_secs = started.elapsed().as_secs_f64();
    let after = memory().await;
    let hwm_after = hwm();
    let mbps = size / 1e6 / upload_secs;
    let mib = |b: u64| b as f64 / 1048576.0;
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "path": path,
                "bytes": bytes.len(),
                "upload_seconds": upload_secs,
                "upload_mb_per_s": mbps,
                "ready_seconds": ready_secs,
                "status": state["status"],
                "duration_ms": state["duration_ms"],
                "media_memory_before_bytes": before,
                "media_memory_peak_bytes": peak,
                "media_memory_after_bytes": after,
                "media_peak_rss_before_bytes": hwm_before,
                "media_peak_rss_after_bytes": hwm_after,
            })
        );
    } else {
        println!(
            "upload of {:.1} MiB through the gateway ({path}): {upload_secs:.2} s, {mbps:.0} MB/s",
            size / 1048576.0
        );
        if let (Some(b), Some(a)) = (hwm_before, hwm_after) {
            println!(
                "media process peak resident memory (VmHWM): {:.1} MiB before the upload, {:.1} MiB after it and its processing (goal: under 64 MiB)",
                mib(b),
                mib(a)
            );
        }
        println!(
            "media memory as the runtime reports it: {:.1} MiB before, {:.1} MiB at the peak of 50 ms samples, {:.1} MiB after{}",
            mib(before),
            mib(peak),
            mib(after),
            if pid.is_some() && rt.kind() == crate::stack::state::RuntimeKind::Docker {
                " (the container's cgroup: includes the page cache of the spooled file)"
            } else {
                ""
            }
        );
        println!(
            "processed: {} after {ready_secs:.2} s from the start of the upload (video {} ms long)",
            state["status"], state["duration_ms"]
        );
    }
    if state["status"] != "ready" {
        bail!("the video did not become ready: {state}");
    }
    Ok(())
}

/// A `kB` line of `/proc/PID/status`.
fn proc_kib(pid: u32, key: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}
