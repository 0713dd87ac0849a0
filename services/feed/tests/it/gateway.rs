//! Through a real NGINX with the gateway configuration from compose/: one request makes
//! one trace across feed and profile, continuing the caller's traceparent.

use std::time::Duration;

use common::testkit::{Gateway, Req};
use serde_json::json;
use telemetry::testing::{Kind, Trace, Traceparent, assert_kind, attr};

use crate::Harness;

/// The stack's gateway (the same NGINX configuration `socialctl up` renders), routing to
/// this test's feed and profile; auth is not running.
async fn gateway(h: &Harness) -> Gateway {
    Gateway::start(&[("profile", h.profile_addr), ("feed", h.feed_addr)]).await
}

fn is_http_client(s: &telemetry::testing::SpanDataRef) -> bool {
    s.span_kind == Kind::Client && attr(s, "db.system.name").is_none()
}

#[tokio::test]
async fn a_post_through_the_gateway_is_one_trace_across_feed_and_profile() {
    let h = Harness::new(1000).await;
    let gw = gateway(&h).await;
    let base = format!("http://127.0.0.1:{}", gw.port);
    let client = reqwest::Client::new();
    let (_, token) = h.user("gwuser").await;
    let tp = Traceparent::random();
    let res = Req::post("/api/feed/posts")
        .token(&token)
        .traceparent(&tp)
        .json(json!({"body": "through the gateway"}))
        .send_http(&client, &base)
        .await
        .expect(201);
    let request_id = res.headers["x-request-id"].to_str().unwrap().to_owned();
    assert!(!request_id.is_empty());

    let t = Trace::wait(tp.trace_id, Duration::from_secs(10), |t| {
        t.has("POST /api/feed/posts")
            && t.has("GET /api/profiles/{username}")
            && t.has("GET /api/profiles/{username}/followers")
    });
    let server = t.one("POST /api/feed/posts");
    assert_kind(server, Kind::Server);
    assert_eq!(
        server.parent_span_id, tp.span_id,
        "the caller's traceparent is continued, not replaced"
    );
    assert_eq!(
        attr(server, "http.request.header.x-request-id")
            .unwrap()
            .as_str(),
        request_id
    );
    t.assert_parent(t.one("INSERT posts"), server);
    let fan_out = t.one("feed.fan_out");
    t.assert_parent(fan_out, server);

    // feed's CLIENT span to profile is the parent of profile's SERVER span.
    let profile_server = t.one("GET /api/profiles/{username}");
    assert_kind(profile_server, Kind::Server);
    let client_span =
        t.0.iter()
            .find(|s| s.span_context.span_id() == profile_server.parent_span_id)
            .expect("profile's server span has its parent in the trace");
    assert!(
        is_http_client(client_span),
        "parent is an HTTP client span: {}",
        client_span.name
    );
    assert_eq!(client_span.name, "GET");
    t.assert_parent(client_span, fan_out);
    assert!(
        t.all("SELECT profiles")
            .iter()
            .any(|s| t.descends(s, profile_server))
    );

    // One trace, no orphans: every span hangs off the feed server span.
    for s in &t.0 {
        if s.span_context.span_id() != server.span_context.span_id() {
            assert!(
                t.descends(s, server),
                "{} is not under the request's server span:\n{}",
                s.name,
                t.describe()
            );
        }
    }
}

#[tokio::test]
async fn the_gateway_answers_json_for_unknown_paths_and_dead_upstreams() {
    let h = Harness::new(1000).await;
    let gw = gateway(&h).await;
    let base = format!("http://127.0.0.1:{}", gw.port);
    let client = reqwest::Client::new();
    let tp = Traceparent::random();
    // (Paths outside /api/ are the web frontend's, not running here.)
    let r = Req::get("/api/nope")
        .traceparent(&tp)
        .send_http(&client, &base)
        .await
        .expect(404);
    assert_eq!(r.json["error"], "not_found");
    assert_eq!(r.json["trace_id"], tp.trace_id.to_string());
    let r = Req::post("/api/auth/login")
        .json(json!({}))
        .send_http(&client, &base)
        .await
        .expect(503);
    assert_eq!(r.json["error"], "unavailable", "{}", r.text);
    Req::get("/healthz")
        .send_http(&client, &base)
        .await
        .expect(200);
}

/// The gateway and the services enforce one body limit per route (from the component
/// table), and every error NGINX itself produces is the JSON error body with the trace
/// id, never an HTML page. Before, a body between the service's 64 KiB and NGINX's 1 MiB
/// got a misleading 503 ("broken pipe") and counted against the upstream.
#[tokio::test]
async fn the_gateways_own_errors_are_json_and_its_body_limit_is_the_services() {
    let h = Harness::new(1000).await;
    let gw = gateway(&h).await;
    let base = format!("http://127.0.0.1:{}", gw.port);
    let client = reqwest::Client::new();
    let (_, token) = h.user("big_body").await;
    let tp = Traceparent::random();
    let body = format!("{{\"body\": \"{}\"}}", "x".repeat(70 * 1024));
    let r = Req::post("/api/feed/posts")
        .token(&token)
        .traceparent(&tp)
        .raw("application/json", body.into_bytes())
        .send_http(&client, &base)
        .await
        .expect(413);
    assert_eq!(r.json["error"], "payload_too_large", "{}", r.text);
    assert_eq!(r.json["trace_id"], tp.trace_id.to_string());
    assert_eq!(
        r.headers.get("server").and_then(|v| v.to_str().ok()),
        Some("nginx"),
        "server_tokens off: no version"
    );
    let r = Req::get(&format!("/api/feed/posts/{}", "9".repeat(10_000)))
        .send_http(&client, &base)
        .await
        .expect(414);
    assert_eq!(r.json["error"], "uri_too_long", "{}", r.text);
    let r = Req::new("TRACE".parse().unwrap(), "/api/feed/timeline")
        .send_http(&client, &base)
        .await
        .expect(405);
    assert_eq!(r.json["error"], "method_not_allowed", "{}", r.text);
    assert!(
        r.headers.get("allow").is_some(),
        "a 405 names the allowed methods"
    );
    // Every answer the gateway makes itself says so, and keeps the request id.
    for h in ["x-answered-by", "x-request-id"] {
        assert!(r.headers.get(h).is_some(), "{h} on the gateway's own 405");
    }
    let r = Req::get("/api/feed/timeline")
        .header("x-large", &"y".repeat(20_000))
        .send_http(&client, &base)
        .await
        .expect(400);
    assert_eq!(r.json["error"], "bad_request", "{}", r.text);
    assert_eq!(
        r.headers.get("x-answered-by").and_then(|v| v.to_str().ok()),
        Some("gateway")
    );
    // Under the limit it reaches the service, which answers for itself.
    let r = Req::post("/api/feed/posts")
        .token(&token)
        .json(json!({"body": "small enough"}))
        .send_http(&client, &base)
        .await
        .expect(201);
    assert!(r.headers.get("x-answered-by").is_none(), "feed answered");
}
