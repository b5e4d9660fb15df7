//! Downscaling by area averaging with OpenCV's `INTER_AREA` arithmetic, so that the detector sees
//! the same pixels as the reference implementation it is compared with (`scripts/compare-opencv`):
//! a one-level difference in a few pixels moves the landmarks, the aligned crop and the embedding.
//!
//! Each destination pixel is the mean of the source pixels under it, border pixels weighted by the
//! fraction they cover. Integer factors take OpenCV's integer path (a 2x2 block is `(sum + 2) >> 2`);
//! other factors accumulate in `f32` in OpenCV's order and round half to even.

use image::RgbImage;

/// One source index contributing to one destination index with a weight.
#[derive(Clone, Copy, Debug)]
struct Tap {
    dst: usize,
    src: usize,
    weight: f32,
}

/// The taps of one axis: `src_len` pixels averaged down to `dst_len`, in destination order.
fn taps(src_len: usize, dst_len: usize) -> Vec<Tap> {
    let scale = src_len as f64 / dst_len as f64;
    let mut out = Vec::with_capacity(src_len + dst_len);
    for dst in 0..dst_len {
        let f1 = dst as f64 * scale;
        let f2 = f1 + scale;
        let cell = scale.min(src_len as f64 - f1);
        let mut s2 = f2.floor() as usize;
        s2 = s2.min(src_len - 1);
        let s1 = (f1.ceil() as usize).min(s2);
        if s1 as f64 - f1 > 1e-3 {
            out.push(Tap {
                dst,
                src: s1 - 1,
                weight: ((s1 as f64 - f1) / cell) as f32,
            });
        }
        for src in s1..s2 {
            out.push(Tap {
                dst,
                src,
                weight: (1.0 / cell) as f32,
            });
        }
        if f2 - s2 as f64 > 1e-3 {
            out.push(Tap {
                dst,
                src: s2,
                weight: ((f2 - s2 as f64).min(1.0).min(cell) / cell) as f32,
            });
        }
    }
    out
}

/// `img` averaged down to `width` x `height` (each at most the source's and at least 1).
pub fn area_downscale(img: &RgbImage, width: u32, height: u32) -> RgbImage {
    let (sw, sh) = (img.width() as usize, img.height() as usize);
    let (dw, dh) = (width.max(1) as usize, height.max(1) as usize);
    if (dw, dh) == (sw, sh) {
        return img.clone();
    }
    if sw % dw == 0 && sh % dh == 0 {
        return integer_downscale(img, sw / dw, sh / dh, dw, dh);
    }
    let src = img.as_raw();
    let xtaps = taps(sw, dw);
    let ytaps = taps(sh, dh);
    let mut out = vec![0u8; dw * dh * 3];
    let mut buf = vec![0f32; dw * 3];
    let mut sum = vec![0f32; dw * 3];
    let mut prev = ytaps.first().map_or(0, |t| t.dst);
    let flush = |out: &mut [u8], row: usize, sum: &[f32]| {
        for (d, s) in out[row * dw * 3..(row + 1) * dw * 3].iter_mut().zip(sum) {
            *d = s.round_ties_even().clamp(0.0, 255.0) as u8;
        }
    };
    for y in &ytaps {
        buf.fill(0.0);
        let row = &src[y.src * sw * 3..(y.src + 1) * sw * 3];
        for x in &xtaps {
            for c in 0..3 {
                let b = &mut buf[x.dst * 3 + c];
                *b += f32::from(row[x.src * 3 + c]) * x.weight;
            }
        }
        if y.dst != prev {
            flush(&mut out, prev, &sum);
            for (s, b) in sum.iter_mut().zip(&buf) {
                *s = y.weight * b;
            }
            prev = y.dst;
        } else {
            for (s, b) in sum.iter_mut().zip(&buf) {
                *s += y.weight * b;
            }
        }
    }
    flush(&mut out, prev, &sum);
    RgbImage::from_raw(dw as u32, dh as u32, out)
        .unwrap_or_else(|| unreachable!("the buffer has width x height x 3 bytes"))
}

