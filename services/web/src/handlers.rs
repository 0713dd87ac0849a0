//! The page handlers: read the session, call the APIs as its account, render. Every
//! state-changing form is a POST with the session's CSRF token, answered with a 303 to
//! the page that shows the change (post/redirect/get). Pages are not cached, carry a
//! Content-Security-Policy that allows only the site's own script and style, and name
//! their server span in `<meta name="traceparent">`.

// A refusal here is the page sent instead (`Err(Response)`), on the cold path: boxing
// it would only add an allocation to every refusal.
#![allow(clippy::result_large_err)]

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::Markup;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{self, Failure};
use crate::pages::{self, Viewer};
use crate::session::{self, PRE, Session};
use crate::state::AppState;

/// Only the site's own scripts and styles; forms post only to it; never framed.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'";

/// The page's server span, for `<meta name="traceparent">`.
fn traceparent() -> String {
    let cx = telemetry::current_span_context();
    format!("00-{}-{}-01", cx.trace_id(), cx.span_id())
}

/// An HTML answer with the pages' security headers.
pub(crate) fn html(status: StatusCode, body: Markup) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "same-origin"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body.into_string(),
    )
        .into_response()
}

pub(crate) fn page(
    status: StatusCode,
    title: &str,
    viewer: Option<&Session>,
    content: Markup,
) -> Response {
    let v = viewer.map(|s| Viewer {
        username: &s.username,
        csrf: &s.csrf,
    });
    html(
        status,
        pages::layout(title, &traceparent(), v.as_ref(), content),
    )
}

pub(crate) fn see_other(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response()
}

/// Back to sign-in, the session cookie cleared.
fn signed_out(state: &AppState) -> Response {
    let mut r = see_other("/signin");
    r.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(session::COOKIE, "", 0, state.secure_cookies),
    );
    r
}

pub(crate) fn problem(status: StatusCode, message: &str, viewer: Option<&Session>) -> Response {
    let trace = telemetry::current_trace_id();
    page(
        status,
        "Something went wrong",
        viewer,
        pages::problem(message, &trace),
    )
}

pub(crate) fn failed(state: &AppState, f: Failure, viewer: Option<&Session>) -> Response {
    match f {
        Failure::SignedOut => signed_out(state),
        Failure::Unreachable(e) => {
            tracing::warn!(error = %e, "the APIs could not be reached");
            problem(
                StatusCode::BAD_GATEWAY,
                "The network's services could not be reached; try again shortly.",
                viewer,
            )
        }
        Failure::Database(e) => {
            tracing::error!(error = %e, "web's database failed");
            problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "Sessions are unavailable right now; try again shortly.",
                viewer,
            )
        }
    }
}

/// The signed-in session, or the response that sends the browser to sign in.
pub(crate) async fn signed_in(state: &AppState, headers: &HeaderMap) -> Result<Session, Response> {
    match session::load(state, headers).await {
        Ok(Some(s)) => Ok(s),
        Ok(None) => Err(see_other("/signin")),
        Err(e) => Err(failed(state, Failure::Database(e), None)),
    }
}

/// The form's CSRF token against the session's: a mismatch is refused with 403.
pub(crate) fn check_csrf(s: &Session, given: &str) -> Result<(), Response> {
    if session::same(&s.csrf, given) {
        Ok(())
    } else {
        Err(problem(
            StatusCode::FORBIDDEN,
            "This form has expired or did not come from this site; go back, reload the page and try again.",
            Some(s),
        ))
    }
}

fn form_error(r: FormRejection, viewer: Option<&Session>) -> Response {
    problem(
        StatusCode::BAD_REQUEST,
        &format!("The form could not be read: {}", r.body_text()),
        viewer,
    )
}

#[derive(Debug, Deserialize)]
pub struct Cursor {
    pub cursor: Option<i64>,
}

