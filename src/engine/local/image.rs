//! Image decoding for the local engine: JPEG and PNG recognised from their bytes, EXIF orientation
//! applied, greyscale, 16-bit and alpha converted to 8-bit RGB, and limits on bytes, pixels and the
//! memory decoding takes, checked from the header before any pixel is decoded.

use std::io::Cursor;

use image::codecs::jpeg::JpegDecoder;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, RgbImage};

use crate::engine::ImageError;

/// Limits on the images the engine accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageLimits {
    /// At most this many bytes (Rekognition's limit for raw image bytes is 5 MB; files on disk are
    /// allowed more).
    pub max_bytes: usize,
    /// At most this many pixels (width x height), so that a small file cannot expand into gigabytes.
    pub max_pixels: u64,
    /// At most this many bytes of memory for one image's pixels while it is decoded (see
    /// [`Header::decoded_bytes`]): 16-bit samples are reduced to 8 bits row by row as they are read,
    /// so this is about three bytes a pixel for most images.
    pub max_decoded_bytes: u64,
    /// At most this many bytes for all the analyses running at once, each counted as its image's
    /// decoded bytes plus the models' working memory: an analysis waits, in arrival order, until
    /// its share is free (see [`super::LocalAnalyzer`]). A budget in bytes rather than a count of
    /// images lets several ordinary photos run at once while huge ones queue, and keeps memory
    /// from growing with the number of cores or of requests.
    pub concurrent_analysis_bytes: u64,
}

impl Default for ImageLimits {
    /// 15 MB files, 40 megapixels, 256 MiB to decode one image, 512 MiB for all the analyses at
    /// once.
    fn default() -> Self {
        Self {
            max_bytes: 15 * 1024 * 1024,
            max_pixels: 40_000_000,
            max_decoded_bytes: 256 * 1024 * 1024,
            concurrent_analysis_bytes: 512 * 1024 * 1024,
        }
    }
}

/// An image whose header has been read and checked against the limits: its size and the memory its
/// decoding takes are known, and no pixel has been decoded yet.
pub struct Header<'a> {
    width: u32,
    height: u32,
    orientation: Orientation,
    decoded_bytes: u64,
    decoder: Decoder<'a>,
}

enum Decoder<'a> {
    Jpeg(Box<JpegDecoder<Cursor<&'a [u8]>>>),
    Png(Box<png::Reader<Cursor<&'a [u8]>>>),
}

impl std::fmt::Debug for Header<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Header")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("orientation", &self.orientation)
            .field("decoded_bytes", &self.decoded_bytes)
            .finish_non_exhaustive()
    }
}

/// Decodes JPEG or PNG bytes into upright 8-bit RGB.
pub fn decode(bytes: &[u8], limits: ImageLimits) -> Result<RgbImage, ImageError> {
    read_header(bytes, limits)?.decode()
}

/// Reads and checks an image's header: size in bytes, format, pixels and the memory decoding will
/// take, so that a caller can refuse the image or wait for memory before decoding it.
pub fn read_header(bytes: &[u8], limits: ImageLimits) -> Result<Header<'_>, ImageError> {
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
    let header = match format {
        ImageFormat::Jpeg => jpeg_header(bytes)?,
        ImageFormat::Png => png_header(bytes)?,
        other => {
            return Err(ImageError::UnsupportedFormat {
                found: format!("{other:?}").to_uppercase(),
            })
        }
    };
    let (width, height) = (header.width, header.height);
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
    if header.decoded_bytes > limits.max_decoded_bytes {
        return Err(ImageError::TooManyDecodedBytes {
            width,
            height,
            bytes: header.decoded_bytes,
            limit: limits.max_decoded_bytes,
        });
    }
    Ok(header)
}

impl Header<'_> {
    /// Width in pixels, as stored (before EXIF orientation).
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels, as stored (before EXIF orientation).
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The most memory the decoder's pixel buffers take at once while this image is decoded and
    /// turned upright, in bytes: the 8-bit RGB result, plus the decoder's own buffer when it is not
    /// RGB (a greyscale JPEG), the coefficients a progressive JPEG keeps for the whole image, and a
    /// second copy when EXIF orientation turns the image a quarter.
    pub fn decoded_bytes(&self) -> u64 {
        self.decoded_bytes
    }

    /// Decodes the pixels into upright 8-bit RGB.
    pub fn decode(self) -> Result<RgbImage, ImageError> {
        let rgb = match self.decoder {
            Decoder::Jpeg(decoder) => {
                let mut img = DynamicImage::from_decoder(*decoder).map_err(decode_error)?;
                // Turned while still in the decoder's format: a greyscale image is turned at one
                // byte a pixel, before it becomes RGB.
                img.apply_orientation(self.orientation);
                match img {
                    DynamicImage::ImageRgb8(rgb) => rgb,
                    other => other.to_rgb8(),
                }
            }
            Decoder::Png(reader) => {
                let mut img = DynamicImage::ImageRgb8(png_rgb(*reader, self.width, self.height)?);
                img.apply_orientation(self.orientation);
                img.into_rgb8()
            }
        };
        Ok(rgb)
    }
}

