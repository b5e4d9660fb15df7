//! Face alignment: the least-squares similarity transform (Umeyama) that maps detected landmarks
//! onto a template, and the bilinear warp that cuts the aligned chip out of the image, as OpenCV's
//! `FaceRecognizerSF::alignCrop` (for SFace) and dlib's `extract_image_chip` (for age and gender) do.

use image::{Rgb, RgbImage};
use nalgebra::{Matrix2, Vector2};

/// A 2x3 affine map `[a, b, tx; c, d, ty]` taking `(x, y)` to `(a x + b y + tx, c x + d y + ty)`.
pub type Affine = [[f64; 3]; 2];

/// The ArcFace five-point template in a 112x112 chip (right eye, left eye, nose tip, right and left
/// mouth corners), which OpenCV's `FaceRecognizerSF` aligns SFace's input to.
pub const ARCFACE_112: [(f64, f64); 5] = [
    (38.2946, 51.6963),
    (73.5318, 51.5014),
    (56.0252, 71.7366),
    (41.5493, 92.3655),
    (70.7299, 92.2041),
];

/// The same five points in dlib's mean face (unit square, before padding): the eye centres are the
/// means of dlib's six eye points, the nose tip is point 30 and the mouth corners points 48 and 54
/// of the 68-point mean shape that `get_face_chip_details` uses.
pub const DLIB_MEAN_FACE: [(f64, f64); 5] = [
    (0.225_492, 0.215_990),
    (0.754_761, 0.215_990),
    (0.490_127, 0.515_625),
    (0.254_149, 0.780_233),
    (0.726_104, 0.780_233),
];

/// The template of a dlib face chip of `size` pixels with `padding` (dlib's default is 0.2).
pub fn dlib_template(size: u32, padding: f64) -> [(f64, f64); 5] {
    let s = f64::from(size);
    DLIB_MEAN_FACE.map(|(x, y)| {
        (
            (padding + x) / (2.0 * padding + 1.0) * s,
            (padding + y) / (2.0 * padding + 1.0) * s,
        )
    })
}

/// The similarity transform (rotation, uniform scale, translation) that best maps `src` onto `dst`
/// in the least-squares sense (Umeyama 1991, as scikit-image and OpenCV compute it).
pub fn similarity_transform(src: &[(f64, f64)], dst: &[(f64, f64)]) -> Affine {
    let n = src.len().min(dst.len()).max(1) as f64;
    let mean = |p: &[(f64, f64)]| {
        let (sx, sy) = p.iter().fold((0.0, 0.0), |a, q| (a.0 + q.0, a.1 + q.1));
        Vector2::new(sx / n, sy / n)
    };
    let (ms, md) = (mean(src), mean(dst));
    let mut cov = Matrix2::zeros();
    let mut var = 0.0;
    for (s, d) in src.iter().zip(dst) {
        let xs = Vector2::new(s.0, s.1) - ms;
        let xd = Vector2::new(d.0, d.1) - md;
        cov += xd * xs.transpose();
        var += xs.norm_squared();
    }
    cov /= n;
    var /= n;
    let svd = cov.svd(true, true);
    let (Some(u), Some(vt)) = (svd.u, svd.v_t) else {
        return [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]];
    };
    let mut dm = Matrix2::identity();
    if u.determinant() * vt.determinant() < 0.0 {
        dm[(1, 1)] = -1.0;
    }
    let r = u * dm * vt;
    let scale = if var > 0.0 {
        (svd.singular_values[0] * dm[(0, 0)] + svd.singular_values[1] * dm[(1, 1)]) / var
    } else {
        1.0
    };
    let t = md - scale * r * ms;
    [
        [scale * r[(0, 0)], scale * r[(0, 1)], t.x],
        [scale * r[(1, 0)], scale * r[(1, 1)], t.y],
    ]
}

/// The inverse of an affine map (identity when it is singular).
pub fn invert(m: &Affine) -> Affine {
    let det = m[0][0] * m[1][1] - m[0][1] * m[1][0];
    if det.abs() < 1e-12 {
        return [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]];
    }
    let (a, b, c, d) = (m[1][1] / det, -m[0][1] / det, -m[1][0] / det, m[0][0] / det);
    [
        [a, b, -(a * m[0][2] + b * m[1][2])],
        [c, d, -(c * m[0][2] + d * m[1][2])],
    ]
}

