//! `socialctl bench-messaging`: messaging's live delivery under load, on the running stack.
//!
//! Signs in seeded users, pairs them in one-to-one conversations, opens one socket per
//! user through the gateway, reads messaging's memory before and after (memory per idle
//! socket), then sends at a fixed total rate from one member of each pair and times each
//! message from the send on one socket to its arrival on the other (HDR histogram).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures_util::{FutureExt as _, SinkExt as _, StreamExt as _};
use hdrhistogram::Histogram;
use scenarios::workload::parse_duration;
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message as Frame;

use crate::runtime::Runtime as _;

#[derive(Debug, Clone, clap::Args)]
pub struct BenchMessagingArgs {
    #[command(flatten)]
    pub stack: super::StackArgs,
    /// Sockets to open (one seeded user each; half of them send). Needs `socialctl seed`.
    #[arg(long, default_value_t = 1000)]
    pub sockets: usize,
    /// Messages per second, in all.
    #[arg(long, default_value_t = 2000)]
    pub rate: u32,
    /// Measured seconds of sending.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    pub duration: Duration,
    /// The seeded users' password.
    #[arg(long, default_value = "password123")]
    pub password: String,
    /// Print one JSON document instead of the table.
    #[arg(long)]
    pub json: bool,
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub async fn run(a: &BenchMessagingArgs) -> anyhow::Result<()> {
    if a.sockets < 2 || a.sockets % 2 == 1 {
        bail!("--sockets must be an even number of at least 2 (users are paired)");
    }
    let (gateway, _, path) = super::load::direct_or_published(&a.stack, false).await;
    let base = gateway.trim_end_matches('/').to_owned();
    let ws_base = base.replacen("http://", "ws://", 1);
    let say = |m: String| {
        if !a.json {
            eprintln!("{m}");
        }
    };
    say(format!("bench-messaging: against {base} via {path}"));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;

    // Sign in, 16 at a time (argon2 on the server is the cost).
    say(format!(
        "bench-messaging: signing in {} seeded users",
        a.sockets
    ));
    let started = Instant::now();
    let tokens: Vec<String> = futures_util::stream::iter(0..a.sockets)
        .map(|i| {
            let http = http.clone();
            let base = base.clone();
            let password = a.password.clone();
            async move {
                let username = crate::seed::username(i);
                let r = http
                    .post(format!("{base}/api/auth/login"))
                    .json(&serde_json::json!({"username": username, "password": password}))
                    .send()
                    .await
                    .with_context(|| format!("could not reach the gateway at {base}"))?;
                if !r.status().is_success() {
                    bail!(
                        "signing in as {username} failed ({}); seed the stack first: socialctl seed",
                        r.status()
                    );
                }
                let v: serde_json::Value = r.json().await?;
                Ok::<_, anyhow::Error>(v["access_token"].as_str().unwrap_or_default().to_owned())
            }
        })
        .buffered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    say(format!(
        "bench-messaging: signed in in {:.1} s",
        started.elapsed().as_secs_f64()
    ));

    // Pairs: user 2k starts a conversation with user 2k+1.
    let mut conversations = Vec::new();
    for k in 0..a.sockets / 2 {
        let r = http
            .post(format!("{base}/api/messages/conversations"))
            .bearer_auth(&tokens[2 * k])
            .json(&serde_json::json!({"members": [crate::seed::username(2 * k + 1)]}))
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("creating a conversation failed: {}", r.text().await?);
        }
        let v: serde_json::Value = r.json().await?;
        conversations.push(v["id"].as_i64().context("a conversation id")?);
    }

