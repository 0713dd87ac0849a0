//! OAuth2 authorization-code login with PKCE and state, for GitHub, Google and the
//! built-in development provider (`dev`, see `dev_idp.rs`).
//!
//! 1. `GET /api/auth/oauth/{provider}/start` stores a one-time `state` with a PKCE
//!    verifier in Redis and redirects the browser to the provider.
//! 2. The provider redirects back to `GET /api/auth/oauth/{provider}/callback?code&state`;
//!    auth spends the state (`GETDEL`), exchanges the code and verifier for a provider
//!    token (`POST`, a CLIENT span), reads the user (`GET`), links or creates the
//!    account, and answers with our own tokens.
//!
//! 3. A client of auth's own (the web frontend) may start the login with its own
//!    `redirect_uri` (only `{public}/oauth/callback`), `state` and PKCE challenge: auth
//!    then does not answer the callback with tokens but sends the browser back to that
//!    client with a one-time code bound to its challenge, which the client exchanges with
//!    its verifier at `POST /api/auth/oauth/token`. Tokens never pass through the browser.
//!
//! Every step is an HTTP call with a span, so the whole redirect dance is in the trace.

use std::collections::HashMap;

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{ApiError, Json, Path, Query};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::accounts::create_profile;
use crate::AppState;
use crate::error::Result;
use crate::sessions::{self, TokenResponse};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// One configured identity provider.
#[derive(Debug, Clone)]
pub struct Provider {
    pub client_id: String,
    pub client_secret: String,
    pub authorize_url: String,
    pub token_url: String,
    pub userinfo_url: String,
    pub scope: String,
}

impl Provider {
    pub fn github(client_id: String, client_secret: String) -> Self {
        Self {
            client_id,
            client_secret,
            authorize_url: "https://github.com/login/oauth/authorize".into(),
            token_url: "https://github.com/login/oauth/access_token".into(),
            userinfo_url: "https://api.github.com/user".into(),
            scope: "read:user".into(),
        }
    }

    pub fn google(client_id: String, client_secret: String) -> Self {
        Self {
            client_id,
            client_secret,
            authorize_url: "https://accounts.google.com/o/oauth2/v2/auth".into(),
            token_url: "https://oauth2.googleapis.com/token".into(),
            userinfo_url: "https://openidconnect.googleapis.com/v1/userinfo".into(),
            scope: "openid email profile".into(),
        }
    }

    /// The built-in provider: the browser goes to the public URL, the back channel to
    /// auth itself.
    pub fn dev(public_url: &str, self_url: &str) -> Self {
        Self {
            client_id: super::dev_idp::CLIENT_ID.into(),
            client_secret: super::dev_idp::CLIENT_SECRET.into(),
            authorize_url: format!(
                "{}/api/auth/dev-idp/authorize",
                public_url.trim_end_matches('/')
            ),
            token_url: format!("{}/api/auth/dev-idp/token", self_url.trim_end_matches('/')),
            userinfo_url: format!(
                "{}/api/auth/dev-idp/userinfo",
                self_url.trim_end_matches('/')
            ),
            scope: "profile".into(),
        }
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(providers))
        .routes(routes!(start))
        .routes(routes!(callback))
        .routes(routes!(exchange))
}

/// The login providers this server offers.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Providers {
    /// Their names, for `/api/auth/oauth/{name}/start` (`dev`, `github`, `google`).
    pub providers: Vec<String>,
}

/// Which login providers are configured (the built-in `dev` one only in workshop mode).
#[utoipa::path(get, path = "/api/auth/oauth/providers", tag = "oauth",
    responses((status = 200, description = "the configured providers, by name", body = Providers)))]
async fn providers(State(state): State<AppState>) -> Json<Providers> {
    let mut providers: Vec<String> = state.providers.keys().cloned().collect();
    providers.sort();
    Json(Providers { providers })
}

