//! `GET /api/auth/jwks`: the public keys every service verifies access tokens with.

use axum::extract::State;
use common::Json;
use common::tokens::Jwks;

use crate::AppState;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(jwks))
}

/// The public keys access tokens are verified with.
#[utoipa::path(get, path = "/api/auth/jwks", tag = "keys",
    responses(
        (status = 200, description = "the key set", body = Jwks)))]
async fn jwks(State(state): State<AppState>) -> Json<Jwks> {
    Json((*state.jwks).clone())
}