/// One page of posts from `api_path` (which takes `limit` and `cursor`), and where the
/// next page is: `page_path` and `fragment_path` with `?cursor=`.
async fn posts_page(
    state: &AppState,
    s: &mut Session,
    api_path: &str,
    cursor: Option<i64>,
    (page_path, fragment_path): (&str, &str),
) -> Result<(Vec<Value>, Option<pages::Next>), Failure> {
    let path = match cursor {
        Some(c) => format!("{api_path}?limit=20&cursor={c}"),
        None => format!("{api_path}?limit=20"),
    };
    let a = api::as_user(state, s, Method::GET, &path, None).await?;
    let items = a.body["items"].as_array().cloned().unwrap_or_default();
    let next = a.body["next_cursor"].as_i64().map(|c| pages::Next {
        page: format!("{page_path}?cursor={c}"),
        fragment: format!("{fragment_path}?cursor={c}"),
    });
    Ok((items, next))
}

async fn timeline_page(
    state: &AppState,
    s: &mut Session,
    cursor: Option<i64>,
) -> Result<(Vec<Value>, Option<pages::Next>), Failure> {
    posts_page(
        state,
        s,
        "/api/feed/timeline",
        cursor,
        ("/", "/fragments/timeline"),
    )
    .await
}

/// `GET /`: the composer and the home timeline.
pub async fn home(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<Cursor>,
) -> Response {
    let mut s = match signed_in(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    match timeline_page(&state, &mut s, q.cursor).await {
        Ok((items, next)) => page(
            StatusCode::OK,
            "Home",
            Some(&s),
            pages::home(&s.csrf, &items, next, None),
        ),
        Err(f) => failed(&state, f, Some(&s)),
    }
}

/// `GET /fragments/timeline`: the next page of posts alone, for "older posts" in place.
pub async fn timeline_fragment(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<Cursor>,
) -> Response {
    let mut s = match session::load(&state, &headers).await {
        Ok(Some(s)) => s,
        _ => return (StatusCode::UNAUTHORIZED, "sign in first").into_response(),
    };
    fragment(timeline_page(&state, &mut s, q.cursor).await)
}

/// `GET /fragments/u/{username}`: the next page of someone's posts alone.
pub async fn user_posts_fragment(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(q): Query<Cursor>,
) -> Response {
    let mut s = match session::load(&state, &headers).await {
        Ok(Some(s)) => s,
        _ => return (StatusCode::UNAUTHORIZED, "sign in first").into_response(),
    };
    if !plain_name(&name) {
        return (StatusCode::NOT_FOUND, "no such person").into_response();
    }
    let got = user_posts(&state, &mut s, &name, q.cursor).await;
    fragment(got)
}

fn fragment(got: Result<(Vec<Value>, Option<pages::Next>), Failure>) -> Response {
    match got {
        Ok((items, next)) => html(StatusCode::OK, pages::posts(&items, next)),
        Err(_) => (StatusCode::BAD_GATEWAY, "the posts could not be read").into_response(),
    }
}

async fn user_posts(
    state: &AppState,
    s: &mut Session,
    name: &str,
    cursor: Option<i64>,
) -> Result<(Vec<Value>, Option<pages::Next>), Failure> {
    posts_page(
        state,
        s,
        &format!("/api/feed/users/{name}/posts"),
        cursor,
        (&format!("/u/{name}"), &format!("/fragments/u/{name}")),
    )
    .await
}

/// The anonymous forms' double-submit token: the `pre` cookie's, or a new one.
fn pre_token(headers: &HeaderMap) -> (String, bool) {
    match session::cookie(headers, PRE).filter(|v| v.len() == 64) {
        Some(t) => (t, false),
        None => (session::random_token(), true),
    }
}

/// The identity providers auth offers, as (name, button label); none when it cannot say.
async fn providers(state: &AppState) -> Vec<(String, String)> {
    match api::call(state, Method::GET, "/api/auth/oauth/providers", None, None).await {
        Ok(a) if a.ok() => a.body["providers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|n| (n.to_owned(), crate::oauth::label(n)))
            .collect(),
        _ => Vec::new(),
    }
}

async fn sign_in_page(
    state: &AppState,
    headers: &HeaderMap,
    register: bool,
    status: StatusCode,
    error: Option<&str>,
) -> Response {
    let (pre, new) = pre_token(headers);
    let title = if register { "Register" } else { "Sign in" };
    let oauth = if register {
        Vec::new()
    } else {
        providers(state).await
    };
    let mut r = page(
        status,
        title,
        None,
        pages::sign_in(&pre, register, error, &oauth),
    );
    if new {
        r.headers_mut().append(
            header::SET_COOKIE,
            session::set_cookie(PRE, &pre, 3600, state.secure_cookies),
        );
    }
    r
}

/// `GET /signin`.
pub async fn sign_in_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    sign_in_page(&state, &headers, false, StatusCode::OK, None).await
}

/// `GET /register`.
pub async fn register_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    sign_in_page(&state, &headers, true, StatusCode::OK, None).await
}

