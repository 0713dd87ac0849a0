//! User search: matches by prefix and by similarity.

use common::testkit::Req;
use serde_json::json;

use crate::Harness;

#[tokio::test]
async fn search_finds_by_prefix_and_similarity() {
    let h = Harness::new().await;
    let (_, t) = h.user("margaret").await;
    Req::patch("/api/profiles/me")
        .token(&t)
        .json(json!({"display_name": "Margaret Hamilton"}))
        .send(&h.app)
        .await
        .expect(200);
    h.user("marvin").await;
    h.user("zed").await;
    let r = Req::get("/api/profiles/search?q=mar")
        .send(&h.app)
        .await
        .expect(200);
    let names: Vec<&str> = r
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["username"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"margaret") && names.contains(&"marvin") && !names.contains(&"zed"),
        "{names:?}"
    );
    let r = Req::get("/api/profiles/search?q=hamilton")
        .send(&h.app)
        .await
        .expect(200);
    assert_eq!(r.json[0]["username"], "margaret");
    // LIKE wildcards in the query match literally.
    let r = Req::get("/api/profiles/search?q=%25")
        .send(&h.app)
        .await
        .expect(200);
    assert_eq!(r.json.as_array().unwrap().len(), 0, "{}", r.text);
    Req::get("/api/profiles/search?q=")
        .send(&h.app)
        .await
        .expect_error(422, "validation_failed");
    Req::get("/api/profiles/search")
        .send(&h.app)
        .await
        .expect_error(400, "bad_query");
    Req::get("/api/profiles/search?q=a&limit=500")
        .send(&h.app)
        .await
        .expect_error(422, "validation_failed");
}
