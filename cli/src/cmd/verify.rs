//! `socialctl verify-traces` and `socialctl traces`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use verify::Span;
use verify::checks::CheckOptions;
use verify::report::SentRequest;

#[derive(Debug, Clone, clap::Args)]
pub struct VerifyArgs {
    /// The sink to read (socialctl's own OTLP receiver) [default: the running stack's,
    /// else http://127.0.0.1:4318].
    #[arg(long, conflicts_with_all = ["jaeger", "file"])]
    pub sink: Option<String>,
    /// Read a Jaeger query API instead, e.g. http://127.0.0.1:16686.
    #[arg(long)]
    pub jaeger: Option<String>,
    /// Read an OTLP JSON file instead, as the Collector's file exporter writes it.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Directory of `*.spec` trace shapes (default: the built-in ones, from scenarios/traces).
    #[arg(long)]
    pub specs: Option<PathBuf>,
    /// JSON lines of the requests a load generator sent (`{trace_id, parent_span_id,
    /// endpoint, status}`): each is then accounted for, and missing traces count.
    #[arg(long)]
    pub sent: Option<PathBuf>,
    /// Exit 1 when completeness (in %) is below this.
    #[arg(long, default_value_t = 100.0)]
    pub min_completeness: f64,
    /// Allowed clock disagreement between a parent and its child, in milliseconds.
    #[arg(long, default_value_t = 5.0)]
    pub clock_skew_ms: f64,
    /// Longest wait for the pipeline to drain before judging, in seconds.
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,
    /// Quiet period that counts as drained when the services' counters cannot be read.
    #[arg(long, default_value_t = 2000)]
    pub settle_ms: u64,
    /// Judge clients' spans (phones, from `socialctl sim`) on their own clocks, without
    /// correcting them by each export's receive time − send time.
    #[arg(long)]
    pub raw_clocks: bool,
    /// Print JSON instead of the table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub stack: super::StackArgs,
}

#[derive(Debug, Clone, clap::Args)]
pub struct TracesArgs {
    /// Show this one trace as a tree.
    pub trace_id: Option<String>,
    /// The sink's query API [default: the running stack's, else http://127.0.0.1:4318].
    #[arg(long)]
    pub sink: Option<String>,
    #[command(flatten)]
    pub stack: super::StackArgs,
    /// Only traces touching this service.
    #[arg(long)]
    pub service: Option<String>,
    /// Only traces with a span of this name, e.g. "GET /api/feed/timeline".
    #[arg(long)]
    pub operation: Option<String>,
    /// Only traces with an error span.
    #[arg(long)]
    pub errors: bool,
    /// Only traces at least this long, in milliseconds.
    #[arg(long)]
    pub min_duration_ms: Option<f64>,
    /// How many recent traces to show.
    #[arg(long, default_value_t = 5)]
    pub limit: usize,
    /// Also print each process's resource attributes (host, instance, SDK, …).
    #[arg(long)]
    pub resource: bool,
    /// Also print each span's attributes under it (`db.query.text`, `http.route`, …).
    #[arg(long)]
    pub attributes: bool,
    /// Only traces that began during the latest fault window `socialctl chaos`
    /// recorded (or during the fault active now).
    #[arg(long)]
    pub during_fault: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// The latest fault window: the active fault started last, else the last one the sink
/// recorded; `None` when there has been none.
async fn latest_window(
    client: &reqwest::Client,
    sink: &str,
    stack: &super::StackArgs,
) -> anyhow::Result<Option<verify::faults::FaultWindow>> {
    let nanos =
        |t: chrono::DateTime<chrono::Utc>| t.timestamp_nanos_opt().unwrap_or_default() as u64;
    if let Some(f) = crate::stack::faults::active(&stack.dir())
        .into_iter()
        .max_by_key(|f| f.started)
    {
        return Ok(Some(verify::faults::FaultWindow {
            kind: f.kind.name().into(),
            target: f.target,
            start_ns: nanos(f.started),
            end_ns: nanos(chrono::Utc::now()),
            healed_by: "(active)".into(),
        }));
    }
    let summaries: Vec<verify::sink::TraceSummary> = get_json(
        client,
        &format!(
            "{sink}/api/traces?service={}&limit=1000",
            verify::faults::CHAOS_SERVICE
        ),
    )
    .await?;
    let mut traces = Vec::new();
    for s in summaries {
        traces.push(
            get_json::<Vec<Span>>(client, &format!("{sink}/api/traces/{}", s.trace_id)).await?,
        );
    }
    Ok(verify::faults::windows(&traces)
        .into_iter()
        .max_by_key(|w| w.start_ns))
}

fn specs(dir: &Option<PathBuf>) -> anyhow::Result<Vec<verify::spec::TraceSpec>> {
    match dir {
        Some(d) => Ok(verify::spec::load_dir(d)?),
        None => scenarios::TRACE_SPECS
            .iter()
            .map(|(name, text)| {
                verify::spec::parse(&format!("scenarios/traces/{name}"), text)
                    .map_err(anyhow::Error::from)
            })
            .collect(),
    }
}

/// Span counters of one service process, from its `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    pub ended: u64,
    pub exported: u64,
    pub failed: u64,
}

