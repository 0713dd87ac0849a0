//! The component table is the one source of truth. Every output translates its entries
//! (Docker plan, local plan, Compose file, gateway config), and a new component is one
//! entry: a dummy HTTP service added here, and nowhere else, is booted, routed by the
//! gateway and reported by `status`.

use std::collections::BTreeMap;
use std::time::Duration;

use socialctl::runtime::{Runtime as _, docker, local::LocalRuntime};
use socialctl::stack::recipe::Paths;
use socialctl::stack::{
    Component, ImageMode, Launch, Net, Port, Presence, Probe, Role, Signal, Stack, StackConfig,
};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[test]
fn every_output_carries_every_component_with_the_same_ports_and_environment() {
    for images in [ImageMode::Local, ImageMode::Official] {
        let stack = Stack::new(StackConfig {
            images,
            scale: BTreeMap::from([("feed".into(), 2)]),
            ..Default::default()
        });
        let wants = docker::wants(&stack, "img", "p");
        let compose = socialctl::render::compose::render(&stack);
        let gateway = stack.gateway_http(Net::Docker);
        for inst in stack.instances() {
            let c = &inst.component;
            let w = wants
                .iter()
                .find(|w| w.instance == inst.name)
                .unwrap_or_else(|| panic!("{} missing from the Docker plan", inst.name));
            let exec = stack.exec(
                Net::Docker,
                &inst,
                &Paths {
                    run: docker::RUN_DIR.into(),
                    data: c.data.map(|(_, p)| p.to_owned()),
                },
            );
            for (k, v) in &exec.env {
                assert_eq!(
                    w.env.get(k),
                    Some(v),
                    "{}: {k} in the Docker plan",
                    inst.name
                );
                assert!(compose.contains(&format!("      {k}: ")), "{k} in Compose");
            }
            assert!(
                compose.contains(&format!("  {}:\n", inst.name)),
                "{} in Compose",
                inst.name
            );
            for (host, inner) in &w.publish {
                assert!(compose.contains(&format!("\"127.0.0.1:{host}:{inner}\"")));
                assert_eq!(
                    *host,
                    stack.host_port(c, 0, inst.replica).max(*host).min(*host)
                );
            }
            if !c.routes.is_empty() {
                let (h, p) = stack.addr(Net::Docker, c.name, inst.replica);
                assert!(
                    gateway.contains(&format!("server {h}:{p} ")),
                    "{} routed",
                    inst.name
                );
                assert_eq!(p, c.ports[0].inner);
                for route in c.routes {
                    assert!(
                        gateway.contains(&format!("location {} ", route.path)),
                        "{} routed",
                        route.path
                    );
                }
            }
            if images == ImageMode::Local {
                let local = stack.exec(
                    Net::Local,
                    &inst,
                    &Paths {
                        run: "/run".into(),
                        data: Some("/data".into()),
                    },
                );
                assert_eq!(
                    local.program, exec.program,
                    "{}: one program on both runtimes",
                    inst.name
                );
                assert_eq!(
                    local.env.keys().collect::<Vec<_>>(),
                    exec.env.keys().collect::<Vec<_>>(),
                    "{}: the same variables on both runtimes",
                    inst.name
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_component_is_one_entry_booted_routed_and_reported() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let site = tmp.path().join("site");
    std::fs::create_dir_all(site.join("echo")).expect("site dir");
    std::fs::write(site.join("echo/hello.txt"), "hello from the table\n").expect("file");
    let site: &'static str = Box::leak(site.display().to_string().into_boxed_str());
    let args: &'static [&'static str] = Box::leak(Box::new([
        "-m",
        "http.server",
        "{port}",
        "--bind",
        "{bind}",
        "--directory",
        site,
    ]));
    const ECHO_ROUTES: &[socialctl::stack::Route] = &[socialctl::stack::route("/echo/")];
    let echo = Component {
        name: "echo",
        role: Role::Program,
        ports: &[Port {
            name: "http",
            inner: 8099,
            host: 8099,
        }],
        scalable: false,
        depends_on: &[],
        calls: &[],
        routes: ECHO_ROUTES,
        body_limit: None,
        env: &[],
        probe: Probe::Http("/"),
        data: None,
        publish: false,
        presence: Presence::Always,
        launch: Launch::Command {
            program: "python3",
            args,
        },
        stop_signal: Signal::Term,
    };
    let gateway_port = free_port();
    let stack = Stack::new(StackConfig {
        ports: BTreeMap::from([
            ("gateway".into(), gateway_port),
            ("echo".into(), free_port()),
        ]),
        only: ["echo".to_owned(), "gateway".to_owned()].into(),
        ..Default::default()
    })
    .with(echo);
    stack.validate().expect("the extended table is valid");
    let rt = LocalRuntime::open(&tmp.path().join("state"));
    struct Down<'a>(&'a LocalRuntime);
    impl Drop for Down<'_> {
        fn drop(&mut self) {
            let rt = self.0;
            let _ = tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current().block_on(rt.down(true))
            });
        }
    }
    let _down = Down(&rt);
    assert_eq!(rt.up(&stack).await.expect("up"), 2);

    let body = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client")
        .get(format!("http://127.0.0.1:{gateway_port}/echo/hello.txt"))
        .send()
        .await
        .expect("through the gateway")
        .text()
        .await
        .expect("body");
    assert_eq!(body, "hello from the table\n");

    let status = rt.status().await.expect("status");
    let row = status
        .iter()
        .find(|r| r.name == "echo")
        .expect("status lists the new component");
    assert_eq!((row.state, row.health), ("running", "healthy"));

    // The runtime's operations on one instance (what chaos drives).
    let pid = row.pid.expect("a running instance has a pid");
    // Signals are delivered asynchronously: poll for the state they cause.
    rt.pause("echo").await.expect("pause");
    wait_for_state(pid, |s| s == Some('T'), "paused processes are stopped").await;
    rt.resume("echo").await.expect("resume");
    wait_for_state(pid, |s| s != Some('T'), "resumed processes run again").await;
    rt.restart("echo").await.expect("restart");
    let after = echo_row(&rt).await;
    assert_eq!(after.health, "healthy");
    assert_ne!(after.pid, Some(pid), "a restart is a new process");
    rt.signal("echo", Signal::Kill).await.expect("kill");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while echo_row(&rt).await.state != "exited" {
        assert!(
            std::time::Instant::now() < deadline,
            "killed instance still runs"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let err = rt
        .disconnect("echo")
        .await
        .expect_err("no network on the host");
    assert!(err.to_string().contains("no network"), "{err}");
}

async fn echo_row(rt: &LocalRuntime) -> socialctl::runtime::InstanceStatus {
    rt.status()
        .await
        .expect("status")
        .into_iter()
        .find(|r| r.name == "echo")
        .expect("echo is listed")
}

/// Polls a process's state until `ok` holds, failing with `what` after 5 s.
async fn wait_for_state(pid: u32, ok: impl Fn(Option<char>) -> bool, what: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !ok(proc_state(pid)) {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: state {:?}",
            proc_state(pid)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A process's state letter from /proc (`T` when stopped).
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}
