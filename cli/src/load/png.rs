//! Small PNG images for the load's image posts, made here: noise, so every upload is new
//! bytes (media stores the same bytes once) and costs media a real decode.

use bytes::Bytes;

/// A `w` × `h` RGB PNG of random pixels, deflate-compressed by `flate2`.
pub fn noise(w: u32, h: u32, rng: &mut impl rand::RngCore) -> Bytes {
    // Each row: its filter byte (0, none), then its pixels.
    let mut raw = Vec::with_capacity(((w * 3 + 1) * h) as usize);
    let mut row = vec![0u8; (w * 3 + 1) as usize];
    for _ in 0..h {
        rng.fill_bytes(&mut row[1..]);
        raw.extend_from_slice(&row);
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut z, &raw).expect("writing to memory");
    let idat = z.finish().expect("writing to memory");
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]); // 8-bit RGB, deflate, no filter, no interlace
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &idat);
    chunk(&mut out, b"IEND", &[]);
    out.into()
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend((data.len() as u32).to_be_bytes());
    let mut crc = flate2::Crc::new();
    crc.update(kind);
    crc.update(data);
    out.extend(kind);
    out.extend(data);
    out.extend(crc.sum().to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng as _;

    #[test]
    fn the_images_decode_and_differ() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let a = noise(48, 32, &mut rng);
        let b = noise(48, 32, &mut rng);
        assert_ne!(a, b);
        let img = image::load_from_memory(&a).expect("a valid PNG");
        assert_eq!((img.width(), img.height()), (48, 32));
    }
}
