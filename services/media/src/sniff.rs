//! What an upload is, from its first bytes: never from its file name or declared type.

/// A kind of media the service accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Jpeg,
    Png,
    Webp,
    Gif,
    Mp4,
    Webm,
}

impl Kind {
    pub fn is_video(self) -> bool {
        matches!(self, Kind::Mp4 | Kind::Webm)
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Kind::Jpeg => "image/jpeg",
            Kind::Png => "image/png",
            Kind::Webp => "image/webp",
            Kind::Gif => "image/gif",
            Kind::Mp4 => "video/mp4",
            Kind::Webm => "video/webm",
        }
    }

    /// The file extension of its stored original.
    pub fn extension(self) -> &'static str {
        match self {
            Kind::Jpeg => "jpg",
            Kind::Png => "png",
            Kind::Webp => "webp",
            Kind::Gif => "gif",
            Kind::Mp4 => "mp4",
            Kind::Webm => "webm",
        }
    }

    pub fn from_extension(ext: &str) -> Option<Kind> {
        Some(match ext {
            "jpg" => Kind::Jpeg,
            "png" => Kind::Png,
            "webp" => Kind::Webp,
            "gif" => Kind::Gif,
            "mp4" => Kind::Mp4,
            "webm" => Kind::Webm,
            _ => return None,
        })
    }
}

/// The kind `head` (the first bytes of a file, 16 or more) starts like, if any.
pub fn sniff(head: &[u8]) -> Option<Kind> {
    match head {
        [0xFF, 0xD8, 0xFF, ..] => Some(Kind::Jpeg),
        [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, ..] => Some(Kind::Png),
        [b'G', b'I', b'F', b'8', b'7' | b'9', b'a', ..] => Some(Kind::Gif),
        [
            b'R',
            b'I',
            b'F',
            b'F',
            _,
            _,
            _,
            _,
            b'W',
            b'E',
            b'B',
            b'P',
            ..,
        ] => Some(Kind::Webp),
        // An ISO base media file: a box size, then `ftyp`.
        [_, _, _, _, b'f', b't', b'y', b'p', ..] => Some(Kind::Mp4),
        // EBML (Matroska and WebM).
        [0x1A, 0x45, 0xDF, 0xA3, ..] => Some(Kind::Webm),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_known_by_their_bytes() {
        let mut png = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
        png.extend([0; 8]);
        assert_eq!(sniff(&png), Some(Kind::Png));
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0\0\x10JFIF\0"), Some(Kind::Jpeg));
        assert_eq!(sniff(b"GIF89a\x01\0\x01\0"), Some(Kind::Gif));
        assert_eq!(sniff(b"RIFF\x10\0\0\0WEBPVP8 "), Some(Kind::Webp));
        assert_eq!(sniff(b"\0\0\0\x18ftypmp42"), Some(Kind::Mp4));
        assert_eq!(sniff(b"\x1A\x45\xDF\xA3\x9f"), Some(Kind::Webm));
        // A text file named .png is text.
        assert_eq!(sniff(b"hello, this is not an image"), None);
        assert_eq!(sniff(b"RIFF\x10\0\0\0WAVEfmt "), None, "RIFF but not WebP");
        assert_eq!(sniff(b""), None);
    }
}
