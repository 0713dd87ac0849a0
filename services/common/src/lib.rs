//! Service plumbing shared by every socialnet service, so that no service depends on
//! another service's crate:
//!
//! - [`error`]: the `{error, message, trace_id}` body and the fallback for unknown
//!   routes; [`extract`]: JSON, path, query and form extractors whose rejections use it
//!   and that refuse text PostgreSQL cannot store;
//! - [`tokens`]: EdDSA access tokens (signed by auth, verified everywhere) and the
//!   [`tokens::AuthUser`] extractor; [`revocation`]: signed-out sessions, announced
//!   through Redis, whose tokens every service refuses;
//! - [`db`] and [`cache`]: PostgreSQL and Redis handles whose every call is traced;
//! - [`server`]: the layers every router gets, health endpoints, and `serve`;
//! - [`openapi`]: each service's OpenAPI document, generated from its handlers.
//!
//! Telemetry itself (exporters, spans, propagation) lives in the `telemetry` crate.

pub mod cache;
pub mod db;
pub mod error;
pub mod extract;
pub mod openapi;
pub mod revocation;
pub mod server;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod tokens;

pub use cache::Cache;
pub use db::Db;
pub use error::{ApiError, ErrorBody};
pub use extract::{Form, Json, Path, Query};
pub use tokens::{AuthUser, Claims, MaybeAuthUser, TokenVerifier};