fn provider<'a>(state: &'a AppState, name: &str) -> Result<&'a Provider> {
    if let Some(p) = state.providers.get(name) {
        return Ok(p);
    }
    if let Some((_, var)) = state.settings.unconfigured.iter().find(|(n, _)| *n == name) {
        return Err(ApiError::NotFound(format!(
            "{name} login is not configured on this server: set {var}_CLIENT_ID and {var}_CLIENT_SECRET"
        )));
    }
    Err(ApiError::NotFound(format!(
        "no login provider named {name:?}"
    )))
}

fn random_token() -> String {
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    URL_SAFE_NO_PAD.encode(raw)
}

/// `BASE64URL(SHA256(verifier))`, the S256 PKCE challenge.
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

#[derive(Debug, Serialize, Deserialize)]
struct PendingLogin {
    provider: String,
    verifier: String,
    /// The login was started by a client of auth's own (the web frontend).
    #[serde(default)]
    client: Option<ClientLogin>,
}

/// Where a client's login goes back to, and what binds its code.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ClientLogin {
    redirect_uri: String,
    state: String,
    challenge: String,
}

/// A one-time code for a client, spent at `POST /api/auth/oauth/token`.
#[derive(Debug, Serialize, Deserialize)]
struct ClientCode {
    user_id: Uuid,
    username: String,
    redirect_uri: String,
    challenge: String,
}

/// Seconds a client's code stays valid.
const CODE_TTL: u64 = 120;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StartParams {
    /// Passed to the provider; the dev provider signs in as this user without a form.
    pub login_hint: Option<String>,
    /// A client's own callback (only `{public URL}/oauth/callback`, the web frontend's):
    /// the login ends there with a code instead of tokens. Needs `state` and a PKCE
    /// `code_challenge` (S256).
    pub redirect_uri: Option<String>,
    /// The client's state, handed back to its callback unchanged.
    pub state: Option<String>,
    /// `BASE64URL(SHA256(code_verifier))`.
    pub code_challenge: Option<String>,
    /// Only `S256`.
    pub code_challenge_method: Option<String>,
}

/// The client callbacks auth sends codes to: the web frontend's, on this system.
fn client_callback(state: &AppState) -> String {
    format!(
        "{}/oauth/callback",
        state.settings.public_url.trim_end_matches('/')
    )
}

/// A client's login request, checked: an authorization server that redirects anywhere
/// hands codes to whoever asks.
fn client_login(state: &AppState, p: &StartParams) -> Result<Option<ClientLogin>> {
    let Some(redirect_uri) = &p.redirect_uri else {
        return Ok(None);
    };
    let bad = |m: String| ApiError::BadRequest("invalid_request", m);
    if *redirect_uri != client_callback(state) {
        return Err(bad(format!(
            "redirect_uri must be this system's own web callback ({})",
            client_callback(state)
        )));
    }
    let client_state = p
        .state
        .as_deref()
        .filter(|s| (1..=128).contains(&s.len()))
        .ok_or_else(|| bad("a client login needs a state of 1 to 128 characters".into()))?;
    let challenge = p
        .code_challenge
        .as_deref()
        .filter(|c| {
            (43..=128).contains(&c.len())
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .ok_or_else(|| {
            bad(
                "a client login needs a PKCE code_challenge (43 to 128 base64url characters)"
                    .into(),
            )
        })?;
    if p.code_challenge_method.as_deref() != Some("S256") {
        return Err(bad(
            "PKCE with code_challenge_method=S256 is required".into()
        ));
    }
    Ok(Some(ClientLogin {
        redirect_uri: redirect_uri.clone(),
        state: client_state.to_owned(),
        challenge: challenge.to_owned(),
    }))
}

pub(crate) fn callback_url(state: &AppState, provider: &str) -> String {
    format!(
        "{}/api/auth/oauth/{provider}/callback",
        state.settings.public_url.trim_end_matches('/')
    )
}

fn store_down(e: impl std::fmt::Display) -> ApiError {
    tracing::warn!(error = %e, "oauth state store unavailable");
    ApiError::Unavailable("the login state store is unavailable; retry shortly".into())
}

/// Begin an OAuth2 login (authorization code + PKCE): redirects to the provider.
#[utoipa::path(get, path = "/api/auth/oauth/{provider}/start", tag = "oauth",
    params(("provider" = String, Path, description = "`github`, `google` or `dev`"), StartParams),
    responses(
        (status = 303, description = "to the provider's authorization page"),
        (status = 400, description = "malformed request (JSON, query, form or path)", body = common::ErrorBody),
        (status = 404, description = "no such provider, or it is not configured", body = common::ErrorBody),
        (status = 503, description = "a dependency (PostgreSQL, Redis, the provider) is unavailable; retry", body = common::ErrorBody)))]
