//! Accounts: registration (with its profile), login, refresh-token rotation and reuse
//! detection, logout, and the login rate limits.

use common::testkit::Req;
use serde_json::{Value, json};

use crate::Harness;

pub async fn register(h: &Harness, username: &str) -> Value {
    Req::post("/api/auth/register")
        .json(json!({"username": username, "password": "correct horse battery"}))
        .send(&h.app)
        .await
        .expect(201)
        .json
}

async fn login(h: &Harness, username: &str, password: &str, ip: &str) -> common::testkit::Resp {
    Req::post("/api/auth/login")
        .header("x-real-ip", ip)
        .json(json!({"username": username, "password": password}))
        .send(&h.app)
        .await
}

#[tokio::test]
async fn register_creates_the_account_and_its_profile() {
    let h = Harness::new(&[]).await;
    let t = register(&h, "hana").await;
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["user"]["username"], "hana");
    let p = Req::get("/api/profiles/hana")
        .send(&h.profile)
        .await
        .expect(200);
    assert_eq!(p.json["id"], t["user"]["id"]);
    Req::post("/api/auth/register")
        .json(json!({"username": "hana", "password": "another password"}))
        .send(&h.app)
        .await
        .expect_error(409, "conflict");
    for (u, p) in [
        ("x", "long enough pw"),
        ("Has Space", "long enough pw"),
        ("me", "long enough pw"),
        ("okname", "short"),
    ] {
        Req::post("/api/auth/register")
            .json(json!({"username": u, "password": p}))
            .send(&h.app)
            .await
            .expect_error(422, "validation_failed");
    }
}

#[tokio::test]
async fn login_checks_the_password() {
    let h = Harness::new(&[]).await;
    register(&h, "ivan").await;
    let ok = login(&h, "ivan", "correct horse battery", "10.0.0.1")
        .await
        .expect(200);
    assert!(
        ok.json["access_token"]
            .as_str()
            .is_some_and(|t| t.split('.').count() == 3)
    );
    login(&h, "ivan", "wrong password", "10.0.0.1")
        .await
        .expect_error(401, "unauthorized");
    login(&h, "nobody", "whatever pw", "10.0.0.1")
        .await
        .expect_error(401, "unauthorized");
    Req::post("/api/auth/login")
        .json(json!({"username": "ivan"}))
        .send(&h.app)
        .await
        .expect_error(422, "validation_failed");
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let h = Harness::new(&[]).await;
    let first = register(&h, "judy").await;
    let r1 = first["refresh_token"].as_str().unwrap();
    let second = Req::post("/api/auth/refresh")
        .json(json!({"refresh_token": r1}))
        .send(&h.app)
        .await
        .expect(200)
        .json;
    let r2 = second["refresh_token"].as_str().unwrap();
    assert_ne!(r1, r2);
    // r1 again: reuse. The family dies, so the legitimate r2 is refused too.
    let reuse = Req::post("/api/auth/refresh")
        .json(json!({"refresh_token": r1}))
        .send(&h.app)
        .await
        .expect_error(401, "unauthorized");
    assert!(
        reuse.json["message"]
            .as_str()
            .unwrap()
            .contains("already used"),
        "{}",
        reuse.text
    );
    Req::post("/api/auth/refresh")
        .json(json!({"refresh_token": r2}))
        .send(&h.app)
        .await
        .expect_error(401, "unauthorized");
    Req::post("/api/auth/refresh")
        .json(json!({"refresh_token": "made-up"}))
        .send(&h.app)
        .await
        .expect_error(401, "unauthorized");
}

#[tokio::test]
async fn logout_ends_the_session() {
    let h = Harness::new(&[]).await;
    let t = register(&h, "kim").await;
    let r = t["refresh_token"].as_str().unwrap();
    Req::post("/api/auth/logout")
        .json(json!({"refresh_token": r}))
        .send(&h.app)
        .await
        .expect(204);
    Req::post("/api/auth/refresh")
        .json(json!({"refresh_token": r}))
        .send(&h.app)
        .await
        .expect_error(401, "unauthorized");
    Req::post("/api/auth/logout")
        .json(json!({"refresh_token": r}))
        .send(&h.app)
        .await
        .expect(204);
}

#[tokio::test]
async fn the_login_rate_limits_trip_at_their_configured_counts() {
    let h = Harness::new(&[
        "--login-account-limit",
        "3",
        "--login-ip-limit",
        "5",
        "--login-window-secs",
        "60",
    ])
    .await;
    register(&h, "leo").await;
    for _ in 0..3 {
        login(&h, "leo", "wrong password", "10.1.1.1")
            .await
            .expect_error(401, "unauthorized");
    }
    let limited = login(&h, "leo", "correct horse battery", "10.1.1.2")
        .await
        .expect_error(429, "rate_limited");
    let retry: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    // Per IP: five attempts on different accounts pass, the sixth from that IP does not.
    for i in 0..5 {
        login(&h, &format!("ghost{i}"), "whatever pw", "10.9.9.9")
            .await
            .expect_error(401, "unauthorized");
    }
    login(&h, "ghost9", "whatever pw", "10.9.9.9")
        .await
        .expect_error(429, "rate_limited");
    // Another address is unaffected.
    login(&h, "ghost9", "whatever pw", "10.9.9.10")
        .await
        .expect_error(401, "unauthorized");
}

#[tokio::test]
async fn the_openapi_document_is_generated_from_the_router_and_matches_it() {
    let h = Harness::new(&[]).await;
    let doc = common::testkit::Req::get("/openapi.json")
        .send(&h.app)
        .await
        .expect(200);
    assert!(doc.json["paths"]["/api/auth/login"]["post"]["requestBody"].is_object());
    assert!(doc.json["components"]["schemas"]["ErrorBody"].is_object());
    let n = common::testkit::check_openapi(&h.app, &auth::openapi()).await;
    assert_eq!(n, 10, "every auth operation is documented and routed");
}

/// U+0000 in registration or login fields is a 422, not a 500 from PostgreSQL.
#[tokio::test]
async fn a_nul_character_in_credentials_is_a_422() {
    let h = Harness::new(&[]).await;
    for (path, body) in [
        (
            "/api/auth/register",
            serde_json::json!({"username": "nul_user", "password": "correct horse", "email": "a\u{0}@x.org"}),
        ),
        (
            "/api/auth/login",
            serde_json::json!({"username": "nul\u{0}user", "password": "correct horse"}),
        ),
    ] {
        common::testkit::Req::post(path)
            .json(body)
            .send(&h.app)
            .await
            .expect_error(422, "validation_failed");
    }
}
