//! The suite never touches what is not its own. With a default-project Docker stack
//! running (the one `socialctl up` starts for a user), the cleanups the other end-to-end
//! tests run, each aimed at its own state directory or project, leave its containers,
//! its data volume and a row it wrote intact.

use std::process::Command;

use serde_json::json;

use crate::docker;

const BIN: &str = env!("CARGO_BIN_EXE_socialctl");
const LABEL: &str = "label=io.socialnet.project=socialnet";

fn socialctl(args: &[&str]) -> std::process::Output {
    crate::run_logged(
        {
            let mut c = Command::new(BIN);
            c.args(args);
            c
        },
        args,
    )
}

/// Removes the default-project stack afterwards, when this test started it.
struct Started(bool);

impl Drop for Started {
    fn drop(&mut self) {
        if self.0 {
            let _ = socialctl(&["down", "--runtime", "docker", "--volumes"]);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_tests_cleanups_leave_the_default_project_alone() {
    let _one_at_a_time = crate::DOCKER.lock().await;
    // A user's own default stack, if one runs, is only looked at, never written to.
    let ours = docker(&["ps", "-aq", "--filter", LABEL]).is_empty();
    let _started = Started(ours);
    let client = reqwest::Client::new();
    if ours {
        let up = socialctl(&["up", "--runtime", "docker", "--images", "local"]);
        assert!(up.status.success(), "the default-project stack starts");
        let r = client
            .post("http://127.0.0.1:8080/api/auth/register")
            .json(&json!({"username": "guard_user", "password": "correct horse battery"}))
            .send()
            .await
            .expect("register through the default stack's gateway");
        assert_eq!(r.status(), 201);
    }
    let containers = docker(&["ps", "-q", "--no-trunc", "--filter", LABEL]);
    assert!(!containers.is_empty(), "the default project runs");

    // The other tests' cleanups, exactly as they run them.
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = |n: &str| tmp.path().join(n).display().to_string();
    for cleanup in [
        // local_stack.rs: no --runtime, its own state directory.
        vec!["down", "--volumes", "--state-dir", &dir("stack")],
        // load_run.rs and the services' private Redis and gateway (testkit).
        vec![
            "down",
            "--volumes",
            "--runtime",
            "local",
            "--state-dir",
            &dir("private"),
        ],
        // docker_stack.rs: its own project.
        vec![
            "down",
            "--volumes",
            "--runtime",
            "docker",
            "--project",
            "sntest",
        ],
    ] {
        let out = socialctl(&cleanup);
        assert!(out.status.success(), "{cleanup:?}");
    }

    assert_eq!(
        docker(&["ps", "-q", "--no-trunc", "--filter", LABEL]),
        containers,
        "the default project's containers are untouched"
    );
    assert_eq!(
        docker(&["volume", "ls", "-q", "--filter", "name=^socialnet-pgdata$"]),
        "socialnet-pgdata",
        "its PostgreSQL volume is kept"
    );
    if ours {
        let r = client
            .get("http://127.0.0.1:8080/api/profiles/guard_user")
            .send()
            .await
            .expect("read through the default stack's gateway");
        assert_eq!(r.status(), 200, "the row it wrote is still there");
    }
}