/// Whole `kx` x `ky` blocks: integer sums, `(sum + 2) >> 2` for 2x2 blocks, otherwise the sum times
/// the block's reciprocal area rounded half to even.
fn integer_downscale(img: &RgbImage, kx: usize, ky: usize, dw: usize, dh: usize) -> RgbImage {
    let sw = img.width() as usize;
    let src = img.as_raw();
    let area = (kx * ky) as u32;
    let inv = 1.0 / area as f32;
    let mut out = vec![0u8; dw * dh * 3];
    for dy in 0..dh {
        for dx in 0..dw {
            for c in 0..3 {
                let mut s = 0u32;
                for y in dy * ky..(dy + 1) * ky {
                    let row = &src[y * sw * 3..(y + 1) * sw * 3];
                    for x in dx * kx..(dx + 1) * kx {
                        s += u32::from(row[x * 3 + c]);
                    }
                }
                out[(dy * dw + dx) * 3 + c] = if area == 4 {
                    ((s + 2) >> 2) as u8
                } else {
                    (s as f32 * inv).round_ties_even().min(255.0) as u8
                };
            }
        }
    }
    RgbImage::from_raw(dw as u32, dh as u32, out)
        .unwrap_or_else(|| unreachable!("the buffer has width x height x 3 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grey(w: u32, h: u32, f: impl Fn(u32, u32) -> u8) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            let v = f(x, y);
            image::Rgb([v, v, v])
        })
    }

    #[test]
    fn equals_opencv_inter_area_pixel_for_pixel() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/resize");
        for case in ["fraction", "half", "third", "mixed", "near"] {
            let load = |s: &str| {
                image::open(format!("{dir}/{case}-{s}.png"))
                    .unwrap()
                    .to_rgb8()
            };
            let (input, want) = (load("in"), load("out"));
            let got = area_downscale(&input, want.width(), want.height());
            let differing = got
                .as_raw()
                .iter()
                .zip(want.as_raw())
                .filter(|(a, b)| a != b)
                .count();
            assert_eq!(
                differing, 0,
                "{case}: {differing} values differ from OpenCV's"
            );
        }
    }

    #[test]
    fn halving_averages_blocks_rounding_halves_up() {
        let img = grey(4, 2, |x, _| [0, 1, 10, 20][x as usize]);
        let out = area_downscale(&img, 2, 1);
        // (0+1+0+1+2)>>2 = 1; (10+20+10+20+2)>>2 = 15.
        assert_eq!(out.get_pixel(0, 0).0[0], 1);
        assert_eq!(out.get_pixel(1, 0).0[0], 15);
    }

    #[test]
    fn fractional_factors_weight_border_pixels_by_coverage() {
        // 3 pixels to 2: the middle one is split half and half.
        let img = grey(3, 1, |x, _| [0, 100, 200][x as usize]);
        let out = area_downscale(&img, 2, 1);
        // (0 * 1 + 100 * 0.5) / 1.5 = 33.3; (100 * 0.5 + 200 * 1) / 1.5 = 166.7
        assert_eq!(out.get_pixel(0, 0).0[0], 33);
        assert_eq!(out.get_pixel(1, 0).0[0], 167);
    }

    #[test]
    fn a_flat_image_stays_flat_and_sizes_are_kept() {
        let img = grey(1001, 667, |_, _| 77);
        let out = area_downscale(&img, 640, 426);
        assert_eq!(out.dimensions(), (640, 426));
        assert!(out.pixels().all(|p| p.0 == [77, 77, 77]));
        let out = area_downscale(&img, 1001, 667);
        assert_eq!(out, img);
    }

    #[test]
    fn taps_cover_every_source_pixel_with_unit_total_weight_per_destination() {
        for (s, d) in [(1001, 640), (7, 3), (640, 639), (1280, 427)] {
            let t = taps(s, d);
            let mut total = vec![0f64; d];
            for tap in &t {
                total[tap.dst] += f64::from(tap.weight);
            }
            assert!(
                total.iter().all(|w| (w - 1.0).abs() < 1e-4),
                "{s}->{d}: {total:?}"
            );
            let mut srcs: Vec<usize> = t.iter().map(|t| t.src).collect();
            srcs.dedup();
            assert_eq!(srcs, (0..s).collect::<Vec<_>>(), "{s}->{d}");
        }
    }
}
