//! Access tokens: EdDSA (Ed25519) JWTs signed by auth and verified by every service
//! against auth's published key set (`GET /api/auth/jwks`).
//!
//! Only `EdDSA` is accepted: `alg: none`, HMAC and RSA tokens are refused before any
//! signature check, so no algorithm-confusion attack applies.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use axum::extract::{FromRef, FromRequestParts};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, RwLock};
use uuid::Uuid;

use crate::ApiError;
use crate::revocation::Revoked;

/// The `iss` of every access token.
pub const ISSUER: &str = "socialnet-auth";

/// What an access token says about its bearer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// The user id.
    pub sub: Uuid,
    pub username: String,
    /// The session (refresh-token family) this token was issued in.
    pub sid: Uuid,
    pub iss: String,
    pub iat: i64,
    pub exp: i64,
}

/// One Ed25519 signing key with its id.
pub struct SigningKey {
    kid: String,
    pkcs8: Vec<u8>,
    public: Vec<u8>,
    encoding: EncodingKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A fresh key with a random id.
    pub fn generate() -> Self {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let doc = Ed25519KeyPair::generate_pkcs8(&rng).expect("the system RNG is available");
        Self::from_pkcs8(Uuid::new_v4().simple().to_string(), doc.as_ref())
            .expect("a key just generated parses")
    }

    /// A key from its stored PKCS#8 document.
    pub fn from_pkcs8(kid: String, pkcs8: &[u8]) -> Result<Self, String> {
        let pair =
            Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|e| format!("bad Ed25519 key: {e}"))?;
        Ok(Self {
            kid,
            pkcs8: pkcs8.to_vec(),
            public: pair.public_key().as_ref().to_vec(),
            encoding: EncodingKey::from_ed_der(pkcs8),
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    /// Signs `claims` into a compact JWT.
    pub fn sign(&self, claims: &Claims) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding)
            .expect("signing with a valid Ed25519 key cannot fail")
    }

    /// The public half, as published in the key set.
    pub fn jwk(&self) -> PublicJwk {
        PublicJwk {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            alg: "EdDSA".into(),
            key_use: "sig".into(),
            kid: self.kid.clone(),
            x: URL_SAFE_NO_PAD.encode(&self.public),
        }
    }
}

/// A JSON Web Key Set of Ed25519 public keys.
#[derive(Debug, Clone, Serialize, Deserialize, Default, utoipa::ToSchema)]
pub struct Jwks {
    pub keys: Vec<PublicJwk>,
}

/// One public key (RFC 8037 `OKP`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PublicJwk {
    pub kty: String,
    pub crv: String,
    pub alg: String,
    #[serde(rename = "use")]
    pub key_use: String,
    pub kid: String,
    pub x: String,
}

/// Verifies access tokens against a key set, fetching it from auth when a key id is new.
pub struct TokenVerifier {
    keys: RwLock<HashMap<String, DecodingKey>>,
    source: Option<(telemetry::HttpClient, String)>,
    last_fetch: Mutex<Option<Instant>>,
    revoked: Arc<Revoked>,
    /// Tokens whose signature already verified, with their claims: an Ed25519 check
    /// costs more than the rest of a cached timeline read, and a client sends the same
    /// token with every request. Expiry and revocation are still checked on every use.
    verified: std::sync::RwLock<HashMap<String, Claims>>,
}

/// Most verified tokens remembered; the memory is cleared when full (a few MiB).
const VERIFIED_KEPT: usize = 20_000;
/// Seconds of clock skew allowed on `exp`, as in the full check.
const LEEWAY: i64 = 5;

/// Refetching the key set is rate-limited, so a flood of tokens with made-up key ids
/// cannot turn into a flood of requests to auth.
const REFETCH_EVERY: Duration = Duration::from_secs(10);

impl TokenVerifier {
    /// A verifier that knows exactly these keys (tests, or a pinned key set).
    pub fn from_jwks(jwks: &Jwks) -> Arc<Self> {
        Arc::new(Self {
            keys: RwLock::new(decoding_keys(jwks)),
            source: None,
            last_fetch: Mutex::new(None),
            revoked: Arc::default(),
            verified: Default::default(),
        })
    }

