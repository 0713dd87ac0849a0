//! The workshop walked as a learner walks it. Every lab's commands are read from its
//! Markdown (`tutorials/NN-*.md`: the ```` ```console ```` blocks, `$ ` lines and their
//! continuations) and run in bash against a private local stack, in order; `socialctl
//! lab check N` runs before them (it must say what is missing, exit 1) and after the
//! steps and the solution (exit 0). A lab whose commands drift from the CLI fails here.
//! Then every teaching fault is switched off, on and off again around one request
//! each, and its symptom must show in the sink only while it is on.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use telemetry::teaching as t;
use verify::Span;
use verify::model::{SpanKind, StatusCode};

const BIN: &str = env!("CARGO_BIN_EXE_socialctl");
const GATEWAY: u16 = 16080;

fn ports() -> Vec<String> {
    [
        ("--gateway-port", GATEWAY),
        ("--postgres-port", 23432),
        ("--redis-port", 23379),
        ("--otlp-grpc-port", 23317),
        ("--otlp-http-port", 23318),
        ("--service-base-port", 16081),
        ("--fault-proxy-port", 16474),
    ]
    .iter()
    .flat_map(|(k, v)| [k.to_string(), v.to_string()])
    .collect()
}

/// One command of a lab, as the learner types it, and the status line it must print.
#[derive(Debug, PartialEq)]
struct Step {
    command: String,
    expect: Option<String>,
}

/// A lab's commands: the steps, and those of its solution (inside `<details>`).
#[derive(Debug, Default)]
struct Walk {
    steps: Vec<Step>,
    solution: Vec<Step>,
}

/// Reads a lab's ```` ```console ```` blocks. `$ ` starts a command, a line that starts
/// with a space continues it, and any other line is output; an output line of three
/// digits (an HTTP status printed with `-w '%{http_code}'`) is what the command must
/// print. `socialctl lab check` lines are left out: the walk runs the check itself.
fn parse(md: &str) -> Walk {
    let mut walk = Walk::default();
    let (mut fence, mut console, mut details) = (None::<usize>, false, false);
    let mut current: Option<Step> = None;
    for line in md.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        match fence {
            None => {
                if trimmed.starts_with("<details") {
                    details = true;
                } else if trimmed.starts_with("</details>") {
                    details = false;
                } else if let Some(lang) = trimmed.strip_prefix("```") {
                    fence = Some(indent);
                    console = lang.trim() == "console";
                }
            }
            Some(_) if trimmed == "```" => {
                flush(current.take(), details, &mut walk);
                fence = None;
            }
            Some(_) if !console => {}
            Some(at) => {
                let text = line.get(at..).unwrap_or(trimmed);
                if let Some(cmd) = text.strip_prefix("$ ") {
                    flush(current.take(), details, &mut walk);
                    current = Some(Step {
                        command: cmd.to_owned(),
                        expect: None,
                    });
                } else if text.starts_with(' ')
                    && current.as_ref().is_some_and(|c| c.expect.is_none())
                {
                    if let Some(c) = current.as_mut() {
                        c.command.push('\n');
                        c.command.push_str(text);
                    }
                } else if text.len() == 3
                    && text.bytes().all(|b| b.is_ascii_digit())
                    && let Some(c) = current.as_mut()
                {
                    c.expect = Some(text.to_owned());
                }
            }
        }
    }
    walk
}

fn flush(step: Option<Step>, details: bool, walk: &mut Walk) {
    if let Some(s) = step.filter(|s| !s.command.starts_with("socialctl lab check")) {
        if details {
            walk.solution.push(s);
        } else {
            walk.steps.push(s);
        }
    }
}

/// The bash script that runs `steps` one after another, stopping at the first that
/// fails or prints another status than its lab says.
fn script(steps: &[Step]) -> String {
    let mut s = String::from("set -euo pipefail\n");
    for (i, step) in steps.iter().enumerate() {
        s.push_str(&format!("echo '>>> step {}' >&2\n", i + 1));
        match &step.expect {
            None => {
                s.push_str(&step.command);
                s.push('\n');
            }
            Some(want) => s.push_str(&format!(
                "got=$({})\necho \"$got\"\n[ \"$got\" = {want} ] || {{ echo \"step {}: printed $got, the lab says {want}\" >&2; exit 1; }}\n",
                step.command,
                i + 1
            )),
        }
    }
    s
}

/// The learner's shell: socialctl on the PATH, and the stack found through its state
/// directory, as `eval "$(socialctl lab env)"` and every command expect.
struct Shell {
    state: PathBuf,
    scratch: PathBuf,
    path: String,
}

