//! Profiles: create, read and update, clear 4xx for bad input, the server span above
//! its database span, and the ops endpoints.

use common::testkit::Req;
use serde_json::json;
use telemetry::testing::{Trace, Traceparent, attr};

use crate::Harness;

#[tokio::test]
async fn create_read_and_update_a_profile() {
    let h = Harness::new().await;
    Req::get("/api/profiles/alice")
        .send(&h.app)
        .await
        .expect_error(404, "not_found");
    let (id, token) = h.user("alice").await;
    let p = Req::get("/api/profiles/alice")
        .send(&h.app)
        .await
        .expect(200);
    assert_eq!(p.json["id"], id.to_string());
    assert_eq!(p.json["follower_count"], 0);
    let updated = Req::patch("/api/profiles/me")
        .token(&token)
        .json(json!({"display_name": "Alice A.", "bio": "hello"}))
        .send(&h.app)
        .await
        .expect(200);
    assert_eq!(updated.json["display_name"], "Alice A.");
    // The cached copy was invalidated by the update.
    let p = Req::get("/api/profiles/alice")
        .send(&h.app)
        .await
        .expect(200);
    assert_eq!(p.json["bio"], "hello");
    let me = Req::get("/api/profiles/me")
        .token(&token)
        .send(&h.app)
        .await
        .expect(200);
    assert_eq!(me.json["username"], "alice");
}

#[tokio::test]
async fn bad_input_is_a_clear_4xx() {
    let h = Harness::new().await;
    let (_, token) = h.user("bob").await;
    Req::patch("/api/profiles/me")
        .token(&token)
        .json(json!({"bio": "x".repeat(281)}))
        .send(&h.app)
        .await
        .expect_error(422, "validation_failed");
    Req::patch("/api/profiles/me")
        .token(&token)
        .json(json!({"nickname": "b"}))
        .send(&h.app)
        .await
        .expect_error(422, "validation_failed");
    // A struct's fields as an array is not an object: refused, not read in order.
    Req::patch("/api/profiles/me")
        .token(&token)
        .raw("application/json", b"[null, null]".to_vec())
        .send(&h.app)
        .await
        .expect_error(422, "validation_failed");
    Req::patch("/api/profiles/me")
        .token(&token)
        .raw("application/json", b"{not json".to_vec())
        .send(&h.app)
        .await
        .expect_error(400, "bad_request");
    Req::patch("/api/profiles/me")
        .token(&token)
        .raw("text/plain", b"{}".to_vec())
        .send(&h.app)
        .await
        .expect_error(400, "unsupported_media_type");
    let huge = format!("{{\"bio\": \"{}\"}}", "x".repeat(100_000));
    Req::patch("/api/profiles/me")
        .token(&token)
        .raw("application/json", huge.into_bytes())
        .send(&h.app)
        .await
        .expect_error(413, "payload_too_large");
    Req::patch("/api/profiles/me")
        .json(json!({}))
        .send(&h.app)
        .await
        .expect_error(401, "unauthorized");
    Req::patch("/api/profiles/me")
        .token("not.a.token")
        .json(json!({}))
        .send(&h.app)
        .await
        .expect_error(401, "unauthorized");
    let expired = h.keys.token_with_ttl(uuid::Uuid::new_v4(), "bob", -120);
    let r = Req::get("/api/profiles/me")
        .token(&expired)
        .send(&h.app)
        .await
        .expect_error(401, "unauthorized");
    assert!(
        r.json["message"].as_str().unwrap().contains("expired"),
        "{}",
        r.text
    );
    Req::get("/api/nope")
        .send(&h.app)
        .await
        .expect_error(404, "not_found");
    Req::post("/api/profiles/bob")
        .send(&h.app)
        .await
        .expect_error(405, "method_not_allowed");
}

#[tokio::test]
async fn a_request_yields_its_server_span_with_the_database_span_beneath() {
    let h = Harness::new().await;
    h.user("carol").await;
    let tp = Traceparent::random();
    let res = Req::get("/api/profiles/carol")
        .traceparent(&tp)
        .send(&h.app)
        .await
        .expect(200);
    // The response names the request's trace, continuing the caller's.
    let header = res.headers["traceparent"].to_str().unwrap().to_owned();
    assert!(header.contains(&tp.trace_id.to_string()), "{header}");
    let t = Trace::wait(tp.trace_id, std::time::Duration::from_secs(5), |t| {
        t.has("GET /api/profiles/{username}")
    });
    let server = t.one("GET /api/profiles/{username}");
    assert_eq!(
        server.parent_span_id, tp.span_id,
        "the incoming traceparent is continued"
    );
    assert_eq!(
        attr(server, "http.route").unwrap().as_str(),
        "/api/profiles/{username}"
    );
    assert_eq!(
        attr(server, "http.response.status_code").unwrap(),
        telemetry::testing::Value::I64(200)
    );
    let select = t.one("SELECT profiles");
    t.assert_parent(select, server);
    assert_eq!(
        attr(select, "db.system.name").unwrap().as_str(),
        "postgresql"
    );
    assert!(
        attr(select, "db.query.text")
            .unwrap()
            .as_str()
            .contains("$1"),
        "bind parameters, no literals"
    );
    let get = t.one("GET");
    t.assert_parent(get, server);
    assert_eq!(attr(get, "db.system.name").unwrap().as_str(), "redis");
}

#[tokio::test]
async fn openapi_health_and_metrics_are_served() {
    let h = Harness::new().await;
    let doc = Req::get("/openapi.json").send(&h.app).await.expect(200);
    assert!(doc.json["paths"]["/api/profiles/{username}/follow"]["put"].is_object());
    assert_eq!(
        doc.json["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let n = common::testkit::check_openapi(&h.app, &profile::openapi()).await;
    assert_eq!(n, 8, "every profile operation is documented and routed");
    let ready = Req::get("/readyz").send(&h.app).await.expect(200);
    assert_eq!(ready.json["status"], "ready");
    Req::get("/healthz").send(&h.app).await.expect(200);
    let m = Req::get("/metrics").send(&h.app).await.expect(200);
    assert!(m.text.contains("otel_spans_ended_total"), "{}", m.text);
}

/// U+0000 reaches no query: PostgreSQL cannot store it in text, and before the edge
/// check it came back as a 500 from every text field.
#[tokio::test]
async fn a_nul_character_anywhere_is_a_422_naming_the_field() {
    let h = Harness::new().await;
    let (_, token) = h.user("nul_user").await;
    for (body, field) in [
        (json!({"bio": "a\u{0}b"}), "bio"),
        (json!({"display_name": "\u{0}"}), "display_name"),
    ] {
        let r = Req::patch("/api/profiles/me")
            .token(&token)
            .json(body)
            .send(&h.app)
            .await
            .expect_error(422, "validation_failed");
        assert!(
            r.json["message"].as_str().unwrap().starts_with(field),
            "{}",
            r.text
        );
    }
    let r = Req::get("/api/profiles/search?q=%00")
        .send(&h.app)
        .await
        .expect_error(422, "validation_failed");
    assert!(
        r.json["message"].as_str().unwrap().starts_with('q'),
        "{}",
        r.text
    );
    Req::get("/api/profiles/a%00b")
        .send(&h.app)
        .await
        .expect_error(422, "validation_failed");
    // Other text is still fine.
    Req::get("/api/profiles/search?q=nul")
        .send(&h.app)
        .await
        .expect(200);
}
