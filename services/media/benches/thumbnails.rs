//! Thumbnails per second for 12-megapixel JPEGs on one core: media's own path (decode
//! with limits, EXIF orientation, 160 px and 640 px JPEGs) against ImageMagick's
//! `convert -thumbnail` making the same two sizes from the same files, in the same run.
//! Prints the figures and their ratio; asserts nothing (a benchmark, not a test).
//!
//! `cargo bench -p media --bench thumbnails [-- IMAGES MEGAPIXELS]` (default 6 images of
//! 12 MP). ImageMagick comes from Debian (`apt-get install imagemagick`); without it only
//! media's figure is printed. Both are held to one core: media's thumbnails run on this
//! thread, and ImageMagick is told `-limit thread 1`.

use std::process::Command;
use std::time::Instant;

use media::config::Limits;
use media::process::thumbnails;
use media::sniff::Kind;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let images: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(6);
    let megapixels: f64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(12.0);
    // 4:3, as a phone camera shoots.
    let w = (megapixels * 1e6 * 4.0 / 3.0).sqrt() as u32;
    let h = w * 3 / 4;
    let dir = tempfile::tempdir().expect("temp dir");
    println!(
        "making {images} JPEGs of {w}×{h} ({:.1} MP)",
        f64::from(w * h) / 1e6
    );
    let mut files = Vec::new();
    for i in 0..images {
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([
                (x / 7 + i as u32 * 13) as u8,
                (y / 5) as u8,
                ((x ^ y) >> 3) as u8,
            ])
        });
        let path = dir.path().join(format!("photo{i}.jpg"));
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path).expect("file"));
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
            .encode_image(&img)
            .expect("encode");
        drop(out);
        files.push(path);
    }
    let bytes: Vec<Vec<u8>> = files
        .iter()
        .map(|p| std::fs::read(p).expect("read"))
        .collect();

    // media: each file decoded once, both sizes made from it.
    let limits = Limits::default();
    let t = Instant::now();
    for b in &bytes {
        let v = thumbnails(Kind::Jpeg, b, &limits).expect("thumbnails");
        assert_eq!(v.len(), 2);
    }
    let ours = t.elapsed().as_secs_f64();
    let ours_rate = images as f64 / ours;
    println!(
        "media       {images} images in {ours:.2} s: {ours_rate:.2} images/s (two thumbnails each), one thread"
    );

    // ImageMagick: the same two sizes from each file, one thread, one process per file.
    let have = Command::new("convert")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        println!("imagemagick not installed (apt-get install imagemagick): no baseline");
        return;
    }
    let t = Instant::now();
    for (i, f) in files.iter().enumerate() {
        let out = dir.path().join(format!("im{i}"));
        let status = Command::new("convert")
            .args(["-limit", "thread", "1"])
            .arg(f)
            .args(["-auto-orient", "-strip"])
            .args(["(", "+clone", "-thumbnail", "640x640", "-write"])
            .arg(format!("{}-640.jpg", out.display()))
            .args(["+delete", ")", "-thumbnail", "160x160"])
            .arg(format!("{}-160.jpg", out.display()))
            .status()
            .expect("run convert");
        assert!(status.success());
    }
    let theirs = t.elapsed().as_secs_f64();
    let theirs_rate = images as f64 / theirs;
    println!(
        "imagemagick {images} images in {theirs:.2} s: {theirs_rate:.2} images/s (two thumbnails each), -limit thread 1"
    );
    println!(
        "ratio       media / imagemagick = {:.2}× (goal: at least 1.00×)",
        ours_rate / theirs_rate
    );
}