#[derive(Debug, Deserialize)]
pub struct Credentials {
    pub csrf: String,
    pub username: String,
    pub password: String,
}

async fn sign_in_as(
    state: AppState,
    headers: HeaderMap,
    form: Result<Form<Credentials>, FormRejection>,
    register: bool,
) -> Response {
    let Form(c) = match form {
        Ok(f) => f,
        Err(r) => return form_error(r, None),
    };
    let pre = session::cookie(&headers, PRE).unwrap_or_default();
    if pre.is_empty() || !session::same(&pre, &c.csrf) {
        return sign_in_page(
            &state,
            &headers,
            register,
            StatusCode::FORBIDDEN,
            Some("This form has expired; please try again."),
        )
        .await;
    }
    let path = if register {
        "/api/auth/register"
    } else {
        "/api/auth/login"
    };
    let body = json!({"username": c.username, "password": c.password});
    let a = match api::call(&state, Method::POST, path, None, Some(&body)).await {
        Ok(a) => a,
        Err(f) => return failed(&state, f, None),
    };
    if !a.ok() {
        let status = StatusCode::from_u16(a.status)
            .ok()
            .filter(StatusCode::is_client_error)
            .unwrap_or(StatusCode::BAD_GATEWAY);
        return sign_in_page(&state, &headers, register, status, Some(&a.message())).await;
    }
    start_session(&state, &a).await
}

/// A new session for auth's token answer: the cookie set, home next.
pub(crate) async fn start_session(state: &AppState, a: &api::Answer) -> Response {
    let (Some(access), Some(refresh), Some(username)) = (
        a.body["access_token"].as_str(),
        a.body["refresh_token"].as_str(),
        a.body["user"]["username"].as_str(),
    ) else {
        return problem(
            StatusCode::BAD_GATEWAY,
            "auth answered a sign-in without its tokens.",
            None,
        );
    };
    match session::create(state, username, access, refresh).await {
        Ok(id) => {
            let mut r = see_other("/");
            let h = r.headers_mut();
            h.append(
                header::SET_COOKIE,
                session::set_cookie(
                    session::COOKIE,
                    &id,
                    state.session_ttl_secs,
                    state.secure_cookies,
                ),
            );
            h.append(
                header::SET_COOKIE,
                session::set_cookie(PRE, "", 0, state.secure_cookies),
            );
            r
        }
        Err(e) => failed(state, Failure::Database(e), None),
    }
}

/// `POST /signin`.
pub async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<Credentials>, FormRejection>,
) -> Response {
    sign_in_as(state, headers, form, false).await
}

/// `POST /register`.
pub async fn register(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<Credentials>, FormRejection>,
) -> Response {
    sign_in_as(state, headers, form, true).await
}

#[derive(Debug, Deserialize)]
pub struct CsrfOnly {
    pub csrf: String,
}

#[derive(Debug, Deserialize)]
pub struct Text {
    pub csrf: String,
    pub body: String,
}

/// Reads the session and the form, and checks the form's CSRF token.
pub(crate) async fn posted<T: HasCsrf>(
    state: &AppState,
    headers: &HeaderMap,
    form: Result<Form<T>, FormRejection>,
) -> Result<(Session, T), Response> {
    let s = signed_in(state, headers).await?;
    let Form(f) = form.map_err(|r| form_error(r, Some(&s)))?;
    check_csrf(&s, f.csrf())?;
    Ok((s, f))
}

pub(crate) trait HasCsrf {
    fn csrf(&self) -> &str;
}

