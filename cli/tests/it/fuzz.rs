//! Every service's API under a standard fuzzer: schemathesis (PyPI; `./dev.sh test`
//! installs it and names it in `SCHEMATHESIS`) generates requests from each service's
//! generated OpenAPI document and sends them through the gateway of a real local stack,
//! as a signed-in user, with every check it has (`scenarios/fuzz/schemathesis.toml` says
//! what is adjusted and why). The goal is zero findings: no 5xx, no undocumented status,
//! no response that breaks its schema, no valid request refused, no invalid one accepted.
//!
//! Services come from the component table: a new service is fuzzed by being in it.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use socialctl::stack::{COMPONENTS, Role};

const BIN: &str = env!("CARGO_BIN_EXE_socialctl");
const GATEWAY: u16 = 17080;

/// Examples per operation, and the most one service's run may take (schemathesis's own
/// `--max-time` turns fuzzing into "until the time is up", so the bound is `timeout`'s).
const EXAMPLES: &str = "25";
const MAX_SECONDS: &str = "300";

fn schemathesis() -> PathBuf {
    let path = std::env::var_os("SCHEMATHESIS").map(PathBuf::from).expect(
        "SCHEMATHESIS is not set: run the tests through `./dev.sh test`, which installs schemathesis from PyPI and sets it",
    );
    assert!(
        path.is_file(),
        "SCHEMATHESIS names {}, which does not exist",
        path.display()
    );
    path
}

struct Stack {
    dir: tempfile::TempDir,
}

impl Stack {
    fn up() -> (Self, Value) {
        let dir = tempfile::tempdir().expect("temp dir");
        let ports = [
            ("--gateway-port", GATEWAY),
            ("--postgres-port", 27432),
            ("--redis-port", 27379),
            ("--otlp-grpc-port", 27317),
            ("--otlp-http-port", 27318),
            ("--service-base-port", 17081),
        ];
        let mut cmd = Command::new(BIN);
        cmd.args([
            "up",
            "--runtime",
            "local",
            "--ephemeral",
            "--workshop",
            "--json",
        ])
        .arg("--state-dir")
        .arg(dir.path());
        for (flag, port) in ports {
            cmd.arg(flag).arg(port.to_string());
        }
        let out = crate::run_logged(cmd, &["up", "--workshop", "--json"]);
        let me = Self { dir };
        assert!(out.status.success(), "the stack did not start");
        let state = serde_json::from_slice(&out.stdout).expect("up --json prints the state");
        (me, state)
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = Command::new(BIN)
            .args(["down", "--volumes", "--state-dir"])
            .arg(self.dir.path())
            .output();
    }
}

/// One service's run, from schemathesis's JSON report.
struct Run {
    service: String,
    operations: u64,
    cases: u64,
    findings: u64,
    errors: u64,
    output: String,
}

fn fuzz(service: &str, openapi: &str, token: &str, dir: &Path) -> Run {
    let report = dir.join(format!("{service}.json"));
    let config = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scenarios/fuzz/schemathesis.toml"
    );
    let out = Command::new("timeout")
        .args(["--kill-after=10", MAX_SECONDS])
        .arg(schemathesis())
        .arg("--config-file")
        .arg(config)
        .args([
            "run",
            openapi,
            "--url",
            &format!("http://127.0.0.1:{GATEWAY}"),
        ])
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .args(["--max-examples", EXAMPLES])
        .args(["--seed", "1", "--no-color", "--report", "json"])
        .arg("--report-json-path")
        .arg(&report)
        .env("NO_COLOR", "1")
        // Its example cache goes with the stack's temporary directory, not the tree.
        .current_dir(dir)
        .output()
        .expect("schemathesis runs");
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = std::fs::read(&report)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| panic!("schemathesis wrote no report for {service}:\n{output}"));
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    Run {
        service: service.to_owned(),
        operations: n(&r["operations"]["tested"]),
        cases: n(&r["test_cases"]["generated"]),
        findings: r["failures"]
            .as_array()
            .map_or(0, |f| f.iter().map(|x| n(&x["count"])).sum()),
        errors: r["errors"].as_array().map_or(0, |e| e.len() as u64)
            + n(&r["operations"]["errored"]),
        output,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_services_api_survives_the_fuzzer() {
    let _tool = schemathesis();
    let (stack, state) = Stack::up();
    let client = reqwest::Client::new();
    let signed_in: Value = client
        .post(format!("http://127.0.0.1:{GATEWAY}/api/auth/register"))
        .json(&json!({"username": "fuzzer", "password": "fuzzer password"}))
        .send()
        .await
        .expect("gateway answers")
        .json()
        .await
        .expect("registration answers JSON");
    let token = signed_in["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("registration failed: {signed_in}"))
        .to_owned();
    let metrics = state["addresses"]["metrics"]
        .as_array()
        .expect("the state lists each service's /metrics");
    let mut runs = Vec::new();
    for c in COMPONENTS.iter().filter(|c| c.role == Role::Service) {
        let url = metrics
            .iter()
            .find(|m| m[0] == c.name)
            .and_then(|m| m[1].as_str())
            .unwrap_or_else(|| panic!("no address recorded for {}", c.name));
        let openapi = url.replace("/metrics", "/openapi.json");
        let token = token.clone();
        let dir = stack.dir.path().to_owned();
        let name = c.name;
        runs.push(
            tokio::task::spawn_blocking(move || fuzz(name, &openapi, &token, &dir))
                .await
                .expect("fuzz run"),
        );
    }
    // The totals, for `./dev.sh test` to print after the test summary.
    let table: String = runs
        .iter()
        .map(|r| {
            format!(
                "fuzz: {:<10} {:>3} operations {:>5} generated cases {:>3} findings {:>2} errors\n",
                r.service, r.operations, r.cases, r.findings, r.errors
            )
        })
        .collect();
    eprint!("{table}");
    if let Some(path) = std::env::var_os("FUZZ_REPORT") {
        std::fs::write(path, &table).expect("write the fuzz totals");
    }
    for r in &runs {
        assert!(
            r.operations > 0 && r.cases > 0,
            "{}: nothing was tested:\n{}",
            r.service,
            r.output
        );
        assert!(
            r.findings == 0 && r.errors == 0,
            "{}: schemathesis found {} problems and {} errors:\n{}",
            r.service,
            r.findings,
            r.errors,
            r.output
        );
    }
}