fn parse_metrics(text: &str) -> Option<Counters> {
    let get = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<u64>().ok())
    };
    Some(Counters {
        ended: get("otel_spans_ended_total")?,
        exported: get("otel_spans_exported_total")?,
        failed: get("otel_spans_export_failed_total")?,
    })
}

async fn read_counters(
    client: &reqwest::Client,
    urls: &[(String, String)],
) -> Vec<(String, Option<Counters>)> {
    let mut out = Vec::new();
    for (name, url) in urls {
        let c = match client.get(url).send().await {
            Ok(r) => r.text().await.ok().and_then(|t| parse_metrics(&t)),
            Err(_) => None,
        };
        out.push((name.clone(), c));
    }
    out
}

/// Waits until the pipeline is drained: every service's batch queue is empty (every
/// ended span was delivered or failed) and nothing new ended since the last look. A
/// delivered span is already in the sink (the counter moves only after the sink
/// acknowledged it), so no further delay is needed. Without counters, waits for the
/// sink to be quiet for `settle`.
async fn wait_drained(
    client: &reqwest::Client,
    sink: &str,
    metrics: &[(String, String)],
    timeout: Duration,
    settle: Duration,
) -> anyhow::Result<(bool, Vec<(String, Option<Counters>)>)> {
    let deadline = Instant::now() + timeout;
    let mut last = read_counters(client, metrics).await;
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = read_counters(client, metrics).await;
        let readable = !now.is_empty() && now.iter().all(|(_, c)| c.is_some());
        let drained = if readable {
            now == last
                && now
                    .iter()
                    .all(|(_, c)| c.is_some_and(|c| c.ended == c.exported + c.failed))
        } else {
            let stats: serde_json::Value = client
                .get(format!("{sink}/api/stats"))
                .send()
                .await?
                .json()
                .await?;
            stats["idle_ms"]
                .as_u64()
                .is_none_or(|ms| ms >= settle.as_millis() as u64)
        };
        if drained {
            return Ok((true, now));
        }
        if Instant::now() > deadline {
            return Ok((false, now));
        }
        last = now;
    }
}

async fn get_json<T: serde::de::DeserializeOwned>(
    client: &reqwest::Client,
    url: &str,
) -> anyhow::Result<T> {
    let res = client.get(url).send().await.with_context(|| {
        format!("could not reach {url}; is the stack (or the sink) up? `socialctl up` starts it")
    })?;
    if !res.status().is_success() {
        bail!("{url} answered HTTP {}", res.status());
    }
    res.json()
        .await
        .with_context(|| format!("{url} did not answer with the expected JSON"))
}

