//! Cache-aside profiles: hits, invalidation on write, and reads that bypass a dead Redis.

use std::time::Duration;

use common::testkit::{RedisServer, Req};
use telemetry::testing::Value;
use telemetry::testing::{Trace, Traceparent, attr};

use crate::Harness;

async fn traced_get(h: &Harness, path: &str) -> Trace {
    let tp = Traceparent::random();
    Req::get(path)
        .traceparent(&tp)
        .send(&h.app)
        .await
        .expect(200);
    Trace::wait(tp.trace_id, Duration::from_secs(5), |t| {
        t.has("GET /api/profiles/{username}")
    })
}

#[tokio::test]
async fn profile_reads_are_cache_aside() {
    let h = Harness::new().await;
    h.user("frank").await;
    let first = traced_get(&h, "/api/profiles/frank").await;
    let server = first.one("GET /api/profiles/{username}");
    assert_eq!(attr(server, "cache.hit"), Some(Value::Bool(false)));
    assert!(
        first.has("SELECT profiles") && first.has("SET"),
        "{:?}",
        first.names()
    );
    let second = traced_get(&h, "/api/profiles/frank").await;
    let server = second.one("GET /api/profiles/{username}");
    assert_eq!(attr(server, "cache.hit"), Some(Value::Bool(true)));
    assert!(
        !second.has("SELECT profiles"),
        "a hit does not touch PostgreSQL: {:?}",
        second.names()
    );
}

#[tokio::test]
async fn with_redis_stopped_reads_come_from_postgres_and_readiness_degrades() {
    let mut redis = RedisServer::start().await;
    let h = Harness::with_redis(&redis.url).await;
    h.user("grace").await;
    traced_get(&h, "/api/profiles/grace").await;
    redis.stop();
    let t = traced_get(&h, "/api/profiles/grace").await;
    let server = t.one("GET /api/profiles/{username}");
    assert_eq!(attr(server, "cache.bypassed"), Some(Value::Bool(true)));
    assert!(t.has("SELECT profiles"), "{:?}", t.names());
    let ready = Req::get("/readyz").send(&h.app).await.expect(200);
    assert_eq!(ready.json["status"], "degraded", "{}", ready.text);
    assert_eq!(ready.json["checks"]["postgres"], "ok");
}
