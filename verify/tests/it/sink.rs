//! The sink: real exporters over gRPC and HTTP, malformed and oversize payloads refused,
//! eviction and duplicates, the query filters, and `/api/check`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry::trace::{Span as _, SpanKind, TraceContextExt, Tracer, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use verify::SpanStore;
use verify::checks::CheckOptions;

async fn start_sink(budget: usize) -> (Arc<SpanStore>, SocketAddr, SocketAddr) {
    let store = Arc::new(SpanStore::new(budget));
    let grpc = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    let http = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    let s = store.clone();
    tokio::spawn(async move {
        verify::sink::serve(s, grpc, http, std::future::pending())
            .await
            .expect("sink")
    });
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while client
        .get(format!("http://{http}/healthz"))
        .send()
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "sink did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (store, grpc, http)
}

/// A three-span trace made by the real SDK: server → client → (another process's) server.
fn emit(provider: &SdkTracerProvider, other: &SdkTracerProvider) -> String {
    let tracer = provider.tracer("test");
    let server = tracer
        .span_builder("GET /api/feed/timeline")
        .with_kind(SpanKind::Server)
        .with_attributes([
            KeyValue::new("http.request.method", "GET"),
            KeyValue::new("http.route", "/api/feed/timeline"),
            KeyValue::new("http.response.status_code", 200),
        ])
        .start(&tracer);
    let trace_id = server.span_context().trace_id().to_string();
    let cx = Context::current_with_span(server);
    let client = tracer
        .span_builder("GET")
        .with_kind(SpanKind::Client)
        .with_attributes([
            KeyValue::new("http.request.method", "GET"),
            KeyValue::new("server.address", "profile"),
            KeyValue::new("http.response.status_code", 200),
        ])
        .start_with_context(&tracer, &cx);
    let ccx = cx.with_span(client);
    let t2 = other.tracer("test");
    let mut remote = t2
        .span_builder("GET /api/profiles/{username}")
        .with_kind(SpanKind::Server)
        .with_attributes([
            KeyValue::new("http.request.method", "GET"),
            KeyValue::new("http.route", "/api/profiles/{username}"),
            KeyValue::new("http.response.status_code", 200),
        ])
        .start_with_context(&t2, &ccx);
    remote.end();
    ccx.span().end();
    cx.span().end();
    trace_id
}

fn provider(exporter: opentelemetry_otlp::SpanExporter, service: &str) -> SdkTracerProvider {
    SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder_empty()
                .with_service_name(service.to_owned())
                .build(),
        )
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_exporters_over_grpc_and_http_arrive_whole() {
    let (store, grpc, http) = start_sink(100_000).await;
    let mut ids = Vec::new();
    for (transport, service) in [("grpc", "feed"), ("http", "feed-http")] {
        let build = |svc: &str| {
            let exporter = if transport == "grpc" {
                opentelemetry_otlp::SpanExporter::builder()
                    .with_tonic()
                    .with_endpoint(format!("http://{grpc}"))
                    .build()
            } else {
                opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_endpoint(format!("http://{http}/v1/traces"))
                    .with_headers(Default::default())
                    .build()
            };
            provider(exporter.expect("exporter builds"), svc)
        };
        let (a, b) = (build(service), build("profile"));
        ids.push(emit(&a, &b));
        // The batch processors flush on shutdown, on their own threads.
        tokio::task::spawn_blocking(move || {
            a.shutdown().expect("flush a");
            b.shutdown().expect("flush b");
        })
        .await
        .expect("join");
    }
    for id in &ids {
        let spans = store
            .trace(id)
            .unwrap_or_else(|| panic!("trace {id} arrived"));
        assert_eq!(spans.len(), 3, "{spans:#?}");
        let report = verify::report::verify(&[spans], None, &CheckOptions::default());
        assert_eq!(report.completeness, 1.0, "{:#?}", report.defects);
    }
    assert!(store.stats().by_service.iter().any(|(s, _)| s == "profile"));
}

