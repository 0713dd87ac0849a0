//! Feed's integration tests, against real PostgreSQL and Redis, with a real profile
//! service on a loopback port (feed reads the follow graph over HTTP), a real media
//! service and object store (feed checks a post's images with media), and a real NGINX
//! for the gateway test.

mod gateway;
mod post_media;
mod posts;
mod races;
mod timeline;

use axum::Router;
use common::testkit::{self, Req, TestKeys};
use common::{Cache, Db};
use serde_json::json;
use uuid::Uuid;

pub struct Harness {
    pub app: Router,
    pub profile: Router,
    pub profile_addr: std::net::SocketAddr,
    pub feed_addr: std::net::SocketAddr,
    pub keys: TestKeys,
    /// Feed's own database, for tests that compare counters with rows.
    pub db: Db,
    /// Media (with its worker), on the object store in `_objects`.
    pub media: Router,
    _objects: tempfile::TempDir,
}

impl Harness {
    pub async fn new(celebrity_threshold: i64) -> Self {
        Self::build(celebrity_threshold, &testkit::redis_url()).await
    }

    pub async fn build(celebrity_threshold: i64, redis_url: &str) -> Self {
        testkit::init_tracing();
        let keys = TestKeys::default();
        let profile_db_url = testkit::fresh_database("profile").await;
        let profile_db = Db::connect(&profile_db_url, 4, &profile::MIGRATOR)
            .await
            .expect("profile db");
        let profile = profile::app(profile::AppState {
            db: profile_db,
            cache: Cache::new(redis_url, &testkit::unique_prefix("profile")).expect("redis"),
            verifier: keys.verifier(),
            cache_ttl_secs: 60,
        });
        let profile_addr = testkit::spawn_app(profile.clone()).await;
        let (media, media_addr, objects_root) = media_service(&keys, redis_url).await;
        let feed_db_url = testkit::fresh_database("feed").await;
        let db = Db::connect(&feed_db_url, 4, &feed::MIGRATOR)
            .await
            .expect("feed db");
        let http = telemetry::HttpClient::new(std::time::Duration::from_secs(5));
        let state = feed::AppState {
            db: db.clone(),
            cache: Cache::new(redis_url, &testkit::unique_prefix("feed")).expect("redis"),
            verifier: keys.verifier(),
            profiles: feed::profile_client::ProfileClient::new(
                http.clone(),
                format!("http://{profile_addr}"),
            ),
            media: feed::media_client::MediaClient::new(http, format!("http://{media_addr}")),
            settings: feed::Settings {
                celebrity_threshold,
                timeline_cap: 800,
                timeline_ttl_secs: 600,
            },
        };
        let app = feed::app(state);
        let feed_addr = testkit::spawn_app(app.clone()).await;
        Self {
            app,
            profile,
            profile_addr,
            feed_addr,
            keys,
            db,
            media,
            _objects: objects_root,
        }
    }

    pub async fn user(&self, username: &str) -> (Uuid, String) {
        let id = Uuid::new_v4();
        let token = self.keys.token(id, username);
        Req::patch("/api/profiles/me")
            .token(&token)
            .json(json!({}))
            .send(&self.profile)
            .await
            .expect(200);
        (id, token)
    }

    pub async fn follow(&self, token: &str, username: &str) {
        Req::put(&format!("/api/profiles/{username}/follow"))
            .token(token)
            .send(&self.profile)
            .await
            .expect(200);
    }

    pub async fn post(&self, token: &str, body: &str) -> i64 {
        let r = Req::post("/api/feed/posts")
            .token(token)
            .json(json!({"body": body}))
            .send(&self.app)
            .await
            .expect(201);
        r.json["id"].as_i64().expect("post id")
    }
}

/// Media and its object store, in-process, trusting the same token keys; its worker runs.
async fn media_service(
    keys: &TestKeys,
    redis_url: &str,
) -> (Router, std::net::SocketAddr, tempfile::TempDir) {
    const ACCESS: &str = "feed-test";
    const SECRET: &str = "feed-test-secret";
    let root = tempfile::tempdir().expect("temp dir");
    let store = objects::router(&objects::Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        root: root.path().to_owned(),
        access_key: ACCESS.into(),
        secret_key: SECRET.into(),
        buckets: vec!["media".into()],
    })
    .expect("object store");
    let store_addr = testkit::spawn_app(store).await;
    let url = testkit::fresh_database("media").await;
    let state = media::AppState::with(
        Db::connect(&url, 4, &media::MIGRATOR)
            .await
            .expect("media db"),
        Cache::new(redis_url, &testkit::unique_prefix("media")).expect("redis"),
        keys.verifier(),
        media::objects::Objects::new(&media::config::StoreConfig {
            endpoint: format!("http://{store_addr}"),
            bucket: "media".into(),
            access_key: ACCESS.into(),
            secret_key: SECRET.into(),
        })
        .expect("object store client"),
        media::config::Limits::default(),
    );
    media::worker::start(state.clone(), 1, 60);
    let app = media::app(state);
    let addr = testkit::spawn_app(app.clone()).await;
    (app, addr, root)
}