impl Shell {
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("PATH", &self.path)
            .env("SOCIALNET_STATE_DIR", &self.state)
            .env("SOCIALNET_RUNTIME", "local")
            .env_remove("SOCIALNET_PROJECT")
            .current_dir(&self.scratch);
        cmd
    }

    /// Runs `script` in bash, in a process group of its own that is killed whole if it
    /// is still running at `within`. Returns its exit code and what it printed.
    fn bash(&self, script: &str, within: Duration) -> (Option<i32>, String) {
        use std::os::unix::process::CommandExt as _;
        let out = self.scratch.join("out.txt");
        let file = std::fs::File::create(&out).expect("output file");
        let mut child = self
            .command("bash")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("clone"))
            .stderr(file)
            .process_group(0)
            .spawn()
            .expect("bash runs");
        let deadline = Instant::now() + within;
        let code = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status.code();
            }
            if Instant::now() > deadline {
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{}", child.id())])
                    .status();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        (code, text)
    }

    /// `socialctl ARGS` in the learner's environment.
    fn socialctl(&self, args: &[&str]) -> (Option<i32>, String) {
        let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
        let (code, text) = self.bash(
            &format!("socialctl {}", quoted.join(" ")),
            Duration::from_secs(120),
        );
        eprintln!("$ socialctl {}\n{text}", args.join(" "));
        (code, text)
    }

    /// The spans of one trace, once the services' export queues have drained.
    fn trace(&self, id: &str) -> Vec<Span> {
        let (code, text) = self.bash(
            &format!("socialctl traces {id} --json"),
            Duration::from_secs(60),
        );
        assert_eq!(code, Some(0), "socialctl traces {id}: {text}");
        let mut list: Vec<Vec<Span>> = serde_json::from_str(&text).expect("traces --json");
        list.pop().unwrap_or_default()
    }
}

/// Stops the stack even when an assertion fails half-way.
struct Down(PathBuf);

impl Drop for Down {
    fn drop(&mut self) {
        let _ = Command::new(BIN)
            .args(["down", "--volumes", "--runtime", "local", "--state-dir"])
            .arg(&self.0)
            .output();
    }
}

fn labs() -> Vec<(u32, PathBuf)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tutorials");
    let mut labs: Vec<(u32, PathBuf)> = std::fs::read_dir(&dir)
        .expect("tutorials/")
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let n = name.split('-').next()?.parse().ok()?;
            name.ends_with(".md").then(|| (n, e.path()))
        })
        .collect();
    labs.sort();
    labs
}

#[test]
fn the_lab_reader_takes_commands_continuations_and_statuses_and_leaves_the_rest() {
    let md = "# Lab\n\n```console\n$ eval \"$(socialctl lab env)\"\n```\n\n1. Post:\n\n   ```console\n   $ curl -s \"$GW/x\" \\\n       -o /dev/null -w '%{http_code}\\n'\n   201\n   $ socialctl traces abc\n   a tree, not checked\n   ```\n\n```sh\nsocialctl lab answer 1 'X'\n```\n\n```console\n$ socialctl lab check 1\n```\n\n<details><summary>Solution</summary>\n\n```console\n$ socialctl lab answer 1 y\n```\n\n</details>\n";
    let w = parse(md);
    let commands: Vec<&str> = w.steps.iter().map(|s| s.command.as_str()).collect();
    assert_eq!(
        commands,
        [
            "eval \"$(socialctl lab env)\"",
            "curl -s \"$GW/x\" \\\n    -o /dev/null -w '%{http_code}\\n'",
            "socialctl traces abc",
        ]
    );
    assert_eq!(w.steps[1].expect.as_deref(), Some("201"));
    assert_eq!(w.steps[2].expect, None);
    assert_eq!(
        w.solution,
        [Step {
            command: "socialctl lab answer 1 y".into(),
            expect: None
        }]
    );
    let s = script(&w.steps);
    assert!(s.starts_with("set -euo pipefail\n"));
    assert!(s.contains("[ \"$got\" = 201 ]"), "{s}");
    // Every lab in the book has steps and a check to run them against.
    let labs = labs();
    assert!(labs.len() >= 10, "{labs:?}");
    for (n, path) in &labs {
        let w = parse(&std::fs::read_to_string(path).expect("lab"));
        assert!(w.steps.len() >= 2, "lab {n} has no commands to walk");
        assert!(
            w.steps[0].command.contains("socialctl lab env"),
            "lab {n} starts elsewhere than `eval \"$(socialctl lab env)\"`"
        );
    }
}

