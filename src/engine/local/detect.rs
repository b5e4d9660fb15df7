//! Face detection with YuNet (2023mar): the image is scaled so that its long side is at most
//! [`Detector::max_side`], padded at the bottom and right to multiples of 32 like OpenCV's
//! `FaceDetectorYN`, and the twelve output maps (class, objectness, box and landmarks at strides 8,
//! 16 and 32) are decoded, thresholded and reduced by non-maximum suppression as OpenCV does.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use image::RgbImage;
use tract_onnx::pb::ModelProto;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::{ensure, format_err};

use super::onnx::{self, Plan};
use super::resize::area_downscale;

/// One detected face, in pixels of the image given to [`Detector::detect`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Detection {
    /// Left, top, width, height.
    pub bbox: [f32; 4],
    /// Right eye, left eye, nose tip, right and left mouth corners (the subject's right is on the
    /// image's left).
    pub landmarks: [(f32, f32); 5],
    /// The geometric mean of the class and objectness scores, 0-1.
    pub score: f32,
}

/// The YuNet detector; plans are built once per padded input size and shared.
#[derive(Debug)]
pub struct Detector {
    proto: ModelProto,
    plans: Mutex<HashMap<(usize, usize), Plan>>,
    /// Detections scoring below this are dropped (OpenCV's sample uses 0.9; 0.8 here, see
    /// docs/local-engine.md).
    pub score_threshold: f32,
    /// Boxes overlapping a better one by more than this IoU are dropped (OpenCV's sample: 0.3).
    pub nms_threshold: f32,
    /// Images are scaled down so that the long side is at most this many pixels.
    pub max_side: u32,
}

const STRIDES: [usize; 3] = [8, 16, 32];
const OUTPUTS: [&str; 12] = [
    "cls_8", "cls_16", "cls_32", "obj_8", "obj_16", "obj_32", "bbox_8", "bbox_16", "bbox_32",
    "kps_8", "kps_16", "kps_32",
];
/// At most this many plans (input sizes) are kept; photos of many sizes rebuild the oldest.
const MAX_PLANS: usize = 32;

impl Detector {
    /// Loads the model and orders its outputs as the decoder reads them.
    pub fn load(path: &Path) -> TractResult<Self> {
        let mut proto = onnx::read_proto(path)?;
        let graph = proto
            .graph
            .as_mut()
            .ok_or_else(|| format_err!("no graph in {}", path.display()))?;
        let mut outputs = Vec::with_capacity(OUTPUTS.len());
        for name in OUTPUTS {
            let o = graph
                .output
                .iter()
                .find(|o| o.name == name)
                .ok_or_else(|| format_err!("YuNet has no output {name}"))?;
            outputs.push(o.clone());
        }
        graph.output = outputs;
        Ok(Self {
            proto,
            plans: Mutex::new(HashMap::new()),
            score_threshold: 0.8,
            nms_threshold: 0.3,
            max_side: 640,
        })
    }

