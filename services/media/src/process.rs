//! Checking an upload and making its thumbnails, with limits on every decode: a file's
//! header is read before any pixel, and a declared size past the limits is refused
//! before anything is allocated for it.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder as _, ImageReader, Limits as DecodeLimits};

use crate::config::Limits;
use crate::sniff::Kind;

/// The thumbnail sizes (longest side, pixels), aspect kept.
pub const SIZES: [u32; 2] = [160, 640];

/// Why a file is refused: shown to the client (upload) or stored as the media's reason
/// (processing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

fn limits(l: &Limits) -> DecodeLimits {
    let mut d = DecodeLimits::default();
    d.max_image_width = Some(l.max_side);
    d.max_image_height = Some(l.max_side);
    d.max_alloc = Some(l.max_decode_alloc);
    d
}

fn reader<'a>(
    kind: Kind,
    bytes: &'a [u8],
    l: &Limits,
) -> Result<ImageReader<Cursor<&'a [u8]>>, Refused> {
    let format = match kind {
        Kind::Jpeg => image::ImageFormat::Jpeg,
        Kind::Png => image::ImageFormat::Png,
        Kind::Webp => image::ImageFormat::WebP,
        Kind::Gif => image::ImageFormat::Gif,
        Kind::Mp4 | Kind::Webm => return Err(Refused("not an image".into())),
    };
    let mut r = ImageReader::with_format(Cursor::new(bytes), format);
    r.limits(limits(l));
    Ok(r)
}

/// The file ends where its format says it ends: a truncated upload is refused here,
/// cheaply, instead of failing later in the worker.
fn complete(kind: Kind, b: &[u8]) -> Result<(), Refused> {
    let truncated = || Refused(format!("the {} file is truncated", kind.extension()));
    match kind {
        // The end-of-image marker, perhaps followed by padding.
        Kind::Jpeg => {
            let end = b.iter().rposition(|&x| x != 0).map_or(0, |i| i + 1);
            if end >= 2 && b[end - 2..end] == [0xFF, 0xD9] {
                Ok(())
            } else {
                Err(truncated())
            }
        }
        // The IEND chunk (length 0, type, CRC) closes the file.
        Kind::Png => {
            if b.len() >= 12 && &b[b.len() - 8..b.len() - 4] == b"IEND" {
                Ok(())
            } else {
                Err(truncated())
            }
        }
        // The trailer byte.
        Kind::Gif => {
            if b.last() == Some(&0x3B) {
                Ok(())
            } else {
                Err(truncated())
            }
        }
        // RIFF's length field counts the rest of the file.
        Kind::Webp => {
            let declared = u32::from_le_bytes([b[4], b[5], b[6], b[7]]) as usize;
            if b.len() >= declared + 8 {
                Ok(())
            } else {
                Err(truncated())
            }
        }
        Kind::Mp4 | Kind::Webm => Ok(()),
    }
}

/// Checks an image upload without decoding its pixels: whole, a readable header, and a
/// declared size within the limits. Returns its width and height.
pub fn check(kind: Kind, bytes: &[u8], l: &Limits) -> Result<(u32, u32), Refused> {
    complete(kind, bytes)?;
    let (w, h) = reader(kind, bytes, l)?
        .into_dimensions()
        .map_err(|e| refused(kind, e))?;
    if w == 0 || h == 0 {
        return Err(Refused(format!(
            "the {} declares no pixels",
            kind.extension()
        )));
    }
    Ok((w, h))
}

fn refused(kind: Kind, e: image::ImageError) -> Refused {
    match e {
        image::ImageError::Limits(l) => Refused(format!(
            "the {} is larger than this service decodes ({l})",
            kind.extension(),
        )),
        other => Refused(format!("the {} cannot be read: {other}", kind.extension())),
    }
}

/// One made variant: its name (`160.jpg`), content type and bytes.
#[derive(Debug)]
pub struct Variant {
    pub name: String,
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

/// Decodes an image (EXIF orientation applied) and makes its thumbnails: JPEG, or PNG
/// when the image has transparency. Re-encoding drops every piece of metadata (EXIF,
/// GPS, comments). Blocking: run it on a blocking thread.
pub fn thumbnails(kind: Kind, bytes: &[u8], l: &Limits) -> Result<Vec<Variant>, Refused> {
    let mut decoder = reader(kind, bytes, l)?
        .into_decoder()
        .map_err(|e| refused(kind, e))?;
    let orientation = decoder.orientation().map_err(|e| refused(kind, e))?;
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| refused(kind, e))?;
    img.apply_orientation(orientation);
    let alpha = img.color().has_alpha();
    let mut out = Vec::new();
    for size in SIZES {
        let t = if img.width() <= size && img.height() <= size {
            img.clone()
        } else {
            img.thumbnail(size, size)
        };
        let mut buf = Cursor::new(Vec::new());
        let (ext, content_type) = if alpha {
            t.write_to(&mut buf, image::ImageFormat::Png)
                .map_err(|e| Refused(format!("encoding a thumbnail failed: {e}")))?;
            ("png", "image/png")
        } else {
            let rgb = DynamicImage::ImageRgb8(t.to_rgb8());
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, 82)
                .encode_image(&rgb)
                .map_err(|e| Refused(format!("encoding a thumbnail failed: {e}")))?;
            ("jpg", "image/jpeg")
        };
        out.push(Variant {
            name: format!("{size}.{ext}"),
            content_type,
            bytes: buf.into_inner(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 90]));
        let mut buf = Cursor::new(Vec::new());
        DynamicImage::ImageRgb8(img)
            .write_to(&mut buf, image::ImageFormat::Png)
            .expect("encode");
        buf.into_inner()
    }

    /// A valid 1×1 PNG whose header claims 100,000 × 100,000 pixels (the CRC fixed up so
    /// only the size is a lie).
    pub fn bomb() -> Vec<u8> {
        let mut b = png(1, 1);
        b[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        b[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let crc = crc32(&b[12..29]);
        b[29..33].copy_from_slice(&crc.to_be_bytes());
        b
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut c = 0xFFFF_FFFFu32;
        for &byte in data {
            c ^= u32::from(byte);
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
    }

    #[test]
    fn a_whole_image_passes_with_its_size() {
        assert_eq!(
            check(Kind::Png, &png(30, 20), &Limits::default()),
            Ok((30, 20))
        );
    }

    #[test]
    fn a_bomb_is_refused_from_its_header() {
        let e = check(Kind::Png, &bomb(), &Limits::default()).expect_err("refused");
        assert!(e.0.contains("larger than this service decodes"), "{e:?}");
        // And the worker's full decode refuses it the same way.
        let e = thumbnails(Kind::Png, &bomb(), &Limits::default()).expect_err("refused");
        assert!(e.0.contains("larger"), "{e:?}");
    }

    #[test]
    fn a_truncated_file_is_refused() {
        let b = png(40, 40);
        let e = check(Kind::Png, &b[..b.len() - 20], &Limits::default()).expect_err("cut");
        assert!(e.0.contains("truncated"), "{e:?}");
    }

    #[test]
    fn thumbnails_keep_the_aspect_and_fit_their_box() {
        let v = thumbnails(Kind::Png, &png(1000, 500), &Limits::default()).expect("made");
        let names: Vec<&str> = v.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["160.jpg", "640.jpg"]);
        let small = image::load_from_memory(&v[0].bytes).expect("jpeg");
        assert_eq!((small.width(), small.height()), (160, 80));
        let big = image::load_from_memory(&v[1].bytes).expect("jpeg");
        assert_eq!((big.width(), big.height()), (640, 320));
    }
}
