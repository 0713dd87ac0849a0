//! Home timelines: push fan-out, celebrity pull, paging, and a timeline rebuilt from
//! PostgreSQL when Redis is gone.

use std::time::Duration;

use common::testkit::{RedisServer, Req};
use telemetry::testing::{Trace, Traceparent, Value, attr};

use crate::Harness;

async fn read_timeline(h: &Harness, token: &str) -> (Vec<i64>, Trace) {
    let tp = Traceparent::random();
    let r = Req::get("/api/feed/timeline")
        .token(token)
        .traceparent(&tp)
        .send(&h.app)
        .await
        .expect(200);
    let ids = r.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect();
    let t = Trace::wait(tp.trace_id, Duration::from_secs(5), |t| {
        t.has("GET /api/feed/timeline")
    });
    (ids, t)
}

fn strategy(t: &Trace) -> String {
    attr(t.one("GET /api/feed/timeline"), "socialnet.feed.strategy")
        .unwrap()
        .as_str()
        .into_owned()
}

#[tokio::test]
async fn regular_authors_are_pushed_on_write() {
    let h = Harness::new(1000).await;
    let (_, reader) = h.user("reader").await;
    let (_, writer) = h.user("writer").await;
    h.follow(&reader, "writer").await;
    let older = h.post(&writer, "before the timeline existed").await;
    let (ids, t) = read_timeline(&h, &reader).await;
    assert_eq!(ids, [older]);
    assert_eq!(strategy(&t), "rebuild");
    let newer = h.post(&writer, "pushed").await;
    let (ids, t) = read_timeline(&h, &reader).await;
    assert_eq!(ids, [newer, older]);
    assert_eq!(strategy(&t), "push");
    assert_eq!(
        attr(t.one("GET /api/feed/timeline"), "cache.hit"),
        Some(Value::Bool(true))
    );
    assert!(t.has("LRANGE"), "{:?}", t.names());
}

#[tokio::test]
async fn celebrities_are_pulled_at_read_time() {
    let h = Harness::new(2).await;
    let (_, celeb) = h.user("celeb").await;
    let mut fans = Vec::new();
    for i in 0..3 {
        let (_, t) = h.user(&format!("fan{i}")).await;
        h.follow(&t, "celeb").await;
        fans.push(t);
    }
    read_timeline(&h, &fans[0]).await;
    let tp = Traceparent::random();
    let r = Req::post("/api/feed/posts")
        .token(&celeb)
        .traceparent(&tp)
        .json(serde_json::json!({"body": "hello fans"}))
        .send(&h.app)
        .await
        .expect(201);
    let id = r.json["id"].as_i64().unwrap();
    let t = Trace::wait(tp.trace_id, Duration::from_secs(5), |t| {
        t.has("feed.fan_out")
    });
    let fan_out = t.one("feed.fan_out");
    assert_eq!(
        attr(fan_out, "socialnet.feed.strategy").unwrap().as_str(),
        "pull"
    );
    assert_eq!(
        attr(fan_out, "socialnet.feed.fanout.count"),
        Some(Value::I64(0))
    );
    let (ids, t) = read_timeline(&h, &fans[0]).await;
    assert_eq!(ids, [id]);
    assert_eq!(strategy(&t), "push+pull");
}

#[tokio::test]
async fn with_redis_stopped_timelines_are_pulled_from_postgres() {
    let mut redis = RedisServer::start().await;
    let h = Harness::build(1000, &redis.url).await;
    let (_, reader) = h.user("rita").await;
    let (_, writer) = h.user("walt").await;
    h.follow(&reader, "walt").await;
    let id = h.post(&writer, "still readable").await;
    redis.stop();
    let (ids, t) = read_timeline(&h, &reader).await;
    assert_eq!(ids, [id]);
    assert_eq!(strategy(&t), "pull");
    assert_eq!(
        attr(t.one("GET /api/feed/timeline"), "cache.bypassed"),
        Some(Value::Bool(true))
    );
    // Writes still work too: the post is stored even though fan-out cannot reach Redis.
    h.post(&writer, "written while redis is down").await;
    let ready = Req::get("/readyz").send(&h.app).await.expect(200);
    assert_eq!(ready.json["status"], "degraded");
}