    fn plan(&self, h: usize, w: usize) -> TractResult<Plan> {
        if let Some(p) = self.lock().get(&(h, w)) {
            return Ok(p.clone());
        }
        // Built outside the lock: two threads may build the same plan once each, which is harmless.
        let plan = onnx::plan(&self.proto, &[1, 3, h, w])?;
        let mut plans = self.lock();
        if plans.len() >= MAX_PLANS {
            plans.clear();
        }
        plans.insert((h, w), plan.clone());
        Ok(plan)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(usize, usize), Plan>> {
        // A panic while holding the lock cannot leave the map inconsistent: keep using it.
        self.plans
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Detects faces, best first.
    pub fn detect(&self, img: &RgbImage) -> TractResult<Vec<Detection>> {
        let (w, h) = img.dimensions();
        let scale = (f64::from(self.max_side) / f64::from(w.max(h))).min(1.0);
        let scaled;
        let input = if scale < 1.0 {
            let sw = ((f64::from(w) * scale).round() as u32).max(1);
            let sh = ((f64::from(h) * scale).round() as u32).max(1);
            // Area averaging with OpenCV's INTER_AREA arithmetic: anti-aliased, cheap on
            // multi-megapixel photos, and the same pixels as the reference implementation.
            scaled = area_downscale(img, sw, sh);
            &scaled
        } else {
            img
        };
        let (iw, ih) = (input.width() as usize, input.height() as usize);
        let pw = iw.div_ceil(32) * 32;
        let ph = ih.div_ceil(32) * 32;
        let mut data = vec![0f32; 3 * ph * pw];
        // YuNet takes BGR, 0-255, as OpenCV's blobFromImage gives it without swapping channels.
        for (x, y, p) in input.enumerate_pixels() {
            let (x, y) = (x as usize, y as usize);
            for c in 0..3 {
                data[(2 - c) * ph * pw + y * pw + x] = f32::from(p.0[c]);
            }
        }
        let tensor = Tensor::from_shape(&[1, 3, ph, pw], &data)?;
        let outputs = onnx::run(&self.plan(ph, pw)?, tensor)?;
        let mut faces = decode(&outputs, pw, ph, self.score_threshold)?;
        faces = nms(faces, self.nms_threshold);
        let sx = w as f32 / iw as f32;
        let sy = h as f32 / ih as f32;
        for f in &mut faces {
            f.bbox = [
                f.bbox[0] * sx,
                f.bbox[1] * sy,
                f.bbox[2] * sx,
                f.bbox[3] * sy,
            ];
            for p in &mut f.landmarks {
                *p = (p.0 * sx, p.1 * sy);
            }
        }
        Ok(faces)
    }
}

fn decode(
    outputs: &[(Vec<usize>, Vec<f32>)],
    pw: usize,
    ph: usize,
    threshold: f32,
) -> TractResult<Vec<Detection>> {
    ensure!(outputs.len() == 12, "YuNet gave {} outputs", outputs.len());
    let mut faces = Vec::new();
    for (i, &stride) in STRIDES.iter().enumerate() {
        let cols = pw / stride;
        let rows = ph / stride;
        let cls = &outputs[i].1;
        let obj = &outputs[i + 3].1;
        let bbox = &outputs[i + 6].1;
        let kps = &outputs[i + 9].1;
        let n = rows * cols;
        ensure!(
            cls.len() >= n && obj.len() >= n && bbox.len() >= 4 * n && kps.len() >= 10 * n,
            "YuNet output sizes do not match the input at stride {stride}"
        );
        let s = stride as f32;
        for r in 0..rows {
            for c in 0..cols {
                let idx = r * cols + c;
                let score = (cls[idx].clamp(0.0, 1.0) * obj[idx].clamp(0.0, 1.0)).sqrt();
                if score < threshold {
                    continue;
                }
                let cx = (c as f32 + bbox[idx * 4]) * s;
                let cy = (r as f32 + bbox[idx * 4 + 1]) * s;
                let bw = bbox[idx * 4 + 2].exp() * s;
                let bh = bbox[idx * 4 + 3].exp() * s;
                let mut landmarks = [(0.0, 0.0); 5];
                for (k, l) in landmarks.iter_mut().enumerate() {
                    *l = (
                        (kps[idx * 10 + 2 * k] + c as f32) * s,
                        (kps[idx * 10 + 2 * k + 1] + r as f32) * s,
                    );
                }
                faces.push(Detection {
                    bbox: [cx - bw / 2.0, cy - bh / 2.0, bw, bh],
                    landmarks,
                    score,
                });
            }
        }
    }
    Ok(faces)
}

/// Greedy non-maximum suppression, best score first, as OpenCV's `NMSBoxes`.
fn nms(mut faces: Vec<Detection>, threshold: f32) -> Vec<Detection> {
    faces.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Detection> = Vec::new();
    for f in faces {
        if kept.iter().all(|k| iou(&k.bbox, &f.bbox) <= threshold) {
            kept.push(f);
        }
    }
    kept
}

/// Intersection over union of two `[left, top, width, height]` boxes.
pub fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let x1 = a[0].max(b[0]);
    let y1 = a[1].max(b[1]);
    let x2 = (a[0] + a[2]).min(b[0] + b[2]);
    let y2 = (a[1] + a[3]).min(b[1] + b[3]);
    let inter = (x2 - x1).max(0.0) * (y2 - y1).max(0.0);
    let union = a[2] * a[3] + b[2] * b[3] - inter;
    if union > 0.0 {
        inter / union
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(x: f32, score: f32) -> Detection {
        Detection {
            bbox: [x, 0.0, 10.0, 10.0],
            landmarks: [(0.0, 0.0); 5],
            score,
        }
    }

    #[test]
    fn nms_keeps_the_best_of_overlapping_boxes() {
        let kept = nms(vec![det(0.0, 0.7), det(1.0, 0.9), det(50.0, 0.8)], 0.3);
        let scores: Vec<f32> = kept.iter().map(|d| d.score).collect();
        assert_eq!(scores, vec![0.9, 0.8]);
        assert!((iou(&[0.0, 0.0, 2.0, 2.0], &[1.0, 0.0, 2.0, 2.0]) - 1.0 / 3.0).abs() < 1e-6);
    }
}