#[test]
fn every_lab_walks_from_a_failing_check_to_a_passing_one_and_every_fault_shows_only_when_on() {
    let tmp = tempfile::tempdir().expect("temp dir");
    // World-readable, because PostgreSQL runs as its own user under root.
    let _ = Command::new("chmod").arg("755").arg(tmp.path()).status();
    let state = tmp.path().join("stack");
    let scratch = tmp.path().join("learner");
    std::fs::create_dir_all(&state).expect("state dir");
    std::fs::create_dir_all(&scratch).expect("scratch dir");
    let _down = Down(state.clone());
    let bin_dir = Path::new(BIN).parent().expect("bin dir");
    let shell = Shell {
        state: state.clone(),
        scratch,
        path: format!(
            "{}:{}",
            bin_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        ),
    };
    let up = shell.socialctl(
        &[
            &["up"][..],
            &ports().iter().map(String::as_str).collect::<Vec<_>>(),
        ]
        .concat(),
    );
    assert_eq!(up.0, Some(0), "up failed");

    for (n, path) in labs() {
        let n_text = n.to_string();
        let walk = parse(&std::fs::read_to_string(&path).expect("lab"));
        let (before, said) = shell.socialctl(&["lab", "check", &n_text]);
        assert_eq!(
            before,
            Some(1),
            "lab {n}'s check passes before its steps:\n{said}"
        );
        assert!(
            said.contains('✗'),
            "lab {n}'s check says what is missing:\n{said}"
        );

        let mut steps = walk.steps;
        steps.extend(walk.solution);
        let (code, text) = shell.bash(&script(&steps), Duration::from_secs(240));
        eprintln!("--- lab {n} ({}):\n{text}", path.display());
        assert_eq!(code, Some(0), "lab {n}'s commands fail as written:\n{text}");

        let (after, said) = shell.socialctl(&["lab", "check", &n_text]);
        assert_eq!(
            after,
            Some(0),
            "lab {n}'s check fails after its solution:\n{said}"
        );
    }

    teaching_faults_show_only_while_on(&shell);
}

/// What a teaching fault looks like in one trace: the request that shows it, and the
/// test on the trace's spans.
struct Symptom {
    fault: &'static str,
    /// Bash that makes one request in trace `$ID` (alice posts, bob follows her).
    request: &'static str,
    /// Requests per phase: one, or more where the symptom is a matter of chance.
    repeat: usize,
    shows: fn(&[Span]) -> bool,
}

const POST: &str = r#"curl -sf -XPOST "$GW/api/feed/posts" -H "authorization: Bearer $ALICE" -H 'content-type: application/json' -d '{"body":"fault test"}' -H "traceparent: 00-$ID-00000000000000f1-01" -o /dev/null"#;
const TIMELINE: &str = r#"curl -sf "$GW/api/feed/timeline" -H "authorization: Bearer $BOB" -H "traceparent: 00-$ID-00000000000000f1-01" -o /dev/null"#;
const USER_POSTS: &str = r#"curl -sf "$GW/api/feed/users/alice/posts" -H "traceparent: 00-$ID-00000000000000f1-01" -o /dev/null"#;

fn attr<'a>(s: &'a Span, key: &str) -> Option<&'a str> {
    s.attributes
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// feed's CLIENT calls to profile in a trace.
fn calls_to_profile(spans: &[Span]) -> Vec<&Span> {
    spans
        .iter()
        .filter(|s| s.service == "feed" && s.kind == SpanKind::Client)
        .filter(|s| attr(s, "http.request.method").is_some())
        .collect()
}