async fn load_traces(
    a: &VerifyArgs,
    client: &reqwest::Client,
) -> anyhow::Result<(Vec<Vec<Span>>, serde_json::Value)> {
    if let Some(path) = &a.file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("could not read {}", path.display()))?;
        let spans = verify::otlp::decode_json_lines(&text)
            .map_err(|(line, e)| anyhow::anyhow!("{}:{line}: {e}", path.display()))?;
        return Ok((
            verify::otlp::group(spans),
            serde_json::json!({"source": path.display().to_string()}),
        ));
    }
    if let Some(base) = &a.jaeger {
        let base = base.trim_end_matches('/');
        let res = client
            .get(format!("{base}/api/services"))
            .send()
            .await
            .with_context(|| format!("could not reach Jaeger at {base}"))?;
        let services = verify::jaeger::services(&res.bytes().await?)?;
        let mut all: std::collections::HashMap<String, Vec<Span>> =
            std::collections::HashMap::new();
        for s in services {
            let body = client
                .get(format!(
                    "{base}/api/traces?service={s}&limit=100000&lookback=2h"
                ))
                .send()
                .await?
                .bytes()
                .await?;
            for t in verify::jaeger::parse(&body)
                .with_context(|| format!("Jaeger's answer for {s} is not trace JSON"))?
            {
                for span in t {
                    let entry = all.entry(span.trace_id.clone()).or_default();
                    if !entry.iter().any(|x| x.span_id == span.span_id) {
                        entry.push(span);
                    }
                }
            }
        }
        return Ok((
            all.into_values().collect(),
            serde_json::json!({"source": base}),
        ));
    }
    let sink = super::or_recorded(&a.sink, || a.stack.addresses().otlp_http);
    let sink = sink.trim_end_matches('/');
    let metrics = metrics_of(&a.stack).await;
    let (drained, counters) = wait_drained(
        client,
        sink,
        &metrics,
        Duration::from_secs(a.timeout),
        Duration::from_millis(a.settle_ms),
    )
    .await?;
    if !drained {
        eprintln!(
            "warning: the pipeline did not drain within {} s; traces may still be arriving",
            a.timeout
        );
    }
    let traces: Vec<Vec<Span>> = get_json(client, &format!("{sink}/api/export")).await?;
    let stats: serde_json::Value = get_json(client, &format!("{sink}/api/stats")).await?;
    let pipeline = serde_json::json!({
        "source": sink,
        "drained": drained,
        "services": counters.iter().map(|(n, c)| serde_json::json!({
            "instance": n,
            "counters": c,
            "dropped_in_queue": c.map(|c| c.ended.saturating_sub(c.exported + c.failed)),
        })).collect::<Vec<_>>(),
        "sink": stats,
    });
    Ok((traces, pipeline))
}

