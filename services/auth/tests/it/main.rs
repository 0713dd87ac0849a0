//! Auth's integration tests against real PostgreSQL and Redis; auth and profile run on
//! loopback ports so registration and the OAuth back channel are real HTTP calls.

mod accounts;
mod oauth;
mod tokens;

use std::net::SocketAddr;

use auth::config::Config;
use axum::Router;
use clap::Parser;
use common::testkit;
use common::{Cache, Db};

pub struct Harness {
    pub app: Router,
    pub state: auth::AppState,
    pub addr: SocketAddr,
    pub profile: Router,
}

impl Harness {
    pub async fn new(extra: &[&str]) -> Self {
        Self::with(extra, |_| {}).await
    }

    /// Starts profile, then auth with `extra` flags; `tweak` may adjust the state.
    pub async fn with(extra: &[&str], tweak: impl FnOnce(&mut auth::AppState)) -> Self {
        testkit::init_tracing();
        let redis = testkit::redis_url();
        let profile_db = Db::connect(
            &testkit::fresh_database("profile").await,
            4,
            &profile::MIGRATOR,
        )
        .await
        .expect("profile db");
        // Auth's keys are not known until auth starts, so profile loads them over HTTP
        // from auth's JWKS endpoint, exactly as in production.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let http = telemetry::HttpClient::new(std::time::Duration::from_secs(5));
        let profile = profile::app(profile::AppState {
            db: profile_db,
            cache: Cache::new(&redis, &testkit::unique_prefix("profile")).expect("redis"),
            verifier: common::TokenVerifier::for_service(
                http,
                format!("http://{addr}/api/auth/jwks"),
                &redis,
            ),
            cache_ttl_secs: 60,
        });
        let profile_addr = testkit::spawn_app(profile.clone()).await;
        let db_url = testkit::fresh_database("auth").await;
        let self_url = format!("http://{addr}");
        let profile_url = format!("http://{profile_addr}");
        let prefix = testkit::unique_prefix("auth");
        let mut args = vec![
            "auth",
            "--database-url",
            &db_url,
            "--redis-url",
            &redis,
            "--redis-prefix",
            &prefix,
            "--profile-url",
            &profile_url,
            "--public-url",
            &self_url,
            "--self-url",
            &self_url,
        ];
        args.extend_from_slice(extra);
        let config = Config::try_parse_from(args).expect("test config parses");
        let mut state = auth::state(&config).await.expect("auth state");
        tweak(&mut state);
        let app = auth::app(state.clone());
        let served = app.clone();
        tokio::spawn(async move {
            axum::serve(
                listener,
                served.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .expect("serve auth");
        });
        Self {
            app,
            state,
            addr,
            profile,
        }
    }
}
