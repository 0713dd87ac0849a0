//! What every messaging handler can reach.

use std::sync::Arc;

use axum::extract::FromRef;
use common::{Cache, Db, TokenVerifier};

use crate::hub::Hub;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub db: Db,
    pub cache: Cache,
    pub verifier: Arc<TokenVerifier>,
    pub hub: Arc<Hub>,
}
