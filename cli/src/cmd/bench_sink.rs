//! `socialctl bench-sink`: how fast the sink ingests OTLP (HTTP and gRPC), how long
//! `verify-traces` takes over a million spans, and how much memory a stored span costs.
//!
//! The sink runs in this process on ephemeral loopback ports; payloads are encoded once
//! up front (as an SDK's exporter would send them: batches of 512 spans), so the figures
//! are the sink's, not the client's.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, span::SpanKind};
use prost::Message;
use verify::otlp::string_kv as kv;

#[derive(Debug, Clone, clap::Args)]
pub struct BenchSinkArgs {
    /// Traces to send per transport (each has `--spans-per-trace` spans).
    #[arg(long, default_value_t = 100_000)]
    pub traces: usize,
    /// Spans per trace: one server root and its children.
    #[arg(long, default_value_t = 10)]
    pub spans_per_trace: usize,
    /// Concurrent senders.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Print the figures as JSON (progress goes to stderr).
    #[arg(long)]
    pub json: bool,
}

/// Batches of 512 spans: whole traces, a server root with client children.
/// A gRPC codec that sends already-encoded requests and reads the export response.
#[derive(Debug, Clone, Copy, Default)]
struct Encoded;

impl tonic::codec::Codec for Encoded {
    type Encode = Vec<u8>;
    type Decode = ExportTraceServiceResponse;
    type Encoder = Encoded;
    type Decoder = Encoded;

    fn encoder(&mut self) -> Self::Encoder {
        Encoded
    }

    fn decoder(&mut self) -> Self::Decoder {
        Encoded
    }
}

