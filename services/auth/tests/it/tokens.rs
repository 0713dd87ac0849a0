//! Access tokens: issued tokens verify against the JWKS, forged ones do not.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::ApiError;
use common::testkit::{Req, TestKeys};
use common::tokens::{Claims, ISSUER, Jwks, SigningKey, TokenVerifier};

use crate::Harness;
use crate::accounts::register;

async fn verifier(h: &Harness) -> std::sync::Arc<TokenVerifier> {
    let jwks: Jwks = serde_json::from_value(
        Req::get("/api/auth/jwks")
            .send(&h.app)
            .await
            .expect(200)
            .json,
    )
    .unwrap();
    assert_eq!(jwks.keys[0].kty, "OKP");
    TokenVerifier::from_jwks(&jwks)
}

fn claims(ttl: i64) -> Claims {
    let now = chrono::Utc::now().timestamp();
    Claims {
        sub: uuid::Uuid::new_v4(),
        username: "mallory".into(),
        sid: uuid::Uuid::new_v4(),
        iss: ISSUER.into(),
        iat: now,
        exp: now + ttl,
    }
}

fn refused(r: Result<Claims, ApiError>) -> String {
    match r {
        Err(ApiError::Unauthorized(m)) => m,
        other => panic!("expected 401, got {other:?}"),
    }
}

#[tokio::test]
async fn issued_tokens_verify_and_forgeries_do_not() {
    let h = Harness::new(&[]).await;
    let v = verifier(&h).await;
    let t = register(&h, "nina").await;
    let token = t["access_token"].as_str().unwrap();
    let c = v.verify(token).await.expect("a token auth issued verifies");
    assert_eq!(c.username, "nina");

    // Tampered payload: same header and signature, different claims.
    let parts: Vec<&str> = token.split('.').collect();
    let mut payload: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    payload["username"] = "admin".into();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).unwrap()),
        parts[2]
    );
    assert!(refused(v.verify(&forged).await).contains("signature"));

    // alg: none, unsigned.
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    refused(v.verify(&format!("{header}.{}.", parts[1])).await);

    // Signed by a key auth never published (unknown kid) ...
    refused(v.verify(&TestKeys::default().key.sign(&claims(300))).await);
    // ... or by another key under auth's own kid.
    let kid = h.state.signer.kid().to_owned();
    let impostor = SigningKey::from_pkcs8(kid, TestKeys::default().key.pkcs8()).unwrap();
    assert!(refused(v.verify(&impostor.sign(&claims(300))).await).contains("signature"));

    // Expired, though properly signed.
    assert!(refused(v.verify(&h.state.signer.sign(&claims(-600))).await).contains("expired"));
    refused(v.verify("garbage").await);
}
