//! Tidy: the house rules and ARCHITECTURE.md's invariants, checked mechanically (the
//! way rust-analyzer's `tidy.rs` does). A failure names the file or crate and the rule.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir)
        .expect("readable source directory")
        .flatten()
    {
        let p = e.path();
        if p.is_dir() && p.file_name().is_some_and(|n| n != "target") {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn every_source_file_opens_with_a_doc_comment_saying_what_it_owns() {
    let mut files = Vec::new();
    for dir in ["cli", "services", "verify", "scenarios"] {
        rust_files(&root().join(dir), &mut files);
    }
    assert!(files.len() > 50, "found the sources ({})", files.len());
    let missing: Vec<String> = files
        .iter()
        .filter(|f| {
            let text = std::fs::read_to_string(f).expect("readable source");
            // A crate's README included as its docs counts, when `//!` lines follow.
            !text
                .lines()
                .find(|l| !l.trim().is_empty() && !l.starts_with("#![doc = include_str!"))
                .is_some_and(|l| l.starts_with("//!"))
        })
        .map(|f| f.strip_prefix(root()).unwrap_or(f).display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "these files do not open with a `//!` line saying what they own: {missing:#?}"
    );
}

/// Each workspace crate's normal (non-dev) dependencies, and its path from the root.
fn crates() -> BTreeMap<String, (String, Vec<String>)> {
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root())
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
    let root = root().canonicalize().expect("root");
    meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| {
            let manifest = PathBuf::from(p["manifest_path"].as_str().expect("path"));
            let dir = manifest
                .parent()
                .and_then(|d| d.strip_prefix(&root).ok())
                .map(|d| d.display().to_string())
                .unwrap_or_default();
            let deps = p["dependencies"]
                .as_array()
                .expect("dependencies")
                .iter()
                .filter(|d| d["kind"].is_null())
                .map(|d| d["name"].as_str().unwrap_or("").to_owned())
                .collect();
            (p["name"].as_str().expect("name").to_owned(), (dir, deps))
        })
        .collect()
}

/// Service crates: one per service under services/, not the shared crates and not the
/// multi-call binary that bundles them.
fn services(all: &BTreeMap<String, (String, Vec<String>)>) -> Vec<String> {
    all.iter()
        .filter(|(name, (dir, _))| {
            dir.starts_with("services/")
                && !["telemetry", "common", "socialnet"].contains(&name.as_str())
        })
        .map(|(n, _)| n.clone())
        .collect()
}

#[test]
fn service_routes_are_registered_only_with_their_openapi_operation() {
    // `routes!` registers a handler together with its `#[utoipa::path]`, so the router and
    // the generated document cannot drift; a bare `.route(` would add an undocumented one.
    let mut files = Vec::new();
    rust_files(&root().join("services"), &mut files);
    let bare: Vec<String> = files
        .iter()
        .filter(|f| f.components().any(|c| c.as_os_str() == "routes"))
        .filter(|f| std::fs::read_to_string(f).is_ok_and(|t| t.contains(".route(")))
        .map(|f| f.strip_prefix(root()).unwrap_or(f).display().to_string())
        .collect();
    assert!(
        bare.is_empty(),
        "these route files register a route without its OpenAPI operation: {bare:#?}"
    );
}

#[test]
fn architecture_invariants_hold_in_the_dependency_graph() {
    let all = crates();
    let services = services(&all);
    assert!(services.len() >= 3, "found the services: {services:?}");
    for (name, (dir, deps)) in &all {
        // No service crate depends on another service crate.
        if services.contains(name) {
            let others: Vec<&String> = deps.iter().filter(|d| services.contains(d)).collect();
            assert!(
                others.is_empty(),
                "{name} depends on the services {others:?}"
            );
        }
        // Only telemetry builds exporters.
        if name != "telemetry" {
            assert!(
                !deps.iter().any(|d| d == "opentelemetry-otlp"),
                "{name} depends on opentelemetry-otlp; only services/telemetry may"
            );
        }
        // verify and scenarios judge the system by its telemetry alone.
        if name == "verify" || name == "scenarios" {
            let bad: Vec<&String> = deps
                .iter()
                .filter(|d| services.contains(d) || *d == "common" || *d == "socialctl")
                .collect();
            assert!(bad.is_empty(), "{name} depends on {bad:?}");
        }
        // Every crate has its heading in ARCHITECTURE.md's codemap.
        let arch =
            std::fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
        assert!(
            arch.contains(&format!("`{dir}`")) || arch.contains(&format!("`{dir}/`")),
            "ARCHITECTURE.md's codemap does not name `{dir}` ({name})"
        );
    }
}

#[test]
fn the_cli_has_no_import_cycle_between_its_layers() {
    // Layers from the top; a module may use only modules at or below its own layer.
    let layers: &[&[&str]] = &[
        &["cmd"],
        &["load", "sim"],
        &["tui", "seed"],
        &["render", "runtime"],
        &["stack"],
    ];
    let layer_of = |m: &str| layers.iter().position(|l| l.contains(&m));
    let src = root().join("cli/src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong = Vec::new();
    for f in files {
        let rel = f.strip_prefix(&src).expect("under src").to_path_buf();
        let module = rel
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .map(|s| s.trim_end_matches(".rs").to_owned())
            .unwrap_or_default();
        let Some(mine) = layer_of(&module) else {
            continue;
        };
        let text = std::fs::read_to_string(&f).expect("source");
        for (n, line) in text.lines().enumerate() {
            for (i, _) in line.match_indices("crate::") {
                let used: String = line[i + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if let Some(theirs) = layer_of(&used)
                    && theirs < mine
                {
                    wrong.push(format!("{}:{}: {module} uses {used}", rel.display(), n + 1));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "a lower layer uses a higher one (cmd → load/sim → tui/seed → render/runtime → stack): {wrong:#?}"
    );
}
