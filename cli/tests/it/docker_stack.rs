//! The Docker runtime on the real engine: images built locally (no registry), labelled
//! containers, health-gated start, idempotent `up`, replicas, and a `down` that removes
//! only what socialctl created.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use socialctl::runtime::Runtime as _;

use crate::docker;

const BIN: &str = env!("CARGO_BIN_EXE_socialctl");
const PROJECT: &str = "sntest";
const GATEWAY: u16 = 19080;
const SINK_HTTP: u16 = 22318;

fn socialctl(args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .args(["--runtime", "docker", "--project", PROJECT]);
    if args[0] == "up" {
        cmd.args([
            "--gateway-port",
            "19080",
            "--postgres-port",
            "22432",
            "--redis-port",
            "22379",
            "--otlp-grpc-port",
            "22317",
            "--otlp-http-port",
            "22318",
            "--fault-proxy",
            "--fault-proxy-port",
            "22474",
        ]);
    }
    crate::run_logged(cmd, args)
}

struct Cleanup;

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = Command::new(BIN)
            .args([
                "down",
                "--volumes",
                "--runtime",
                "docker",
                "--project",
                PROJECT,
            ])
            .output();
        let _ = Command::new("docker")
            .args(["rm", "-f", "sntest-bystander"])
            .output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docker_runtime_boots_serves_scales_and_cleans_up_only_its_own() {
    let _one_at_a_time = crate::DOCKER.lock().await;
    let _cleanup = Cleanup;
    let up = socialctl(&["up"]);
    assert!(up.status.success(), "up failed");
    let text = String::from_utf8_lossy(&up.stdout).into_owned();
    assert!(
        text.contains("Docker runtime") && text.contains("all healthy"),
        "{text}"
    );

    // Something on the engine that socialctl did not create.
    let image = docker(&[
        "images",
        "--format",
        "{{.Repository}}:{{.Tag}}",
        "socialnet-base",
    ]);
    let image = image
        .lines()
        .next()
        .expect("the base image exists after up")
        .to_owned();
    docker(&[
        "run",
        "-d",
        "--name",
        "sntest-bystander",
        &image,
        "sleep",
        "300",
    ]);

    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{GATEWAY}");
    let r = client
        .post(format!("{base}/api/auth/register"))
        .json(&json!({"username": "docker_user", "password": "correct horse battery"}))
        .send()
        .await
        .expect("register through the gateway");
    assert_eq!(r.status(), 201);
    let token = r.json::<Value>().await.expect("json")["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let post: Value = client
        .post(format!("{base}/api/feed/posts"))
        .bearer_auth(&token)
        .json(&json!({"body": "from a container"}))
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    let read: Value = client
        .get(format!("{base}/api/feed/posts/{}", post["id"]))
        .send()
        .await
        .expect("read")
        .json()
        .await
        .expect("json");
    assert_eq!(read["body"], "from a container");
    // Messaging answers through the gateway too (its own database, created at start).
    let inbox = client
        .get(format!("{base}/api/messages/conversations"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("conversations");
    assert_eq!(inbox.status(), 200);
    // Media stores an upload in the object store's volume and processes it.
    let img = image::RgbImage::from_fn(200, 120, |x, y| image::Rgb([x as u8, y as u8, 3]));
    let mut png = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut png, image::ImageFormat::Png)
        .expect("encode");
    let up = client
        .post(format!("{base}/api/media"))
        .bearer_auth(&token)
        .body(png.into_inner())
        .send()
        .await
        .expect("upload");
    assert_eq!(up.status(), 201);
    let id = up.json::<Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let m: Value = client
            .get(format!("{base}/api/media/{id}"))
            .send()
            .await
            .expect("media")
            .json()
            .await
            .expect("json");
        if m["status"] == "ready" {
            let thumb = m["variants"]["160"].as_str().expect("160");
            let r = client
                .get(format!("{base}{thumb}"))
                .send()
                .await
                .expect("thumbnail");
            assert_eq!(r.status(), 200);
            break;
        }
        assert_eq!(m["status"], "pending", "{m}");
        assert!(Instant::now() < deadline, "still pending: {m}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let status = socialctl(&["status", "--json"]);
    let v: Value = serde_json::from_slice(&status.stdout).expect("status --json");
    assert_eq!(v["runtime"], "docker");
    let comps = v["components"].as_array().expect("components");
    // Every local-image component, and the fault proxy this test asked for.
    let expected = socialctl::stack::COMPONENTS
        .iter()
        .filter(|c| {
            matches!(
                c.presence,
                socialctl::stack::Presence::Always | socialctl::stack::Presence::FaultProxy
            )
        })
        .count();
    assert_eq!(comps.len(), expected, "{v:#}");
    assert!(
        comps
            .iter()
            .all(|c| c["health"] == "healthy" && c["state"] == "running"),
        "{v:#}"
    );

    let again = socialctl(&["up"]);
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing to do"));

    let scaled = socialctl(&["up", "--scale", "feed=2"]);
    assert!(scaled.status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let _ = client
            .get(format!("{base}/api/feed/timeline"))
            .bearer_auth(&token)
            .send()
            .await;
        let instances = crate::feed_instances(&client, SINK_HTTP).await;
        if instances.contains("feed") && instances.contains("feed-2") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "both feed replicas should serve; saw {instances:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // verify-traces finds the sink and the services' span counters (over the project
    // network) through what `up` recorded: no address flags.
    let verify = socialctl(&["verify-traces", "--json", "--timeout", "15"]);
    assert_eq!(
        verify.status.code(),
        Some(0),
        "traces from the containers verify at 100 %"
    );
    let report: Value = serde_json::from_slice(&verify.stdout).expect("verify --json");
    let services = report["pipeline"]["services"]
        .as_array()
        .expect("per-process counters");
    assert!(
        services.len() >= 4
            && services
                .iter()
                // The fault proxy has ended no span before a toxic acted, nor the
                // web frontend before a page was asked for.
                .filter(|s| s["instance"] != "chaosproxy" && s["instance"] != "web")
                .all(|s| s["counters"]["ended"].as_u64() > Some(0)),
        "every service's counters were read: {services:#?}"
    );

    // chaos through the CLI: every feed replica killed for 2 s; requests fail with the
    // gateway's JSON error meanwhile, and feed is back by itself when the fault heals.
    let mut chaos = Command::new(BIN)
        .args(["chaos", "kill", "feed", "--duration", "2s"])
        .args(["--runtime", "docker", "--project", PROJECT])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("socialctl chaos");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = client
            .get(format!("{base}/api/feed/timeline"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("the gateway answers");
        if r.status().is_server_error() {
            let v: Value = r.json().await.expect("a JSON error");
            assert_eq!(v["error"], "unavailable", "{v}");
            break;
        }
        if let Some(status) = chaos.try_wait().expect("wait") {
            let out = chaos.wait_with_output().expect("output");
            panic!(
                "chaos ended ({status}) before any request failed:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert!(Instant::now() < deadline, "feed never went away");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(s) = chaos.try_wait().expect("wait") {
            break s;
        }
        assert!(Instant::now() < deadline, "chaos did not heal within 90 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let out = chaos.wait_with_output().expect("output");
    assert!(
        status.success() && String::from_utf8_lossy(&out.stdout).contains("healed (timer)"),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let healed = client
        .get(format!("{base}/api/feed/timeline"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("the gateway answers");
    assert_eq!(healed.status(), 200, "feed is back");

    // A network fault on Docker: 200 ms between feed and PostgreSQL through the fault
    // proxy's container, measured on a post, gone when it heals by itself.
    let post = || async {
        let t = Instant::now();
        let r = client
            .post(format!("{base}/api/feed/posts"))
            .bearer_auth(&token)
            .json(&json!({"body": "through the proxy"}))
            .send()
            .await
            .expect("the gateway answers");
        assert_eq!(r.status(), 201);
        t.elapsed()
    };
    let quick = post().await;
    let slow = Command::new(BIN)
        .args([
            "chaos",
            "latency",
            "feed",
            "postgres",
            "--ms",
            "200",
            "--duration",
            "4s",
        ])
        .args(["--runtime", "docker", "--project", PROJECT])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("socialctl chaos latency");
    let deadline = Instant::now() + Duration::from_secs(10);
    let during = loop {
        let took = post().await;
        if took >= Duration::from_millis(400) {
            break took;
        }
        assert!(
            Instant::now() < deadline,
            "the latency never showed: {took:?}"
        );
    };
    let out = slow
        .wait_with_output()
        .expect("chaos latency ends by itself");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("healed (timer)"),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let after = post().await;
    assert!(
        after < during / 2,
        "healed: {quick:?} before, {during:?} during, {after:?} after"
    );

    // The runtime's operations on one instance (what chaos drives).
    let state_dir = socialctl::stack::state::default_dir(PROJECT);
    let rt = socialctl::runtime::docker::DockerRuntime::connect(&state_dir, PROJECT)
        .await
        .expect("engine");
    let inspect = |what: &str, c: &str| docker(&["inspect", "-f", what, &format!("{PROJECT}-{c}")]);
    rt.pause("feed-2").await.expect("pause");
    assert_eq!(inspect("{{.State.Paused}}", "feed-2"), "true");
    rt.resume("feed-2").await.expect("resume");
    assert_eq!(inspect("{{.State.Paused}}", "feed-2"), "false");
    rt.disconnect("profile").await.expect("disconnect");
    assert!(!inspect("{{json .NetworkSettings.Networks}}", "profile").contains(PROJECT));
    rt.connect("profile").await.expect("connect");
    assert!(inspect("{{json .NetworkSettings.Networks}}", "profile").contains(PROJECT));
    let started = inspect("{{.State.StartedAt}}", "auth");
    rt.restart("auth").await.expect("restart, health-gated");
    assert_ne!(inspect("{{.State.StartedAt}}", "auth"), started);
    // Killed: it stops, and the restart policy (unless-stopped) may bring it back;
    // either way the process that ran is gone.
    let before = inspect("{{.State.StartedAt}}", "feed-2");
    rt.signal("feed-2", socialctl::stack::Signal::Kill)
        .await
        .expect("kill");
    let deadline = Instant::now() + Duration::from_secs(10);
    while inspect("{{.State.Status}}", "feed-2") == "running"
        && inspect("{{.State.StartedAt}}", "feed-2") == before
    {
        assert!(Instant::now() < deadline, "feed-2 survived SIGKILL");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let down = socialctl(&["down", "--volumes"]);
    assert!(down.status.success());
    assert_eq!(
        docker(&[
            "ps",
            "-a",
            "-q",
            "--filter",
            &format!("label=io.socialnet.project={PROJECT}")
        ]),
        "",
        "no labelled container is left"
    );
    assert_eq!(
        docker(&[
            "network",
            "ls",
            "-q",
            "--filter",
            &format!("name=^{PROJECT}$")
        ]),
        "",
        "the project network is gone"
    );
    assert_eq!(
        docker(&["inspect", "-f", "{{.State.Running}}", "sntest-bystander"]),
        "true",
        "down left the bystander alone"
    );
}
