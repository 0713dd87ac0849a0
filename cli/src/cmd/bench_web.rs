//! `socialctl bench-web`: what the home page costs, on the running stack.
//!
//! Registers a reader through the pages (a real session cookie), gives them a full first
//! page of posts, then asks for `GET /` at a fixed rate (an open model: every request is
//! timed from its slot, so a stall counts for the requests queued behind it) and reports
//! the server's p50/p99 with tracing as the stack has it; the page's weight (HTML, the
//! script and the style, uncompressed); and the home page's load time measured in a real
//! headless Chromium (Navigation Timing), when Debian's `chromium` and `chromium-driver`
//! are installed.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use hdrhistogram::Histogram;
use scenarios::workload::parse_duration;
use tokio::sync::Mutex;

#[derive(Debug, Clone, clap::Args)]
pub struct BenchWebArgs {
    #[command(flatten)]
    pub stack: super::StackArgs,
    /// Home pages asked for per second (each at its slot, whatever came before).
    #[arg(long, default_value_t = 100)]
    pub rate: u32,
    /// Measured time.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Home page loads timed in a headless Chromium (0: none).
    #[arg(long, default_value_t = 5)]
    pub browser_loads: u32,
    /// Print one JSON document instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// The bench reader's password.
const PASSWORD: &str = "bench-web-password";

/// The value of `name` in a response's `Set-Cookie` headers.
fn cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// The text between `before` and the next `"` in a page.
fn grab(html: &str, before: &str) -> Option<String> {
    html.split(before)
        .nth(1)
        .and_then(|r| r.split('"').next())
        .map(str::to_owned)
}

/// A session for a new reader, through the register form: its `sid` cookie.
async fn register(http: &reqwest::Client, base: &str, name: &str) -> anyhow::Result<String> {
    let r = http.get(format!("{base}/register")).send().await?;
    let pre =
        cookie(&r, "pre").context("the register form set no `pre` cookie: is web running?")?;
    let r = http
        .post(format!("{base}/register"))
        .header("cookie", format!("pre={pre}"))
        .form(&[
            ("csrf", pre.as_str()),
            ("username", name),
            ("password", PASSWORD),
        ])
        .send()
        .await?;
    cookie(&r, "sid").with_context(|| {
        format!(
            "registering through the pages failed (HTTP {}); is the stack healthy?",
            r.status()
        )
    })
}

/// Milliseconds from navigation start to the end of the load event, per load.
async fn browser_loads(base: &str, user: &str, loads: u32) -> anyhow::Result<Vec<f64>> {
    let browser = super::browser::Browser::start().await?;
    let b = &browser.client;
    let result = async {
        // Signed in through the form, as a reader would.
        browser.sign_in(base, user, PASSWORD).await?;
        let mut out = Vec::new();
        // The first load fills the browser's cache with the script and style, as a
        // returning reader's would be; it is not counted.
        for i in 0..=loads {
            b.goto(&format!("{base}/")).await?;
            let ms = b
                .execute(
                    "var n = performance.getEntriesByType('navigation')[0]; return n ? n.loadEventEnd - n.startTime : -1;",
                    Vec::new(),
                )
                .await?;
            let ms = ms.as_f64().unwrap_or(-1.0);
            if ms <= 0.0 {
                bail!("the browser reported no load time");
            }
            if i > 0 {
                out.push(ms);
            }
        }
        Ok::<_, anyhow::Error>(out)
    }
    .await;
    let _ = b.clone().close().await;
    result
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() { 0.0 } else { v[v.len() / 2] }
}

pub async fn run(a: &BenchWebArgs) -> anyhow::Result<()> {
    if a.rate == 0 {
        bail!("--rate must be at least 1");
    }
    let (gateway, _, path) = super::load::direct_or_published(&a.stack, false).await;
    let base = gateway.trim_end_matches('/').to_owned();
    let say = |m: String| {
        if !a.json {
            eprintln!("{m}");
        }
    };
    say(format!("bench-web: against {base} via {path}"));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(256)
        .build()?;
    let name = format!(
        "bench_web_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let sid = register(&http, &base, &name).await?;
    let sid_cookie = format!("sid={sid}");
    let home = |http: reqwest::Client, cookie: String, base: String| async move {
        http.get(format!("{base}/"))
            .header("cookie", cookie)
            .send()
            .await
    };
    let page = home(http.clone(), sid_cookie.clone(), base.clone())
        .await?
        .text()
        .await?;
    let csrf = grab(&page, r#"name="csrf" value=""#).context("the home page has no CSRF token")?;
    say(format!(
        "bench-web: {name} writes 20 posts, a full first page"
    ));
    for i in 0..20 {
        let r = http
            .post(format!("{base}/posts"))
            .header("cookie", &sid_cookie)
            .form(&[
                ("csrf", csrf.as_str()),
                ("body", &format!("bench post {i}")),
            ])
            .send()
            .await?;
        if r.status() != reqwest::StatusCode::SEE_OTHER {
            bail!("posting through the pages failed: HTTP {}", r.status());
        }
    }
    // Page weight: the page as served, and what it loads.
    let page = home(http.clone(), sid_cookie.clone(), base.clone())
        .await?
        .text()
        .await?;
    let script = grab(&page, r#"<script src=""#).context("the page loads no script")?;
    let style =
        grab(&page, r#"<link rel="stylesheet" href=""#).context("the page loads no style")?;
    let weigh = |p: String| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            Ok::<usize, anyhow::Error>(
                http.get(format!("{base}{p}"))
                    .send()
                    .await?
                    .bytes()
                    .await?
                    .len(),
            )
        }
    };
    let (html_bytes, js_bytes, css_bytes) = (page.len(), weigh(script).await?, weigh(style).await?);
    // Warm: connections and caches, as a reader who has been here before.
    for _ in 0..20 {
        home(http.clone(), sid_cookie.clone(), base.clone()).await?;
    }
    let n = (a.rate as f64 * a.duration.as_secs_f64()).round() as u64;
    say(format!(
        "bench-web: GET / at {} per second for {:?} ({n} requests)",
        a.rate, a.duration
    ));
    let hist = Arc::new(Mutex::new(
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds"),
    ));
    let failed = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let start = tokio::time::Instant::now();
    let interval = Duration::from_secs_f64(1.0 / a.rate as f64);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let slot = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(slot).await;
        let (http, cookie, base) = (http.clone(), sid_cookie.clone(), base.clone());
        let (hist, failed) = (hist.clone(), failed.clone());
        tasks.spawn(async move {
            let ok = match home(http, cookie, base).await {
                Ok(r) if r.status() == reqwest::StatusCode::OK => r.bytes().await.is_ok(),
                _ => false,
            };
            if !ok {
                failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            let us = slot.elapsed().as_micros().max(1) as u64;
            let _ = hist.lock().await.record(us.min(60_000_000));
        });
    }
    while tasks.join_next().await.is_some() {}
    let secs = start.elapsed().as_secs_f64();
    let h = hist.lock().await;
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    let failed = failed.load(std::sync::atomic::Ordering::Relaxed);
    let mut loads = Vec::new();
    let mut browser_note = String::new();
    if a.browser_loads > 0 {
        say(format!(
            "bench-web: {} home page loads in headless Chromium",
            a.browser_loads
        ));
        match browser_loads(&base, &name, a.browser_loads).await {
            Ok(v) => loads = v,
            Err(e) => browser_note = format!("not measured: {e}"),
        }
    }
    let load_ms = median(&mut loads.clone());
    let report = serde_json::json!({
        "path": path,
        "rate": a.rate,
        "requests": n,
        "achieved_rate": n as f64 / secs,
        "failed": failed,
        "p50_ms": ms(0.50),
        "p90_ms": ms(0.90),
        "p99_ms": ms(0.99),
        "max_ms": h.max() as f64 / 1000.0,
        "html_bytes": html_bytes,
        "js_bytes": js_bytes,
        "css_bytes": css_bytes,
        "browser_loads_ms": loads,
        "browser_load_median_ms": if loads.is_empty() { serde_json::Value::Null } else { load_ms.into() },
        "browser_note": browser_note,
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "home page, GET / at {} req/s ({} requests, {failed} failed), via {path}",
        a.rate, n
    );
    println!(
        "  server time from each request's slot: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms (goal p99 ≤ 50 ms), max {:.1} ms",
        ms(0.5),
        ms(0.9),
        ms(0.99),
        h.max() as f64 / 1000.0
    );
    println!(
        "  page weight: HTML {html_bytes} B, script {js_bytes} B (budget 40 KB), style {css_bytes} B (budget 30 KB), uncompressed"
    );
    if loads.is_empty() {
        if a.browser_loads > 0 {
            println!("  browser load time: {browser_note}");
        }
    } else {
        println!(
            "  browser load time (Chromium, navigation start to load end, warm cache): median {load_ms:.1} ms of {} loads",
            loads.len()
        );
    }
    if failed > 0 {
        bail!("{failed} of {n} home pages failed");
    }
    Ok(())
}