async fn start(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(p): Query<StartParams>,
) -> Result<Redirect> {
    let prov = provider(&state, &name)?;
    let client = client_login(&state, &p)?;
    let csrf = random_token();
    let verifier = random_token();
    let pending = serde_json::to_string(&PendingLogin {
        provider: name.clone(),
        verifier: verifier.clone(),
        client,
    })
    .expect("pending login serialises");
    state
        .cache
        .set_ex(&format!("oauth:{csrf}"), &pending, 600)
        .await
        .map_err(store_down)?;
    let mut url = reqwest::Url::parse(&prov.authorize_url)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("bad authorize URL for {name}: {e}")))?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &prov.client_id)
        .append_pair("redirect_uri", &callback_url(&state, &name))
        .append_pair("scope", &prov.scope)
        .append_pair("state", &csrf)
        .append_pair("code_challenge", &pkce_challenge(&verifier))
        .append_pair("code_challenge_method", "S256");
    if let Some(hint) = &p.login_hint {
        url.query_pairs_mut().append_pair("login_hint", hint);
    }
    Ok(Redirect::to(url.as_str()))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
}

fn upstream(what: &str, e: impl std::fmt::Display) -> ApiError {
    tracing::warn!(error = %e, "{what}");
    ApiError::Unavailable(format!("{what}; try logging in again"))
}

/// Where the provider sends the browser back: exchanges the code and signs in.
#[utoipa::path(get, path = "/api/auth/oauth/{provider}/callback", tag = "oauth",
    params(("provider" = String, Path, description = "`github`, `google` or `dev`"), CallbackParams),
    responses(
        (status = 200, description = "signed in", body = TokenResponse),
        (status = 303, description = "a client's login: back to its callback with a one-time code and its state"),
        (status = 400, description = "malformed request (JSON, query, form or path)", body = common::ErrorBody),
        (status = 404, description = "no such provider, or it is not configured", body = common::ErrorBody),
        (status = 422, description = "a parameter holds text that cannot be stored (e.g. U+0000); the message names it", body = common::ErrorBody),
        (status = 503, description = "a dependency (PostgreSQL, Redis, the provider) is unavailable; retry", body = common::ErrorBody)))]
