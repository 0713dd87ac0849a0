//! Profile's integration tests, against the real PostgreSQL and Redis started by
//! `./dev.sh test`. One binary, a module per area.

mod cache;
mod follows;
mod profiles;
mod search;

use axum::Router;
use common::testkit::{self, Req, TestKeys};
use common::{Cache, Db};
use profile::AppState;
use serde_json::json;
use uuid::Uuid;

/// A profile app on a fresh database, with its own Redis key prefix.
pub struct Harness {
    pub app: Router,
    pub keys: TestKeys,
    pub db: Db,
}

impl Harness {
    pub async fn new() -> Self {
        Self::with_redis(&testkit::redis_url()).await
    }

    pub async fn with_redis(redis_url: &str) -> Self {
        testkit::init_tracing();
        let url = testkit::fresh_database("profile").await;
        let db = Db::connect(&url, 4, &profile::MIGRATOR)
            .await
            .expect("connect and migrate");
        let cache = Cache::new(redis_url, &testkit::unique_prefix("profile")).expect("redis url");
        let keys = TestKeys::default();
        let state = AppState {
            db: db.clone(),
            cache,
            verifier: keys.verifier(),
            cache_ttl_secs: 60,
        };
        Self {
            app: profile::app(state),
            keys,
            db,
        }
    }

    /// Creates a user's profile (as auth does at registration) and returns a token.
    pub async fn user(&self, username: &str) -> (Uuid, String) {
        let id = Uuid::new_v4();
        let token = self.keys.token(id, username);
        Req::patch("/api/profiles/me")
            .token(&token)
            .json(json!({}))
            .send(&self.app)
            .await
            .expect(200);
        (id, token)
    }
}
