//! Video: checked with `ffprobe` when it is uploaded (a corrupt container is refused
//! before anything is stored), and given a poster frame and its duration by `ffmpeg` in
//! the worker. Both are Debian's, run as child processes on files, never on memory: a
//! 100 MiB upload is never held whole.
//!
//! Each run is an INTERNAL span (`media.ffprobe`, `media.ffmpeg`) with the program and
//! its exit status, so a slow or failing probe shows in the trace where it happened.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::process::Refused;
use crate::sniff::Kind;

/// Where the programs are: `ffmpeg` and `ffprobe` on the PATH unless the configuration
/// says otherwise.
#[derive(Debug, Clone)]
pub struct Tools {
    pub ffmpeg: String,
    pub ffprobe: String,
}

/// What `ffprobe` found in a video.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Probe {
    pub width: u32,
    pub height: u32,
    pub duration_ms: i64,
}

/// Why a run did not give an answer.
#[derive(Debug)]
pub enum Failed {
    /// The file is not a video the tools can read: the client's mistake.
    Refused(Refused),
    /// The tool could not be run (missing, killed, too slow): the service's problem.
    Unavailable(String),
}

/// Runs a tool on a file inside an INTERNAL span; its stdout on success.
async fn run(
    name: &'static str,
    program: &str,
    args: &[&str],
    timeout: Duration,
) -> Result<Vec<u8>, Failed> {
    let span = tracing::info_span!("media.tool", otel.name = format!("media.{name}"));
    span.set_attribute("process.executable.name", name);
    let out = async {
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                Failed::Unavailable(format!(
                    "{name} could not be started ({program}: {e}); install Debian's ffmpeg package"
                ))
            })?;
        match tokio::time::timeout(timeout, child.wait_with_output()).await {
            Ok(Ok(out)) => Ok(out),
            Ok(Err(e)) => Err(Failed::Unavailable(format!("{name} failed to run: {e}"))),
            Err(_) => Err(Failed::Unavailable(format!(
                "{name} took longer than {} s",
                timeout.as_secs()
            ))),
        }
    }
    .instrument(span.clone())
    .await;
    let out = match out {
        Ok(out) => out,
        Err(e) => {
            if let Failed::Unavailable(m) = &e {
                telemetry::record_error(&span, "unavailable", m.clone());
            }
            return Err(e);
        }
    };
    span.set_attribute(
        "process.exit.code",
        i64::from(out.status.code().unwrap_or(-1)),
    );
    if out.status.success() {
        return Ok(out.stdout);
    }
    let why = String::from_utf8_lossy(&out.stderr);
    let why = why
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no reason given")
        .trim();
    telemetry::record_error(&span, "refused", why.to_owned());
    Err(Failed::Refused(Refused(why.to_owned())))
}

#[derive(serde::Deserialize)]
struct ProbeJson {
    #[serde(default)]
    streams: Vec<StreamJson>,
    format: Option<FormatJson>,
}

#[derive(serde::Deserialize)]
struct StreamJson {
    width: Option<u32>,
    height: Option<u32>,
}

#[derive(serde::Deserialize)]
struct FormatJson {
    duration: Option<String>,
}

/// Reads `ffprobe -of json` output: the first video stream's size and the duration.
fn parse_probe(kind: Kind, out: &[u8]) -> Result<Probe, Refused> {
    let ext = kind.extension();
    let p: ProbeJson = serde_json::from_slice(out)
        .map_err(|_| Refused(format!("the {ext} container cannot be read")))?;
    let stream = p
        .streams
        .first()
        .ok_or_else(|| Refused(format!("the {ext} file has no video stream")))?;
    let (width, height) = match (stream.width, stream.height) {
        (Some(w), Some(h)) if w > 0 && h > 0 => (w, h),
        _ => return Err(Refused(format!("the {ext} video declares no picture size"))),
    };
    let seconds: f64 = p
        .format
        .and_then(|f| f.duration)
        .and_then(|d| d.parse().ok())
        .filter(|d: &f64| d.is_finite() && *d >= 0.0)
        .ok_or_else(|| Refused(format!("the {ext} video has no readable duration")))?;
    Ok(Probe {
        width,
        height,
        duration_ms: (seconds * 1000.0).round() as i64,
    })
}

impl Tools {
    /// Checks a video file: a container `ffprobe` reads, with a video stream, a picture
    /// size and a duration; the container format must be the one its bytes announced.
    pub async fn probe(&self, kind: Kind, file: &Path, timeout: Duration) -> Result<Probe, Failed> {
        let path = file.to_string_lossy();
        let format = match kind {
            Kind::Mp4 => "mov,mp4,m4a,3gp,3g2,mj2",
            _ => "matroska,webm",
        };
        let out = run(
            "ffprobe",
            &self.ffprobe,
            &[
                "-v",
                "error",
                "-f",
                format.split(',').next().unwrap_or(format),
                "-select_streams",
                "v:0",
                "-show_entries",
                "stream=width,height:format=duration",
                "-of",
                "json",
                &path,
            ],
            timeout,
        )
        .await
        .map_err(|e| match e {
            Failed::Refused(r) => Failed::Refused(Refused(format!(
                "the {} container cannot be read: {}",
                kind.extension(),
                r.0
            ))),
            other => other,
        })?;
        parse_probe(kind, &out).map_err(Failed::Refused)
    }

    /// The poster frame, as a PNG: the frame a second in, or at the middle of a shorter
    /// video, scaled to fit 1280 pixels.
    pub async fn poster(
        &self,
        file: &Path,
        duration_ms: i64,
        timeout: Duration,
    ) -> Result<Vec<u8>, Failed> {
        let at = format!("{:.3}", (duration_ms.min(2000) as f64 / 2000.0).min(1.0));
        let path = file.to_string_lossy();
        run(
            "ffmpeg",
            &self.ffmpeg,
            &[
                "-v",
                "error",
                "-nostdin",
                "-ss",
                &at,
                "-i",
                &path,
                "-frames:v",
                "1",
                "-vf",
                "scale='min(1280,iw)':-2",
                "-f",
                "image2",
                "-c:v",
                "png",
                "pipe:1",
            ],
            timeout,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_gives_size_and_duration() {
        let out = br#"{"programs":[],"streams":[{"width":320,"height":240}],"format":{"duration":"2.040000"}}"#;
        assert_eq!(
            parse_probe(Kind::Mp4, out).expect("read"),
            Probe {
                width: 320,
                height: 240,
                duration_ms: 2040
            }
        );
    }

    #[test]
    fn a_file_without_picture_or_duration_is_refused() {
        let audio = br#"{"streams":[],"format":{"duration":"3.0"}}"#;
        assert!(
            parse_probe(Kind::Mp4, audio)
                .unwrap_err()
                .0
                .contains("no video stream")
        );
        let endless = br#"{"streams":[{"width":2,"height":2}],"format":{}}"#;
        assert!(
            parse_probe(Kind::Webm, endless)
                .unwrap_err()
                .0
                .contains("duration")
        );
        assert!(parse_probe(Kind::Webm, b"garbage").is_err());
    }
}