/// Cuts a `size` x `size` chip out of `img` through `to_chip` (image to chip coordinates), sampling
/// bilinearly with black outside the image like OpenCV's `warpAffine`. With `antialias`, each chip
/// pixel averages a grid of samples over its footprint in the image when the chip is much smaller
/// than the face, as dlib's chip extraction does with its image pyramid, and the image's edge is
/// repeated outside it: the age and gender networks saw faces inside whole photos, and a face that
/// fills its frame (a tight crop) would otherwise sit in a black border they never saw.
pub fn warp(img: &RgbImage, to_chip: &Affine, size: u32, antialias: bool) -> RgbImage {
    let m = invert(to_chip);
    let footprint = (m[0][0] * m[1][1] - m[0][1] * m[1][0]).abs().sqrt();
    let n = if antialias {
        footprint.ceil().clamp(1.0, 8.0) as u32
    } else {
        1
    };
    let mut out = RgbImage::new(size, size);
    let inv_n = 1.0 / f64::from(n);
    for y in 0..size {
        for x in 0..size {
            let mut acc = [0f64; 3];
            for j in 0..n {
                for i in 0..n {
                    let cx = f64::from(x) + (f64::from(i) + 0.5) * inv_n - 0.5;
                    let cy = f64::from(y) + (f64::from(j) + 0.5) * inv_n - 0.5;
                    let sx = m[0][0] * cx + m[0][1] * cy + m[0][2];
                    let sy = m[1][0] * cx + m[1][1] * cy + m[1][2];
                    let p = bilinear(img, sx, sy, antialias);
                    for c in 0..3 {
                        acc[c] += p[c];
                    }
                }
            }
            let k = f64::from(n * n);
            out.put_pixel(
                x,
                y,
                Rgb(acc.map(|v| (v / k).round().clamp(0.0, 255.0) as u8)),
            );
        }
    }
    out
}

fn bilinear(img: &RgbImage, x: f64, y: f64, replicate: bool) -> [f64; 3] {
    let (w, h) = (i64::from(img.width()), i64::from(img.height()));
    let x0 = x.floor();
    let y0 = y.floor();
    let (fx, fy) = (x - x0, y - y0);
    let (x0, y0) = (x0 as i64, y0 as i64);
    let px = |xi: i64, yi: i64| -> [f64; 3] {
        if replicate {
            let (xi, yi) = (xi.clamp(0, w - 1), yi.clamp(0, h - 1));
            img.get_pixel(xi as u32, yi as u32).0.map(f64::from)
        } else if xi < 0 || yi < 0 || xi >= w || yi >= h {
            [0.0; 3]
        } else {
            img.get_pixel(xi as u32, yi as u32).0.map(f64::from)
        }
    };
    let (a, b, c, d) = (
        px(x0, y0),
        px(x0 + 1, y0),
        px(x0, y0 + 1),
        px(x0 + 1, y0 + 1),
    );
    let mut out = [0.0; 3];
    for k in 0..3 {
        let top = a[k] + (b[k] - a[k]) * fx;
        let bottom = c[k] + (d[k] - c[k]) * fx;
        out[k] = top + (bottom - top) * fy;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn umeyama_recovers_a_known_similarity() {
        let (s, a, tx, ty) = (2.0f64, 0.3f64, 5.0, -7.0);
        let src = ARCFACE_112;
        let dst: Vec<(f64, f64)> = src
            .iter()
            .map(|&(x, y)| {
                (
                    s * (a.cos() * x - a.sin() * y) + tx,
                    s * (a.sin() * x + a.cos() * y) + ty,
                )
            })
            .collect();
        let m = similarity_transform(&src, &dst);
        assert!((m[0][0] - s * a.cos()).abs() < 1e-9);
        assert!((m[1][0] - s * a.sin()).abs() < 1e-9);
        assert!((m[0][2] - tx).abs() < 1e-9 && (m[1][2] - ty).abs() < 1e-9);
        let back = invert(&m);
        let p = (
            back[0][0] * dst[0].0 + back[0][1] * dst[0].1 + back[0][2],
            0.0,
        );
        assert!((p.0 - src[0].0).abs() < 1e-9);
    }

    #[test]
    fn identity_warp_copies_pixels() {
        let img = RgbImage::from_fn(4, 4, |x, y| Rgb([(x * 10) as u8, (y * 10) as u8, 0]));
        let out = warp(&img, &[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], 4, true);
        assert_eq!(out, img);
    }
}
