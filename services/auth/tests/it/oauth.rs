//! OAuth2 login: the authorization-code + PKCE dance with the built-in provider, and
//! the state and verifier mistakes it refuses.

use common::testkit::Req;

use crate::Harness;

fn location(r: &common::testkit::Resp) -> String {
    r.headers["location"].to_str().unwrap().to_owned()
}

/// The `code` a provider's redirect carries back.
fn code_of(redirect: &common::testkit::Resp) -> String {
    reqwest::Url::parse(&location(redirect))
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned()
}

/// The path and query of an absolute URL, to replay it against the router.
fn local(url: &str) -> String {
    let u = reqwest::Url::parse(url).unwrap();
    format!("{}?{}", u.path(), u.query().unwrap_or(""))
}

/// start → provider authorize (login_hint) → callback, as a browser would follow it.
async fn dance(h: &Harness, provider: &str, login: &str) -> common::testkit::Resp {
    let start = Req::get(&format!(
        "/api/auth/oauth/{provider}/start?login_hint={login}"
    ))
    .send(&h.app)
    .await
    .expect(303);
    let authorize = location(&start);
    assert!(
        authorize.contains("code_challenge_method=S256") && authorize.contains("state="),
        "{authorize}"
    );
    let back = Req::get(&local(&authorize)).send(&h.app).await.expect(303);
    let callback = location(&back);
    assert!(
        callback.contains(&format!("/api/auth/oauth/{provider}/callback")),
        "{callback}"
    );
    Req::get(&local(&callback)).send(&h.app).await
}

#[tokio::test]
async fn the_dev_provider_logs_in_with_the_full_redirect_dance() {
    let h = Harness::new(&["--dev-idp", "true"]).await;
    let first = dance(&h, "dev", "Workshop.User@example").await.expect(200);
    assert_eq!(first.json["user"]["username"], "workshop_user");
    let again = dance(&h, "dev", "Workshop.User@example").await.expect(200);
    assert_eq!(
        again.json["user"]["id"], first.json["user"]["id"],
        "a second login links the same account"
    );
    Req::get("/api/profiles/workshop_user")
        .send(&h.profile)
        .await
        .expect(200);
}

#[tokio::test]
async fn oauth_state_and_pkce_are_enforced() {
    let h = Harness::new(&["--dev-idp", "true"]).await;
    let start = Req::get("/api/auth/oauth/dev/start?login_hint=zoe")
        .send(&h.app)
        .await
        .expect(303);
    let back = Req::get(&local(&location(&start)))
        .send(&h.app)
        .await
        .expect(303);
    let callback = local(&location(&back));
    Req::get(&callback).send(&h.app).await.expect(200);
    // The state is single-use.
    Req::get(&callback)
        .send(&h.app)
        .await
        .expect_error(400, "oauth_bad_state");
    Req::get("/api/auth/oauth/dev/callback?code=x&state=forged")
        .send(&h.app)
        .await
        .expect_error(400, "oauth_bad_state");
    // A code cannot be redeemed without the right verifier.
    let start = Req::get("/api/auth/oauth/dev/start?login_hint=zoe")
        .send(&h.app)
        .await
        .expect(303);
    let back = Req::get(&local(&location(&start)))
        .send(&h.app)
        .await
        .expect(303);
    let code = code_of(&back);
    let form = format!(
        "grant_type=authorization_code&code={code}&redirect_uri={}&client_id=socialnet-dev&client_secret=socialnet-dev-secret&code_verifier=wrong-verifier-wrong-verifier-wrong-verifier",
        urlencode(&format!("http://{}/api/auth/oauth/dev/callback", h.addr))
    );
    Req::post("/api/auth/dev-idp/token")
        .raw("application/x-www-form-urlencoded", form.into_bytes())
        .send(&h.app)
        .await
        .expect_error(400, "invalid_grant");
}

fn urlencode(s: &str) -> String {
    reqwest::Url::parse_with_params("http://x/", &[("v", s)])
        .unwrap()
        .query()
        .unwrap()[2..]
        .to_owned()
}

#[tokio::test]
async fn unconfigured_providers_say_which_settings_are_missing() {
    let h = Harness::new(&["--dev-idp", "true"]).await;
    let r = Req::get("/api/auth/oauth/github/start")
        .send(&h.app)
        .await
        .expect_error(404, "not_found");
    assert!(
        r.json["message"]
            .as_str()
            .unwrap()
            .contains("AUTH_GITHUB_CLIENT_ID"),
        "{}",
        r.text
    );
    Req::get("/api/auth/oauth/myspace/start")
        .send(&h.app)
        .await
        .expect_error(404, "not_found");
    let off = Harness::new(&["--dev-idp", "false"]).await;
    Req::get("/api/auth/oauth/dev/start")
        .send(&off.app)
        .await
        .expect_error(404, "not_found");
}

#[tokio::test]
async fn a_configured_external_provider_uses_the_same_code_path() {
    // GitHub's endpoints pointed at the built-in provider: the generic OAuth client code
    // (token exchange, user lookup, linking) runs exactly as it would against GitHub.
    let h = Harness::with(&["--dev-idp", "true"], |state| {
        let mut providers = (*state.providers).clone();
        let dev = providers["dev"].clone();
        providers.insert("github".into(), dev);
        state.providers = std::sync::Arc::new(providers);
    })
    .await;
    let r = dance(&h, "github", "octocat").await.expect(200);
    assert_eq!(r.json["user"]["username"], "octocat");
}