const SYMPTOMS: &[Symptom] = &[
    Symptom {
        fault: t::BROKEN_PROPAGATION,
        request: POST,
        repeat: 1,
        // profile's SERVER span names a parent that is not in the trace.
        shows: |spans| {
            spans.iter().any(|s| {
                s.service == "profile"
                    && s.kind == SpanKind::Server
                    && !spans.iter().any(|p| p.span_id == s.parent_span_id)
            })
        },
    },
    Symptom {
        fault: t::N_PLUS_ONE,
        request: TIMELINE,
        repeat: 1,
        // A ladder: the page's posts read one `WHERE id = $1` each.
        shows: |spans| {
            spans
                .iter()
                .filter(|s| s.name == "SELECT posts")
                .filter(|s| attr(s, "db.query.text").is_some_and(|q| q.contains("WHERE id = $1")))
                .count()
                >= 2
        },
    },
    Symptom {
        fault: t::MISSING_INDEX,
        request: USER_POSTS,
        repeat: 1,
        shows: |spans| {
            spans.iter().any(|s| {
                attr(s, "db.query.text").is_some_and(|q| q.contains("lower(author_username)"))
            })
        },
    },
    Symptom {
        fault: t::UNPIPELINED_FANOUT,
        request: POST,
        repeat: 1,
        shows: |spans| spans.iter().any(|s| s.name == "LPUSHX"),
    },
    Symptom {
        fault: t::LOST_CONTEXT,
        request: POST,
        repeat: 1,
        shows: |spans| !spans.iter().any(|s| s.name == "feed.fan_out"),
    },
    Symptom {
        fault: t::RETRY_STORM,
        request: POST,
        repeat: 1,
        // Under `chaos errors profile`: one call becomes 1 + RETRIES CLIENT spans side by
        // side under one parent.
        shows: |spans| {
            let calls = calls_to_profile(spans);
            calls.iter().any(|c| {
                calls
                    .iter()
                    .filter(|o| o.parent_span_id == c.parent_span_id && o.name == c.name)
                    .count()
                    > t::RETRY_STORM_RETRIES
            })
        },
    },
    Symptom {
        fault: t::SWALLOWED_ERROR,
        request: POST,
        repeat: 1,
        // Under `chaos errors profile`: a 5xx answer on a CLIENT span not marked error.
        shows: |spans| {
            calls_to_profile(spans).iter().any(|c| {
                attr(c, "http.response.status_code").is_some_and(|s| s.starts_with('5'))
                    && c.status != StatusCode::Error
            })
        },
    },
    Symptom {
        fault: t::WRONG_SAMPLER,
        request: POST,
        // Each post calls profile twice; the faulty sampler keeps each call's SERVER span
        // on a coin, so twenty calls all keeping theirs has odds of one in a million.
        repeat: 10,
        // A call to profile with no SERVER span of profile beneath it.
        shows: |spans| {
            calls_to_profile(spans).iter().any(|c| {
                !spans
                    .iter()
                    .any(|s| s.service == "profile" && s.parent_span_id == c.span_id)
            })
        },
    },
    Symptom {
        fault: t::CLOCK_OFFSET,
        request: POST,
        repeat: 1,
        shows: |spans| {
            spans.iter().any(|s| {
                s.service == "profile"
                    && spans
                        .iter()
                        .any(|p| p.span_id == s.parent_span_id && s.start_ns < p.start_ns)
            })
        },
    },
];

/// Each teaching fault: off, on, off again, one request (or a few) per phase; the
/// symptom must show in the "on" phase and in neither "off".
fn teaching_faults_show_only_while_on(shell: &Shell) {
    let catalogue: Vec<&str> = t::CATALOGUE.iter().map(|f| f.name).collect();
    let tested: Vec<&str> = SYMPTOMS.iter().map(|s| s.fault).collect();
    assert_eq!(
        tested, catalogue,
        "every teaching fault has its symptom test"
    );
    let (code, said) = shell.socialctl(&["fault", "off", "--all"]);
    assert_eq!(code, Some(0), "{said}");

    for (i, symptom) in SYMPTOMS.iter().enumerate() {
        let f = symptom.fault;
        // The retry and error faults show when a call fails: profile answers 500 to
        // every request while their three phases run.
        let chaos = matches!(f, t::RETRY_STORM | t::SWALLOWED_ERROR);
        let mut phases = String::from(
            "set -euo pipefail\neval \"$(socialctl lab env)\"\nALICE=$(socialctl lab token alice)\nBOB=$(socialctl lab token bob)\n",
        );
        for (phase, switch) in [(0, ""), (1, "on"), (2, "off")] {
            if !switch.is_empty() {
                phases.push_str(&format!("socialctl fault {switch} {f}\n"));
            }
            for r in 0..symptom.repeat {
                let id = format!("fa{i:02x}{phase:02x}{r:026x}");
                let request = symptom.request;
                // Under chaos the request itself may answer an error: that is the point.
                let tolerate = if chaos { " || true" } else { "" };
                phases.push_str(&format!("ID={id}\n{request}{tolerate}\n"));
            }
        }
        let script = if chaos {
            let path = shell.scratch.join(format!("fault-{f}.sh"));
            std::fs::write(&path, &phases).expect("script");
            format!(
                "set -euo pipefail\nsocialctl chaos errors profile --rate 1 --duration 60s -- bash {}",
                path.display()
            )
        } else {
            phases
        };
        let (code, text) = shell.bash(&script, Duration::from_secs(120));
        eprintln!("--- {f}:\n{text}");
        assert_eq!(code, Some(0), "{f}'s requests failed:\n{text}");
        for (phase, on) in [(0, false), (1, true), (2, false)] {
            let shown = (0..symptom.repeat).any(|r| {
                let id = format!("fa{i:02x}{phase:02x}{r:026x}");
                let spans = shell.trace(&id);
                assert!(!spans.is_empty(), "{f}: trace {id} is empty");
                (symptom.shows)(&spans)
            });
            assert_eq!(
                shown,
                on,
                "{f}: the symptom {} while the fault was {}",
                if shown { "showed" } else { "did not show" },
                if on { "on" } else { "off" }
            );
        }
    }
}
