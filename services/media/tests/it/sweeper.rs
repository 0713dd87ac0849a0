//! The sweeper removes what no row points at and nothing else; the service makes its
//! bucket when the store starts empty.

use std::time::Duration;

use crate::{ACCESS, Harness, SECRET, png};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweeper_removes_only_unreferenced_objects() {
    let h = Harness::new().await;
    let r = h
        .upload(&h.token("ann"), png(200, 100, 6))
        .await
        .expect(201);
    let done = h.settled(r.json["id"].as_str().expect("id")).await;
    assert_eq!(done["status"], "ready");
    // What a crash between the store and the database leaves: objects, no row.
    let orphan = "ab".repeat(32);
    for key in [
        format!("originals/{orphan}.png"),
        format!("thumbs/{orphan}/160.jpg"),
    ] {
        h.state
            .objects
            .put(&key, bytes::Bytes::from_static(b"left behind"))
            .await
            .expect("put");
    }
    assert_eq!(h.store.objects().len(), 5, "{:?}", h.store.objects());
    // Within the grace period nothing goes: an upload may be on its way to its row.
    let s = media::sweeper::sweep(&h.state, Duration::from_secs(3600))
        .await
        .expect("sweep");
    assert_eq!((s.objects, s.removed), (5, 0));
    // Past it, the orphan and its thumbnail go; the referenced upload stays.
    let s = media::sweeper::sweep(&h.state, Duration::ZERO)
        .await
        .expect("sweep");
    assert_eq!(s.removed, 2, "{s:?}");
    let left = h.store.objects();
    assert_eq!(left.len(), 3, "{left:?}");
    assert!(left.iter().all(|k| !k.contains(&orphan)), "{left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_makes_its_bucket_in_an_empty_store() {
    let h = Harness::without_worker().await;
    let config = media::config::StoreConfig {
        endpoint: format!("http://{}", h.store.addr),
        bucket: "fresh".into(),
        access_key: ACCESS.into(),
        secret_key: SECRET.into(),
    };
    let objects = media::objects::Objects::new(&config).expect("client");
    // The store keeps each bucket as a directory of its root.
    let dir = h.store.root.path().join("fresh");
    assert!(!dir.exists(), "no bucket yet");
    objects.ensure_bucket(&config).await.expect("created");
    assert!(dir.is_dir(), "the bucket was made");
    objects
        .put("k", bytes::Bytes::from_static(b"x"))
        .await
        .expect("stored");
    objects
        .ensure_bucket(&config)
        .await
        .expect("already there is fine");
    // A wrong secret is refused by the store's signature check.
    let wrong = media::config::StoreConfig {
        secret_key: "nope".into(),
        ..config
    };
    assert!(objects.ensure_bucket(&wrong).await.is_err());
}
