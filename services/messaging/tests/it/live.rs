//! The live socket: delivery across replicas through the gateway with linked traces,
//! backfill after a lost socket and during a Redis outage, bad frames, tickets, presence.

use std::time::Duration;

use common::testkit::{self, Gateway, RedisServer, Req};
use serde_json::json;
use telemetry::testing::{Kind, Trace, Traceparent, assert_kind};

use crate::Harness;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_reaches_a_member_on_another_replica_with_linked_traces() {
    let h = Harness::new(2).await;
    h.subscribed().await;
    let (ann_name, bob_name) = (h.name("ann"), h.name("bob"));
    let (ann, bob) = (h.token(&ann_name), h.token(&bob_name));
    let id = h.conversation(&ann, &[&bob_name]).await;
    // Ann through the gateway (to replica A), Bob straight to replica B.
    let gw = Gateway::start(&[("messaging", h.replicas[0].1)]).await;
    let gw_addr = format!("127.0.0.1:{}", gw.port).parse().expect("addr");
    let mut a = h.socket(&ann, gw_addr).await;
    let mut b = h.socket(&bob, h.replicas[1].1).await;
    // A pong means the socket is registered with its replica.
    for s in [&mut a, &mut b] {
        s.send(json!({"type": "ping"})).await;
        s.next("pong").await;
    }

    let tp = Traceparent::random();
    a.send(json!({"type": "send", "id": "m1", "conversation_id": id, "body": "hello bob", "traceparent": tp.header()}))
        .await;
    let ack = a.next("ack").await;
    assert_eq!(ack["seq"], 1, "{ack}");
    assert_eq!(ack["trace_id"], tp.trace_id.to_string());
    let got = b.next("message").await;
    assert_eq!(got["message"]["body"], "hello bob");
    assert_eq!(got["message"]["sender"], ann_name.as_str());
    // The sender's other sockets get it too (here: her own, on replica A).
    assert_eq!(a.next("message").await["message"]["seq"], 1);

    // One trace for the message: the frame's span, the insert, the publish.
    let t = Trace::wait(tp.trace_id, Duration::from_secs(5), |t| {
        t.has("WS send") && t.has("send messaging.messages")
    });
    let frame = t.one("WS send");
    assert_kind(frame, Kind::Server);
    assert_eq!(frame.parent_span_id, tp.span_id);
    let producer = t.one("send messaging.messages");
    assert_kind(producer, Kind::Producer);
    assert!(t.descends(producer, frame));
    assert!(t.has("WITH messages"), "{:?}", t.names());
    // Each replica's consumer span is in a trace of its own, linked to the producer;
    // the two that delivered (to Ann's socket on A, to Bob's on B) say so. (The replicas
    // of tests running beside this one follow the same channel and deliver to nobody.)
    let exporter = telemetry::testing::init();
    let producer_id = producer.span_context.span_id();
    let delivering = || {
        exporter
            .get_finished_spans()
            .expect("spans")
            .into_iter()
            .filter(|s| {
                s.name == "process messaging.messages"
                    && s.links
                        .iter()
                        .any(|l| l.span_context.span_id() == producer_id)
                    && telemetry::testing::attr(s, "socialnet.messaging.recipients")
                        == Some(telemetry::testing::Value::I64(1))
            })
            .collect::<Vec<_>>()
    };
    testkit::wait_until(
        Duration::from_secs(5),
        "both delivering consumer spans",
        || {
            let n = delivering().len();
            async move { n == 2 }
        },
    )
    .await;
    let spans = exporter.get_finished_spans().expect("spans");
    for c in delivering() {
        assert_kind(&c, Kind::Consumer);
        assert_ne!(c.span_context.trace_id(), tp.trace_id, "a trace of its own");
        // Under it, the hand-off to the one recipient socket on that replica.
        let pushes: Vec<_> = spans
            .iter()
            .filter(|s| s.name == "WS push" && s.parent_span_id == c.span_context.span_id())
            .collect();
        assert_eq!(pushes.len(), 1, "one push per socket");
        assert_eq!(
            telemetry::testing::attr(pushes[0], "socialnet.ws.push.outcome"),
            Some(telemetry::testing::Value::String("queued".into()))
        );
    }
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_backfills_what_a_lost_socket_and_a_redis_outage_missed() {
    let mut redis = RedisServer::start().await;
    let h = Harness::with_redis(1, &redis.url).await;
    h.subscribed().await;
    let (ann_name, bob_name) = (h.name("ann"), h.name("bob"));
    let (ann, bob) = (h.token(&ann_name), h.token(&bob_name));
    let id = h.conversation(&ann, &[&bob_name]).await;
    let path = format!("/api/messages/conversations/{id}/messages");
    let app = h.app().clone();
    let send = |n: usize| {
        let ann = ann.clone();
        let path = path.clone();
        let app = app.clone();
        async move {
            Req::post(&path)
                .token(&ann)
                .json(json!({"body": format!("message {n}"), "client_id": format!("m{n}")}))
                .send(&app)
                .await
                .expect(201);
        }
    };

    // Bob's socket goes away; ten messages are sent; he comes back and syncs.
    let b = h.socket(&bob, h.replicas[0].1).await;
    b.close().await;
    for n in 1..=10 {
        send(n).await;
    }
    // Where he left off goes in the socket's URL: the backfill comes first thing.
    let mut b = h
        .socket_with(&bob, h.replicas[0].1, &format!("since={id}:0"))
        .await;
    // (A message still in flight on the channel may also arrive live, unmarked: clients
    // keep one copy per sequence number. The backfill itself is exact.)
    let (backfill, last) = b.backfill().await;
    assert_eq!(
        backfill,
        (1..=10).collect::<Vec<i64>>(),
        "in order, none twice"
    );
    assert_eq!(last, 10);

    // Redis goes down: sends still succeed and are stored; live delivery is lost, and
    // the open socket gets them by syncing from its last sequence.
    redis.stop();
    for n in 11..=20 {
        send(n).await;
    }
    b.send(json!({"type": "sync", "conversation_id": id, "since": 10}))
        .await;
    let (seen, last) = b.backfill().await;
    assert_eq!(
        seen,
        (11..=20).collect::<Vec<i64>>(),
        "in order, none twice"
    );
    assert_eq!(last, 20);
}

#[tokio::test]
async fn bad_frames_get_error_frames_and_the_socket_stays_up() {
    let h = Harness::new(1).await;
    let (ann_name, eve_name) = (h.name("ann"), h.name("eve"));
    let (ann, eve) = (h.token(&ann_name), h.token(&eve_name));
    let theirs = h.conversation(&ann, &[&h.name("bob")]).await;
    let mut s = h.socket(&eve, h.replicas[0].1).await;
    s.send_text("{not json".into()).await;
    assert_eq!(s.next("error").await["error"], "invalid_json");
    s.send(json!({"type": "dance"})).await;
    assert_eq!(s.next("error").await["error"], "unknown_type");
    s.send(json!({"type": "send", "conversation_id": theirs}))
        .await;
    assert_eq!(s.next("error").await["error"], "missing_field");
    s.send_text(format!(
        "{{\"type\":\"send\",\"body\":\"{}\"}}",
        "x".repeat(messaging::routes::live::MAX_FRAME)
    ))
    .await;
    assert_eq!(s.next("error").await["error"], "frame_too_large");
    s.send(json!({"type": "send", "id": "x1", "conversation_id": theirs, "body": "hi"}))
        .await;
    let e = s.next("error").await;
    assert_eq!(e["error"], "forbidden", "{e}");
    assert_eq!(e["id"], "x1");
    assert!(e["trace_id"].as_str().is_some_and(|t| t.len() == 32), "{e}");
    s.send(json!({"type": "ping"})).await;
    s.next("pong").await;
    s.close().await;
}

#[tokio::test]
async fn a_ticket_opens_one_socket_only() {
    let h = Harness::new(1).await;
    let ann = h.token(&h.name("ann"));
    let t = Req::post("/api/messages/ws-ticket")
        .token(&ann)
        .send(h.app())
        .await
        .expect(200);
    let url = format!(
        "ws://{}/api/messages/ws?ticket={}",
        h.replicas[0].1,
        t.json["ticket"].as_str().expect("ticket")
    );
    let (first, _) = tokio_tungstenite::connect_async(&url)
        .await
        .expect("first use");
    match tokio_tungstenite::connect_async(&url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 401),
        other => panic!("a used ticket must be refused with 401, got {other:?}"),
    }
    drop(first);
    // A malformed `since` is named before anything else happens.
    let r = Req::get("/api/messages/ws?since=12;40")
        .send(h.app())
        .await
        .expect(422);
    assert!(
        r.json["message"]
            .as_str()
            .is_some_and(|m| m.contains("<conversation>:<seq>")),
        "{}",
        r.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_follows_the_sockets() {
    let h = Harness::new(1).await;
    h.subscribed().await;
    let (ann_name, bob_name) = (h.name("ann"), h.name("bob"));
    let (ann, bob) = (h.token(&ann_name), h.token(&bob_name));
    h.conversation(&ann, &[&bob_name]).await;
    let app = h.app().clone();
    let online = |who: String| {
        let ann = ann.clone();
        let app = app.clone();
        async move {
            let r = Req::get(&format!("/api/messages/presence?users={who}"))
                .token(&ann)
                .send(&app)
                .await
                .expect(200);
            r.json["online"][&who].as_bool().expect("a boolean")
        }
    };
    assert!(!online(bob_name.clone()).await);
    let mut a = h.socket(&ann, h.replicas[0].1).await;
    // A pong means Ann's socket is registered with its replica.
    a.send(json!({"type": "ping"})).await;
    a.next("pong").await;
    let b = h.socket(&bob, h.replicas[0].1).await;
    // Ann is told when Bob comes and goes (announced after the presence key is set, so
    // the lookup agrees by then).
    let p = a.next("presence").await;
    assert_eq!(
        (p["user"].as_str(), p["online"].as_bool()),
        (Some(bob_name.as_str()), Some(true))
    );
    assert!(online(bob_name.clone()).await);
    b.close().await;
    let p = a.next("presence").await;
    assert_eq!(
        (p["user"].as_str(), p["online"].as_bool()),
        (Some(bob_name.as_str()), Some(false))
    );
    assert!(!online(bob_name.clone()).await);
    Req::get("/api/messages/presence?users=NOT%20A%20NAME")
        .token(&ann)
        .send(h.app())
        .await
        .expect_error(422, "validation_failed");
    a.close().await;
}

/// Without a ticket, the access token may ride in the subprotocol list; the server
/// selects `socialnet.v1`. Neither: 401.
#[tokio::test]
async fn the_token_may_come_as_a_subprotocol() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    let h = Harness::new(1).await;
    let ann = h.token(&h.name("ann"));
    let url = format!("ws://{}/api/messages/ws", h.replicas[0].1);
    let mut req = url.as_str().into_client_request().expect("request");
    req.headers_mut().insert(
        "sec-websocket-protocol",
        format!("socialnet.v1, bearer.{ann}")
            .parse()
            .expect("header"),
    );
    let (mut ws, res) = tokio_tungstenite::connect_async(req)
        .await
        .expect("upgrade with the token as a subprotocol");
    assert_eq!(
        res.headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok()),
        Some("socialnet.v1")
    );
    use futures_util::{SinkExt as _, StreamExt as _};
    ws.send(tokio_tungstenite::tungstenite::Message::Text(
        json!({"type": "ping"}).to_string().into(),
    ))
    .await
    .expect("send");
    let pong = ws.next().await.expect("a frame").expect("frame");
    assert!(pong.to_text().expect("text").contains("pong"), "{pong:?}");
    match tokio_tungstenite::connect_async(url.as_str()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 401),
        other => panic!("no ticket and no token must be 401, got {other:?}"),
    }
}