    /// A verifier that loads keys from auth's JWKS URL on first use and on unknown ids.
    pub fn from_url(client: telemetry::HttpClient, jwks_url: String) -> Arc<Self> {
        Arc::new(Self {
            keys: RwLock::new(HashMap::new()),
            source: Some((client, jwks_url)),
            last_fetch: Mutex::new(None),
            revoked: Arc::default(),
            verified: Default::default(),
        })
    }

    /// What a service uses: keys from auth's JWKS URL, and signed-out sessions followed
    /// on `redis_url` (see [`crate::revocation`]).
    pub fn for_service(
        client: telemetry::HttpClient,
        jwks_url: String,
        redis_url: &str,
    ) -> Arc<Self> {
        let v = Self::from_url(client, jwks_url);
        v.revoked.follow(redis_url);
        v
    }

    /// The signed-out sessions this verifier refuses.
    #[cfg(test)]
    fn revoked(&self) -> &Arc<Revoked> {
        &self.revoked
    }

    async fn refresh(&self) -> Result<(), ApiError> {
        let Some((client, url)) = &self.source else {
            return Ok(());
        };
        let mut last = self.last_fetch.lock().await;
        if last.is_some_and(|t| t.elapsed() < REFETCH_EVERY) {
            return Ok(());
        }
        *last = Some(Instant::now());
        let unavailable = |e: String| {
            tracing::warn!(error = %e, url = %url, "could not load the token key set");
            ApiError::Unavailable(
                "cannot check tokens: the auth service's key set is unreachable".into(),
            )
        };
        let res = client
            .send(client.reqwest().get(url))
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        if !res.status().is_success() {
            return Err(unavailable(format!("HTTP {}", res.status())));
        }
        let jwks: Jwks = res.json().await.map_err(|e| unavailable(e.to_string()))?;
        *self.keys.write().await = decoding_keys(&jwks);
        // A key that left the set must not keep its tokens valid.
        self.verified
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        Ok(())
    }

    /// Checks signature, algorithm, issuer and expiry.
    pub async fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        let claims = match self.cached(token, chrono::Utc::now().timestamp())? {
            Some(c) => c,
            None => {
                let c = self.verify_signature(token).await?;
                let mut known = self.verified.write().unwrap_or_else(|p| p.into_inner());
                if known.len() >= VERIFIED_KEPT {
                    known.clear();
                }
                known.insert(token.to_owned(), c.clone());
                c
            }
        };
        if self.revoked.contains(claims.sid) {
            telemetry::set_current_attribute(telemetry::attrs::SESSION_REVOKED, true);
            return Err(ApiError::Unauthorized(
                "this session was signed out; log in again".into(),
            ));
        }
        Ok(claims)
    }

    /// The claims of `token` if its signature verified before and it has not expired
    /// at `now`; `None` if it was never verified here.
    fn cached(&self, token: &str, now: i64) -> Result<Option<Claims>, ApiError> {
        let known = self.verified.read().unwrap_or_else(|p| p.into_inner());
        match known.get(token) {
            Some(c) if c.exp + LEEWAY < now => Err(ApiError::Unauthorized(
                "access token expired; get a new one from POST /api/auth/refresh".into(),
            )),
            Some(c) => Ok(Some(c.clone())),
            None => Ok(None),
        }
    }

    /// The full check: algorithm, key, signature, issuer, expiry.
    async fn verify_signature(&self, token: &str) -> Result<Claims, ApiError> {
        let unauthorized = |m: &str| ApiError::Unauthorized(m.to_owned());
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| unauthorized("malformed access token; log in again"))?;
        if header.alg != Algorithm::EdDSA {
            return Err(unauthorized(
                "access token uses an algorithm this system does not accept",
            ));
        }
        let kid = header
            .kid
            .ok_or_else(|| unauthorized("access token has no key id"))?;
        if !self.keys.read().await.contains_key(&kid) {
            self.refresh().await?;
        }
        let keys = self.keys.read().await;
        let key = keys.get(&kid).ok_or_else(|| {
            unauthorized("access token was signed by an unknown key; log in again")
        })?;
        let mut v = Validation::new(Algorithm::EdDSA);
        v.set_issuer(&[ISSUER]);
        v.leeway = LEEWAY as u64;
        v.set_required_spec_claims(&["exp", "iss", "sub"]);
        match jsonwebtoken::decode::<Claims>(token, key, &v) {
            Ok(data) => Ok(data.claims),
            Err(e) => Err(match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    unauthorized("access token expired; get a new one from POST /api/auth/refresh")
                }
                jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                    unauthorized("access token signature does not verify")
                }
                _ => unauthorized("access token is not valid; log in again"),
            }),
        }
    }
}