pub async fn verify_traces(a: &VerifyArgs) -> anyhow::Result<ExitCode> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    let opts = CheckOptions {
        clock_skew_ns: (a.clock_skew_ms * 1e6) as u64,
        specs: specs(&a.specs)?,
        raw_clocks: a.raw_clocks,
        ..Default::default()
    };
    let sent: Option<Vec<SentRequest>> = match &a.sent {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("could not read {}", p.display()))?;
            let mut v = Vec::new();
            for (i, line) in text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
            {
                v.push(serde_json::from_str(line).with_context(|| {
                    format!("{}:{}: not a sent-request record", p.display(), i + 1)
                })?);
            }
            Some(v)
        }
        None => None,
    };
    // A simulation still running holds spans on its phones: wait for their uploads
    // (within --timeout), then leave out what still waits instead of calling it
    // incomplete.
    let dir = a.stack.dir();
    if let Some(p) = crate::sim::read_pending(&dir).filter(|p| !p.is_empty()) {
        if !a.json {
            eprintln!(
                "waiting for {} traces whose spans are still buffered on phones (socialctl sim is running)",
                p.len()
            );
        }
        let deadline = Instant::now() + Duration::from_secs(a.timeout);
        while Instant::now() < deadline
            && crate::sim::read_pending(&dir).is_some_and(|p| !p.is_empty())
        {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    let (mut traces, pipeline) = load_traces(a, &client).await?;
    let waiting = crate::sim::read_pending(&dir).unwrap_or_default();
    // Holes a phone's full buffer made are the phone's, counted apart.
    let dropped = crate::sim::read_dropped(&dir);
    let id = |t: &Vec<verify::Span>| t.first().map(|s| s.trace_id.clone()).unwrap_or_default();
    let lost_on_devices = traces
        .iter()
        .filter(|t| dropped.contains(&id(t)) && !waiting.contains(&id(t)))
        .count();
    // A link into a trace left out still points at a span that arrived (the set is
    // built only when something is left out).
    let left_out = |t: &Vec<verify::Span>| waiting.contains(&id(t)) || dropped.contains(&id(t));
    let known: std::collections::HashSet<(String, String)> = if traces.iter().any(left_out) {
        traces
            .iter()
            .flatten()
            .map(|s| (s.trace_id.clone(), s.span_id.clone()))
            .collect()
    } else {
        Default::default()
    };
    let all_kept = known.is_empty();
    traces.retain(|t| !left_out(t));
    let sent = sent.map(|v| {
        v.into_iter()
            .filter(|r| !waiting.contains(&r.trace_id) && !dropped.contains(&r.trace_id))
            .collect::<Vec<_>>()
    });
    let mut report = if all_kept {
        verify::report::verify(&traces, sent.as_deref(), &opts)
    } else {
        verify::report::verify_linked(&traces, sent.as_deref(), &opts, &|t, s| {
            known.contains(&(t.to_owned(), s.to_owned()))
        })
    };
    report.waiting_on_devices = waiting.len();
    report.dropped_on_devices = lost_on_devices;
    if a.json {
        let mut v = serde_json::to_value(&report)?;
        v["pipeline"] = pipeline;
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", verify::report::render(&report));
        print_pipeline(&pipeline);
    }
    Ok(
        if 100.0 * report.completeness + 1e-9 >= a.min_completeness {
            ExitCode::SUCCESS
        } else {
            if !a.json {
                eprintln!(
                    "completeness {:.3}% is below --min-completeness {}%",
                    100.0 * report.completeness,
                    a.min_completeness
                );
            }
            ExitCode::from(1)
        },
    )
}

fn print_pipeline(p: &serde_json::Value) {
    let Some(services) = p["services"].as_array() else {
        return;
    };
    if services.is_empty() {
        return;
    }
    println!("\npipeline (span counters per process):");
    for s in services {
        let c = &s["counters"];
        if c.is_null() {
            println!(
                "  {:<10} counters unavailable",
                s["instance"].as_str().unwrap_or("?")
            );
            continue;
        }
        println!(
            "  {:<10} ended {:>8}  exported {:>8}  export failed {:>6}  dropped in queue {:>6}",
            s["instance"].as_str().unwrap_or("?"),
            c["ended"],
            c["exported"],
            c["failed"],
            s["dropped_in_queue"]
        );
    }
    let sink = &p["sink"];
    println!(
        "  sink       received {:>8}  duplicates {:>6}  evicted {:>6}  rejected payloads {:>4}",
        sink["received"], sink["duplicates"], sink["evicted_spans"], sink["rejected_payloads"]
    );
}

/// The `/metrics` addresses of the running stack's services, asked of its runtime (none
/// when no stack is recorded: drain detection then waits for the sink to go quiet).
async fn metrics_of(stack: &super::StackArgs) -> Vec<(String, String)> {
    use crate::runtime::Runtime as _;
    if stack.recorded().is_none() {
        return Vec::new();
    }
    match stack.target().in_use().await {
        Ok(rt) => rt.metrics().await,
        Err(_) => Vec::new(),
    }
}

pub async fn traces(a: &TracesArgs) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let sink = super::or_recorded(&a.sink, || a.stack.addresses().otlp_http);
    let sink = sink.trim_end_matches('/');
    // Spans of a request just made may still be in the services' export queues: on the
    // running stack, wait (briefly) until they have all been sent, so the tree is whole.
    if a.sink.is_none() && a.stack.recorded().is_some() {
        let metrics = metrics_of(&a.stack).await;
        let _ = wait_drained(
            &client,
            sink,
            &metrics,
            Duration::from_secs(10),
            Duration::from_millis(1000),
        )
        .await;
    }
    let list: Vec<Vec<Span>> = match &a.trace_id {
        Some(id) => vec![
            get_json(&client, &format!("{sink}/api/traces/{id}"))
                .await
                .with_context(|| format!("trace {id} is not in the sink"))?,
        ],
        None => {
            let mut url = reqwest::Url::parse(&format!("{sink}/api/traces"))
                .context("--sink is not a URL")?;
            url.query_pairs_mut()
                .append_pair("limit", &a.limit.to_string());
            if let Some(v) = &a.service {
                url.query_pairs_mut().append_pair("service", v);
            }
            if let Some(v) = &a.operation {
                url.query_pairs_mut().append_pair("operation", v);
            }
            if a.errors {
                url.query_pairs_mut().append_pair("status", "error");
            }
            if let Some(v) = a.min_duration_ms {
                url.query_pairs_mut()
                    .append_pair("min_duration_ms", &v.to_string());
            }
            if a.during_fault {
                let Some(w) = latest_window(&client, sink, &a.stack).await? else {
                    bail!(
                        "no fault has been recorded in this sink; `socialctl chaos kill feed` makes one"
                    );
                };
                let at = |ns: u64| {
                    chrono::DateTime::from_timestamp_nanos(ns as i64)
                        .with_timezone(&chrono::Local)
                        .format("%H:%M:%S")
                        .to_string()
                };
                if !a.json {
                    println!(
                        "during {} {} {}–{} ({}):\n",
                        w.kind,
                        w.target,
                        at(w.start_ns),
                        at(w.end_ns),
                        w.healed_by
                    );
                }
                url.query_pairs_mut()
                    .append_pair("start_ns", &w.start_ns.to_string())
                    .append_pair("end_ns", &w.end_ns.to_string());
            }
            let summaries: Vec<verify::sink::TraceSummary> =
                get_json(&client, url.as_str()).await?;
            let mut v = Vec::new();
            for s in summaries {
                let t: Vec<Span> =
                    get_json(&client, &format!("{sink}/api/traces/{}", s.trace_id)).await?;
                // The requests, not the fault's own records (unless asked for by service).
                let record = verify::faults::is_window(&t) && a.service.is_none();
                if !(a.during_fault && record) {
                    v.push(t);
                }
            }
            v
        }
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    if list.is_empty() {
        println!(
            "no traces in the sink yet; send a request through the gateway (http://127.0.0.1:8080/api/...)"
        );
    }
    for t in &list {
        // A client whose clock was off: its spans as it stamped them, then corrected by
        // receive time − send time, as verify-traces judges them.
        let (fixed, clocks) = verify::skew::correct(std::slice::from_ref(t));
        if clocks.is_empty() {
            print!("{}", render_tree(t, a.attributes));
        } else {
            println!("as sent, on the clients' own clocks:");
            print!("{}", render_tree(t, a.attributes));
            let who: Vec<String> = clocks
                .iter()
                .map(|c| {
                    format!(
                        "{} {} {:+.1} s",
                        c.service,
                        c.instance,
                        -c.correction_ms / 1000.0
                    )
                })
                .collect();
            println!(
                "corrected by receive time − send time ({}):",
                who.join(", ")
            );
            print!("{}", render_tree(&fixed[0], a.attributes));
        }
        if a.resource {
            print!("{}", render_resources(t));
        }
        // One trace asked for by id: also the work it caused elsewhere, which links
        // back to it (a message's consumers, an upload's job).
        if let Some(id) = &a.trace_id {
            let linking: Vec<Span> = get_json(&client, &format!("{sink}/api/traces/{id}/linked"))
                .await
                .unwrap_or_default();
            print!("{}", render_linked(&linking, id));
        }
        println!();
    }
    Ok(())
}

/// The spans of other traces that link into trace `id`, each with the command that
/// opens its trace; nothing when there are none.
pub fn render_linked(linking: &[Span], id: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    if linking.is_empty() {
        return out;
    }
    let _ = writeln!(out, "linked from other traces:");
    for s in linking {
        let to: Vec<&str> = s
            .links
            .iter()
            .filter(|l| l.trace_id.eq_ignore_ascii_case(id))
            .map(|l| l.span_id.as_str())
            .collect();
        let _ = writeln!(
            out,
            "  {} [{}] {:?} links to span {}: socialctl traces {}",
            s.name,
            s.service,
            s.kind,
            to.join(", "),
            s.trace_id
        );
    }
    out
}

/// Each distinct process's resource attributes, one line per attribute.
pub fn render_resources(spans: &[Span]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let mut seen = std::collections::HashSet::new();
    for sp in spans {
        if !seen.insert((sp.service.as_str(), sp.instance.as_str())) {
            continue;
        }
        let _ = writeln!(out, "  resource of {} {}", sp.service, sp.instance);
        for (k, v) in sp.resource.iter() {
            let _ = writeln!(out, "    {k}={v}");
        }
    }
    out
}

/// A trace as an indented tree, children under parents by start time; with
/// `attributes`, each span's attributes under it.
pub fn render_tree(spans: &[Span], attributes: bool) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let Some(first) = spans.first() else { return s };
    let ids: std::collections::HashSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    let t0 = spans.iter().map(|s| s.start_ns).min().unwrap_or(0);
    let _ = writeln!(s, "trace {}  ({} spans)", first.trace_id, spans.len());
    fn walk(out: &mut String, spans: &[Span], parent: &Span, depth: usize, t0: u64, attrs: bool) {
        let mut kids: Vec<&Span> = spans
            .iter()
            .filter(|c| c.parent_span_id == parent.span_id)
            .collect();
        kids.sort_by_key(|k| k.start_ns);
        for k in kids {
            line(out, k, depth, t0, attrs);
            walk(out, spans, k, depth + 1, t0, attrs);
        }
    }
    fn line(out: &mut String, s: &Span, depth: usize, t0: u64, attrs: bool) {
        use std::fmt::Write;
        let status = if s.status == verify::StatusCode::Error {
            " ERROR"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "{:>9.2} ms {:>8.2} ms  {}{} [{}] {:?}{}",
            (s.start_ns.saturating_sub(t0)) as f64 / 1e6,
            s.duration_ns() as f64 / 1e6,
            "  ".repeat(depth),
            s.name,
            s.service,
            s.kind,
            status
        );
        let pad = format!("{:24}{}", "", "  ".repeat(depth + 1));
        if attrs {
            for (k, v) in &s.attributes {
                let _ = writeln!(out, "{pad}{k}={v}");
            }
        }
        for e in &s.events {
            let attrs: Vec<String> = e
                .attributes
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let _ = writeln!(
                out,
                "{pad}· event {} at {:.2} ms {}",
                e.name,
                e.time_ns.saturating_sub(t0) as f64 / 1e6,
                attrs.join(" ")
            );
        }
        for l in &s.links {
            if l.trace_id == s.trace_id {
                let _ = writeln!(out, "{pad}→ link to span {} of this trace", l.span_id);
            } else {
                let _ = writeln!(
                    out,
                    "{pad}→ link to span {} of another trace: socialctl traces {}",
                    l.span_id, l.trace_id
                );
            }
        }
    }
    let mut tops: Vec<&Span> = spans
        .iter()
        .filter(|x| x.is_root() || !ids.contains(x.parent_span_id.as_str()))
        .collect();
    tops.sort_by_key(|x| x.start_ns);
    for top in tops {
        if !top.is_root() {
            let _ = writeln!(
                s,
                "  (parent {} not in the sink: an external caller, or a lost span)",
                top.parent_span_id
            );
        }
        line(&mut s, top, 0, t0, attributes);
        walk(&mut s, spans, top, 1, t0, attributes);
    }
    s
}

