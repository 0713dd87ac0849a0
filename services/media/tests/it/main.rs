//! Media's integration tests, against real PostgreSQL and Redis (started by
//! `./dev.sh test`) and a real S3 server (the stack's object store, in-process on a
//! private directory).

mod sweeper;
mod uploads;
mod video;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use common::testkit::{self, Req, TestKeys};
use common::{Cache, Db};
use media::AppState;
use uuid::Uuid;

pub const ACCESS: &str = "test-access";
pub const SECRET: &str = "test-secret-key";

/// The object store on a port of its own; `stop` and `start` it to simulate an outage.
pub struct ObjectStore {
    pub root: tempfile::TempDir,
    pub addr: SocketAddr,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl ObjectStore {
    pub async fn new() -> Self {
        let root = tempfile::tempdir().expect("temp dir");
        let port = testkit::free_port();
        let mut s = Self {
            root,
            addr: format!("127.0.0.1:{port}").parse().expect("addr"),
            task: None,
        };
        s.start().await;
        s
    }

    pub async fn start(&mut self) {
        let config = objects::Config {
            listen: self.addr,
            root: self.root.path().to_owned(),
            access_key: ACCESS.into(),
            secret_key: SECRET.into(),
            buckets: vec!["media".into()],
        };
        let listener = tokio::net::TcpListener::bind(self.addr)
            .await
            .expect("bind the object store's port");
        let app = objects::router(&config).expect("object store");
        self.task = Some(tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        }));
    }

    pub fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }

    /// Files under the bucket (originals and thumbnails).
    pub fn objects(&self) -> Vec<String> {
        fn walk(dir: &std::path::Path, base: &std::path::Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, base, out);
                } else if let Ok(rel) = p.strip_prefix(base) {
                    let rel = rel.to_string_lossy().into_owned();
                    // s3s-fs's own bookkeeping files are not objects.
                    if !rel.contains(".s3s") && !rel.starts_with('.') {
                        out.push(rel);
                    }
                }
            }
        }
        let base = self.root.path().join("media");
        let mut out = Vec::new();
        walk(&base, &base, &mut out);
        out.sort();
        out
    }
}

pub struct Harness {
    pub keys: TestKeys,
    pub app: Router,
    pub state: AppState,
    pub store: ObjectStore,
}

impl Harness {
    /// The service with its worker running.
    pub async fn new() -> Self {
        let h = Self::without_worker().await;
        media::worker::start(h.state.clone(), 1, 60);
        h
    }

    pub async fn without_worker() -> Self {
        testkit::init_tracing();
        let store = ObjectStore::new().await;
        std::fs::create_dir_all(store.root.path().join("spool")).expect("spool dir");
        let url = testkit::fresh_database("media").await;
        let db = Db::connect(&url, 4, &media::MIGRATOR)
            .await
            .expect("connect and migrate");
        let keys = TestKeys::default();
        let objects = media::objects::Objects::new(&media::config::StoreConfig {
            endpoint: format!("http://{}", store.addr),
            bucket: "media".into(),
            access_key: ACCESS.into(),
            secret_key: SECRET.into(),
        })
        .expect("object store client");
        let mut state = AppState::with(
            db,
            Cache::new(&testkit::redis_url(), &testkit::unique_prefix("media")).expect("redis url"),
            keys.verifier(),
            objects,
            media::config::Limits {
                max_image_bytes: 256 * 1024,
                max_video_bytes: 2 * 1024 * 1024,
                ..Default::default()
            },
        );
        // Spooled files where the test can count them.
        state.spool_dir = Arc::new(store.root.path().join("spool"));
        Self {
            app: media::app(state.clone()),
            keys,
            state,
            store,
        }
    }

    pub fn token(&self, username: &str) -> String {
        self.keys.token(Uuid::new_v4(), username)
    }

    pub async fn upload(&self, token: &str, bytes: Vec<u8>) -> testkit::Resp {
        Req::post("/api/media")
            .token(token)
            .raw("application/octet-stream", bytes)
            .send(&self.app)
            .await
    }

    /// Polls the media until it is no longer pending; its final JSON.
    pub async fn settled(&self, id: &str) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let r = Req::get(&format!("/api/media/{id}"))
                .send(&self.app)
                .await
                .expect(200);
            if r.json["status"] != "pending" {
                return r.json;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "still pending after 20 s: {}",
                r.json
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Spool files left behind (there should be none once a request is answered).
    pub fn spooled(&self) -> usize {
        std::fs::read_dir(self.store.root.path().join("spool"))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    pub async fn rows(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM media")
            .fetch_one(&self.state.db.pool)
            .await
            .expect("count")
    }
}

/// A PNG of `w` × `h` pixels, different for each `seed`.
pub fn png(w: u32, h: u32, seed: u8) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([x as u8 ^ seed, y as u8, seed.wrapping_mul(7)])
    });
    let mut buf = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut buf, image::ImageFormat::Png)
        .expect("encode");
    buf.into_inner()
}

/// A JPEG of `w` × `h` pixels.
pub fn jpeg(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 40]));
    let mut buf = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut buf, image::ImageFormat::Jpeg)
        .expect("encode");
    buf.into_inner()
}

/// A short video made by Debian's ffmpeg from its test pattern: `secs` seconds of
/// `w` × `h`, as `format` (`mp4` or `webm`).
pub fn video(format: &str, w: u32, h: u32, secs: u32) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join(format!("v.{format}"));
    let codec: &[&str] = match format {
        "mp4" => &["-c:v", "mpeg4", "-q:v", "5"],
        _ => &["-c:v", "libvpx", "-b:v", "200k", "-deadline", "realtime"],
    };
    let status = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-f", "lavfi", "-i"])
        .arg(format!("testsrc=size={w}x{h}:rate=10:duration={secs}"))
        .args(codec)
        .arg(&out)
        .status()
        .expect("ffmpeg runs (./dev.sh test installs Debian's ffmpeg)");
    assert!(status.success(), "ffmpeg made no {format}");
    std::fs::read(out).expect("the video")
}
