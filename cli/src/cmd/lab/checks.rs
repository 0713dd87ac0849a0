//! The labs and their checks. A check looks at the stack as the learner left it (the
//! sink's traces, the teaching faults switched on, the answers given) and prints a line
//! per condition, ✓ or ✗ with what to do; exit 0 when every line is ✓, 1 otherwise.
//! Answers are judged against what the traces say where they can be (the critical path
//! of the learner's own trace, the span that really links to their message, the status
//! the fault window's failures really got), not against a fixed string.

use std::collections::HashSet;
use std::process::ExitCode;
use std::time::Duration;

use verify::Span;
use verify::model::SpanKind;

use super::super::StackArgs;

/// One lab of the workshop.
#[derive(Debug)]
pub struct Lab {
    pub n: u32,
    /// Its file under `tutorials/`, without `.md`.
    pub file: &'static str,
    pub title: &'static str,
    pub check: Check,
}

/// What a lab's check looks at.
#[derive(Debug)]
pub enum Check {
    /// The learner's own trace crosses from feed to profile under their span.
    FirstTrace,
    /// The newest load run's every request has a complete trace.
    Completeness,
    /// The learner names the span that made their trace slow.
    CriticalPath,
    /// A teaching fault: found (the answer), then switched off again.
    Fault {
        fault: &'static str,
        question: &'static str,
        accept: &'static [&'static str],
        hint: &'static str,
    },
    /// The status the failed requests of the last fault window got.
    Chaos,
    /// The span in another trace that links to the learner's message.
    Links,
    /// The page the learner opened in a browser: one trace from the browser's spans
    /// to PostgreSQL's, and the parent of the browser's `documentLoad`.
    Browser,
    /// The unnamed fault of `lab oncall`.
    Oncall,
}

/// The trace id and parent span id lab 1 sends (the W3C specification's example).
pub const FIRST_TRACE: (&str, &str) = ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331");
/// The trace id lab 3 sends.
pub const CRITICAL_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
/// The trace id lab 12 sends its message in.
pub const LINK_TRACE: &str = "5c8e2d9a1b3f4e6d8a7b6c5d4e3f2a1b";

use telemetry::teaching as t;

pub const LABS: &[Lab] = &[
    Lab {
        n: 1,
        file: "01-first-trace",
        title: "Follow one request across processes",
        check: Check::FirstTrace,
    },
    Lab {
        n: 2,
        file: "02-completeness",
        title: "Make it speak, then account for every request",
        check: Check::Completeness,
    },
    Lab {
        n: 3,
        file: "03-critical-path",
        title: "Read a waterfall: the critical path",
        check: Check::CriticalPath,
    },
    Lab {
        n: 4,
        file: "04-n-plus-one",
        title: "A ladder of queries (N+1)",
        check: Check::Fault {
            fault: t::N_PLUS_ONE,
            question: "the name of the span that repeats under GET /api/feed/timeline",
            accept: &["select posts"],
            hint: "open the timeline's trace and count the CLIENT spans of one name under feed's SERVER span",
        },
    },
    Lab {
        n: 5,
        file: "05-missing-index",
        title: "A query that grows with the table",
        check: Check::Fault {
            fault: t::MISSING_INDEX,
            question: "the SQL function that keeps PostgreSQL from using the index",
            accept: &["lower", "lower()", "lower(author_username)"],
            hint: "read the db.query.text attribute of the slow SELECT and compare it with the index in services/feed/migrations",
        },
    },
    Lab {
        n: 6,
        file: "06-lost-context",
        title: "New roots where children should be",
        check: Check::Fault {
            fault: t::LOST_CONTEXT,
            question: "the name of the span that became the root of a trace of its own",
            accept: &["feed.fan_out"],
            hint: "list traces whose root is not a SERVER or CLIENT span: `socialctl traces --service feed`",
        },
    },
    Lab {
        n: 7,
        file: "07-retry-storm",
        title: "A retry storm",
        check: Check::Fault {
            fault: t::RETRY_STORM,
            question: "how many times feed sent the one failing call to profile",
            accept: &["6"],
            hint: "count the GET CLIENT spans side by side under feed.fan_out in the post's trace",
        },
    },
    Lab {
        n: 8,
        file: "08-swallowed-error",
        title: "An error nobody recorded",
        check: Check::Fault {
            fault: t::SWALLOWED_ERROR,
            question: "the service whose CLIENT span hid its callee's error",
            accept: &["feed"],
            hint: "verify-traces names the defect error_not_propagated and an example trace: whose CLIENT span is it?",
        },
    },
    Lab {
        n: 9,
        file: "09-sampling",
        title: "What sampling hides",
        check: Check::Fault {
            fault: t::WRONG_SAMPLER,
            question: "the service that samples on its own instead of following its callers",
            accept: &["profile"],
            hint: "verify-traces reports client_without_server: which service's SERVER spans are missing?",
        },
    },
    Lab {
        n: 10,
        file: "10-clock-skew",
        title: "Two clocks, one trace",
        check: Check::Fault {
            fault: t::CLOCK_OFFSET,
            question: "the service whose clock is wrong",
            accept: &["profile"],
            hint: "verify-traces reports starts_before_parent: in which service do the early spans run?",
        },
    },
    Lab {
        n: 11,
        file: "11-chaos",
        title: "Kill a service, find the failed requests",
        check: Check::Chaos,
    },
    Lab {
        n: 12,
        file: "12-span-links",
        title: "Asynchronous work and span links",
        check: Check::Links,
    },
    Lab {
        n: 13,
        file: "13-browser",
        title: "From the browser to the database",
        check: Check::Browser,
    },
    Lab {
        n: 14,
        file: "14-on-call",
        title: "On call: find the unnamed fault",
        check: Check::Oncall,
    },
];