/// Whether an orientation turns the image a quarter, which the image crate does into a new buffer
/// (the other orientations flip or turn in place).
fn quarter_turn(o: Orientation) -> bool {
    matches!(
        o,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    )
}

fn jpeg_header(bytes: &[u8]) -> Result<Header<'_>, ImageError> {
    let Some(layout) = jpeg_layout(bytes) else {
        return Err(ImageError::Decode(
            "the JPEG data ends before its end-of-image marker (truncated)".into(),
        ));
    };
    let mut decoder = JpegDecoder::new(Cursor::new(bytes)).map_err(decode_error)?;
    let (width, height) = decoder.dimensions();
    // A missing or unreadable EXIF block means the pixels are stored upright.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let pixels = u64::from(width) * u64::from(height);
    let native = pixels.saturating_mul(u64::from(decoder.color_type().bytes_per_pixel()));
    let rgb = pixels.saturating_mul(3);
    // zune-jpeg keeps a progressive image's coefficients, two bytes per sample of every component,
    // until the last scan; a baseline image is decoded a row of blocks at a time.
    let coefficients = if layout.progressive {
        pixels.saturating_mul(2 * u64::from(layout.components))
    } else {
        0
    };
    let turned = if quarter_turn(orientation) { native } else { 0 };
    let converted = if decoder.color_type() == image::ColorType::Rgb8 {
        0
    } else {
        rgb
    };
    let decoded_bytes = native.saturating_add(coefficients.max(turned).max(converted));
    Ok(Header {
        width,
        height,
        orientation,
        decoded_bytes,
        decoder: Decoder::Jpeg(Box::new(decoder)),
    })
}

fn png_header(bytes: &[u8]) -> Result<Header<'_>, ImageError> {
    let mut decoder = png::Decoder::new(Cursor::new(bytes));
    // Palette and low bit depths are expanded and 16-bit samples cut to their high byte as each row
    // is read, so that no 16-bit copy of the image is ever held.
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let reader = decoder.read_info().map_err(png_error)?;
    let (width, height) = reader.info().size();
    let orientation = reader
        .info()
        .exif_metadata
        .as_deref()
        .and_then(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms);
    let rgb = (u64::from(width) * u64::from(height)).saturating_mul(3);
    let decoded_bytes = if quarter_turn(orientation) {
        rgb.saturating_mul(2)
    } else {
        rgb
    };
    Ok(Header {
        width,
        height,
        orientation,
        decoded_bytes,
        decoder: Decoder::Png(Box::new(reader)),
    })
}

/// Reads a PNG row by row straight into 8-bit RGB, interlaced passes spread to their pixels as they
/// come: the only full-size buffer is the result.
fn png_rgb(
    mut reader: png::Reader<Cursor<&[u8]>>,
    width: u32,
    height: u32,
) -> Result<RgbImage, ImageError> {
    let (color, depth) = reader.output_color_type();
    if depth != png::BitDepth::Eight || color == png::ColorType::Indexed {
        return Err(ImageError::Decode(format!(
            "the PNG decoder gave {color:?} {depth:?} samples instead of 8-bit grey or colour"
        )));
    }
    let channels = color.samples();
    let stride = width as usize * 3;
    let mut out = vec![0u8; stride * height as usize];
    let mut pass_row = Vec::new();
    let mut line = 0usize;
    while let Some(row) = reader.next_interlaced_row().map_err(png_error)? {
        match row.interlace() {
            png::InterlaceInfo::Null(_) => {
                let Some(dst) = out.get_mut(line * stride..(line + 1) * stride) else {
                    return Err(ImageError::Decode(
                        "the PNG has more rows than its height".into(),
                    ));
                };
                to_rgb(row.data(), channels, dst);
                line += 1;
            }
            png::InterlaceInfo::Adam7(info) => {
                pass_row.resize(row.data().len() / channels * 3, 0);
                to_rgb(row.data(), channels, &mut pass_row);
                png::expand_interlaced_row(&mut out, stride, &pass_row, info, 24);
            }
        }
    }
    if !reader.info().interlaced && line != height as usize {
        return Err(ImageError::Decode(format!(
            "the PNG has {line} rows instead of {height}"
        )));
    }
    RgbImage::from_raw(width, height, out)
        .ok_or_else(|| ImageError::Decode("the PNG's pixels do not fill its size".into()))
}

