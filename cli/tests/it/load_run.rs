//! `socialctl load` against a real stack (local runtime, private ports): every request
//! recorded, totals consistent, every recorded trace accounted for by verify-traces, the
//! open model's rate honoured, thresholds and bad targets reported.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_socialctl");
const GATEWAY: u16 = 19180;
const PG: u16 = 25532;
const REDIS: u16 = 26479;
const SINK_HTTP: u16 = 24418;

fn run(state: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .arg("--state-dir")
        .arg(state)
        .args(["--runtime", "local"]);
    if args[0] == "up" {
        for (k, v) in [
            ("--gateway-port", GATEWAY),
            ("--postgres-port", PG),
            ("--redis-port", REDIS),
            ("--otlp-grpc-port", 24417),
            ("--otlp-http-port", SINK_HTTP),
            ("--service-base-port", 19181),
        ] {
            cmd.arg(k).arg(v.to_string());
        }
    }
    // `load` and `verify-traces` get no address flags: they find the stack `up` started
    // through its state directory.
    crate::run_logged(cmd, args)
}

struct Down<'a>(&'a Path);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        let _ = Command::new(BIN)
            .args(["down", "--volumes", "--runtime", "local", "--state-dir"])
            .arg(self.0)
            .output();
    }
}

/// A small population so the automatic seeding is quick, short think times so a few
/// seconds make a few hundred requests, and every action in the mix.
const WORKLOAD: &str = "\
population users=300 password=password123
register 0%
think 20ms..120ms
action timeline 10 pages=1..2 page-think=10ms..30ms
action view-post 3
action profile 3
action search 2
action follow 2
action unfollow 1
action post 2
action like 3
action comment 2
action message 3
action post-image 1
threshold error-rate<1%
";

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .expect("record file")
        .lines()
        .map(|l| serde_json::from_str(l).expect("each record line is JSON"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_records_every_request_and_verify_accounts_for_each() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let state = tmp.path().join("stack");
    std::fs::create_dir_all(&state).expect("state dir");
    let _ = Command::new("chmod").arg("755").arg(tmp.path()).status();
    let _down = Down(&state);
    let workload = tmp.path().join("small.workload");
    std::fs::write(&workload, WORKLOAD).expect("workload file");

    // Nothing listens yet: a clear error naming the fix, exit 2. (Aimed at this test's
    // port: with nothing recorded, load would try a default stack on 8080.)
    let early = run(
        &state,
        &[
            "load",
            "--users",
            "2",
            "--duration",
            "2s",
            "--gateway",
            &format!("http://127.0.0.1:{GATEWAY}"),
        ],
    );
    assert_eq!(early.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&early.stderr).contains("socialctl up"));

    // Official images are a Docker thing: the local runtime says so instead of guessing.
    let official = run(&state, &["up", "--images", "official"]);
    assert_eq!(official.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&official.stderr).contains("needs the Docker runtime"));

    // Access tokens that live 62 s: the workload refreshes them when they expire within
    // 60 s, so every user refreshes about two seconds after signing in.
    assert!(
        run(&state, &["up", "--env", "AUTH_ACCESS_TTL=62"])
            .status
            .success(),
        "up failed"
    );

    // A user registered by hand first, as README's tour does: load seeds its population
    // beside that account, and the account survives.
    let client = reqwest::Client::new();
    let gateway = format!("http://127.0.0.1:{GATEWAY}");
    let tour = serde_json::json!({"username": "tour_user", "password": "correct horse battery"});
    let r = client
        .post(format!("{gateway}/api/auth/register"))
        .json(&tour)
        .send()
        .await
        .expect("register through the gateway");
    assert_eq!(r.status(), 201);

    // Closed model. The population is missing, so load seeds it first.
    let record = tmp.path().join("closed.jsonl");
    let out = run(
        &state,
        &[
            "load",
            "--users",
            "10",
            "--duration",
            "6s",
            "--ramp",
            "1s",
            "--json",
            "--workload",
            workload.to_str().unwrap(),
            "--record",
            record.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "thresholds met");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("seeding 300 users beside the 1 accounts"),
        "seeded beside the hand-made account"
    );
    let r = client
        .post(format!("{gateway}/api/auth/login"))
        .json(&tour)
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), 200, "the hand-made account is still there");
    let report: Value = serde_json::from_slice(&out.stdout).expect("--json prints only the report");
    let total = report["total"]["requests"].as_u64().unwrap();
    let rows = report["endpoints"].as_array().unwrap();
    let sum: u64 = rows.iter().map(|r| r["requests"].as_u64().unwrap()).sum();
    assert_eq!(sum, total, "the total is the sum of the endpoints");
    // Each user's first sign-in is the sign-in phase: its own row, outside the day.
    let sign_in = &report["sign_in"];
    assert_eq!(sign_in["endpoint"], "sign-in phase (setup)");
    assert_eq!(
        sign_in["requests"], 10,
        "each of the 10 users signed in once"
    );
    assert!(
        rows.iter().all(|r| r["endpoint"] != "POST /api/auth/login"),
        "no sign-in of the day in a 6 s run: {rows:?}"
    );
    let recorded = lines(&record);
    assert_eq!(
        recorded.len() as u64,
        total + 10,
        "one line per request, the sign-in phase included"
    );
    assert!(
        total > 100,
        "a 6 s run with 10 users makes hundreds of requests: {total}"
    );
    let logins: Vec<&Value> = recorded
        .iter()
        .filter(|l| l["endpoint"] == "POST /api/auth/login")
        .collect();
    assert_eq!(logins.len(), 10, "each user signs in once");
    // Ramp honoured: every user signed in within the ramp (plus the login's own time).
    assert!(
        logins
            .iter()
            .all(|l| l["intended_ms"].as_f64().unwrap() < 1500.0),
        "{logins:?}"
    );
    let secs = report["seconds"].as_f64().unwrap();
    assert!((5.5..=6.5).contains(&secs), "duration honoured: {secs}");
    let mut ids = HashSet::new();
    for l in &recorded {
        let t = l["trace_id"].as_str().unwrap();
        assert!(
            t.len() == 32 && t.chars().all(|c| c.is_ascii_hexdigit()),
            "{l}"
        );
        assert_eq!(l["parent_span_id"].as_str().unwrap().len(), 16);
        assert!(ids.insert(t.to_owned()), "trace id {t} used twice");
    }
    let refresh = rows
        .iter()
        .find(|r| r["endpoint"] == "POST /api/auth/refresh")
        .expect("tokens about to expire are refreshed");
    assert!(refresh["requests"].as_u64().unwrap() >= 10, "{refresh}");
    assert_eq!(refresh["failures"], 0, "{refresh}");
    for kind in [
        "GET /api/feed/timeline",
        "POST /api/feed/posts",
        "PUT /api/feed/posts/{id}/like",
        "POST /api/messages/ws-ticket",
        "WS send",
    ] {
        assert!(rows.iter().any(|r| r["endpoint"] == kind), "{kind} missing");
    }
    assert_eq!(
        report["client_spans"]["exported"].as_u64(),
        Some(total + 10)
    );

    // A workload whose population is larger than the one seeded is refused before any
    // load (its requests for the missing users would be 404s), and says how to fix it.
    let bigger = tmp.path().join("bigger.workload");
    std::fs::write(&bigger, WORKLOAD.replace("users=300", "users=400")).expect("workload");
    let out = run(
        &state,
        &[
            "load",
            "--users",
            "2",
            "--duration",
            "2s",
            "--workload",
            bigger.to_str().unwrap(),
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("user00399 does not exist") && err.contains("population users="),
        "{err}"
    );

    // verify-traces accounts for every trace id the run recorded.
    let v = run(
        &state,
        &[
            "verify-traces",
            "--json",
            "--sent",
            record.to_str().unwrap(),
        ],
    );
    let verdict: Value = serde_json::from_slice(&v.stdout).expect("verify --json");
    assert_eq!(verdict["traces"].as_u64(), Some(total + 10), "{verdict:#}");
    assert_eq!(verdict["completeness"], 1.0, "{verdict:#}");
    assert_eq!(v.status.code(), Some(0));

    // Open model: 40 arrivals a second for the 3 s after the ramp, and a threshold that
    // cannot be met (exit 1, report still printed).
    let record = tmp.path().join("open.jsonl");
    let out = run(
        &state,
        &[
            "load",
            "--users",
            "8",
            "--rate",
            "40",
            "--duration",
            "4s",
            "--ramp",
            "1s",
            "--csv",
            "--threshold",
            "max<1ms",
            "--workload",
            workload.to_str().unwrap(),
            "--record",
            record.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "an unmet threshold exits 1");
    let csv = String::from_utf8_lossy(&out.stdout);
    assert!(csv.starts_with("endpoint,requests,failures,"), "{csv}");
    let paced = lines(&record)
        .iter()
        .filter(|l| l["endpoint"] != "POST /api/auth/login")
        .count();
    assert!(
        (108..=120).contains(&paced),
        "40/s for 3 s is 120 arrivals; sent {paced}"
    );

    chaos_experiments_hold_or_deviate(&state, tmp.path());
    phones_report_and_every_trace_is_accounted_for(&state, tmp.path()).await;
}

/// `socialctl sim` on the same stack: phones that go offline (their spans arrive late,
/// some dropped from a full buffer), rotate sessions, run on wrong clocks and send bad
/// requests; every resource attribute reaches the sink, every trace is complete once
/// the clocks are corrected, and a bad request answered 500 fails the run.
async fn phones_report_and_every_trace_is_accounted_for(state: &Path, dir: &Path) {
    let profile = scenarios::sim::PHONES
        .replace("think      1s..4s", "think      200ms..600ms")
        .replace(
            "background every=20s..60s for=2s..20s",
            "background every=2s..4s for=1s..2s",
        )
        .replace(
            "session    background=15m max=240m",
            "session    background=1s max=240m",
        )
        .replace(
            "offline    share=20%  every=20s..60s  for=5s..20s",
            "offline    share=50%  every=1s..3s  for=2s..4s",
        )
        .replace(
            "buffer     spans=300  upload-every=5s",
            "buffer     spans=12  upload-every=1s",
        )
        .replace("skew       share=10%", "skew       share=40%")
        .replace("bad        share=3%", "bad        share=15%");
    let path = dir.join("test.profile");
    std::fs::write(&path, &profile).expect("profile");
    let record = dir.join("sim.jsonl");
    // While the phones run, a verification waits for their buffered uploads, then
    // finds every trace whole.
    let running = {
        let (state, path, record) = (state.to_owned(), path.clone(), record.clone());
        std::thread::spawn(move || {
            run(
                &state,
                &[
                    "sim",
                    "--devices",
                    "30",
                    "--duration",
                    "12s",
                    "--ramp",
                    "2s",
                    "--seed",
                    "5",
                    "--json",
                    "--profile",
                    path.to_str().unwrap(),
                    "--record",
                    record.to_str().unwrap(),
                ],
            )
        })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !state.join("sim-pending.json").exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the simulation never listed its pending traces"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let during = run(state, &["verify-traces", "--json", "--timeout", "60"]);
    let during: Value = serde_json::from_slice(&during.stdout).expect("verify --json");
    assert_eq!(during["completeness"], 1.0, "{:#}", during["kinds"]);
    assert!(
        during.get("waiting_on_devices").is_none(),
        "waited for every upload: {during:#}"
    );
    assert!(
        during["dropped_on_devices"].as_u64() > Some(0),
        "the holes full phone buffers made are the phones': {during:#}"
    );
    let out = running.join().expect("sim");
    assert_eq!(out.status.code(), Some(0), "no defect");
    let r: Value = serde_json::from_slice(&out.stdout).expect("--json prints the report");
    assert_eq!(r["devices"], 30);
    assert!(
        r["session_rotations"].as_u64() > Some(0),
        "sessions rotated after 1 s away: {r:#}"
    );
    assert!(r["offline_periods"].as_u64() > Some(0), "{r:#}");
    assert!(
        r["spans_dropped_on_devices"].as_u64() > Some(0),
        "a 12-span buffer overflowed offline"
    );
    assert!(
        r["defects"].as_array().is_some_and(Vec::is_empty),
        "{:#}",
        r["defects"]
    );
    let kinds = r["bad_requests"].as_array().expect("bad requests");
    assert!(kinds.len() >= 4, "{kinds:#?}");
    for k in kinds {
        for status in k["answers"].as_object().expect("answers").keys() {
            assert!(status.starts_with('4'), "{k}");
        }
    }
    let skewed = r["notable_devices"]
        .as_array()
        .expect("devices")
        .iter()
        .filter(|d| {
            d["clock_offset_ms"]
                .as_f64()
                .is_some_and(|o| o.abs() > 1000.0)
        })
        .count();
    assert!(skewed > 0, "{:#}", r["notable_devices"]);
    let screens: Vec<&str> = r["screens"]
        .as_array()
        .expect("screens")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert!(
        screens.contains(&"open timeline") && screens.contains(&"app start (cold)"),
        "{screens:?}"
    );

    // Every request that reached the network has its whole trace, the phones' late
    // uploads included, once their clocks are corrected; each skewed phone is named.
    let v = run(
        state,
        &[
            "verify-traces",
            "--json",
            "--sent",
            record.to_str().unwrap(),
        ],
    );
    let verdict: Value = serde_json::from_slice(&v.stdout).expect("verify --json");
    assert_eq!(verdict["completeness"], 1.0, "{:#}", verdict["kinds"]);
    assert!(
        verdict["client_clocks"]
            .as_array()
            .is_some_and(|c| c.len() == skewed),
        "{:#}",
        verdict["client_clocks"]
    );
    // Judged on their own clocks, the skewed phones' traces are not whole.
    let raw = run(
        state,
        &[
            "verify-traces",
            "--json",
            "--raw-clocks",
            "--sent",
            record.to_str().unwrap(),
        ],
    );
    let raw: Value = serde_json::from_slice(&raw.stdout).expect("verify --json");
    assert!(
        raw["completeness"].as_f64() < Some(1.0),
        "{:#}",
        raw["kinds"]
    );

    // Each phone's resource, as a mobile SDK sets it, reached the sink.
    let sink = format!("http://127.0.0.1:{SINK_HTTP}");
    let c = reqwest::Client::new();
    let list: Value = c
        .get(format!(
            "{sink}/api/traces?service=socialnet-android&limit=1"
        ))
        .send()
        .await
        .expect("sink")
        .json()
        .await
        .expect("JSON");
    let id = list[0]["trace_id"]
        .as_str()
        .expect("an Android phone's trace");
    let spans: Value = c
        .get(format!("{sink}/api/traces/{id}"))
        .send()
        .await
        .expect("sink")
        .json()
        .await
        .expect("JSON");
    let phone = spans
        .as_array()
        .and_then(|a| a.iter().find(|s| s["service"] == "socialnet-android"))
        .expect("the phone's span");
    let resource: Vec<&str> = phone["resource"]
        .as_array()
        .expect("resource")
        .iter()
        .filter_map(|kv| kv[0].as_str())
        .collect();
    for key in [
        "device.model.identifier",
        "device.model.name",
        "device.manufacturer",
        "os.name",
        "os.version",
        "os.type",
        "os.description",
        "app.installation.id",
        "service.version",
    ] {
        assert!(resource.contains(&key), "{key} in {resource:?}");
    }

    // A bad request answered 500 (a planted fault) is a defect: exit 1, named.
    let planted = Command::new(BIN)
        .args([
            "chaos",
            "errors",
            "feed",
            "--rate",
            "1",
            "--route",
            "/api/feed/posts",
            "--duration",
            "30s",
            "--runtime",
            "local",
            "--state-dir",
        ])
        .arg(state)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("chaos errors");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !state.join("chaos.json").exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the fault never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let bad_only = profile.replace("bad        share=15%", "bad        share=100%");
    std::fs::write(&path, bad_only).expect("profile");
    let out = run(
        state,
        &[
            "sim",
            "--devices",
            "6",
            "--duration",
            "4s",
            "--no-verify",
            "--profile",
            path.to_str().unwrap(),
        ],
    );
    run(state, &["chaos", "heal"]);
    let mut planted = planted;
    let _ = planted.wait();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("DEFECTS") && text.contains("HTTP 500"),
        "{text}"
    );
}

/// `socialctl chaos run`: an experiment whose steady state holds through its faults
/// exits 0; one whose `during` tolerance the fault breaks exits 1 and says which; each
/// leaves a journal with its phases and the faults it ran.
fn chaos_experiments_hold_or_deviate(state: &Path, dir: &Path) {
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("experiment file");
        path
    };
    let holds = write(
        "holds.experiment",
        "title profile slowed a little\n\
         load users=6 duration=7s steady=5s workload=small.workload\n\
         steady error-rate<1%\n\
         steady complete>=100%\n\
         during error-rate<1%\n\
         at 1s slow profile --ms 50 for 4s\n\
         rollback heal\n",
    );
    let out = run(state, &["chaos", "run", holds.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("steady state held"), "{text}");
    let journal = text
        .lines()
        .find_map(|l| l.strip_prefix("journal: "))
        .expect("the journal's path is printed");
    let j: Value =
        serde_json::from_slice(&std::fs::read(journal).expect("journal")).expect("JSON journal");
    assert_eq!(j["result"], "held");
    let phases: Vec<&str> = j["phases"]
        .as_array()
        .expect("phases")
        .iter()
        .map(|p| p["name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(phases, ["before", "during", "after"]);
    assert_eq!(j["method"][0]["exit_code"], 0, "{:#}", j["method"]);
    assert!(
        j["phases"][1]["requests"].as_u64() > Some(20),
        "{:#}",
        j["phases"][1]
    );

    // Every timeline fails while the fault acts: the `during` tolerance does not hold.
    let deviates = write(
        "deviates.experiment",
        "title timelines fail\n\
         load users=6 duration=7s steady=5s workload=small.workload\n\
         steady error-rate<1%\n\
         during error-rate<1%\n\
         at 1s errors feed --rate 1 --route /api/feed/timeline for 4s\n\
         rollback heal\n",
    );
    let out = run(state, &["chaos", "run", deviates.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("steady state deviated")
            && text.contains("during the method: error-rate<1% was"),
        "{text}"
    );
    assert!(
        text.contains("ok   error-rate<1%"),
        "the steady state held before and after: {text}"
    );

    // A mistake in the file names its line, before anything runs.
    let broken = write(
        "broken.experiment",
        "title broken\nload users=2 duration=6s steady=5s\nsteady error-rate<1%\nat 1s kil feed for 2s\n",
    );
    let out = run(state, &["chaos", "run", broken.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 4") && err.contains("kil"), "{err}");
}