/// The lines of one check.
#[derive(Default)]
struct Verdict(Vec<(bool, String)>);

impl Verdict {
    fn ok(&mut self, s: impl Into<String>) {
        self.0.push((true, s.into()));
    }
    fn no(&mut self, s: impl Into<String>) {
        self.0.push((false, s.into()));
    }
    fn passed(&self) -> bool {
        !self.0.is_empty() && self.0.iter().all(|(ok, _)| *ok)
    }
}

/// An answer as given, compared without case, quotes or surrounding space.
pub fn normal(answer: &str) -> String {
    answer
        .trim()
        .trim_matches(|c| c == '"' || c == '\'' || c == '`')
        .trim()
        .to_lowercase()
}

pub async fn check(stack: &StackArgs, n: u32) -> anyhow::Result<ExitCode> {
    let lab = super::lab(n)?;
    super::recorded(stack)?;
    let dir = super::lab_dir(stack)?;
    let answer = super::read_answers(&dir).get(&n.to_string()).cloned();
    let mut v = Verdict::default();
    match &lab.check {
        Check::FirstTrace => first_trace(stack, &mut v).await?,
        Check::Completeness => completeness(stack, &mut v)?,
        Check::CriticalPath => critical(stack, answer.as_deref(), &mut v).await?,
        Check::Fault {
            fault,
            question,
            accept,
            hint,
        } => {
            if let Some(a) = given(n, answer.as_deref(), question, &mut v) {
                if accept.contains(&a.as_str()) {
                    v.ok(format!("right: {a}"));
                } else {
                    v.no(format!("{a:?} is not it; {hint}"));
                }
            }
            switched_off(stack, fault, &mut v).await?;
        }
        Check::Chaos => chaos(stack, n, answer.as_deref(), &mut v).await?,
        Check::Links => links(stack, n, answer.as_deref(), &mut v).await?,
        Check::Browser => browser(stack, &dir, n, answer.as_deref(), &mut v).await?,
        Check::Oncall => oncall(stack, &dir, n, answer.as_deref(), &mut v).await?,
    }
    for (ok, line) in &v.0 {
        println!("{} {line}", if *ok { "✓" } else { "✗" });
    }
    if v.passed() {
        println!("lab {n} ({}): done", lab.title);
        Ok(ExitCode::SUCCESS)
    } else {
        println!("lab {n} ({}): not yet", lab.title);
        Ok(ExitCode::from(1))
    }
}

/// The learner's answer, normalised, or a ✗ saying how to give one.
fn given(n: u32, answer: Option<&str>, question: &str, v: &mut Verdict) -> Option<String> {
    match answer {
        Some(a) => Some(normal(a)),
        None => {
            v.no(format!(
                "no answer yet: {question}; give it with `socialctl lab answer {n} '…'`"
            ));
            None
        }
    }
}

async fn switched_off(stack: &StackArgs, fault: &str, v: &mut Verdict) -> anyhow::Result<()> {
    let (_, rt, _) = super::super::chaos::open(stack).await?;
    let on: Vec<String> = super::super::fault::switches(&rt)
        .await
        .into_iter()
        .filter(|(_, f)| f.iter().any(|x| x == fault))
        .map(|(i, _)| i)
        .collect();
    if on.is_empty() {
        v.ok(format!("{fault} is off"));
    } else {
        v.no(format!(
            "{fault} is still on in {}: switch it off with `socialctl fault off {fault}`",
            on.join(", ")
        ));
    }
    Ok(())
}

