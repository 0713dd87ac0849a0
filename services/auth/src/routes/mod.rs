//! Auth's HTTP routes, one file per resource.

pub mod accounts;
pub mod dev_idp;
pub mod jwks;
pub mod oauth;

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use http::request::Parts;

/// The client address as the gateway saw it (`X-Real-IP`, set by NGINX), falling back to
/// the socket peer. Services are only reachable through the gateway, which overwrites
/// the header, so a client cannot choose its own rate-limit bucket.
pub(crate) fn client_ip(
    headers: &http::HeaderMap,
    peer: Option<&ConnectInfo<SocketAddr>>,
) -> String {
    headers
        .get("x-real-ip")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| peer.map(|c| c.0.ip().to_string()))
        .unwrap_or_else(|| "unknown".into())
}

/// Extractor for [`client_ip`].
pub(crate) struct ClientIp(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>();
        Ok(Self(client_ip(&parts.headers, peer)))
    }
}