/// A user with sockets on two replicas stays online when one of them closes: that
/// replica removes only itself, and nobody is told "offline". Closing the other takes
/// them offline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_held_by_two_replicas_survives_one_closing() {
    let h = Harness::new(2).await;
    h.subscribed().await;
    let (ann_name, bob_name) = (h.name("ann"), h.name("bob"));
    let (ann, bob) = (h.token(&ann_name), h.token(&bob_name));
    h.conversation(&ann, &[&bob_name]).await;
    let online = || async {
        let r = Req::get(&format!("/api/messages/presence?users={bob_name}"))
            .token(&ann)
            .send(h.app())
            .await
            .expect(200);
        r.json["online"][&bob_name].as_bool().expect("a boolean")
    };
    let mut watcher = h.socket(&ann, h.replicas[0].1).await;
    watcher.send(json!({"type": "ping"})).await;
    watcher.next("pong").await;
    let mut on_a = h.socket(&bob, h.replicas[0].1).await;
    let mut on_b = h.socket(&bob, h.replicas[1].1).await;
    for s in [&mut on_a, &mut on_b] {
        s.send(json!({"type": "ping"})).await;
        s.next("pong").await;
    }
    assert!(online().await);
    // Bob leaves replica A; wait until A has let go of him.
    on_a.close().await;
    let hub_a = h.hubs[0].clone();
    let bob_a = bob_name.clone();
    testkit::wait_until(Duration::from_secs(5), "replica A let go of bob", || {
        let gone = !hub_a.users().contains(&bob_a);
        async move { gone }
    })
    .await;
    assert!(online().await, "still online through replica B");
    // Ann heard nothing about Bob going offline; her next frame answers her ping.
    watcher.send(json!({"type": "ping"})).await;
    loop {
        let f = watcher.next_any().await;
        if f["type"] == "pong" {
            break;
        }
        assert!(
            !(f["type"] == "presence" && f["online"] == false),
            "no offline announcement while B holds him: {f}"
        );
    }
    on_b.close().await;
    let p = watcher.next("presence").await;
    assert_eq!(
        (p["user"].as_str(), p["online"].as_bool()),
        (Some(bob_name.as_str()), Some(false))
    );
    assert!(!online().await);
    watcher.close().await;
}