/// Converts one row of 8-bit grey, grey+alpha, RGB or RGBA samples to RGB; alpha is dropped, as the
/// image crate's `to_rgb8` does.
fn to_rgb(src: &[u8], channels: usize, dst: &mut [u8]) {
    for (s, d) in src.chunks_exact(channels).zip(dst.chunks_exact_mut(3)) {
        match channels {
            1 | 2 => d.fill(s[0]),
            _ => d.copy_from_slice(&s[..3]),
        }
    }
}

/// What the decoder needs to know of a complete JPEG's structure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct JpegLayout {
    progressive: bool,
    components: u8,
}

/// The layout of a JPEG whose marker segments and entropy-coded data run up to an end-of-image
/// marker; `None` when they do not. The decoder fills a truncated file's missing rows with grey
/// without an error; a face engine must not index such half images.
fn jpeg_layout(b: &[u8]) -> Option<JpegLayout> {
    let mut layout = JpegLayout {
        progressive: false,
        components: 3,
    };
    let mut i = 2; // after SOI
    while i + 1 < b.len() {
        if b[i] != 0xff {
            return None;
        }
        let marker = b[i + 1];
        match marker {
            0xd9 => return Some(layout),
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
        let len = b
            .get(i + 2..i + 4)
            .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])))?;
        // Start-of-frame markers (C0-CF but DHT C4, JPG C8 and DAC CC) hold the component count
        // after the precision and the two dimensions; C2, C6, CA and CE are progressive.
        if matches!(marker, 0xc0..=0xcf) && !matches!(marker, 0xc4 | 0xc8 | 0xcc) {
            layout.progressive = matches!(marker, 0xc2 | 0xc6 | 0xca | 0xce);
            layout.components = *b.get(i + 9)?;
        }
        i += 2 + len;
        if marker == 0xda {
            // Entropy-coded data: the next marker is an 0xFF not followed by a stuffed 0x00 or a
            // restart marker.
            loop {
                match (b.get(i), b.get(i + 1)) {
                    (Some(0xff), Some(0x00 | 0xd0..=0xd7)) => i += 2,
                    (Some(0xff), Some(_)) => break,
                    (Some(_), _) => i += 1,
                    (None, _) => return None,
                }
            }
        }
    }
    None
}

fn decode_error(e: image::ImageError) -> ImageError {
    match e {
        image::ImageError::Limits(l) => ImageError::Decode(format!("over the memory limit: {l}")),
        other => ImageError::Decode(other.to_string()),
    }
}

