//! Conversations and messages over HTTP: one-to-one reuse, sequence numbers, retries
//! stored once, membership, read markers and unread counts, bad input.

use common::testkit::Req;
use serde_json::json;

use crate::Harness;

#[tokio::test]
async fn conversations_messages_retries_and_read_markers() {
    let h = Harness::new(1).await;
    let (ann, bob, eve) = (h.token("ann"), h.token("bob"), h.token("eve"));
    let app = h.app();

    let first = Req::post("/api/messages/conversations")
        .token(&ann)
        .json(json!({"members": ["bob"]}))
        .send(app)
        .await
        .expect(201);
    let id = first.json["id"].as_i64().expect("id");
    assert_eq!(first.json["members"], json!(["ann", "bob"]));
    // The same pair, from the other side: the same conversation.
    let again = Req::post("/api/messages/conversations")
        .token(&bob)
        .json(json!({"members": ["ann", "bob"]}))
        .send(app)
        .await
        .expect(200);
    assert_eq!(again.json["id"], id);

    let path = format!("/api/messages/conversations/{id}/messages");
    let mut seqs = Vec::new();
    for (i, body) in ["hi", "how are you?", "see you"].iter().enumerate() {
        let r = Req::post(&path)
            .token(&ann)
            .json(json!({"body": body, "client_id": format!("c{i}")}))
            .send(app)
            .await
            .expect(201);
        seqs.push(r.json["seq"].as_i64().expect("seq"));
    }
    assert_eq!(seqs, vec![1, 2, 3]);
    // A retry with the same client id is stored once and answers with the first seq.
    let retry = Req::post(&path)
        .token(&ann)
        .json(json!({"body": "how are you?", "client_id": "c1"}))
        .send(app)
        .await
        .expect(200);
    assert_eq!(retry.json["seq"], 2);

    let page = Req::get(&format!("{path}?limit=2"))
        .token(&bob)
        .send(app)
        .await
        .expect(200);
    let got: Vec<i64> = page.json["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|m| m["seq"].as_i64().expect("seq"))
        .collect();
    assert_eq!(got, vec![3, 2]);
    assert_eq!(page.json["next_before"], 2);
    let older = Req::get(&format!("{path}?before=2"))
        .token(&bob)
        .send(app)
        .await
        .expect(200);
    assert_eq!(older.json["items"][0]["body"], "hi");

    // Bob has read nothing; his read marker moves forward only, never past the newest.
    let list = Req::get("/api/messages/conversations")
        .token(&bob)
        .send(app)
        .await
        .expect(200);
    assert_eq!(list.json["items"][0]["unread"], 3);
    let read = format!("/api/messages/conversations/{id}/read");
    for (to, expect) in [(2, 2), (1, 2), (99, 3)] {
        let r = Req::post(&read)
            .token(&bob)
            .json(json!({"seq": to}))
            .send(app)
            .await
            .expect(200);
        assert_eq!(r.json["read_seq"], expect, "read up to {to}");
    }
    let one = Req::get(&format!("/api/messages/conversations/{id}"))
        .token(&bob)
        .send(app)
        .await
        .expect(200);
    assert_eq!(one.json["unread"], 0);

    // Eve is not a member: 403 on every path; an unknown conversation is 404.
    Req::get(&path)
        .token(&eve)
        .send(app)
        .await
        .expect_error(403, "forbidden");
    Req::post(&path)
        .token(&eve)
        .json(json!({"body": "let me in"}))
        .send(app)
        .await
        .expect_error(403, "forbidden");
    Req::post(&read)
        .token(&eve)
        .json(json!({"seq": 1}))
        .send(app)
        .await
        .expect_error(403, "forbidden");
    Req::get("/api/messages/conversations/999999999/messages")
        .token(&ann)
        .send(app)
        .await
        .expect_error(404, "not_found");
}

#[tokio::test]
async fn conversations_page_newest_activity_first() {
    let h = Harness::new(1).await;
    let ann = h.token("ann");
    let mut ids = Vec::new();
    for other in ["bob", "cat", "dan"] {
        ids.push(h.conversation(&ann, &[other]).await);
    }
    // Activity in the first moves it to the top.
    Req::post(&format!("/api/messages/conversations/{}/messages", ids[0]))
        .token(&ann)
        .json(json!({"body": "bump"}))
        .send(h.app())
        .await
        .expect(201);
    let p1 = Req::get("/api/messages/conversations?limit=2")
        .token(&ann)
        .send(h.app())
        .await
        .expect(200);
    let cursor = p1.json["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let p2 = Req::get(&format!(
        "/api/messages/conversations?limit=2&cursor={cursor}"
    ))
    .token(&ann)
    .send(h.app())
    .await
    .expect(200);
    let order: Vec<i64> = p1.json["items"]
        .as_array()
        .into_iter()
        .chain(p2.json["items"].as_array())
        .flatten()
        .map(|c| c["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(order, vec![ids[0], ids[2], ids[1]]);
}

#[tokio::test]
async fn bad_input_is_a_clear_4xx() {
    let h = Harness::new(1).await;
    let ann = h.token("ann");
    let app = h.app();
    let cases = [
        (json!({"members": []}), "validation_failed"),
        (json!({"members": ["ann"]}), "validation_failed"),
        (json!({"members": ["Not A Name"]}), "validation_failed"),
        (
            json!({"members": (0..50).map(|i| format!("user{i:03}")).collect::<Vec<_>>()}),
            "validation_failed",
        ),
    ];
    for (body, code) in cases {
        Req::post("/api/messages/conversations")
            .token(&ann)
            .json(body)
            .send(app)
            .await
            .expect_error(422, code);
    }
    let id = h.conversation(&ann, &["bob"]).await;
    let path = format!("/api/messages/conversations/{id}/messages");
    Req::post(&path)
        .token(&ann)
        .json(json!({"body": "   "}))
        .send(app)
        .await
        .expect_error(422, "validation_failed");
    Req::get(&format!("{path}?limit=0"))
        .token(&ann)
        .send(app)
        .await
        .expect_error(422, "validation_failed");
    Req::get("/api/messages/conversations?cursor=nonsense")
        .token(&ann)
        .send(app)
        .await
        .expect_error(400, "invalid_cursor");
    Req::get(&path)
        .send(app)
        .await
        .expect_error(401, "unauthorized");
    // The socket without an upgrade.
    Req::get("/api/messages/ws?ticket=abc")
        .send(app)
        .await
        .expect_error(400, "not_websocket");
}

/// The router and the generated OpenAPI document agree.
#[tokio::test]
async fn the_openapi_document_matches_the_routes() {
    let h = Harness::new(1).await;
    let n = common::testkit::check_openapi(h.app(), &messaging::openapi()).await;
    assert!(n >= 9, "{n} operations");
}
