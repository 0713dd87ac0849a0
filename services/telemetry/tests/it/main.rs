//! The telemetry crate against real sockets: context crosses an HTTP hop.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use telemetry::HttpClient;
use telemetry::testing::{Kind, Trace, Traceparent, assert_kind, attr};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

#[tokio::test]
async fn the_http_client_injects_its_own_span_as_the_parent() {
    telemetry::testing::init();
    let app = Router::new()
        .route(
            "/echo/{id}",
            get(|h: http::HeaderMap| async move {
                h.get("traceparent")
                    .map(|v| v.to_str().unwrap_or("").to_owned())
                    .unwrap_or_default()
            }),
        )
        .layer(axum::middleware::from_fn(
            telemetry::http_server::trace_requests,
        ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });

    let tp = Traceparent::random();
    let parent = tracing::info_span!("caller", otel.name = "caller");
    let remote = telemetry::propagation::extract_map(
        &[("traceparent".to_owned(), tp.header())]
            .into_iter()
            .collect(),
    );
    parent.set_parent(remote).expect("otel layer installed");
    let client = HttpClient::new(Duration::from_secs(5));
    let res = client
        .send(
            client
                .reqwest()
                .get(format!("http://{addr}/echo/42?secret=x")),
        )
        .instrument(parent.clone())
        .await
        .expect("request");
    assert_eq!(res.status(), 200);
    let echoed = res.text().await.expect("body");
    drop(parent);

    let t = Trace::wait(tp.trace_id, Duration::from_secs(5), |t| {
        t.has("GET /echo/{id}") && t.has("caller")
    });
    let client_span = t.one("GET");
    assert_kind(client_span, Kind::Client);
    assert!(
        echoed.contains(&client_span.span_context.span_id().to_string()),
        "the callee saw the client span as parent: {echoed}"
    );
    assert_eq!(
        attr(client_span, "url.full").expect("url.full").as_str(),
        format!("http://{addr}/echo/42"),
        "query strings stay off the span"
    );
    assert_eq!(
        attr(client_span, "http.response.status_code"),
        Some(telemetry::testing::Value::I64(200))
    );
    let server = t.one("GET /echo/{id}");
    t.assert_parent(server, client_span);
    t.assert_parent(client_span, t.one("caller"));
}

#[tokio::test]
async fn a_failed_call_marks_the_client_span_as_an_error() {
    telemetry::testing::init();
    let tp = Traceparent::random();
    let parent = tracing::info_span!("caller2", otel.name = "caller2");
    let remote = telemetry::propagation::extract_map(
        &[("traceparent".to_owned(), tp.header())]
            .into_iter()
            .collect(),
    );
    parent.set_parent(remote).expect("otel layer installed");
    let client = HttpClient::new(Duration::from_secs(2));
    // Port 9 (discard) is closed on loopback: the connection is refused.
    let err = client
        .send(client.reqwest().get("http://127.0.0.1:9/"))
        .instrument(parent.clone())
        .await;
    assert!(err.is_err());
    drop(parent);
    let t = Trace::wait(tp.trace_id, Duration::from_secs(5), |t| t.has("GET"));
    let span = t.one("GET");
    assert_eq!(
        attr(span, "error.type").expect("error.type").as_str(),
        "connect"
    );
    assert!(matches!(
        span.status,
        opentelemetry::trace::Status::Error { .. }
    ));
}

#[test]
fn a_malformed_traceparent_starts_a_fresh_trace() {
    use opentelemetry::trace::TraceContextExt as _;
    telemetry::testing::init();
    let tid = "4bf92f3577b34da6a3ce929d0e0e4736";
    let extract = |tp: String| {
        let mut h = http::HeaderMap::new();
        h.insert("traceparent", tp.parse().expect("header value"));
        h.insert("tracestate", "vendor=x".parse().expect("header value"));
        let cx = telemetry::propagation::extract_http(&h);
        cx.span().span_context().clone()
    };
    let good = extract(format!("00-{tid}-00f067aa0ba902b7-01"));
    assert!(good.is_valid() && good.is_remote());
    assert_eq!(good.trace_id().to_string(), tid);
    // 30 hex digits: W3C says ignore it; the propagator alone would left-pad it.
    let short = extract(format!("00-{}-00f067aa0ba902b7-01", &tid[2..]));
    assert!(
        !short.is_valid(),
        "a 30-digit trace id was accepted as {short:?}"
    );
}

/// A client that disconnects mid-request: the server span ends as a request that got no
/// response (`error.type=cancelled`, error status, no status code), not as a span that
/// merely lacks its status code.
// Two workers: `Trace::wait` blocks its thread while the server task ends the span.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_whose_client_went_away_ends_as_cancelled() {
    telemetry::testing::init();
    let app = Router::new()
        // Never answers: the client's timeout is what ends the exchange.
        .route("/slow", get(std::future::pending::<&'static str>))
        .layer(axum::middleware::from_fn(
            telemetry::http_server::trace_requests,
        ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    let tp = Traceparent::random();
    let gave_up = reqwest::Client::new()
        .get(format!("http://{addr}/slow"))
        .header("traceparent", tp.header())
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(gave_up.is_err(), "the client timed out");
    let t = Trace::wait(tp.trace_id, Duration::from_secs(10), |t| t.has("GET /slow"));
    let server = t.one("GET /slow");
    assert_kind(server, Kind::Server);
    assert_eq!(
        attr(server, "error.type").map(|v| v.as_str().into_owned()),
        Some("cancelled".to_owned())
    );
    assert!(attr(server, "http.response.status_code").is_none());
    assert!(matches!(
        server.status,
        opentelemetry::trace::Status::Error { .. }
    ));
}
