//! Uploads end to end: stored, processed in the background, served like a CDN, with the
//! upload and processing traces linked; refusals that store nothing; an object-store
//! outage; a worker that dies mid-job.

use std::time::Duration;

use common::testkit::Req;
use telemetry::testing::{Kind, Trace, Traceparent, assert_kind};

use crate::{Harness, jpeg, png};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_is_processed_and_served_with_linked_traces() {
    let h = Harness::new().await;
    let ann = h.token("ann");
    let tp = Traceparent::random();
    let r = Req::post("/api/media")
        .token(&ann)
        .traceparent(&tp)
        .raw("text/plain", png(800, 400, 1)) // the declared type is ignored
        .send(&h.app)
        .await
        .expect(201);
    assert_eq!(r.json["status"], "pending");
    assert_eq!(r.json["kind"], "png");
    assert_eq!(
        (r.json["width"].as_i64(), r.json["height"].as_i64()),
        (Some(800), Some(400))
    );
    let id = r.json["id"].as_str().expect("id").to_owned();
    let done = h.settled(&id).await;
    assert_eq!(done["status"], "ready", "{done}");
    let small = done["variants"]["160"]
        .as_str()
        .expect("160 url")
        .to_owned();
    let big = done["variants"]["640"]
        .as_str()
        .expect("640 url")
        .to_owned();

    // Thumbnails: aspect kept, metadata-free JPEGs, served with CDN headers.
    let s = Req::get(&small).send(&h.app).await.expect(200);
    assert_eq!(s.headers["content-type"], "image/jpeg");
    assert_eq!(
        s.headers["cache-control"],
        "public, max-age=31536000, immutable"
    );
    let etag = s.headers["etag"].to_str().expect("etag").to_owned();
    assert!(
        etag.starts_with('"') && !etag.starts_with("W/"),
        "strong: {etag}"
    );
    let bytes = reqwest_bytes(&h, &big).await;
    let t = image::load_from_memory(&bytes).expect("a JPEG");
    assert_eq!((t.width(), t.height()), (640, 320));
    // Unchanged: 304 without a body.
    Req::get(&small)
        .header("if-none-match", &etag)
        .send(&h.app)
        .await
        .expect(304);
    // A range: 206 with exactly those bytes.
    let whole = reqwest_bytes(&h, &small).await;
    let part = Req::get(&small)
        .header("range", "bytes=10-19")
        .send(&h.app)
        .await
        .expect(206);
    assert_eq!(
        part.headers["content-range"],
        format!("bytes 10-19/{}", whole.len()).as_str()
    );
    assert_eq!(part.headers["content-length"], "10");
    Req::get(&small)
        .header("range", &format!("bytes={}-", whole.len()))
        .send(&h.app)
        .await
        .expect_error(416, "range_not_satisfiable");
    // The original, as uploaded.
    let original = done["url"].as_str().expect("url");
    assert_eq!(reqwest_bytes(&h, original).await, png(800, 400, 1));

    // The upload's trace: its S3 calls with the AWS attributes, and the producer span.
    let t = Trace::wait(tp.trace_id, Duration::from_secs(5), |t| {
        t.has("send media.jobs") && t.has("S3.PutObject")
    });
    // Asking whether the bytes are stored already is answered "no": not a failure.
    let head = t.one("S3.HeadObject");
    assert_eq!(
        telemetry::testing::attr(head, "socialnet.s3.found"),
        Some(telemetry::testing::Value::Bool(false))
    );
    assert_eq!(telemetry::testing::attr(head, "error.type"), None);
    let put = t.one("S3.PutObject");
    assert_kind(put, Kind::Client);
    for (k, v) in [
        ("rpc.system", "aws-api"),
        ("rpc.service", "S3"),
        ("rpc.method", "PutObject"),
        ("aws.s3.bucket", "media"),
    ] {
        assert_eq!(
            telemetry::testing::attr(put, k),
            Some(telemetry::testing::Value::String(v.into())),
            "{k}"
        );
    }
    let producer = t.one("send media.jobs");
    assert_kind(producer, Kind::Producer);
    // The job's trace: a consumer span of its own, linked to the producer.
    let exporter = telemetry::testing::init();
    let producer_id = producer.span_context.span_id();
    let consumer = || {
        exporter
            .get_finished_spans()
            .expect("spans")
            .into_iter()
            .find(|s| {
                s.name == "process media.jobs"
                    && s.links
                        .iter()
                        .any(|l| l.span_context.span_id() == producer_id)
            })
    };
    common::testkit::wait_until(Duration::from_secs(5), "the linked consumer span", || {
        let found = consumer().is_some();
        async move { found }
    })
    .await;
    let c = consumer().expect("consumer");
    assert_kind(&c, Kind::Consumer);
    assert_ne!(c.span_context.trace_id(), tp.trace_id, "a trace of its own");
    let spans = exporter.get_finished_spans().expect("spans");
    let under: Vec<&str> = spans
        .iter()
        .filter(|s| s.parent_span_id == c.span_context.span_id())
        .map(|s| s.name.as_ref())
        .collect();
    for want in ["S3.GetObject", "media.thumbnails", "S3.PutObject"] {
        assert!(
            under.contains(&want),
            "{want} under the consumer: {under:?}"
        );
    }
}

