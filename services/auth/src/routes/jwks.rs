//! `GET /api/auth/jwks`: the public keys every service verifies access tokens with.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use common::Json;
use common::tokens::Jwks;

use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/auth/jwks", get(jwks))
}

async fn jwks(State(state): State<AppState>) -> Json<Jwks> {
    Json((*state.jwks).clone())
}
