//! compose/docker-compose.yml is exactly what the stack definition generates, and the
//! Compose tool accepts it.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_socialctl");

#[test]
fn the_compose_file_matches_the_stack_definition_and_is_valid() {
    let out = Command::new(BIN)
        .arg("compose")
        .output()
        .expect("run socialctl compose");
    assert!(out.status.success());
    let generated = String::from_utf8(out.stdout).expect("utf8");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../compose/docker-compose.yml");
    let committed = std::fs::read_to_string(&path).expect("compose/docker-compose.yml exists");
    assert!(
        generated == committed,
        "compose/docker-compose.yml is stale: run `socialctl compose > compose/docker-compose.yml`"
    );
    let tool = ["docker-compose", "/usr/bin/docker-compose"]
        .into_iter()
        .find(|t| Command::new(t).arg("version").output().is_ok())
        .expect("docker-compose is installed (apt-get install docker-compose)");
    let check = Command::new(tool)
        .args(["-f"])
        .arg(&path)
        .args(["config", "-q"])
        .output()
        .expect("run docker-compose config");
    assert!(
        check.status.success(),
        "docker-compose rejects the file: {}",
        String::from_utf8_lossy(&check.stderr)
    );
}