async fn trace(stack: &StackArgs, id: &str) -> anyhow::Result<Option<Vec<Span>>> {
    super::super::verify::drained_sink_json(
        stack,
        &format!("/api/traces/{id}"),
        Duration::from_secs(15),
    )
    .await
}

async fn export(stack: &StackArgs) -> anyhow::Result<Vec<Vec<Span>>> {
    Ok(
        super::super::verify::drained_sink_json(stack, "/api/export", Duration::from_secs(15))
            .await?
            .unwrap_or_default(),
    )
}

async fn first_trace(stack: &StackArgs, v: &mut Verdict) -> anyhow::Result<()> {
    let (id, parent) = FIRST_TRACE;
    let Some(spans) = trace(stack, id).await? else {
        v.no(format!(
            "trace {id} is not in the sink yet: send step 2's request, with its traceparent header"
        ));
        return Ok(());
    };
    v.ok(format!("trace {id} is in the sink ({} spans)", spans.len()));
    let services: HashSet<&str> = spans.iter().map(|s| s.service.as_str()).collect();
    for want in ["feed", "profile"] {
        if services.contains(want) {
            v.ok(format!("{want} took part"));
        } else {
            v.no(format!("no span of {want} in it: the request of step 2 is a new post, which feed fans out with profile's help"));
        }
    }
    if spans
        .iter()
        .any(|s| s.kind == SpanKind::Server && s.parent_span_id == parent)
    {
        v.ok(format!(
            "a SERVER span's parent is your span {parent}: your curl is the root"
        ));
    } else {
        v.no(format!("no SERVER span names {parent} as its parent: send the traceparent header exactly as written"));
    }
    Ok(())
}