fn png_error(e: png::DecodingError) -> ImageError {
    match e {
        png::DecodingError::LimitsExceeded => {
            ImageError::Decode("the PNG's chunks are over the decoder's memory limit".into())
        }
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

    /// The RGBA colour of a test picture's pixel: every channel varies, alpha too.
    fn colour(x: u32, y: u32) -> [u8; 4] {
        [
            (x * 37 + y * 3) as u8,
            (y * 41 + x) as u8,
            (x * y * 7 + 11) as u8,
            !((x * 9) as u8),
        ]
    }

    /// A PNG of `colour` written by hand, so that the test controls what the image crate's encoder
    /// does not offer: 16-bit samples with the 8-bit values in both bytes (so that cutting them
    /// back is exact), Adam7 interlacing, and an EXIF chunk.
    fn rgba_png(w: u32, h: u32, sixteen: bool, interlaced: bool, exif: Option<&[u8]>) -> Vec<u8> {
        use std::io::Write;
        fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
            out.extend_from_slice(&(data.len() as u32).to_be_bytes());
            out.extend_from_slice(kind);
            out.extend_from_slice(data);
            let mut crc = crc32fast::Hasher::new();
            crc.update(kind);
            crc.update(data);
            out.extend_from_slice(&crc.finalize().to_be_bytes());
        }
        // Adam7's passes as (first x, first y, step x, step y); one pass covering all otherwise.
        let passes: &[(u32, u32, u32, u32)] = if interlaced {
            &[
                (0, 0, 8, 8),
                (4, 0, 8, 8),
                (0, 4, 4, 8),
                (2, 0, 4, 4),
                (0, 2, 2, 4),
                (1, 0, 2, 2),
                (0, 1, 1, 2),
            ]
        } else {
            &[(0, 0, 1, 1)]
        };
        let mut raw = Vec::new();
        for &(x0, y0, dx, dy) in passes {
            if x0 >= w || y0 >= h {
                continue; // an empty pass has no rows at all
            }
            for y in (y0..h).step_by(dy as usize) {
                raw.push(0); // filter: none
                for x in (x0..w).step_by(dx as usize) {
                    for v in colour(x, y) {
                        raw.push(v);
                        if sixteen {
                            raw.push(v);
                        }
                    }
                }
            }
        }
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(&raw).unwrap();
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&w.to_be_bytes());
        ihdr.extend_from_slice(&h.to_be_bytes());
        ihdr.extend_from_slice(&[if sixteen { 16 } else { 8 }, 6, 0, 0, u8::from(interlaced)]);
        chunk(&mut out, b"IHDR", &ihdr);
        if let Some(exif) = exif {
            chunk(&mut out, b"eXIf", exif);
        }
        chunk(&mut out, b"IDAT", &z.finish().unwrap());
        chunk(&mut out, b"IEND", &[]);
        out
    }

    #[test]
    fn greyscale_png_becomes_rgb() {
        let img = decode(&png(3, 2), ImageLimits::default()).unwrap();
        assert_eq!(img.dimensions(), (3, 2));
        assert_eq!(img.get_pixel(0, 0).0, [7, 7, 7]);
    }

    #[test]
    fn sixteen_bit_and_interlaced_pngs_decode_to_the_eight_bit_picture() {
        let (w, h) = (13, 11);
        let expected = RgbImage::from_fn(w, h, |x, y| {
            let [r, g, b, _] = colour(x, y);
            image::Rgb([r, g, b])
        });
        for (sixteen, interlaced) in [(false, false), (true, false), (false, true), (true, true)] {
            let bytes = rgba_png(w, h, sixteen, interlaced, None);
            // The reference decoder agrees that the file holds the picture.
            let reference = image::load_from_memory(&bytes).unwrap();
            assert_eq!(reference.to_rgb8(), expected, "{sixteen} {interlaced}");
            let header = read_header(&bytes, ImageLimits::default()).unwrap();
            assert_eq!(header.decoded_bytes(), u64::from(w * h * 3));
            assert_eq!(
                header.decode().unwrap(),
                expected,
                "16-bit {sixteen}, interlaced {interlaced}"
            );
        }
    }

    #[test]
    fn exif_orientation_turns_a_png_and_counts_the_turned_copy() {
        // A big-endian TIFF header and one IFD entry: orientation (0x0112), SHORT, 1 value, 6 (the
        // stored picture must be turned a quarter clockwise to be upright).
        let exif = b"MM\x00\x2a\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01\x00\x06\x00\x00\x00\x00\x00\x00";
        let bytes = rgba_png(5, 3, true, false, Some(exif));
        let header = read_header(&bytes, ImageLimits::default()).unwrap();
        assert_eq!(header.decoded_bytes(), 2 * 5 * 3 * 3);
        let img = header.decode().unwrap();
        assert_eq!(img.dimensions(), (3, 5));
        // The stored bottom-left pixel is the upright top-left one.
        let [r, g, b, _] = colour(0, 2);
        assert_eq!(img.get_pixel(0, 0).0, [r, g, b]);
    }

    #[test]
    fn images_past_the_decoded_bytes_limit_are_refused_with_their_size() {
        let limits = ImageLimits {
            max_decoded_bytes: 1000,
            ..ImageLimits::default()
        };
        let bytes = rgba_png(40, 30, true, false, None);
        let err = decode(&bytes, limits).unwrap_err();
        assert_eq!(
            err,
            ImageError::TooManyDecodedBytes {
                width: 40,
                height: 30,
                bytes: 40 * 30 * 3,
                limit: 1000
            }
        );
        let message = err.to_string();
        assert!(
            message.contains("40x30") && message.contains("1000 bytes"),
            "{message}"
        );
        // The same picture within the limit decodes.
        assert!(decode(&rgba_png(10, 10, true, false, None), limits).is_ok());
    }

    #[test]
    fn a_greyscale_jpeg_counts_its_grey_buffer_and_the_rgb_copy() {
        let mut jpeg = Vec::new();
        DynamicImage::ImageLuma8(image::GrayImage::from_pixel(40, 24, image::Luma([9])))
            .write_to(&mut Cursor::new(&mut jpeg), ImageFormat::Jpeg)
            .unwrap();
        let header = read_header(&jpeg, ImageLimits::default()).unwrap();
        assert_eq!(header.decoded_bytes(), 40 * 24 + 40 * 24 * 3);
        assert_eq!(header.decode().unwrap().get_pixel(3, 3).0, [9, 9, 9]);
    }

    #[test]
    fn refusals_name_the_reason() {
        let limits = ImageLimits {
            max_bytes: 1000,
            max_pixels: 100,
            ..ImageLimits::default()
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
        let mut cut_short = rgba_png(8, 8, true, false, None);
        cut_short.truncate(cut_short.len() - 20);
        assert!(matches!(
            decode(&cut_short, ImageLimits::default()),
            Err(ImageError::Decode(_))
        ));
    }
}
