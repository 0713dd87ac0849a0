//! Posts with images: feed checks each with media (exists, the author's, ready), keeps
//! the thumbnails' URLs, and timelines carry them.

use std::time::Duration;

use common::testkit::Req;
use serde_json::json;

use crate::Harness;

/// A PNG upload by `token`, waited for until media has processed it; its id.
async fn ready_image(h: &Harness, token: &str, seed: u8) -> String {
    let id = upload(h, token, seed).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let r = Req::get(&format!("/api/media/{id}"))
            .send(&h.media)
            .await
            .expect(200);
        if r.json["status"] == "ready" {
            return id;
        }
        assert!(r.json["status"] == "pending", "{}", r.text);
        assert!(tokio::time::Instant::now() < deadline, "never ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn upload(h: &Harness, token: &str, seed: u8) -> String {
    let img = image::RgbImage::from_fn(320, 200, |x, y| image::Rgb([x as u8, y as u8, seed]));
    let mut png = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut png, image::ImageFormat::Png)
        .expect("encode");
    let r = Req::post("/api/media")
        .token(token)
        .raw("application/octet-stream", png.into_inner())
        .send(&h.media)
        .await
        .expect(201);
    r.json["id"].as_str().expect("id").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_carries_its_images_into_followers_timelines() {
    let h = Harness::new(1000).await;
    let (_, ann) = h.user("ann").await;
    let (_, bob) = h.user("bob").await;
    h.follow(&bob, "ann").await;
    let image = ready_image(&h, &ann, 1).await;
    let r = Req::post("/api/feed/posts")
        .token(&ann)
        .json(json!({"body": "look", "media": [image]}))
        .send(&h.app)
        .await
        .expect(201);
    let media = &r.json["media"][0];
    assert_eq!(media["id"], image.as_str());
    let thumb = media["thumbnails"]["160"].as_str().expect("160").to_owned();
    assert!(
        thumb.starts_with("/media/") && thumb.ends_with("/160.jpg"),
        "{thumb}"
    );
    // Bob's timeline shows the post with its thumbnail.
    let t = Req::get("/api/feed/timeline")
        .token(&bob)
        .send(&h.app)
        .await
        .expect(200);
    assert_eq!(
        t.json["items"][0]["media"][0]["thumbnails"]["160"],
        thumb.as_str()
    );
    // A post without images has an empty list.
    h.post(&ann, "plain").await;
    let t = Req::get("/api/feed/timeline")
        .token(&bob)
        .send(&h.app)
        .await
        .expect(200);
    assert_eq!(t.json["items"][0]["media"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_names_only_the_authors_ready_images() {
    let h = Harness::new(1000).await;
    let (_, ann) = h.user("ann").await;
    let (_, bob) = h.user("bob").await;
    let bobs = ready_image(&h, &bob, 2).await;
    let post = |media: serde_json::Value| {
        Req::post("/api/feed/posts")
            .token(&ann)
            .json(json!({"body": "mine?", "media": media}))
            .send(&h.app)
    };
    post(json!([bobs])).await.expect_error(403, "forbidden");
    let unknown = uuid::Uuid::new_v4();
    let r = post(json!([unknown])).await.expect_error(404, "not_found");
    assert!(
        r.json["message"].as_str().unwrap().contains("no media"),
        "{}",
        r.text
    );
    let mine = ready_image(&h, &ann, 3).await;
    let five: Vec<String> = (0..5).map(|_| mine.clone()).collect();
    post(json!(five))
        .await
        .expect_error(422, "validation_failed");
    // Still being processed: not yet (the upload is checked before the worker runs).
    let pending = upload(&h, &ann, 4).await;
    let r = post(json!([pending])).await;
    if r.status == 409 {
        assert_eq!(r.json["error"], "conflict", "{}", r.text);
    } else {
        // The worker was quicker than this request: then it is attachable.
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let posts: i64 = sqlx::query_scalar("SELECT count(*) FROM posts")
        .fetch_one(&h.db.pool)
        .await
        .expect("count");
    assert_eq!(posts, i64::from(r.status == 201), "nothing else stored");
    // Named twice, shown once.
    let r = post(json!([mine, mine])).await.expect(201);
    assert_eq!(r.json["media"].as_array().map(Vec::len), Some(1));
}