impl HasCsrf for CsrfOnly {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

impl HasCsrf for Text {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// A read as the session's account: its body, or the page that says why not
/// (`missing`: what a 404 means here).
pub(crate) async fn read(
    state: &AppState,
    s: &mut Session,
    path: &str,
    missing: &str,
) -> Result<Value, Response> {
    match api::as_user(state, s, Method::GET, path, None).await {
        Ok(a) if a.ok() => Ok(a.body),
        Ok(a) if a.status == 404 => Err(problem(StatusCode::NOT_FOUND, missing, Some(s))),
        Ok(a) => Err(problem(StatusCode::BAD_GATEWAY, &a.message(), Some(s))),
        Err(f) => Err(failed(state, f, Some(s))),
    }
}

/// After a write: back to `to`, or the API's refusal shown.
pub(crate) fn after(
    state: &AppState,
    s: &Session,
    a: Result<api::Answer, Failure>,
    to: &str,
) -> Response {
    match a {
        Ok(a) if a.ok() => see_other(to),
        Ok(a) => refused(&a, s),
        Err(f) => failed(state, f, Some(s)),
    }
}

/// The API's refusal shown: its 4xx and message (a 5xx is the gateway's to own: 502).
pub(crate) fn refused(a: &api::Answer, s: &Session) -> Response {
    problem(
        StatusCode::from_u16(a.status)
            .ok()
            .filter(|c| c.is_client_error())
            .unwrap_or(StatusCode::BAD_GATEWAY),
        &a.message(),
        Some(s),
    )
}

/// `POST /signout`: the session ends here and at auth.
pub async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<CsrfOnly>, FormRejection>,
) -> Response {
    let (s, _) = match posted(&state, &headers, form).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let body = json!({"refresh_token": s.refresh});
    if let Err(Failure::Unreachable(e)) =
        api::call(&state, Method::POST, "/api/auth/logout", None, Some(&body)).await
    {
        tracing::warn!(error = %e, "auth could not be told of the sign-out");
    }
    if let Err(e) = session::delete(&state, &s).await {
        return failed(&state, Failure::Database(e), Some(&s));
    }
    signed_out(&state)
}

/// `GET /posts/{id}`: a post, its comments, like and comment.
pub async fn post_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    let mut s = match signed_in(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let post = match read(
        &state,
        &mut s,
        &format!("/api/feed/posts/{id}"),
        "No such post.",
    )
    .await
    {
        Ok(v) => v,
        Err(r) => return r,
    };
    let comments = match api::as_user(
        &state,
        &mut s,
        Method::GET,
        &format!("/api/feed/posts/{id}/comments?limit=50"),
        None,
    )
    .await
    {
        Ok(a) => a.body["items"].as_array().cloned().unwrap_or_default(),
        Err(f) => return failed(&state, f, Some(&s)),
    };
    page(
        StatusCode::OK,
        "Post",
        Some(&s),
        pages::post(&s.csrf, &post, &comments),
    )
}

/// `POST /posts/{id}/comments`.
pub async fn comment(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    form: Result<Form<Text>, FormRejection>,
) -> Response {
    let (mut s, f) = match posted(&state, &headers, form).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let body = json!({"body": f.body});
    let a = api::as_user(
        &state,
        &mut s,
        Method::POST,
        &format!("/api/feed/posts/{id}/comments"),
        Some(&body),
    )
    .await;
    after(&state, &s, a, &format!("/posts/{id}"))
}

/// `POST /posts/{id}/like`.
pub async fn like(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    form: Result<Form<CsrfOnly>, FormRejection>,
) -> Response {
    let (mut s, _) = match posted(&state, &headers, form).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let a = api::as_user(
        &state,
        &mut s,
        Method::PUT,
        &format!("/api/feed/posts/{id}/like"),
        None,
    )
    .await;
    after(&state, &s, a, &format!("/posts/{id}"))
}

/// Usernames are the API's to judge; here only what can sit in a path.
pub(crate) fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

/// `GET /u/{username}`: a profile, follow or unfollow, their posts.
pub async fn profile_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(q): Query<Cursor>,
) -> Response {
    let mut s = match signed_in(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !plain_name(&name) {
        return problem(StatusCode::NOT_FOUND, "No such person.", Some(&s));
    }
    let profile = match read(
        &state,
        &mut s,
        &format!("/api/profiles/{name}"),
        "No such person.",
    )
    .await
    {
        Ok(v) => v,
        Err(r) => return r,
    };
    let (posts, next) = match user_posts(&state, &mut s, &name, q.cursor).await {
        Ok(x) => x,
        Err(f) => return failed(&state, f, Some(&s)),
    };
    let me = s.username == name;
    let following = if me {
        false
    } else {
        let path = format!("/api/profiles/{}/following?limit=1000", s.username);
        match api::as_user(&state, &mut s, Method::GET, &path, None).await {
            Ok(a) => a.body["items"]
                .as_array()
                .is_some_and(|v| v.iter().any(|p| p["username"] == name.as_str())),
            Err(f) => return failed(&state, f, Some(&s)),
        }
    };
    page(
        StatusCode::OK,
        &format!("@{name}"),
        Some(&s),
        pages::profile(&s.csrf, &profile, me, following, &posts, next),
    )
}

async fn follow_as(
    state: AppState,
    headers: HeaderMap,
    name: String,
    form: Result<Form<CsrfOnly>, FormRejection>,
    method: Method,
) -> Response {
    let (mut s, _) = match posted(&state, &headers, form).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if !plain_name(&name) {
        return problem(StatusCode::NOT_FOUND, "No such person.", Some(&s));
    }
    let a = api::as_user(
        &state,
        &mut s,
        method,
        &format!("/api/profiles/{name}/follow"),
        None,
    )
    .await;
    after(&state, &s, a, &format!("/u/{name}"))
}

/// `POST /u/{username}/follow`.
pub async fn follow(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    form: Result<Form<CsrfOnly>, FormRejection>,
) -> Response {
    follow_as(state, headers, name, form, Method::PUT).await
}

/// `POST /u/{username}/unfollow`.
pub async fn unfollow(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    form: Result<Form<CsrfOnly>, FormRejection>,
) -> Response {
    follow_as(state, headers, name, form, Method::DELETE).await
}

async fn people_as(state: AppState, headers: HeaderMap, name: String, which: &str) -> Response {
    let mut s = match signed_in(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !plain_name(&name) {
        return problem(StatusCode::NOT_FOUND, "No such person.", Some(&s));
    }
    let path = format!("/api/profiles/{name}/{which}?limit=100");
    match read(&state, &mut s, &path, "No such person.").await {
        Ok(body) => {
            let items = body["items"].as_array().cloned().unwrap_or_default();
            let title = format!("@{name}: {which}");
            page(
                StatusCode::OK,
                &title,
                Some(&s),
                pages::people(&title, &items),
            )
        }
        Err(r) => r,
    }
}

/// `GET /u/{username}/followers`.
pub async fn followers(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    people_as(state, headers, name, "followers").await
}

/// `GET /u/{username}/following`.
pub async fn following(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    people_as(state, headers, name, "following").await
}

#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    pub q: String,
}

/// `GET /search?q=`: people whose name matches (profile's search).
pub async fn search(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<SearchQuery>,
) -> Response {
    let mut s = match signed_in(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let text = q.q.trim().to_owned();
    if text.is_empty() {
        return page(
            StatusCode::OK,
            "Search",
            Some(&s),
            pages::search("", &[], None),
        );
    }
    let query =
        serde_urlencoded::to_string([("q", text.as_str()), ("limit", "20")]).unwrap_or_default();
    match api::as_user(
        &state,
        &mut s,
        Method::GET,
        &format!("/api/profiles/search?{query}"),
        None,
    )
    .await
    {
        Ok(a) if a.ok() => {
            let items = a.body.as_array().cloned().unwrap_or_default();
            page(
                StatusCode::OK,
                "Search",
                Some(&s),
                pages::search(&text, &items, None),
            )
        }
        // The API's own word on a query it refuses (too long, …).
        Ok(a) if (400..500).contains(&a.status) => page(
            StatusCode::from_u16(a.status).unwrap_or(StatusCode::BAD_REQUEST),
            "Search",
            Some(&s),
            pages::search(&text, &[], Some(&a.message())),
        ),
        Ok(a) => problem(StatusCode::BAD_GATEWAY, &a.message(), Some(&s)),
        Err(f) => failed(&state, f, Some(&s)),
    }
}

/// Any other path: a page that says so.
pub async fn not_found(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let s = session::load(&state, &headers).await.ok().flatten();
    problem(StatusCode::NOT_FOUND, "There is no such page.", s.as_ref())
}