/// The development provider signs anyone in as anyone, so it is off unless asked for,
/// sends codes only to this system's own callback (before, any `redirect_uri`, even
/// `javascript:`, got a 303 with the code), and each code works once.
#[tokio::test]
async fn the_dev_provider_is_off_by_default_and_redirects_only_to_its_own_callback() {
    let off = Harness::new(&[]).await;
    Req::get("/api/auth/dev-idp/authorize")
        .send(&off.app)
        .await
        .expect_error(404, "not_found");
    let h = Harness::new(&["--dev-idp", "true"]).await;
    let verifier = "v".repeat(50);
    let challenge = auth::routes::oauth::pkce_challenge(&verifier);
    let authorize = |redirect: &str| {
        format!(
            "/api/auth/dev-idp/authorize?response_type=code&client_id=socialnet-dev&redirect_uri={}&state=s&code_challenge={challenge}&code_challenge_method=S256&login_hint=eve",
            urlencode(redirect)
        )
    };
    let own = format!("http://{}/api/auth/oauth/dev/callback", h.addr);
    for evil in [
        "https://evil.example/steal".to_owned(),
        "javascript:alert(1)".to_owned(),
        format!("{own}/../../elsewhere"),
        format!("{own}?next=https://evil.example"),
    ] {
        let r = Req::get(&authorize(&evil))
            .send(&h.app)
            .await
            .expect_error(400, "invalid_request");
        assert!(r.headers.get("location").is_none(), "no redirect to {evil}");
    }
    let back = Req::get(&authorize(&own)).send(&h.app).await.expect(303);
    let code = code_of(&back);
    let form = format!(
        "grant_type=authorization_code&code={code}&redirect_uri={}&client_id=socialnet-dev&client_secret=socialnet-dev-secret&code_verifier={verifier}",
        urlencode(&own)
    );
    let redeem = || {
        Req::post("/api/auth/dev-idp/token").raw(
            "application/x-www-form-urlencoded",
            form.clone().into_bytes(),
        )
    };
    redeem().send(&h.app).await.expect(200);
    redeem()
        .send(&h.app)
        .await
        .expect_error(400, "invalid_grant");
}

/// A client of auth's own (the web frontend) gets a one-time code at its callback, bound
/// to its PKCE challenge, instead of tokens in the browser; the code works once, with the
/// right verifier, at the callback it was sent to.
#[tokio::test]
async fn a_client_login_ends_at_its_callback_with_a_code_for_its_verifier() {
    use base64::Engine;
    use sha2::Digest;
    let h = Harness::new(&["--dev-idp", "true"]).await;
    let listed = Req::get("/api/auth/oauth/providers")
        .send(&h.app)
        .await
        .expect(200);
    assert_eq!(listed.json["providers"], serde_json::json!(["dev"]));
    let callback = format!("http://{}/oauth/callback", h.addr);
    let verifier = "a-web-frontends-verifier-of-at-least-43-characters";
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    let start = |redirect: &str| {
        format!(
            "/api/auth/oauth/dev/start?login_hint=webby&redirect_uri={}&state=web-state-1&code_challenge={challenge}&code_challenge_method=S256",
            urlencode(redirect)
        )
    };
    // Codes go only to this system's own web callback.
    Req::get(&start("http://evil.example/oauth/callback"))
        .send(&h.app)
        .await
        .expect_error(400, "invalid_request");
    let login = || async {
        let s = Req::get(&start(&callback)).send(&h.app).await.expect(303);
        let back = Req::get(&local(&location(&s)))
            .send(&h.app)
            .await
            .expect(303);
        let done = Req::get(&local(&location(&back)))
            .send(&h.app)
            .await
            .expect(303);
        let to = location(&done);
        assert!(
            to.starts_with(&format!("{callback}?")) && to.contains("state=web-state-1"),
            "{to}"
        );
        assert!(!to.contains("eyJ"), "no token in the browser's URL: {to}");
        code_of(&done)
    };
    let exchange = |code: String, verifier: &str| {
        Req::post("/api/auth/oauth/token").json(serde_json::json!({
            "code": code, "code_verifier": verifier, "redirect_uri": callback}))
    };
    // The wrong verifier spends the code for nothing.
    let code = login().await;
    exchange(
        code.clone(),
        "not-the-verifier-not-the-verifier-not-the-verifier",
    )
    .send(&h.app)
    .await
    .expect_error(400, "invalid_grant");
    exchange(code, verifier)
        .send(&h.app)
        .await
        .expect_error(400, "invalid_grant");
    // The right one signs in, once.
    let code = login().await;
    let signed_in = exchange(code.clone(), verifier)
        .send(&h.app)
        .await
        .expect(200);
    assert_eq!(signed_in.json["user"]["username"], "webby");
    assert!(signed_in.json["access_token"].as_str().is_some());
    exchange(code, verifier)
        .send(&h.app)
        .await
        .expect_error(400, "invalid_grant");
    Req::get("/api/profiles/webby")
        .send(&h.profile)
        .await
        .expect(200);
}
