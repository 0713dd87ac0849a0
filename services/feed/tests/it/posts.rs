//! Posts, likes and comments: written, read, deleted by their author, counted, and bad
//! input refused clearly.

use common::testkit::Req;
use serde_json::json;

use crate::Harness;

#[tokio::test]
async fn posts_can_be_created_read_and_deleted_by_their_author() {
    let h = Harness::new(1000).await;
    let (_, ann) = h.user("ann").await;
    let (_, ben) = h.user("ben").await;
    let id = h.post(&ann, "first post").await;
    let p = Req::get(&format!("/api/feed/posts/{id}"))
        .send(&h.app)
        .await
        .expect(200);
    assert_eq!(p.json["author_username"], "ann");
    assert_eq!(p.json["body"], "first post");
    Req::delete(&format!("/api/feed/posts/{id}"))
        .token(&ben)
        .send(&h.app)
        .await
        .expect_error(403, "forbidden");
    Req::delete(&format!("/api/feed/posts/{id}"))
        .token(&ann)
        .send(&h.app)
        .await
        .expect(204);
    Req::get(&format!("/api/feed/posts/{id}"))
        .send(&h.app)
        .await
        .expect_error(404, "not_found");
    Req::delete(&format!("/api/feed/posts/{id}"))
        .token(&ann)
        .send(&h.app)
        .await
        .expect_error(404, "not_found");
}

#[tokio::test]
async fn bad_posts_are_refused_clearly() {
    let h = Harness::new(1000).await;
    let (_, t) = h.user("cat").await;
    Req::post("/api/feed/posts")
        .token(&t)
        .json(json!({"body": "  "}))
        .send(&h.app)
        .await
        .expect_error(422, "validation_failed");
    Req::post("/api/feed/posts")
        .token(&t)
        .json(json!({"body": "x".repeat(501)}))
        .send(&h.app)
        .await
        .expect_error(422, "validation_failed");
    // The limit counts what was sent, as the schema's maxLength does: blanks included.
    Req::post("/api/feed/posts")
        .token(&t)
        .json(json!({"body": format!("{} ", "x".repeat(500))}))
        .send(&h.app)
        .await
        .expect_error(422, "validation_failed");
    Req::post("/api/feed/posts")
        .token(&t)
        .json(json!({"body": "é".repeat(500)}))
        .send(&h.app)
        .await
        .expect(201);
    Req::post("/api/feed/posts")
        .token(&t)
        .json(json!({"text": "hi"}))
        .send(&h.app)
        .await
        .expect_error(422, "validation_failed");
    Req::post("/api/feed/posts")
        .json(json!({"body": "hi"}))
        .send(&h.app)
        .await
        .expect_error(401, "unauthorized");
    Req::get("/api/feed/posts/abc")
        .send(&h.app)
        .await
        .expect_error(404, "not_found");
    Req::get("/api/feed/posts/999999")
        .send(&h.app)
        .await
        .expect_error(404, "not_found");
    Req::get("/api/feed/timeline?limit=1000")
        .token(&t)
        .send(&h.app)
        .await
        .expect_error(422, "validation_failed");
}

#[tokio::test]
async fn likes_and_comments_are_idempotent_and_counted() {
    let h = Harness::new(1000).await;
    let (_, dee) = h.user("dee").await;
    let (_, eve) = h.user("eve").await;
    let id = h.post(&dee, "like me").await;
    for _ in 0..2 {
        let r = Req::put(&format!("/api/feed/posts/{id}/like"))
            .token(&eve)
            .send(&h.app)
            .await
            .expect(200);
        assert_eq!(r.json["like_count"], 1);
    }
    Req::put(&format!("/api/feed/posts/{id}/like"))
        .token(&dee)
        .send(&h.app)
        .await
        .expect(200);
    for _ in 0..2 {
        let r = Req::delete(&format!("/api/feed/posts/{id}/like"))
            .token(&eve)
            .send(&h.app)
            .await
            .expect(200);
        assert_eq!(r.json["like_count"], 1);
    }
    Req::put("/api/feed/posts/424242/like")
        .token(&eve)
        .send(&h.app)
        .await
        .expect_error(404, "not_found");
    for i in 0..5 {
        Req::post(&format!("/api/feed/posts/{id}/comments"))
            .token(&eve)
            .json(json!({"body": format!("comment {i}")}))
            .send(&h.app)
            .await
            .expect(201);
    }
    let page1 = Req::get(&format!("/api/feed/posts/{id}/comments?limit=3"))
        .send(&h.app)
        .await
        .expect(200);
    assert_eq!(page1.json["items"].as_array().unwrap().len(), 3);
    let cursor = page1.json["next_cursor"].as_i64().unwrap();
    let page2 = Req::get(&format!(
        "/api/feed/posts/{id}/comments?limit=3&cursor={cursor}"
    ))
    .send(&h.app)
    .await
    .expect(200);
    let bodies: Vec<&str> = page2.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["comment 3", "comment 4"]);
    assert!(page2.json["next_cursor"].is_null());
    let post = Req::get(&format!("/api/feed/posts/{id}"))
        .send(&h.app)
        .await
        .expect(200);
    assert_eq!(post.json["comment_count"], 5);
    assert_eq!(post.json["like_count"], 1);
    let mine = Req::get("/api/feed/users/dee/posts")
        .send(&h.app)
        .await
        .expect(200);
    assert_eq!(mine.json["items"][0]["id"], id);
}

#[tokio::test]
async fn the_openapi_document_is_generated_from_the_router_and_matches_it() {
    let h = Harness::new(1000).await;
    let doc = Req::get("/openapi.json").send(&h.app).await.expect(200);
    assert_eq!(
        doc.json["paths"]["/api/feed/posts"]["post"]["security"][0]["bearer"],
        serde_json::json!([])
    );
    let n = common::testkit::check_openapi(&h.app, &feed::openapi()).await;
    assert_eq!(n, 9, "every feed operation is documented and routed");
}

/// U+0000 in a post, a comment or an author name is a 422 naming the field, not a 500
/// from PostgreSQL.
#[tokio::test]
async fn a_nul_character_is_a_422_naming_the_field() {
    let h = Harness::new(1000).await;
    let (_, t) = h.user("nul_poster").await;
    let r = Req::post("/api/feed/posts")
        .token(&t)
        .json(json!({"body": "hi\u{0}"}))
        .send(&h.app)
        .await
        .expect_error(422, "validation_failed");
    assert!(
        r.json["message"].as_str().unwrap().starts_with("body"),
        "{}",
        r.text
    );
    let post = Req::post("/api/feed/posts")
        .token(&t)
        .json(json!({"body": "fine"}))
        .send(&h.app)
        .await
        .expect(201);
    Req::post(&format!("/api/feed/posts/{}/comments", post.json["id"]))
        .token(&t)
        .json(json!({"body": "\u{0}"}))
        .send(&h.app)
        .await
        .expect_error(422, "validation_failed");
    Req::get("/api/feed/users/x%00y/posts")
        .send(&h.app)
        .await
        .expect_error(422, "validation_failed");
}
