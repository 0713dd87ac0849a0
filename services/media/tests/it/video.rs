//! Video and forms: an MP4 and a WebM checked by ffprobe on the way in and given a
//! poster frame by ffmpeg in the worker; a corrupt container refused with nothing
//! stored; a video over its limit; an image sent as a multipart form.

use common::testkit::Req;

use crate::{Harness, png, video};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_video_gets_its_duration_and_a_poster_frame() {
    let h = Harness::new().await;
    let ann = h.token("ann");
    for (format, secs) in [("mp4", 2), ("webm", 1)] {
        let bytes = video(format, 320, 240, secs);
        let r = h.upload(&ann, bytes.clone()).await.expect(201);
        assert_eq!(r.json["kind"], format);
        assert_eq!(
            (r.json["width"].as_i64(), r.json["height"].as_i64()),
            (Some(320), Some(240)),
            "{}",
            r.text
        );
        let ms = r.json["duration_ms"].as_i64().expect("a duration");
        assert!(
            (i64::from(secs) * 1000 - ms).abs() <= 100,
            "{format}: {ms} ms for {secs} s"
        );
        let done = h.settled(r.json["id"].as_str().expect("id")).await;
        assert_eq!(done["status"], "ready", "{done}");
        // The poster's thumbnail is a JPEG of the video's aspect.
        let small = Req::get(done["variants"]["160"].as_str().expect("160"))
            .send(&h.app)
            .await
            .expect(200);
        assert_eq!(small.headers["content-type"], "image/jpeg");
        // The original is served as uploaded, whole and seekable.
        let url = done["url"].as_str().expect("url");
        let (status, headers, whole) = get(&h, url, None).await;
        assert_eq!((status, whole.len()), (200, bytes.len()));
        assert_eq!(
            headers["content-type"],
            if format == "mp4" {
                "video/mp4"
            } else {
                "video/webm"
            }
        );
        assert!(whole == bytes, "the same bytes");
        let (status, _, part) = get(&h, url, Some("bytes=100-199")).await;
        assert_eq!(status, 206);
        assert_eq!(&part[..], &bytes[100..200]);
    }
    assert_eq!(h.spooled(), 0, "spool files are removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_or_oversize_video_is_refused_and_nothing_is_stored() {
    let h = Harness::without_worker().await;
    let ann = h.token("ann");
    // ffmpeg writes an MP4's index (moov) at the end: cut it off and the container is
    // unreadable.
    let mp4 = video("mp4", 160, 120, 2);
    let r = h
        .upload(&ann, mp4[..mp4.len() * 2 / 3].to_vec())
        .await
        .expect_error(422, "validation_failed");
    assert!(
        r.json["message"]
            .as_str()
            .unwrap()
            .contains("mp4 container cannot be read"),
        "{}",
        r.text
    );
    // A WebM whose header is followed by noise.
    let mut webm = video("webm", 160, 120, 1);
    for b in webm.iter_mut().skip(40) {
        *b = b.wrapping_mul(31).wrapping_add(7);
    }
    h.upload(&ann, webm)
        .await
        .expect_error(422, "validation_failed");
    // Over the video limit (2 MiB in this harness), refused as it arrives.
    let mut big = b"\x1A\x45\xDF\xA3".to_vec();
    big.resize(3 * 1024 * 1024, 1);
    let r = h
        .upload(&ann, big)
        .await
        .expect_error(413, "payload_too_large");
    assert!(
        r.json["message"].as_str().unwrap().contains("a video"),
        "{}",
        r.text
    );
    assert_eq!(h.rows().await, 0, "no row");
    assert!(h.store.objects().is_empty(), "{:?}", h.store.objects());
    assert_eq!(h.spooled(), 0, "spool files are removed");
}

/// Status, headers and body bytes of a GET, with an optional `Range`.
async fn get(h: &Harness, path: &str, range: Option<&str>) -> (u16, http::HeaderMap, Vec<u8>) {
    use tower::ServiceExt as _;
    let mut req = http::Request::get(path);
    if let Some(r) = range {
        req = req.header("range", r);
    }
    let res = h
        .app
        .clone()
        .oneshot(req.body(axum::body::Body::empty()).expect("request"))
        .await
        .expect("infallible");
    let (parts, body) = res.into_parts();
    let bytes = axum::body::to_bytes(body, 64 << 20)
        .await
        .expect("body")
        .to_vec();
    (parts.status.as_u16(), parts.headers, bytes)
}

/// A multipart form with one field before the file.
fn form(boundary: &str, file: &[u8]) -> Vec<u8> {
    let mut b = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"caption\"\r\n\r\nhello\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"upload\"; filename=\"cat.txt\"\r\n\
         Content-Type: text/plain\r\n\r\n"
    )
    .into_bytes();
    b.extend_from_slice(file);
    b.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multipart_form_carries_the_file() {
    let h = Harness::without_worker().await;
    let ann = h.token("ann");
    let b = "x-socialnet-boundary";
    let r = Req::post("/api/media")
        .token(&ann)
        .raw(
            &format!("multipart/form-data; boundary={b}"),
            form(b, &png(30, 20, 8)),
        )
        .send(&h.app)
        .await
        .expect(201);
    assert_eq!(r.json["kind"], "png", "read from its bytes, not its name");
    assert_eq!(r.json["width"], 30);
    // A form without a file part, and one without a boundary.
    let empty = format!(
        "--{b}\r\nContent-Disposition: form-data; name=\"caption\"\r\n\r\nhi\r\n--{b}--\r\n"
    );
    Req::post("/api/media")
        .token(&ann)
        .raw(
            &format!("multipart/form-data; boundary={b}"),
            empty.into_bytes(),
        )
        .send(&h.app)
        .await
        .expect_error(400, "no_file");
    Req::post("/api/media")
        .token(&ann)
        .raw("multipart/form-data", form(b, &png(3, 3, 1)))
        .send(&h.app)
        .await
        .expect_error(400, "bad_multipart");
    assert_eq!(h.rows().await, 1);
}
