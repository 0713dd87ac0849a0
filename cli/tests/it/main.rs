//! socialctl end to end: the real binary boots a real stack (PostgreSQL, Redis, NGINX,
//! the services, the sink) as local processes on private ports, and is driven like a
//! user drives it.

mod compose;
mod docker_stack;
mod fuzz;
mod isolation;
mod load_run;
mod local_stack;
mod table;
mod tidy;
mod workshop;

/// Docker stacks are started one at a time: the first builds the images.
pub static DOCKER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The trimmed output of a `docker` CLI command (to look at the engine independently of
/// socialctl).
pub fn docker(args: &[&str]) -> String {
    let out = std::process::Command::new("docker")
        .args(args)
        .output()
        .expect("the docker CLI runs");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Runs a socialctl command and echoes it with its output (shown when a test fails).
pub fn run_logged(mut cmd: std::process::Command, args: &[&str]) -> std::process::Output {
    let out = cmd.output().expect("run socialctl");
    eprintln!(
        "$ socialctl {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `service.instance.id`s of the feed replicas that served `GET /api/feed/timeline`,
/// according to the sink.
pub async fn feed_instances(
    client: &reqwest::Client,
    sink_port: u16,
) -> std::collections::BTreeSet<String> {
    let traces: Vec<Vec<serde_json::Value>> = client
        .get(format!("http://127.0.0.1:{sink_port}/api/export"))
        .send()
        .await
        .expect("sink answers")
        .json()
        .await
        .expect("export is JSON");
    traces
        .iter()
        .flatten()
        .filter(|s| s["service"] == "feed" && s["name"] == "GET /api/feed/timeline")
        .map(|s| s["instance"].as_str().unwrap_or("").to_owned())
        .collect()
}
