//! The follow graph: idempotent, counted follows and unfollows; cursor-paged lists.

use common::testkit::Req;

use crate::Harness;

#[tokio::test]
async fn follow_and_unfollow_are_idempotent_and_counted() {
    let h = Harness::new().await;
    let (_, dana) = h.user("dana").await;
    h.user("erin").await;
    for _ in 0..2 {
        let r = Req::put("/api/profiles/erin/follow")
            .token(&dana)
            .send(&h.app)
            .await
            .expect(200);
        assert_eq!(r.json["follower_count"], 1);
        assert_eq!(r.json["following"], true);
    }
    let erin = Req::get("/api/profiles/erin")
        .send(&h.app)
        .await
        .expect(200);
    assert_eq!(erin.json["follower_count"], 1);
    let dana_p = Req::get("/api/profiles/dana")
        .send(&h.app)
        .await
        .expect(200);
    assert_eq!(dana_p.json["following_count"], 1);
    let f = Req::get("/api/profiles/erin/followers")
        .send(&h.app)
        .await
        .expect(200);
    assert_eq!(f.json["items"][0]["username"], "dana");
    for _ in 0..2 {
        let r = Req::delete("/api/profiles/erin/follow")
            .token(&dana)
            .send(&h.app)
            .await
            .expect(200);
        assert_eq!(r.json["follower_count"], 0);
    }
    Req::put("/api/profiles/nobody/follow")
        .token(&dana)
        .send(&h.app)
        .await
        .expect_error(404, "not_found");
    // Following yourself is a conflict; unfollowing yourself is already so.
    Req::put("/api/profiles/dana/follow")
        .token(&dana)
        .send(&h.app)
        .await
        .expect_error(409, "conflict");
    let me = Req::delete("/api/profiles/dana/follow")
        .token(&dana)
        .send(&h.app)
        .await
        .expect(200);
    assert_eq!(me.json["following"], false);
    Req::put("/api/profiles/erin/follow")
        .send(&h.app)
        .await
        .expect_error(401, "unauthorized");
}

#[tokio::test]
async fn follower_lists_page_with_a_cursor() {
    let h = Harness::new().await;
    h.user("star").await;
    let mut names = Vec::new();
    for i in 0..7 {
        let name = format!("fan{i}");
        let (_, t) = h.user(&name).await;
        Req::put("/api/profiles/star/follow")
            .token(&t)
            .send(&h.app)
            .await
            .expect(200);
        names.push(name);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/profiles/star/followers?limit=3&cursor={c}"),
            None => "/api/profiles/star/followers?limit=3".into(),
        };
        let page = Req::get(&path).send(&h.app).await.expect(200);
        for item in page.json["items"].as_array().unwrap() {
            seen.push(item["username"].as_str().unwrap().to_owned());
        }
        match page.json["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen, names);
    // min_followers keeps only celebrities: star has 7, the fans none.
    let (_, t) = h.user("watcher").await;
    Req::put("/api/profiles/star/follow")
        .token(&t)
        .send(&h.app)
        .await
        .expect(200);
    Req::put("/api/profiles/fan0/follow")
        .token(&t)
        .send(&h.app)
        .await
        .expect(200);
    let celebs = Req::get("/api/profiles/watcher/following?min_followers=5")
        .send(&h.app)
        .await
        .expect(200);
    let items = celebs.json["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["username"], "star");
    Req::get("/api/profiles/star/followers?limit=0")
        .send(&h.app)
        .await
        .expect_error(422, "validation_failed");
    Req::get("/api/profiles/star/followers?cursor=zzz")
        .send(&h.app)
        .await
        .expect_error(400, "bad_query");
    Req::get("/api/profiles/ghost/followers")
        .send(&h.app)
        .await
        .expect_error(404, "not_found");
}