async fn callback(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(p): Query<CallbackParams>,
) -> Result<Response> {
    let prov = provider(&state, &name)?.clone();
    if let Some(err) = p.error {
        return Err(ApiError::BadRequest(
            "oauth_denied",
            format!("the provider refused the login: {err}"),
        ));
    }
    let (Some(code), Some(csrf)) = (p.code, p.state) else {
        return Err(ApiError::BadRequest(
            "oauth_bad_callback",
            "the callback needs both code and state".into(),
        ));
    };
    let pending = state
        .cache
        .get_del(&format!("oauth:{csrf}"))
        .await
        .map_err(store_down)?;
    let pending: PendingLogin = pending
        .and_then(|s| serde_json::from_str(&s).ok())
        .ok_or_else(|| {
            ApiError::BadRequest(
                "oauth_bad_state",
                "unknown or expired login state; start the login again".into(),
            )
        })?;
    if pending.provider != name {
        return Err(ApiError::BadRequest(
            "oauth_bad_state",
            "this login was started with another provider".into(),
        ));
    }
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", &callback_url(&state, &name)),
        ("client_id", &prov.client_id),
        ("client_secret", &prov.client_secret),
        ("code_verifier", &pending.verifier),
    ];
    let res = state
        .http
        .send(
            state
                .http
                .reqwest()
                .post(&prov.token_url)
                .header("accept", "application/json")
                .form(&form),
        )
        .await
        .map_err(|e| upstream("the provider's token endpoint is unreachable", e))?;
    if !res.status().is_success() {
        return Err(ApiError::Unauthorized(format!(
            "the provider refused the code (HTTP {})",
            res.status()
        )));
    }
    let token: Value = res
        .json()
        .await
        .map_err(|e| upstream("the provider's token answer is not JSON", e))?;
    let access = token
        .get("access_token")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::Unauthorized("the provider issued no access token".into()))?;
    let res = state
        .http
        .send(
            state
                .http
                .reqwest()
                .get(&prov.userinfo_url)
                .bearer_auth(access)
                .header("user-agent", "socialnet-auth"),
        )
        .await
        .map_err(|e| upstream("the provider's user endpoint is unreachable", e))?;
    if !res.status().is_success() {
        return Err(upstream(
            "the provider's user endpoint failed",
            res.status(),
        ));
    }
    let info: Value = res
        .json()
        .await
        .map_err(|e| upstream("the provider's user answer is not JSON", e))?;
    let subject = info
        .get("id")
        .or_else(|| info.get("sub"))
        .map(|v| {
            v.as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| v.to_string())
        })
        .ok_or_else(|| upstream("the provider's user answer has no id", &info))?;
    let login = ["login", "preferred_username", "email", "name"]
        .iter()
        .find_map(|k| info.get(*k).and_then(Value::as_str))
        .unwrap_or("user");
    let (id, username, created) = link_account(&state, &name, &subject, login).await?;
    if let Some(client) = pending.client {
        // The account's profile now: the client may never come back for its session.
        if created {
            create_profile(
                &state,
                &sessions::account_setup_token(&state, id, &username),
            )
            .await;
        }
        let code = random_token();
        let grant = serde_json::to_string(&ClientCode {
            user_id: id,
            username,
            redirect_uri: client.redirect_uri.clone(),
            challenge: client.challenge,
        })
        .expect("a client code serialises");
        state
            .cache
            .set_ex(&format!("oauthcode:{code}"), &grant, CODE_TTL)
            .await
            .map_err(store_down)?;
        let mut to = reqwest::Url::parse(&client.redirect_uri)
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("bad client callback: {e}")))?;
        to.query_pairs_mut()
            .append_pair("code", &code)
            .append_pair("state", &client.state);
        return Ok(Redirect::to(to.as_str()).into_response());
    }
    let tokens = sessions::start(&state, id, &username).await?;
    if created {
        create_profile(&state, &tokens.access_token).await;
    }
    Ok(Json(tokens).into_response())
}

/// A client's code exchange.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CodeExchange {
    /// The code auth sent to the client's callback.
    pub code: String,
    /// The PKCE verifier whose S256 challenge started the login.
    pub code_verifier: String,
    /// The callback the code was sent to.
    pub redirect_uri: String,
}

/// A client (the web frontend) exchanges its one-time code and PKCE verifier for tokens.
#[utoipa::path(post, path = "/api/auth/oauth/token", tag = "oauth",
    request_body = CodeExchange,
    responses(
        (status = 200, description = "signed in", body = TokenResponse),
        (status = 400, description = "malformed request, or the code is unknown, spent, expired, or not this verifier's (`invalid_grant`)", body = common::ErrorBody),
        (status = 422, description = "a field has the wrong type; the message names it", body = common::ErrorBody),
        (status = 503, description = "a dependency (PostgreSQL, Redis) is unavailable; retry", body = common::ErrorBody)))]
async fn exchange(
    State(state): State<AppState>,
    Json(x): Json<CodeExchange>,
) -> Result<Json<TokenResponse>> {
    let invalid = |m: &str| ApiError::BadRequest("invalid_grant", m.to_owned());
    if x.code.is_empty() || x.code.len() > 128 {
        return Err(invalid("unknown, spent or expired code; sign in again"));
    }
    let grant: ClientCode = state
        .cache
        .get_del(&format!("oauthcode:{}", x.code))
        .await
        .map_err(store_down)?
        .and_then(|s| serde_json::from_str(&s).ok())
        .ok_or_else(|| invalid("unknown, spent or expired code; sign in again"))?;
    if grant.redirect_uri != x.redirect_uri {
        return Err(invalid("the code was sent to another redirect_uri"));
    }
    // The challenge went through the browser in the clear: comparing it is no secret.
    if pkce_challenge(&x.code_verifier) != grant.challenge {
        return Err(invalid(
            "the code_verifier does not match the login's challenge",
        ));
    }
    Ok(Json(
        sessions::start(&state, grant.user_id, &grant.username).await?,
    ))
}