/// One gRPC call of `Export` with `message` as the request, sent by hand (a client
/// that encodes a valid message could not send a malformed one): the `grpc-status`.
async fn grpc_export(grpc: SocketAddr, message: &[u8]) -> String {
    let mut frame = vec![0u8];
    frame.extend_from_slice(&u32::try_from(message.len()).expect("small").to_be_bytes());
    frame.extend_from_slice(message);
    let res = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("client")
        .post(format!(
            "http://{grpc}/opentelemetry.proto.collector.trace.v1.TraceService/Export"
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(frame)
        .send()
        .await
        .expect("the gRPC receiver answers");
    // An error is a trailers-only answer, so its status is among the headers.
    res.headers()
        .get("grpc-status")
        .map(|v| v.to_str().unwrap_or("?").to_owned())
        .unwrap_or_else(|| "0".into())
}

/// OTLP exporters retry `INTERNAL` forever; a message that cannot be decoded is the
/// client's mistake and must say so, and count with the other refused payloads.
#[tokio::test]
async fn a_malformed_grpc_message_is_invalid_argument_and_counted() {
    let (store, grpc, _http) = start_sink(1000).await;
    assert_eq!(
        grpc_export(grpc, &[0xff; 64]).await,
        "3",
        "INVALID_ARGUMENT"
    );
    assert_eq!(store.stats().rejected_payloads, 1);
    // An empty request is a valid one.
    assert_eq!(grpc_export(grpc, &[]).await, "0");
    assert_eq!(store.stats().rejected_payloads, 1);
}

#[tokio::test]
async fn malformed_and_oversize_payloads_are_refused_and_the_sink_keeps_serving() {
    let (store, _grpc, http) = start_sink(1000).await;
    let c = reqwest::Client::new();
    let url = format!("http://{http}/v1/traces");
    let post = |ctype: &'static str, body: Vec<u8>| {
        let (c, url) = (c.clone(), url.clone());
        async move {
            c.post(&url)
                .header("content-type", ctype)
                .body(body)
                .send()
                .await
                .expect("send")
                .status()
                .as_u16()
        }
    };
    assert_eq!(post("application/x-protobuf", vec![0xff; 64]).await, 400);
    assert_eq!(
        post("application/json", b"{\"resourceSpans\": 7}".to_vec()).await,
        400
    );
    assert_eq!(
        post(
            "application/x-protobuf",
            vec![0u8; verify::sink::MAX_PAYLOAD + 1]
        )
        .await,
        413
    );
    assert_eq!(
        post("application/json", b"{\"resourceSpans\": []}".to_vec()).await,
        200
    );
    // The 413 counts with the other refused payloads.
    assert_eq!(store.stats().rejected_payloads, 3);
    let r = c
        .get(format!(
            "http://{http}/api/traces/0af7651916cd43dd8448eb211c80319c"
        ))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 404);
}

#[test]
fn the_store_evicts_oldest_traces_and_counts_duplicates() {
    let store = SpanStore::new(4);
    let mk = |t: &str, s: &str| verify::Span {
        trace_id: t.repeat(32),
        span_id: s.repeat(16),
        parent_span_id: String::new(),
        name: "x".into(),
        kind: verify::SpanKind::Server,
        service: "svc".into(),
        start_ns: 1,
        end_ns: 2,
        status: verify::StatusCode::Unset,
        status_message: String::new(),
        attributes: vec![],
        instance: String::new(),
        ..Default::default()
    };
    store.insert(vec![mk("a", "1"), mk("a", "2"), mk("a", "1")]);
    store.insert(vec![mk("b", "1"), mk("b", "2")]);
    store.insert(vec![mk("c", "1")]);
    let s = store.stats();
    assert_eq!(s.duplicates, 1);
    assert_eq!((s.evicted_traces, s.evicted_spans), (1, 2));
    assert!(store.trace(&"a".repeat(32)).is_none());
    assert_eq!(store.trace(&"b".repeat(32)).expect("b kept").len(), 2);
    assert_eq!(s.spans, 3);
}