/// Waits (at most `timeout`) for the running stack's span pipeline to drain, then reads
/// `path` from its sink's query API (`/api/export`, `/api/traces/ID`): what the
/// workshop's checks read. `None` for a 404.
pub(crate) async fn drained_sink_json<T: serde::de::DeserializeOwned>(
    stack: &super::StackArgs,
    path: &str,
    timeout: Duration,
) -> anyhow::Result<Option<T>> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    let sink = stack.addresses().otlp_http;
    let sink = sink.trim_end_matches('/');
    let metrics = metrics_of(stack).await;
    wait_drained(
        &client,
        sink,
        &metrics,
        timeout,
        Duration::from_millis(1500),
    )
    .await?;
    let url = format!("{sink}{path}");
    let res = client.get(&url).send().await.with_context(|| {
        format!("could not reach the sink at {sink}; is the stack up? `socialctl up` starts it")
    })?;
    if res.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !res.status().is_success() {
        bail!("{url} answered HTTP {}", res.status());
    }
    Ok(Some(res.json().await.with_context(|| {
        format!("{url} did not answer with the expected JSON")
    })?))
}

#[cfg(test)]
mod tests {
    use super::render_linked;
    use verify::{Event, Link, Span, SpanKind};

    /// `socialctl traces` shows a span's events and a link into another trace as the
    /// command that opens that trace.
    #[test]
    fn the_spans_that_link_into_a_trace_are_listed_with_the_command_to_open_theirs() {
        let consumer = Span {
            trace_id: "c".repeat(32),
            span_id: "00000000000000c1".into(),
            name: "process messaging.messages".into(),
            service: "messaging".into(),
            kind: SpanKind::Consumer,
            links: vec![Link {
                trace_id: "a".repeat(32),
                span_id: "00000000000000a1".into(),
                attributes: Vec::new(),
            }],
            ..Default::default()
        };
        let text = render_linked(std::slice::from_ref(&consumer), &"a".repeat(32));
        assert!(text.starts_with("linked from other traces:\n"), "{text}");
        assert!(
            text.contains(&format!(
                "process messaging.messages [messaging] Consumer links to span 00000000000000a1: socialctl traces {}",
                "c".repeat(32)
            )),
            "{text}"
        );
        assert_eq!(render_linked(&[], "x"), "");
    }