const FIND_IDENTITY: &str = "SELECT u.id, u.username FROM oauth_identities i JOIN users u ON u.id = i.user_id \
     WHERE i.provider = $1 AND i.subject = $2";
const INSERT_USER: &str =
    "INSERT INTO users (id, username) VALUES ($1, $2) ON CONFLICT (username) DO NOTHING";
const INSERT_IDENTITY: &str =
    "INSERT INTO oauth_identities (provider, subject, user_id) VALUES ($1, $2, $3)";

/// The account linked to this provider identity, created on first login with a username
/// derived from the provider's (suffixed when taken). Returns whether it was created.
async fn link_account(
    state: &AppState,
    provider: &str,
    subject: &str,
    login: &str,
) -> Result<(Uuid, String, bool)> {
    let db = &state.db;
    let found: Option<(Uuid, String)> = db
        .spans
        .run(
            FIND_IDENTITY,
            sqlx::query_as(FIND_IDENTITY)
                .bind(provider)
                .bind(subject)
                .fetch_optional(&db.pool),
        )
        .await?;
    if let Some((id, username)) = found {
        return Ok((id, username, false));
    }
    let base = username_from(login);
    let id = Uuid::now_v7();
    let mut tx = db.spans.run("BEGIN", db.pool.begin()).await?;
    let mut username = base.clone();
    for n in 1..=50u32 {
        let inserted = db
            .spans
            .run(
                INSERT_USER,
                sqlx::query(INSERT_USER)
                    .bind(id)
                    .bind(&username)
                    .execute(&mut *tx),
            )
            .await?
            .rows_affected();
        if inserted == 1 {
            break;
        }
        if n == 50 {
            return Err(ApiError::Conflict(
                "could not find a free username for this login".into(),
            ));
        }
        username = format!("{}_{}", &base[..base.len().min(24)], n + 1);
    }
    db.spans
        .run(
            INSERT_IDENTITY,
            sqlx::query(INSERT_IDENTITY)
                .bind(provider)
                .bind(subject)
                .bind(id)
                .execute(&mut *tx),
        )
        .await?;
    db.spans.run("COMMIT", tx.commit()).await?;
    Ok((id, username, true))
}

/// A valid socialnet username from whatever the provider calls the user.
pub fn username_from(login: &str) -> String {
    let local = login.split('@').next().unwrap_or(login);
    let mut u: String = local
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(30)
        .collect();
    while u.len() < 3 {
        u.push('_');
    }
    if super::accounts::check_username(&u).is_err() {
        u = format!("{}_user", &u[..u.len().min(24)]);
    }
    u
}

pub(crate) fn providers_from(
    config: &crate::config::Config,
) -> (HashMap<String, Provider>, Vec<(&'static str, &'static str)>) {
    let mut map = HashMap::new();
    let mut missing = Vec::new();
    match (&config.github_client_id, &config.github_client_secret) {
        (Some(id), Some(secret)) => {
            map.insert(
                "github".to_owned(),
                Provider::github(id.clone(), secret.clone()),
            );
        }
        _ => missing.push(("github", "AUTH_GITHUB")),
    }
    match (&config.google_client_id, &config.google_client_secret) {
        (Some(id), Some(secret)) => {
            map.insert(
                "google".to_owned(),
                Provider::google(id.clone(), secret.clone()),
            );
        }
        _ => missing.push(("google", "AUTH_GOOGLE")),
    }
    if config.dev_idp {
        map.insert(
            "dev".to_owned(),
            Provider::dev(&config.public_url, &config.self_url),
        );
    }
    (map, missing)
}
