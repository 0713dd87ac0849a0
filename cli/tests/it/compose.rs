//! compose/docker-compose.yml (offline images) and compose/docker-compose.official.yml
//! (official images, the Collector and Jaeger) are exactly what the stack definition
//! generates, and the Compose tool accepts both.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_socialctl");

fn check(file: &str, extra: &[&str]) -> String {
    let out = Command::new(BIN)
        .arg("compose")
        .args(extra)
        .output()
        .expect("run socialctl compose");
    assert!(out.status.success());
    let generated = String::from_utf8(out.stdout).expect("utf8");
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../compose")
        .join(file);
    let committed = std::fs::read_to_string(&path).expect("the compose file exists");
    assert!(
        generated == committed,
        "compose/{file} is stale: run `socialctl compose {} > compose/{file}`",
        extra.join(" ")
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
        "docker-compose rejects {file}: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    generated
}

#[test]
fn the_compose_file_matches_the_stack_definition_and_is_valid() {
    let offline = check("docker-compose.yml", &[]);
    assert!(
        !offline.contains("collector"),
        "no Collector without a registry"
    );
}

#[test]
fn the_official_compose_file_pins_its_images_and_routes_spans_through_the_collector() {
    let y = check("docker-compose.official.yml", &["--images", "official"]);
    for line in y.lines().filter(|l| l.trim_start().starts_with("image:")) {
        let image = line.trim_start().trim_start_matches("image:").trim();
        let tag = image.rsplit_once(':').map(|(_, t)| t).unwrap_or("");
        assert!(!tag.is_empty() && tag != "latest", "{image} is not pinned");
    }
    for want in [
        "postgres:16.4-bookworm",
        "otel/opentelemetry-collector-contrib:",
        "jaegertracing/all-in-one:",
        "OTEL_EXPORTER_OTLP_ENDPOINT: \"http://collector:4318\"",
        "\"127.0.0.1:16686:16686\"",
    ] {
        assert!(y.contains(want), "{want} missing");
    }
    // The Collector exports to both Jaeger and the sink.
    assert!(y.contains("otlp/jaeger") && y.contains("otlphttp/sink"));
    assert!(y.contains("exporters: [otlp/jaeger, otlphttp/sink]"));
}