fn completeness(stack: &StackArgs, v: &mut Verdict) -> anyhow::Result<()> {
    let runs = stack.dir().join("runs");
    let newest = std::fs::read_dir(&runs)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("load-") && n.ends_with(".jsonl"))
        })
        .max_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    let Some(record) = newest else {
        v.no("no load run is recorded for this stack yet: run step 1's `socialctl load`");
        return Ok(());
    };
    v.ok(format!("the newest load run: {}", record.display()));
    let exe = std::env::current_exe()?;
    let out = std::process::Command::new(exe)
        .args([
            "verify-traces",
            "--json",
            "--min-completeness",
            "0",
            "--sent",
        ])
        .arg(&record)
        .arg("--state-dir")
        .arg(stack.dir())
        .args(["--project", &stack.project])
        .output()?;
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let (traces, complete) = (report["traces"].as_u64(), report["completeness"].as_f64());
    match (traces, complete) {
        (Some(n), Some(c)) if n > 0 && c >= 1.0 => {
            v.ok(format!("all {n} of its requests have a complete trace"))
        }
        (Some(n), Some(c)) => v.no(format!(
            "{:.3} % of its {n} requests have a complete trace: run `socialctl verify-traces --sent {}` and read which are broken, and why",
            c * 100.0,
            record.display()
        )),
        _ => v.no(format!(
            "verify-traces could not judge it: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
    Ok(())
}

/// The spans of `spans`'s critical path from its root, each with the time it spent
/// itself on that path. The path is walked back from the root's end: the child that
/// ended last is on it, then the child that ended last before that one started, and so
/// on, into each child the same way; what no child on the path covers is the span's own.
pub fn critical_path(spans: &[Span]) -> Vec<(&Span, u64)> {
    let ids: HashSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    let Some(root) = spans
        .iter()
        .filter(|s| !ids.contains(s.parent_span_id.as_str()))
        .min_by_key(|s| s.start_ns)
    else {
        return Vec::new();
    };
    let mut path = Vec::new();
    let mut seen = HashSet::new();
    walk(spans, root, root.end_ns, &mut seen, &mut path);
    path
}

fn walk<'a>(
    spans: &'a [Span],
    span: &'a Span,
    until: u64,
    seen: &mut HashSet<&'a str>,
    path: &mut Vec<(&'a Span, u64)>,
) {
    // Malformed input (a span its own ancestor) ends the walk instead of looping.
    if !seen.insert(span.span_id.as_str()) {
        return;
    }
    let at = path.len();
    path.push((span, 0));
    let end = until.min(span.end_ns);
    let mut children: Vec<&Span> = spans
        .iter()
        .filter(|c| c.parent_span_id == span.span_id)
        .collect();
    children.sort_unstable_by_key(|c| std::cmp::Reverse(c.end_ns));
    let (mut cursor, mut covered) = (end, 0);
    for c in children {
        let (a, b) = (c.start_ns.max(span.start_ns), c.end_ns.min(cursor));
        if b <= a {
            continue;
        }
        covered += b - a;
        walk(spans, c, b, seen, path);
        cursor = a;
    }
    path[at].1 = end.saturating_sub(span.start_ns).saturating_sub(covered);
}

/// How an answer may name a span: alone, or after its service (`auth auth.password_verify`).
fn names(s: &Span) -> [String; 2] {
    [
        normal(&s.name),
        normal(&format!("{} {}", s.service, s.name)),
    ]
}

async fn critical(stack: &StackArgs, answer: Option<&str>, v: &mut Verdict) -> anyhow::Result<()> {
    let Some(spans) = trace(stack, CRITICAL_TRACE).await? else {
        v.no(format!(
            "trace {CRITICAL_TRACE} is not in the sink yet: send step 2's request with its traceparent"
        ));
        return Ok(());
    };
    v.ok(format!("trace {CRITICAL_TRACE} is in the sink"));
    let Some(a) = given(
        3,
        answer,
        "the name of the span that spends the most time itself on the critical path",
        v,
    ) else {
        return Ok(());
    };
    let path = critical_path(&spans);
    let Some((blame, own)) = path.iter().max_by_key(|(_, own)| *own) else {
        v.no("the trace has no root to start a path from");
        return Ok(());
    };
    if names(blame).contains(&a) {
        v.ok(format!(
            "right: {} {} spends {:.0} ms itself, the most on the critical path",
            blame.service,
            blame.name,
            *own as f64 / 1e6
        ));
    } else if let Some((s, own)) = path.iter().find(|(s, _)| names(s).contains(&a)) {
        v.no(format!(
            "{} {} is on the critical path, but spends only {:.1} ms itself: follow the path down to the span whose own time is largest",
            s.service,
            s.name,
            *own as f64 / 1e6
        ));
    } else {
        let shown: Vec<String> = path
            .iter()
            .map(|(s, _)| format!("{} {}", s.service, s.name))
            .collect();
        v.no(format!(
            "the span you named is not on the critical path of that trace; the path is {}",
            shown.join(" → ")
        ));
    }
    Ok(())
}

async fn chaos(
    stack: &StackArgs,
    n: u32,
    answer: Option<&str>,
    v: &mut Verdict,
) -> anyhow::Result<()> {
    let traces = export(stack).await?;
    let report = verify::faults::report(&traces, &Default::default());
    let Some(row) = report.and_then(|r| r.windows.into_iter().max_by_key(|w| w.window.end_ns))
    else {
        v.no("no fault window in the sink yet: run step 1 (load, and `socialctl chaos kill feed` while it runs)");
        return Ok(());
    };
    let w = &row.window;
    if row.failed == 0 {
        v.no(format!(
            "the last fault window ({} {}) has no failed request: keep the load running while the fault acts",
            w.kind, w.target
        ));
        return Ok(());
    }
    v.ok(format!(
        "the last fault window ({} {}): {} traces began in it, {} failed",
        w.kind, w.target, row.traces, row.failed
    ));
    let Some(a) = given(
        n,
        answer,
        "the HTTP status most of that window's failed requests got",
        v,
    ) else {
        return Ok(());
    };
    let top = row
        .failed_with
        .iter()
        .max_by_key(|(_, c)| **c)
        .map(|(s, _)| s.clone())
        .unwrap_or_default();
    if a == normal(&top) {
        v.ok(format!("right: {top}, {} of them", row.failed_with[&top]));
    } else {
        v.no(format!(
            "{a:?} is not it: `socialctl verify-traces` lists each fault window with the statuses its failed requests got"
        ));
    }
    Ok(())
}

async fn links(
    stack: &StackArgs,
    n: u32,
    answer: Option<&str>,
    v: &mut Verdict,
) -> anyhow::Result<()> {
    let Some(spans) = trace(stack, LINK_TRACE).await? else {
        v.no(format!(
            "trace {LINK_TRACE} is not in the sink yet: send step 2's message with its traceparent"
        ));
        return Ok(());
    };
    let producers: Vec<&Span> = spans
        .iter()
        .filter(|s| s.kind == SpanKind::Producer)
        .collect();
    if producers.is_empty() {
        v.no(format!(
            "trace {LINK_TRACE} has no PRODUCER span: was it a message sent to a conversation?"
        ));
        return Ok(());
    }
    v.ok(format!(
        "your message's trace has its PRODUCER span ({})",
        producers[0].name
    ));
    let linking: Vec<Span> = super::super::verify::drained_sink_json(
        stack,
        &format!("/api/traces/{LINK_TRACE}/linked"),
        Duration::from_secs(15),
    )
    .await?
    .unwrap_or_default();
    let linked: Vec<&Span> = linking
        .iter()
        .filter(|s| {
            s.links.iter().any(|l| {
                l.trace_id == LINK_TRACE && producers.iter().any(|p| p.span_id == l.span_id)
            })
        })
        .collect();
    let Some(first) = linked.first() else {
        v.no("no span of another trace links to it yet: is every messaging replica up (`socialctl status`)?");
        return Ok(());
    };
    v.ok(format!(
        "{} span(s) in other traces link to it",
        linked.len()
    ));
    let Some(a) = given(
        n,
        answer,
        "the name of the span in the other trace that links to your message",
        v,
    ) else {
        return Ok(());
    };
    if linked.iter().any(|s| normal(&s.name) == a) {
        v.ok(format!("right: {}", first.name));
    } else if producers.iter().any(|p| normal(&p.name) == a) {
        v.no("that is the producer, in your own trace; the question asks for the span in the other trace");
    } else {
        v.no(format!("{a:?} is not it: `socialctl traces {LINK_TRACE}` prints each link as the command that opens the other trace"));
    }
    Ok(())
}

async fn browser(
    stack: &StackArgs,
    dir: &std::path::Path,
    n: u32,
    answer: Option<&str>,
    v: &mut Verdict,
) -> anyhow::Result<()> {
    let Some(b) = super::read_browsed(dir) else {
        v.no("no page has been opened yet: step 1's `socialctl lab browse / --as alice`");
        return Ok(());
    };
    let Some(spans) = trace(stack, &b.trace_id).await? else {
        v.no(format!(
            "trace {} (of {}) is not in the sink: open the page again",
            b.trace_id, b.page
        ));
        return Ok(());
    };
    let from_browser: Vec<&Span> = spans
        .iter()
        .filter(|s| s.service == super::BROWSER_SERVICE)
        .collect();
    let sql = spans
        .iter()
        .filter(|s| s.kind == SpanKind::Client)
        .find(|s| s.attributes.iter().any(|(k, _)| k == "db.query.text"));
    match (from_browser.is_empty(), sql) {
        (false, Some(q)) => v.ok(format!(
            "trace {} of {} runs from the browser ({} spans) to PostgreSQL ({} in {})",
            b.trace_id,
            b.page,
            from_browser.len(),
            q.name,
            q.service
        )),
        (true, _) => v.no(format!(
            "trace {} has no span from the browser: open the page with `socialctl lab browse`, or in a browser with JavaScript on",
            b.trace_id
        )),
        (false, None) => v.no(format!(
            "trace {} reaches no database: open a page that shows posts (`/`, `/u/alice`)",
            b.trace_id
        )),
    }
    let Some(a) = given(
        n,
        answer,
        "the name of the span that is documentLoad's parent",
        v,
    ) else {
        return Ok(());
    };
    let Some(parent) = from_browser
        .iter()
        .find(|s| s.name == "documentLoad")
        .and_then(|d| spans.iter().find(|p| p.span_id == d.parent_span_id))
    else {
        v.no("the trace has no documentLoad span with its parent: open the page again and let it load");
        return Ok(());
    };
    if names(parent).contains(&a) {
        v.ok(format!(
            "right: {} {}, the page's SERVER span, is the parent of the browser's documentLoad",
            parent.service, parent.name
        ));
    } else {
        v.no(format!(
            "{a:?} is not it: in `socialctl traces {}`, documentLoad is indented under its parent",
            b.trace_id
        ));
    }
    Ok(())
}

async fn oncall(
    stack: &StackArgs,
    dir: &std::path::Path,
    n: u32,
    answer: Option<&str>,
    v: &mut Verdict,
) -> anyhow::Result<()> {
    let Some(mut o) = super::read_oncall(dir) else {
        v.no("no on-call exercise has started: `socialctl lab oncall` starts one");
        return Ok(());
    };
    if o.solved {
        v.ok(format!(
            "solved: it was {}; `socialctl lab oncall` plants another once this record is removed",
            o.fault
        ));
        return Ok(());
    }
    v.ok("an on-call exercise is running");
    let Some(a) = given(
        n,
        answer,
        "the name of the fault (as `socialctl fault list` names it)",
        v,
    ) else {
        return Ok(());
    };
    if a != o.fault {
        v.no(format!("it is not {a}: compare what you see with the symptoms in `socialctl fault list --explain`"));
        return Ok(());
    }
    let (_, rt, _) = super::super::chaos::open(stack).await?;
    super::super::fault::clear(&rt, Some(&o.fault)).await?;
    o.solved = true;
    super::write_json(&dir.join("oncall.json"), &o)?;
    v.ok(format!("right: it was {}; switched off again", o.fault));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(id: &str, parent: &str, service: &str, start: u64, end: u64) -> Span {
        Span {
            trace_id: "t".into(),
            span_id: id.into(),
            parent_span_id: parent.into(),
            name: format!("{service} work"),
            service: service.into(),
            start_ns: start,
            end_ns: end,
            ..Default::default()
        }
    }

    fn path(spans: &[Span]) -> Vec<(&str, u64)> {
        critical_path(spans)
            .iter()
            .map(|(s, own)| (s.span_id.as_str(), *own))
            .collect()
    }

    #[test]
    fn the_critical_path_walks_back_from_the_end_and_counts_own_time() {
        // Children first, as traces arrive: root 0..100; a 10..30; b 20..95 with c 25..90.
        let spans = vec![
            span("c", "b", "profile", 25, 90),
            span("a", "r", "redis", 10, 30),
            span("b", "r", "feed", 20, 95),
            span("r", "x", "gateway", 0, 100),
        ];
        // b ends last; before b began (20), a was running: its 10..20 is on the path.
        // r's own time is 100 less 75 (b) and 10 (a); b's is 75 less c's 65.
        assert_eq!(
            path(&spans),
            vec![("r", 15), ("b", 10), ("c", 65), ("a", 10)]
        );
    }

    #[test]
    fn calls_one_after_another_are_all_on_the_path_and_a_parallel_one_is_not() {
        // x, y, z in sequence; p runs beside y and ends before it.
        let spans = vec![
            span("r", "", "auth", 0, 100),
            span("x", "r", "auth", 5, 20),
            span("y", "r", "auth", 20, 80),
            span("p", "r", "auth", 30, 60),
            span("z", "r", "auth", 80, 95),
        ];
        assert_eq!(
            path(&spans),
            vec![("r", 10), ("z", 15), ("y", 60), ("x", 15)]
        );
        // A span that is its own parent does not loop.
        let odd = vec![span("r", "", "a", 0, 10), span("s", "s", "a", 1, 2)];
        assert_eq!(path(&odd), vec![("r", 10)]);
    }

    #[test]
    fn answers_compare_without_case_quotes_or_space() {
        for (given, want) in [
            (" 'SELECT posts' ", "select posts"),
            ("`feed.fan_out`", "feed.fan_out"),
            ("\"6\"", "6"),
        ] {
            assert_eq!(normal(given), want);
        }
    }

    #[test]
    fn the_debugging_guide_has_a_section_for_every_teaching_fault() {
        let guide = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tutorials/debugging.md"),
        )
        .expect("tutorials/debugging.md");
        let sections: Vec<&str> = guide
            .lines()
            .filter_map(|l| l.strip_prefix("### `"))
            .filter_map(|l| l.split('`').next())
            .collect();
        let catalogue: Vec<&str> = t::CATALOGUE.iter().map(|f| f.name).collect();
        assert_eq!(
            sections, catalogue,
            "the guide's sections, in the catalogue's order"
        );
    }

    #[test]
    fn every_lab_has_its_file_and_the_retry_answer_follows_the_fault() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tutorials");
        for (i, l) in LABS.iter().enumerate() {
            assert_eq!(l.n as usize, i + 1, "numbered in order");
            assert!(
                root.join(format!("{}.md", l.file)).is_file(),
                "{} has no file",
                l.file
            );
        }
        let retry = LABS.iter().find_map(|l| match l.check {
            Check::Fault { fault, accept, .. } if fault == t::RETRY_STORM => Some(accept),
            _ => None,
        });
        assert_eq!(
            retry,
            Some(&[(t::RETRY_STORM_RETRIES + 1).to_string().as_str()][..])
        );
    }
}