#[tokio::test]
async fn traces_can_be_searched_by_service_operation_status_duration_and_time() {
    let (store, _grpc, http) = start_sink(1000).await;
    let mk =
        |t: &str, svc: &str, name: &str, start_ms: u64, dur_ms: u64, error: bool| verify::Span {
            trace_id: t.repeat(32),
            span_id: "1".repeat(16),
            parent_span_id: String::new(),
            name: name.into(),
            kind: verify::SpanKind::Server,
            service: svc.into(),
            start_ns: start_ms * 1_000_000,
            end_ns: (start_ms + dur_ms) * 1_000_000,
            status: if error {
                verify::StatusCode::Error
            } else {
                verify::StatusCode::Unset
            },
            status_message: String::new(),
            attributes: vec![],
            instance: String::new(),
            ..Default::default()
        };
    store.insert(vec![mk(
        "a",
        "feed",
        "GET /api/feed/timeline",
        1000,
        5,
        false,
    )]);
    store.insert(vec![mk(
        "b",
        "feed",
        "POST /api/feed/posts",
        2000,
        80,
        true,
    )]);
    store.insert(vec![mk(
        "c",
        "profile",
        "GET /api/profiles/{username}",
        3000,
        2,
        false,
    )]);
    let c = reqwest::Client::new();
    let ids = |q: &'static str| {
        let c = c.clone();
        async move {
            let v: Vec<verify::sink::TraceSummary> = c
                .get(format!("http://{http}/api/traces?{q}"))
                .send()
                .await
                .expect("send")
                .json()
                .await
                .expect("json");
            v.into_iter()
                .map(|t| t.trace_id[..1].to_owned())
                .collect::<Vec<_>>()
                .join("")
        }
    };
    assert_eq!(ids("").await, "cba", "newest first");
    assert_eq!(ids("service=feed").await, "ba");
    assert_eq!(ids("operation=GET%20/api/feed/timeline").await, "a");
    assert_eq!(ids("status=error").await, "b");
    assert_eq!(ids("status=ok").await, "ca");
    assert_eq!(ids("min_duration_ms=10").await, "b");
    assert_eq!(ids("start_ns=1500000000&end_ns=2500000000").await, "b");
    assert_eq!(ids("limit=1").await, "c");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_judges_sent_requests_and_recent_settled_traces() {
    let (store, _grpc, http) = start_sink(1000).await;
    // A caller-rooted server span (whole), an orphan (its parent is neither sent nor
    // present), and a request whose trace never arrived.
    let span = |t: &str, id: &str, parent: &str, name: &str| verify::Span {
        trace_id: t.repeat(32),
        span_id: id.repeat(16),
        parent_span_id: parent.to_owned(),
        name: name.into(),
        kind: verify::SpanKind::Server,
        service: "feed".into(),
        start_ns: 1_000_000,
        end_ns: 3_000_000,
        status: verify::StatusCode::Unset,
        status_message: String::new(),
        attributes: vec![
            ("http.request.method".into(), "GET".into()),
            ("http.route".into(), "/api/feed/timeline".into()),
            ("http.response.status_code".into(), "200".into()),
        ],
        instance: String::new(),
        ..Default::default()
    };
    store.insert(vec![span(
        "a",
        "1",
        &"c".repeat(16),
        "GET /api/feed/timeline",
    )]);
    store.insert(vec![
        span("b", "2", "", "GET /api/feed/timeline"),
        span("b", "3", &"9".repeat(16), "GET /api/feed/timeline"),
    ]);
    let sent = |t: &str| verify::report::SentRequest {
        trace_id: t.repeat(32),
        parent_span_id: Some("c".repeat(16)),
        endpoint: "GET /api/feed/timeline".into(),
        status: Some(200),
        gateway_only: false,
    };
    let c = reqwest::Client::new();
    let check = |req: verify::sink::CheckRequest| {
        let c = c.clone();
        async move {
            let r = c
                .post(format!("http://{http}/api/check"))
                .json(&req)
                .send()
                .await
                .expect("send");
            assert_eq!(r.status(), 200);
            r.json::<verify::sink::CheckSummary>().await.expect("json")
        }
    };
    let s = check(verify::sink::CheckRequest {
        sent: vec![sent("a"), sent("b"), sent("d")],
        recent: 0,
        settle_ms: 0,
    })
    .await;
    assert_eq!((s.checked, s.complete, s.missing), (3, 1, 1), "{s:?}");
    assert_eq!(s.defects.get("missing_trace"), Some(&1));
    assert!(s.defects.contains_key("missing_parent"), "{s:?}");
    assert_eq!(s.endpoints.len(), 1);
    assert_eq!(s.endpoints[0].traces, 2);

    // Recent mode: both stored traces ended long ago (1970), so both have settled.
    let s = check(verify::sink::CheckRequest {
        sent: Vec::new(),
        recent: 10,
        settle_ms: 1000,
    })
    .await;
    assert_eq!((s.checked, s.complete, s.missing), (2, 1, 0), "{s:?}");

    let bad = c
        .post(format!("http://{http}/api/check"))
        .body("{\"sent\": 3}")
        .send()
        .await
        .expect("send");
    assert_eq!(bad.status(), 400);
    let body: serde_json::Value = bad.json().await.expect("json error body");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("/api/check")
    );
}

