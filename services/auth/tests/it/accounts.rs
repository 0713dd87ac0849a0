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
    // A reserved name is taken, by the system.
    Req::post("/api/auth/register")
        .json(json!({"username": "admin", "password": "another password"}))
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
    // The guesser's address is locked out of this account, even with the right password…
    let limited = login(&h, "leo", "correct horse battery", "10.1.1.1")
        .await
        .expect_error(429, "rate_limited");
    let retry: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    // …and the owner, from their own address, is not.
    login(&h, "leo", "correct horse battery", "10.1.1.2")
        .await
        .expect(200);
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
async fn a_success_clears_the_failures_of_that_account_from_that_address() {
    let h = Harness::new(&["--login-account-limit", "3"]).await;
    register(&h, "lina").await;
    for _ in 0..3 {
        for _ in 0..2 {
            login(&h, "lina", "wrong password", "10.2.2.2")
                .await
                .expect_error(401, "unauthorized");
        }
        login(&h, "lina", "correct horse battery", "10.2.2.2")
            .await
            .expect(200);
    }
}

async fn register_from(h: &Harness, ip: &str, body: Value) -> common::testkit::Resp {
    Req::post("/api/auth/register")
        .header("x-real-ip", ip)
        .json(body)
        .send(&h.app)
        .await
}

#[tokio::test]
async fn registration_is_rate_limited_per_address() {
    let h = Harness::new(&["--register-ip-limit", "2"]).await;
    for u in ["reg_a", "reg_b"] {
        register_from(
            &h,
            "10.3.3.3",
            json!({"username": u, "password": "long enough pw"}),
        )
        .await
        .expect(201);
    }
    let r = register_from(
        &h,
        "10.3.3.3",
        json!({"username": "reg_c", "password": "long enough pw"}),
    )
    .await
    .expect_error(429, "rate_limited");
    assert!(
        r.json["message"]
            .as_str()
            .unwrap()
            .contains("registrations"),
        "{:?}",
        r.json
    );
    register_from(
        &h,
        "10.3.3.4",
        json!({"username": "reg_c", "password": "long enough pw"}),
    )
    .await
    .expect(201);
}

/// Whether an email address has an account is not something registration answers.
#[tokio::test]
async fn registration_does_not_reveal_whether_an_email_is_registered() {
    let h = Harness::new(&[]).await;
    let body = |u: &str, e: &str| json!({"username": u, "password": "long enough pw", "email": e});
    register_from(&h, "10.4.4.4", body("mail_a", "same@example.org"))
        .await
        .expect(201);
    register_from(&h, "10.4.4.4", body("mail_b", "same@example.org"))
        .await
        .expect(201);
    let taken = register_from(&h, "10.4.4.4", body("mail_a", "other@example.org"))
        .await
        .expect_error(409, "conflict");
    let message = taken.json["message"].as_str().unwrap();
    assert!(
        message.contains("username") && !message.contains("email"),
        "{message}"
    );
}

/// After logout the access token stops working at the other services within moments,
/// and the trace shows the announcement reaching them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_is_effective_at_every_service_within_moments() {
    use common::testkit::wait_until;
    use std::time::Duration;
    use telemetry::testing::Trace;
    use telemetry::testing::Traceparent;

    let h = Harness::new(&[]).await;
    let t = register(&h, "nina").await;
    let access = t["access_token"].as_str().unwrap().to_owned();
    Req::get("/api/profiles/me")
        .token(&access)
        .send(&h.profile)
        .await
        .expect(200);
    let tp = Traceparent::random();
    Req::post("/api/auth/logout")
        .traceparent(&tp)
        .json(json!({"refresh_token": t["refresh_token"]}))
        .send(&h.app)
        .await
        .expect(204);
    let profile = h.profile.clone();
    wait_until(
        Duration::from_secs(5),
        "profile to refuse the signed-out token",
        || {
            let profile = profile.clone();
            let access = access.clone();
            async move {
                Req::get("/api/profiles/me")
                    .token(&access)
                    .send(&profile)
                    .await
                    .status
                    == 401
            }
        },
    )
    .await;
    let refused = Req::get("/api/profiles/me")
        .token(&access)
        .send(&h.profile)
        .await
        .expect_error(401, "unauthorized");
    assert!(
        refused.json["message"]
            .as_str()
            .unwrap()
            .contains("signed out"),
        "{:?}",
        refused.json
    );
    let trace = Trace::wait(tp.trace_id, Duration::from_secs(5), |t| {
        t.has("publish sessions.revoked") && t.has("process sessions.revoked")
    });
    let publish = trace.one("publish sessions.revoked");
    telemetry::testing::assert_kind(publish, telemetry::testing::Kind::Producer);
    for process in trace.all("process sessions.revoked") {
        telemetry::testing::assert_kind(process, telemetry::testing::Kind::Consumer);
        assert!(trace.descends(process, publish), "{}", trace.describe());
    }
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
    assert_eq!(n, 12, "every auth operation is documented and routed");
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
