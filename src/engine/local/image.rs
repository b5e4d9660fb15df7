//! Image decoding for the local engine: JPEG and PNG recognised from their bytes, EXIF orientation
//! applied, greyscale, 16-bit and alpha converted to 8-bit RGB, and limits on bytes and pixels that
//! refuse oversized input and decompression bombs before any pixel is decoded.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, RgbImage};

use crate::engine::ImageError;

/// Limits on the images the engine accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageLimits {
    /// At most this many bytes (Rekognition's limit for raw image bytes is 5 MB; files on disk are
    /// allowed more).
    pub max_bytes: usize,
    /// At most this many pixels (width x height), so that a small file cannot expand into gigabytes.
    pub max_pixels: u64,
}

impl Default for ImageLimits {
    fn default() -> Self {
        Self {
            max_bytes: 15 * 1024 * 1024,
            max_pixels: 40_000_000,
        }
    }
}

/// Decodes JPEG or PNG bytes into upright 8-bit RGB.
pub fn decode(bytes: &[u8], limits: ImageLimits) -> Result<RgbImage, ImageError> {
    if bytes.is_empty() {
        return Err(ImageError::Empty);
    }
    if bytes.len() > limits.max_bytes {
        return Err(ImageError::TooManyBytes {
            size: bytes.len(),
            limit: limits.max_bytes,
        });
    }
    let format = image::guess_format(bytes).map_err(|_| ImageError::UnsupportedFormat {
        found: describe_unknown(bytes),
    })?;
    if !matches!(format, ImageFormat::Jpeg | ImageFormat::Png) {
        return Err(ImageError::UnsupportedFormat {
            found: format!("{format:?}").to_uppercase(),
        });
    }
    if format == ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        return Err(ImageError::Decode(
            "the JPEG data ends before its end-of-image marker (truncated)".into(),
        ));
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut decoder_limits = image::Limits::default();
    // The largest buffer decoding needs: 16-bit RGBA at the pixel limit, plus the 8-bit copy.
    decoder_limits.max_alloc = Some(limits.max_pixels.saturating_mul(12));
    reader.limits(decoder_limits);
    let mut decoder = reader.into_decoder().map_err(decode_error)?;
    let (width, height) = decoder.dimensions();
    if u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(ImageError::TooManyPixels {
            width,
            height,
            limit: limits.max_pixels,
        });
    }
    if width == 0 || height == 0 {
        return Err(ImageError::Decode(format!(
            "the image is {width}x{height} pixels"
        )));
    }
    // A missing or unreadable EXIF block means the pixels are stored upright.
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(decode_error)?;
    img.apply_orientation(orientation);
    Ok(match img {
        DynamicImage::ImageRgb8(rgb) => rgb,
        other => other.to_rgb8(),
    })
}

/// Whether a JPEG's marker segments and entropy-coded data run up to an end-of-image marker. The
/// decoder fills a truncated file's missing rows with grey without an error; a face engine must not
/// index such half images.
fn jpeg_is_complete(b: &[u8]) -> bool {
    let mut i = 2; // after SOI
    while i + 1 < b.len() {
        if b[i] != 0xff {
            return false;
        }
        let marker = b[i + 1];
        match marker {
            0xd9 => return true,
            0xff => {
                i += 1; // fill byte
                continue;
            }
            0x01 | 0xd0..=0xd7 => {
                i += 2;
                continue;
            }
            _ => {}
        }
        let Some(len) = b
            .get(i + 2..i + 4)
            .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])))
        else {
            return false;
        };
        i += 2 + len;
        if marker == 0xda {
            // Entropy-coded data: the next marker is an 0xFF not followed by a stuffed 0x00 or a
            // restart marker.
            loop {
                match (b.get(i), b.get(i + 1)) {
                    (Some(0xff), Some(0x00 | 0xd0..=0xd7)) => i += 2,
                    (Some(0xff), Some(_)) => break,
                    (Some(_), _) => i += 1,
                    (None, _) => return false,
                }
            }
        }
    }
    false
}

fn decode_error(e: image::ImageError) -> ImageError {
    match e {
        image::ImageError::Limits(l) => ImageError::Decode(format!("over the memory limit: {l}")),
        other => ImageError::Decode(other.to_string()),
    }
}

fn describe_unknown(bytes: &[u8]) -> String {
    let text = bytes
        .iter()
        .take(64)
        .all(|b| b.is_ascii() && (*b >= 0x20 || b.is_ascii_whitespace()));
    if text {
        return "text".to_owned();
    }
    let head: Vec<String> = bytes.iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!("unknown bytes {}", head.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::GrayImage::from_pixel(w, h, image::Luma([7]));
        let mut out = Vec::new();
        DynamicImage::ImageLuma8(img)
            .write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
            .unwrap();
        out
    }

    #[test]
    fn greyscale_png_becomes_rgb() {
        let img = decode(&png(3, 2), ImageLimits::default()).unwrap();
        assert_eq!(img.dimensions(), (3, 2));
        assert_eq!(img.get_pixel(0, 0).0, [7, 7, 7]);
    }

    #[test]
    fn refusals_name_the_reason() {
        let limits = ImageLimits {
            max_bytes: 1000,
            max_pixels: 100,
        };
        assert_eq!(decode(b"", limits), Err(ImageError::Empty));
        assert!(matches!(
            decode(&[0u8; 2000], limits),
            Err(ImageError::TooManyBytes { size: 2000, .. })
        ));
        assert!(matches!(
            decode(&png(20, 20), limits),
            Err(ImageError::TooManyPixels { width: 20, .. })
        ));
        assert_eq!(
            decode(b"hello, not an image", limits),
            Err(ImageError::UnsupportedFormat {
                found: "text".into()
            })
        );
        assert!(matches!(
            decode(b"GIF89a\x01\x00\x01\x00", limits),
            Err(ImageError::UnsupportedFormat { .. })
        ));
        let mut jpeg = Vec::new();
        DynamicImage::ImageLuma8(image::GrayImage::from_pixel(40, 40, image::Luma([9])))
            .write_to(&mut Cursor::new(&mut jpeg), ImageFormat::Jpeg)
            .unwrap();
        assert!(decode(&jpeg, ImageLimits::default()).is_ok());
        assert!(matches!(
            decode(&jpeg[..jpeg.len() - 3], ImageLimits::default()),
            Err(ImageError::Decode(_))
        ));
        let mut truncated = png(5, 5);
        truncated.truncate(truncated.len() / 2);
        assert!(matches!(
            decode(&truncated, limits),
            Err(ImageError::Decode(_))
        ));
    }
}
