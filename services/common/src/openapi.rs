//! Each service's OpenAPI document, generated from its handlers (utoipa): every route is
//! registered through `utoipa_axum::routes!`, so the router and the document are made
//! from the same list. This module adds what every document shares (title, version, the
//! bearer scheme, the error body) and checks a router against its document in tests.

use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

/// The name of the bearer-token security scheme handlers refer to
/// (`security(("bearer" = []))`).
pub const BEARER: &str = "bearer";

/// Completes a service's generated document: its title and description, the version,
/// and the bearer scheme its protected operations name.
pub fn finish(mut api: OpenApi, title: &str, description: &str) -> OpenApi {
    api.info.title = title.to_owned();
    api.info.description = Some(description.to_owned());
    api.info.version = env!("CARGO_PKG_VERSION").to_owned();
    api.info.license = None;
    api.info.contact = None;
    let components = api.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(Some(
                    "An access token from POST /api/auth/login, /register or /refresh",
                ))
                .build(),
        ),
    );
    api
}

/// Every `(METHOD, path template)` the document describes, e.g. `("GET",
/// "/api/feed/posts/{id}")`.
pub fn operations(api: &OpenApi) -> Vec<(String, String)> {
    let doc = serde_json::to_value(api).expect("an OpenAPI document serialises");
    let mut out = Vec::new();
    if let Some(paths) = doc["paths"].as_object() {
        for (path, item) in paths {
            for method in ["get", "put", "post", "delete", "patch"] {
                if item.get(method).is_some() {
                    out.push((method.to_ascii_uppercase(), path.clone()));
                }
            }
        }
    }
    out.sort();
    out
}