fn decoding_keys(jwks: &Jwks) -> HashMap<String, DecodingKey> {
    jwks.keys
        .iter()
        .filter(|k| k.kty == "OKP" && k.crv == "Ed25519")
        .filter_map(|k| Some((k.kid.clone(), DecodingKey::from_ed_components(&k.x).ok()?)))
        .collect()
}

/// The authenticated caller (extractor: 401 without a valid bearer token).
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: Uuid,
    pub username: String,
    /// The bearer token, to call other services on the caller's behalf.
    pub token: String,
}

/// The caller if a valid token was sent, `None` if none was (a bad one is still a 401).
#[derive(Debug, Clone)]
pub struct MaybeAuthUser(pub Option<AuthUser>);

fn bearer(parts: &Parts) -> Result<Option<&str>, ApiError> {
    let Some(value) = parts.headers.get(http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::Unauthorized("Authorization header is not text".into()))?;
    match value.strip_prefix("Bearer ") {
        Some(t) if !t.trim().is_empty() => Ok(Some(t.trim())),
        _ => Err(ApiError::Unauthorized(
            "Authorization header must be `Bearer <access token>`".into(),
        )),
    }
}

impl<S> FromRequestParts<S> for MaybeAuthUser
where
    Arc<TokenVerifier>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Some(token) = bearer(parts)? else {
            return Ok(Self(None));
        };
        let verifier = Arc::<TokenVerifier>::from_ref(state);
        let claims = verifier.verify(token).await?;
        telemetry::set_current_attribute(telemetry::attrs::USER_ID, claims.sub.to_string());
        Ok(Self(Some(AuthUser {
            id: claims.sub,
            username: claims.username,
            token: token.to_owned(),
        })))
    }
}

impl<S> FromRequestParts<S> for AuthUser
where
    Arc<TokenVerifier>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        MaybeAuthUser::from_request_parts(parts, state)
            .await?
            .0
            .ok_or_else(|| {
                ApiError::Unauthorized(
                    "log in first: send Authorization: Bearer <access token>".into(),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            sub: Uuid::new_v4(),
            username: "ada".into(),
            sid: Uuid::new_v4(),
            iss: ISSUER.into(),
            iat: exp - 900,
            exp,
        }
    }

    #[tokio::test]
    async fn a_remembered_token_still_expires_and_a_forgery_is_never_remembered() {
        let key = SigningKey::generate();
        let v = TokenVerifier::from_jwks(&Jwks {
            keys: vec![key.jwk()],
        });
        let now = chrono::Utc::now().timestamp();
        let c = claims(now + 60);
        let token = key.sign(&c);
        assert_eq!(v.verify(&token).await.expect("valid"), c);
        assert_eq!(v.cached(&token, now).expect("fresh"), Some(c.clone()));
        // Past its expiry (and the leeway) the remembered token is refused.
        assert!(v.cached(&token, c.exp + LEEWAY + 1).is_err());
        // A token signed by another key is checked in full, refused, and not remembered.
        let forged = SigningKey::generate().sign(&c);
        assert!(v.verify(&forged).await.is_err());
        assert_eq!(v.cached(&forged, now).expect("unknown"), None);
        // Revocation applies to remembered tokens too.
        v.revoked().insert_for_test(c.sid, now + 60);
        assert!(v.verify(&token).await.is_err());
    }
}