    let rt = a.stack.target().in_use().await?;
    let memory = || crate::runtime::component_memory(&rt, "messaging");
    // Freshly started replicas: memory an earlier run freed stays with the allocator, so
    // only a fresh process shows what the sockets cost.
    let names: Vec<String> = rt
        .status()
        .await?
        .into_iter()
        .map(|r| r.name)
        .filter(|n| n.starts_with("messaging"))
        .collect();
    if names.is_empty() {
        bail!("no messaging instance in this stack: socialctl up starts it");
    }
    say(format!("bench-messaging: restarting {}", names.join(", ")));
    for n in &names {
        rt.restart(n).await?;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ok = http
            .get(format!("{base}/api/messages/conversations?limit=1"))
            .bearer_auth(&tokens[0])
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ok {
            break;
        }
        if Instant::now() > deadline {
            bail!("messaging did not answer within 30 s of its restart");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Each replica subscribes to the channel just after it starts answering.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = memory().await;
    say(format!("bench-messaging: opening {} sockets", a.sockets));
    let mut sockets: Vec<Ws> = Vec::with_capacity(a.sockets);
    for t in &tokens {
        let r = http
            .post(format!("{base}/api/messages/ws-ticket"))
            .bearer_auth(t)
            .send()
            .await?;
        let v: serde_json::Value = r.json().await?;
        let ticket = v["ticket"].as_str().context("a ticket")?;
        let (ws, _) =
            tokio_tungstenite::connect_async(format!("{ws_base}/api/messages/ws?ticket={ticket}"))
                .await
                .context("the WebSocket upgrade through the gateway failed")?;
        sockets.push(ws);
    }
    // Let presence announcements settle before reading memory.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = memory().await;
    let per_socket = after.saturating_sub(before) as f64 / a.sockets as f64;

    // Send from the even sockets, receive on the odd ones.
    let hist = Arc::new(Mutex::new(
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds"),
    ));
    let t0 = Instant::now();
    let end = t0 + a.duration;
    let per_sender = f64::from(a.rate) / (a.sockets / 2) as f64;
    let interval = Duration::from_secs_f64(1.0 / per_sender.max(0.001));
    let mut tasks = Vec::new();
    let mut it = sockets.into_iter();
    let mut k = 0usize;
    // Client message ids unique to this run: the pairs' conversations are found again by
    // a later run, and a repeated id would be (rightly) stored once and not delivered.
    let run_tag = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    while let (Some(mut tx), Some(mut rx)) = (it.next(), it.next()) {
        let conversation = conversations[k];
        k += 1;
        let hist = hist.clone();
        let run_tag = run_tag.clone();
        // Receiver: each message's body is its send time (µs since t0).
        tasks.push(tokio::spawn(async move {
            let mut got = 0u64;
            let deadline = end + Duration::from_secs(5);
            while let Ok(Some(Ok(f))) = tokio::time::timeout_at(deadline.into(), rx.next()).await {
                if let Frame::Text(t) = f
                    && let Ok(v) = serde_json::from_str::<serde_json::Value>(t.as_str())
                    && v["type"] == "message"
                    && let Some(sent) = v["message"]["body"]
                        .as_str()
                        .and_then(|b| b.parse::<u64>().ok())
                {
                    let now = t0.elapsed().as_micros() as u64;
                    let _ = hist.lock().await.record(now.saturating_sub(sent).max(1));
                    got += 1;
                }
            }
            (0u64, got)
        }));
        // Sender: a fixed pace, offset so senders do not all fire at once.
        let offset = interval.mul_f64((k as f64 * 0.618_034) % 1.0);
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval_at((t0 + offset).into(), interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut sent = 0u64;
            loop {
                tick.tick().await;
                if Instant::now() >= end {
                    break;
                }
                let body = t0.elapsed().as_micros().to_string();
                let f = serde_json::json!({"type": "send", "id": format!("{run_tag}-{sent}"), "conversation_id": conversation, "body": body});
                if tx.send(Frame::Text(f.to_string().into())).await.is_err() {
                    break;
                }
                sent += 1;
                // Read what came back (acks, the echo of our own message), without waiting.
                while let Some(Some(Ok(_))) = tx.next().now_or_never() {}
            }
            let _ = tx.close(None).await;
            (sent, 0u64)
        }));
    }
    let mut sent = 0;
    let mut delivered = 0;
    for t in tasks {
        let (s, d) = t.await.unwrap_or((0, 0));
        sent += s;
        delivered += d;
    }
    let h = hist.lock().await;
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    let report = serde_json::json!({
        "sockets": a.sockets,
        "target_rate": a.rate,
        "seconds": a.duration.as_secs_f64(),
        "sent": sent,
        "delivered": delivered,
        "achieved_rate": sent as f64 / a.duration.as_secs_f64(),
        "delivery_p50_ms": ms(0.5),
        "delivery_p99_ms": ms(0.99),
        "delivery_max_ms": h.max() as f64 / 1000.0,
        "messaging_memory_before_bytes": before,
        "messaging_memory_after_bytes": after,
        "memory_per_idle_socket_bytes": per_socket,
        "path": path,
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "sockets {}  sent {} ({:.0}/s, target {})  delivered {}  delivery p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            a.sockets,
            sent,
            sent as f64 / a.duration.as_secs_f64(),
            a.rate,
            delivered,
            ms(0.5),
            ms(0.99),
            h.max() as f64 / 1000.0
        );
        println!(
            "messaging memory: {:.1} MiB before the sockets, {:.1} MiB with them idle: {:.1} KiB per idle socket (goal: at most 20 KiB)",
            before as f64 / 1048576.0,
            after as f64 / 1048576.0,
            per_socket / 1024.0
        );
    }
    Ok(())
}