/// OTLP/HTTP bodies may be gzip-compressed (the specification requires servers to
/// accept that); a body that does not inflate is a counted 400, and a live check with an
/// absurd settle time does not overflow.
#[tokio::test]
async fn gzip_bodies_are_accepted_and_absurd_check_inputs_are_harmless() {
    use std::io::Write as _;
    let (store, _grpc, http) = start_sink(1000).await;
    let c = reqwest::Client::new();
    let tid = "5bf92f3577b34da6a3ce929d0e0e4736";
    let json = format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"gz"}}}}]}},"scopeSpans":[{{"spans":[{{"traceId":"{tid}","spanId":"00f067aa0ba902b7","name":"GET /gz","kind":2,"startTimeUnixNano":"1","endTimeUnixNano":"2"}}]}}]}}]}}"#
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(json.as_bytes()).expect("gzip");
    let body = gz.finish().expect("gzip");
    let post = |body: Vec<u8>| {
        c.post(format!("http://{http}/v1/traces"))
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .body(body)
            .send()
    };
    assert_eq!(post(body).await.expect("send").status(), 200);
    assert_eq!(
        store.trace(tid).map(|t| t.len()),
        Some(1),
        "the gzip body was stored"
    );
    assert_eq!(
        post(b"not gzip".to_vec()).await.expect("send").status(),
        400
    );
    assert_eq!(store.stats().rejected_payloads, 1);
    let r = c
        .post(format!("http://{http}/api/check"))
        .json(&serde_json::json!({"recent": 10, "settle_ms": u64::MAX}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
}

/// A message's two traces as the real SDK exports them over HTTP: the producer's, and
/// the consumer's whose span links to the producer span and records an event. The sink
/// keeps the link, the event and the resource; `/api/check` judges the link against the
/// whole store: complete while the producer's trace is there, `link_target_missing`
/// when the consumer links to a span that never arrived.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_events_and_resources_are_kept_and_links_are_judged() {
    use opentelemetry::trace::Link;
    let (_store, _grpc, http) = start_sink(100_000).await;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(format!("http://{http}/v1/traces"))
        .with_headers(Default::default())
        .build()
        .expect("exporter builds");
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder_empty()
                .with_service_name("messaging")
                .with_attribute(KeyValue::new("service.instance.id", "messaging-2"))
                .with_attribute(KeyValue::new("host.name", "replica-b"))
                .build(),
        )
        .build();
    let tracer = provider.tracer("test");
    let mut producer = tracer
        .span_builder("send conversation.42")
        .with_kind(SpanKind::Producer)
        .start(&tracer);
    let producer_cx = producer.span_context().clone();
    producer.end();
    let consume = |target: opentelemetry::trace::SpanContext| {
        let mut consumer = tracer
            .span_builder("process conversation.42")
            .with_kind(SpanKind::Consumer)
            .with_links(vec![Link::with_context(target)])
            .start(&tracer);
        consumer.add_event(
            "delivered",
            vec![KeyValue::new("messaging.batch.message_count", 3)],
        );
        let id = consumer.span_context().trace_id().to_string();
        consumer.end();
        id
    };
    let linked = consume(producer_cx.clone());
    let lost = opentelemetry::trace::SpanContext::new(
        producer_cx.trace_id(),
        opentelemetry::trace::SpanId::from(0x0bad_0bad_0bad_0badu64),
        producer_cx.trace_flags(),
        true,
        Default::default(),
    );
    let dangling = consume(lost);
    tokio::task::spawn_blocking(move || provider.shutdown().expect("flush"))
        .await
        .expect("join");

    let client = reqwest::Client::new();
    let spans: Vec<verify::Span> = client
        .get(format!("http://{http}/api/traces/{linked}"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    let consumer = &spans[0];
    assert_eq!(consumer.links.len(), 1, "{consumer:#?}");
    assert_eq!(
        consumer.links[0].trace_id,
        producer_cx.trace_id().to_string()
    );
    assert_eq!(consumer.links[0].span_id, producer_cx.span_id().to_string());
    assert_eq!(consumer.events.len(), 1);
    assert_eq!(consumer.events[0].name, "delivered");
    assert_eq!(
        consumer.events[0].attributes,
        vec![("messaging.batch.message_count".to_owned(), "3".to_owned())]
    );
    assert!(
        consumer
            .resource
            .iter()
            .any(|(k, v)| k == "host.name" && v == "replica-b"),
        "{:?}",
        consumer.resource
    );

    let check = |trace: &str| {
        let body = serde_json::json!({"sent": [{"trace_id": trace, "endpoint": "process conversation.42", "status": 200}]});
        let c = client.clone();
        let url = format!("http://{http}/api/check");
        async move {
            c.post(url)
                .json(&body)
                .send()
                .await
                .expect("check")
                .json::<serde_json::Value>()
                .await
                .expect("json")
        }
    };
    let ok = check(&linked).await;
    assert_eq!(ok["complete"], 1, "{ok}");
    let bad = check(&dangling).await;
    assert_eq!(bad["complete"], 0, "{bad}");
    assert_eq!(bad["defects"]["link_target_missing"], 1, "{bad}");
}