impl tonic::codec::Encoder for Encoded {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), Self::Error> {
        use prost::bytes::BufMut as _;
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for Encoded {
    type Item = ExportTraceServiceResponse;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Self::Item>, Self::Error> {
        ExportTraceServiceResponse::decode(src)
            .map(Some)
            .map_err(|e| tonic::Status::internal(e.to_string()))
    }
}

fn batches(seed: u64, traces: usize, per: usize) -> Vec<ExportTraceServiceRequest> {
    let mut spans = Vec::with_capacity(traces * per);
    for t in 0..traces as u64 {
        let trace_id = [seed.to_be_bytes(), t.to_be_bytes()].concat();
        let root = (t << 8 | 1).to_be_bytes().to_vec();
        for i in 0..per as u64 {
            let id = (t << 8 | (i + 1)).to_be_bytes().to_vec();
            let server = i == 0;
            let start = 1_700_000_000_000_000_000 + t * 1_000_000 + i * 1000;
            spans.push(Span {
                trace_id: trace_id.clone(),
                span_id: id,
                parent_span_id: if server { Vec::new() } else { root.clone() },
                name: if server {
                    "GET /api/feed/timeline".into()
                } else {
                    "SELECT posts".into()
                },
                kind: if server {
                    SpanKind::Server as i32
                } else {
                    SpanKind::Client as i32
                },
                start_time_unix_nano: start,
                end_time_unix_nano: start + if server { 900_000 } else { 500 },
                attributes: if server {
                    vec![
                        kv("http.request.method", "GET"),
                        kv("http.route", "/api/feed/timeline"),
                        kv("http.response.status_code", "200"),
                    ]
                } else {
                    vec![
                        kv("db.system.name", "postgresql"),
                        kv("db.operation.name", "SELECT"),
                        kv("server.address", "pg"),
                    ]
                },
                ..Default::default()
            });
        }
    }
    let resource = Resource {
        attributes: vec![kv("service.name", "feed")],
        ..Default::default()
    };
    spans
        .chunks(512)
        .map(|c| ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(resource.clone()),
                scope_spans: vec![ScopeSpans {
                    spans: c.to_vec(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        })
        .collect()
}

/// Ingests one trace of `n` spans over OTLP/HTTP while another task reads `/api/stats`
/// every 5 ms; returns the ingest time and the slowest stats answer, in seconds.
async fn one_big_trace(
    client: &reqwest::Client,
    http: std::net::SocketAddr,
    seed: u64,
    n: usize,
) -> anyhow::Result<(f64, f64)> {
    use std::sync::atomic::{AtomicBool, Ordering};
    let bodies: Vec<Vec<u8>> = batches(seed, 1, n)
        .iter()
        .map(|b| b.encode_to_vec())
        .collect();
    let done = Arc::new(AtomicBool::new(false));
    let poller = {
        let (client, done) = (client.clone(), done.clone());
        tokio::spawn(async move {
            let mut worst = 0f64;
            while !done.load(Ordering::Relaxed) {
                let t = Instant::now();
                let _ = client.get(format!("http://{http}/api/stats")).send().await;
                worst = worst.max(t.elapsed().as_secs_f64());
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            worst
        })
    };
    let t0 = Instant::now();
    for body in bodies {
        let r = client
            .post(format!("http://{http}/v1/traces"))
            .header("content-type", "application/x-protobuf")
            .body(body)
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "sink answered {}", r.status());
    }
    let secs = t0.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    Ok((secs, poller.await?))
}

fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024
}

pub async fn run(a: &BenchSinkArgs) -> anyhow::Result<ExitCode> {
    let total = a.traces * a.spans_per_trace;
    let store = Arc::new(verify::SpanStore::new(total * 2 + 1));
    let grpc = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let http = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let s = store.clone();
    tokio::spawn(async move { verify::sink::serve(s, grpc, http, std::future::pending()).await });
    let client = reqwest::Client::new();
    for _ in 0..100 {
        if client
            .get(format!("http://{http}/healthz"))
            .send()
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Progress and figures for a person; with --json they go to stderr and stdout gets
    // one JSON object.
    macro_rules! say {
        ($($t:tt)*) => {
            if a.json { eprintln!($($t)*) } else { println!($($t)*) }
        };
    }
    say!(
        "bench-sink: {} traces x {} spans per transport, {} senders",
        a.traces,
        a.spans_per_trace,
        a.concurrency
    );
    let rss0 = rss();

    let http_batches: Vec<Vec<u8>> = batches(1, a.traces, a.spans_per_trace)
        .iter()
        .map(|b| b.encode_to_vec())
        .collect();
    let t0 = Instant::now();
    let chunks: Vec<Vec<Vec<u8>>> = split(http_batches, a.concurrency);
    let mut tasks = Vec::new();
    for chunk in chunks {
        let client = client.clone();
        let url = format!("http://{http}/v1/traces");
        tasks.push(tokio::spawn(async move {
            for body in chunk {
                let r = client
                    .post(&url)
                    .header("content-type", "application/x-protobuf")
                    .body(body)
                    .send()
                    .await?;
                anyhow::ensure!(r.status().is_success(), "sink answered {}", r.status());
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let http_rate = total as f64 / t0.elapsed().as_secs_f64();
    say!("  OTLP/HTTP ingest: {http_rate:>10.0} spans/s");

    // Encoded before the clock starts, as the HTTP bodies are: both transports measure
    // the sink, not this process's encoder.
    let grpc_batches: Vec<Vec<u8>> = batches(2, a.traces, a.spans_per_trace)
        .iter()
        .map(|b| b.encode_to_vec())
        .collect();
    let grpc_batches = split(grpc_batches, a.concurrency);
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for chunk in grpc_batches {
        let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{grpc}"))?
            .initial_stream_window_size(Some(verify::sink::GRPC_STREAM_WINDOW))
            .initial_connection_window_size(Some(verify::sink::GRPC_CONNECTION_WINDOW));
        tasks.push(tokio::spawn(async move {
            let mut c = tonic::client::Grpc::new(endpoint.connect().await?);
            let path = tonic::codegen::http::uri::PathAndQuery::from_static(
                "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            );
            for body in chunk {
                c.ready().await?;
                c.unary(tonic::Request::new(body), path.clone(), Encoded)
                    .await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await?.context("gRPC export")?;
    }
    let grpc_rate = total as f64 / t0.elapsed().as_secs_f64();
    say!("  OTLP/gRPC ingest: {grpc_rate:>10.0} spans/s");

    let stats = store.stats();
    let stored = stats.spans;
    let per_span = rss().saturating_sub(rss0) as f64 / stored as f64;
    say!(
        "  stored: {stored} spans in {} traces; memory ≈ {per_span:.0} bytes per stored span (RSS growth)",
        stats.traces
    );

    let t0 = Instant::now();
    let traces = store.all();
    let report = verify::report::verify(&traces, None, &verify::checks::CheckOptions::default());
    let verify_secs = t0.elapsed().as_secs_f64();
    say!(
        "  verify: {} spans in {} traces in {verify_secs:.2} s ({:.3}% complete)",
        traces.iter().map(Vec::len).sum::<usize>(),
        report.traces,
        100.0 * report.completeness
    );
    // One very large trace: linear ingest, and the query API stays responsive meanwhile.
    let (small_secs, _) = one_big_trace(&client, http, 3, 25_000).await?;
    let (big_secs, worst_stats) = one_big_trace(&client, http, 4, 100_000).await?;
    say!(
        "  one trace of 100,000 spans: ingested in {big_secs:.2} s ({:.1}× the time of 25,000 spans: linear is 4×); slowest /api/stats meanwhile {:.1} ms",
        big_secs / small_secs,
        worst_stats * 1000.0
    );
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "one_trace_100k_seconds": big_secs,
                "one_trace_100k_vs_25k": big_secs / small_secs,
                "stats_worst_ms_during_ingest": worst_stats * 1000.0,
                "traces": a.traces,
                "spans_per_trace": a.spans_per_trace,
                "senders": a.concurrency,
                "http_spans_per_s": http_rate,
                "grpc_spans_per_s": grpc_rate,
                "stored_spans": stored,
                "bytes_per_span": per_span,
                "verify_seconds": verify_secs,
                "completeness": report.completeness,
            }))?
        );
    }
    let goal = |ok: bool| if ok { "met" } else { "NOT met" };
    say!(
        "goals: ingest ≥ 200k spans/s: HTTP {}, gRPC {}; verify a million spans ≤ 10 s: {}; /api/stats < 50 ms during a 100k-span trace: {}",
        goal(http_rate >= 200_000.0),
        goal(grpc_rate >= 200_000.0),
        goal(verify_secs <= 10.0 * (stored as f64 / 1e6).max(1.0)),
        goal(worst_stats < 0.050)
    );
    Ok(ExitCode::SUCCESS)
}

fn split<T>(v: Vec<T>, n: usize) -> Vec<Vec<T>> {
    let mut out: Vec<Vec<T>> = (0..n.max(1)).map(|_| Vec::new()).collect();
    let len = out.len();
    for (i, x) in v.into_iter().enumerate() {
        out[i % len].push(x);
    }
    out
}
