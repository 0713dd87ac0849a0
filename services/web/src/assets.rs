//! The site's own JavaScript and CSS (no npm: small, readable files in `static/`),
//! served under content-hashed names with a year's cache lifetime, so a new version is a
//! new URL and an old one is never stale.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest as _, Sha256};

const JS: &str = include_str!("../static/app.js");
const CSS: &str = include_str!("../static/app.css");

/// The budgets the pages are held to, uncompressed.
pub const JS_BUDGET: usize = 40 * 1024;
pub const CSS_BUDGET: usize = 30 * 1024;

fn named(stem: &str, ext: &str, body: &str) -> String {
    let digest = Sha256::digest(body.as_bytes());
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("/assets/{stem}-{hex}.{ext}")
}

static JS_PATH: LazyLock<String> = LazyLock::new(|| named("app", "js", JS));
static CSS_PATH: LazyLock<String> = LazyLock::new(|| named("app", "css", CSS));

pub fn js_path() -> String {
    JS_PATH.clone()
}

pub fn css_path() -> String {
    CSS_PATH.clone()
}

/// `GET /assets/{file}`: the current JS or CSS, cached for a year; anything else 404.
pub async fn serve(Path(file): Path<String>) -> Response {
    let path = format!("/assets/{file}");
    let (body, kind) = if path == *JS_PATH {
        (JS, "text/javascript; charset=utf-8")
    } else if path == *CSS_PATH {
        (CSS, "text/css; charset=utf-8")
    } else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_keep_to_their_budgets_and_are_named_by_content() {
        assert!(JS.len() <= JS_BUDGET, "app.js is {} bytes", JS.len());
        assert!(CSS.len() <= CSS_BUDGET, "app.css is {} bytes", CSS.len());
        assert!(js_path().starts_with("/assets/app-") && js_path().ends_with(".js"));
        assert_ne!(named("app", "js", "a"), named("app", "js", "b"));
    }
}