    #[test]
    fn a_tree_shows_events_and_links_as_jumps() {
        let consumer = Span {
            trace_id: "2".repeat(32),
            span_id: "c".repeat(16),
            name: "process conversation".into(),
            kind: SpanKind::Consumer,
            service: "messaging".into(),
            start_ns: 1_000_000,
            end_ns: 3_000_000,
            links: vec![Link {
                trace_id: "1".repeat(32),
                span_id: "a".repeat(16),
                attributes: Vec::new(),
            }],
            events: vec![Event {
                name: "delivered".into(),
                time_ns: 2_000_000,
                attributes: vec![("recipients".into(), "2".into())],
            }],
            resource: vec![("host.name".to_owned(), "replica-b".to_owned())].into(),
            ..Default::default()
        };
        let tree = super::render_tree(std::slice::from_ref(&consumer), false);
        assert!(
            tree.contains("· event delivered at 1.00 ms recipients=2"),
            "{tree}"
        );
        assert!(
            tree.contains(&format!(
                "→ link to span {} of another trace: socialctl traces {}",
                "a".repeat(16),
                "1".repeat(32)
            )),
            "{tree}"
        );
        let res = super::render_resources(&[consumer]);
        assert!(res.contains("host.name=replica-b"), "{res}");
    }
}