/// The bytes of a file served by the app.
async fn reqwest_bytes(h: &Harness, path: &str) -> Vec<u8> {
    use tower::ServiceExt as _;
    let res = h
        .app
        .clone()
        .oneshot(
            http::Request::get(path)
                .body(axum::body::Body::empty())
                .expect("request"),
        )
        .await
        .expect("infallible");
    assert_eq!(res.status(), 200, "{path}");
    axum::body::to_bytes(res.into_body(), 64 << 20)
        .await
        .expect("body")
        .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_and_wrong_files_are_refused_and_nothing_is_stored() {
    let h = Harness::without_worker().await;
    let ann = h.token("ann");
    // A text file, whatever it claims to be.
    h.upload(&ann, b"just some text, named cat.png".to_vec())
        .await
        .expect_error(415, "unsupported_media_type");
    // A truncated JPEG.
    let j = jpeg(300, 200);
    let r = h
        .upload(&ann, j[..j.len() / 2].to_vec())
        .await
        .expect_error(422, "validation_failed");
    assert!(
        r.json["message"].as_str().unwrap().contains("truncated"),
        "{}",
        r.text
    );
    // A 1×1 file declaring 100,000 × 100,000 pixels.
    let r = h
        .upload(&ann, bomb())
        .await
        .expect_error(422, "validation_failed");
    assert!(
        r.json["message"].as_str().unwrap().contains("larger"),
        "{}",
        r.text
    );
    // Over the limit (256 KiB in this harness).
    let mut big = vec![0xFF, 0xD8, 0xFF];
    big.resize(300 * 1024, 0);
    h.upload(&ann, big)
        .await
        .expect_error(413, "payload_too_large");
    // A video container that is only its first box.
    let r = h
        .upload(&ann, b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom".to_vec())
        .await
        .expect_error(422, "validation_failed");
    assert!(
        r.json["message"]
            .as_str()
            .unwrap()
            .contains("mp4 container"),
        "{}",
        r.text
    );
    // No token.
    Req::post("/api/media")
        .raw("image/png", png(10, 10, 2))
        .send(&h.app)
        .await
        .expect_error(401, "unauthorized");
    assert_eq!(h.rows().await, 0, "no row");
    assert!(
        h.store.objects().is_empty(),
        "no object: {:?}",
        h.store.objects()
    );
    // Unknown media and files are 404s with the JSON body.
    Req::get(&format!("/api/media/{}", uuid::Uuid::new_v4()))
        .send(&h.app)
        .await
        .expect_error(404, "not_found");
    Req::get(&format!("/media/{}/original.png", "0".repeat(64)))
        .send(&h.app)
        .await
        .expect_error(404, "not_found");
    Req::get("/media/not-a-hash/original.png")
        .send(&h.app)
        .await
        .expect_error(404, "not_found");
}

/// A valid 1×1 PNG whose header claims 100,000 × 100,000 pixels.
fn bomb() -> Vec<u8> {
    let mut b = png(1, 1, 3);
    b[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    b[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    let mut c = 0xFFFF_FFFFu32;
    for &byte in &b[12..29] {
        c ^= u32::from(byte);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    b[29..33].copy_from_slice(&(!c).to_be_bytes());
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_bytes_are_stored_once() {
    let h = Harness::without_worker().await;
    let ann = h.token("ann");
    let a = h.upload(&ann, png(50, 50, 9)).await.expect(201);
    let b = h.upload(&h.token("bob"), png(50, 50, 9)).await.expect(201);
    assert_ne!(a.json["id"], b.json["id"], "two uploads, two rows");
    assert_eq!(a.json["url"], b.json["url"], "one object");
    assert_eq!(h.store.objects().len(), 1, "{:?}", h.store.objects());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_store_outage_is_a_503_that_stores_nothing() {
    let mut h = Harness::without_worker().await;
    let ann = h.token("ann");
    h.store.stop();
    let r = h
        .upload(&ann, png(40, 40, 4))
        .await
        .expect_error(503, "unavailable");
    assert!(
        r.json["message"].as_str().unwrap().contains("object store"),
        "{}",
        r.text
    );
    assert_eq!(h.rows().await, 0, "no row pointing at nothing");
    h.store.start().await;
    h.upload(&ann, png(40, 40, 4)).await.expect(201);
    assert_eq!(h.rows().await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_worker_died_is_taken_again_and_done_once() {
    let h = Harness::without_worker().await;
    let r = h
        .upload(&h.token("ann"), png(300, 300, 5))
        .await
        .expect(201);
    let id = r.json["id"].as_str().expect("id").to_owned();
    // A worker takes the job with a short lease and dies without a word.
    let job = media::store::lease(&h.state.db, 1)
        .await
        .expect("lease")
        .expect("a job");
    assert_eq!(job.attempts, 1);
    drop(job);
    // A live worker takes it once the lease runs out, and finishes it.
    media::worker::start(h.state.clone(), 1, 60);
    let done = h.settled(&id).await;
    assert_eq!(done["status"], "ready", "{done}");
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM media_jobs")
        .fetch_one(&h.state.db.pool)
        .await
        .expect("count");
    assert_eq!(jobs, 0, "done once, and gone");
    // Original and two thumbnails.
    assert_eq!(h.store.objects().len(), 3, "{:?}", h.store.objects());
}
