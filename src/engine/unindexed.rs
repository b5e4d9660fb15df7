//! The port's [`UnindexedFace`] read from Rekognition's wire `UnindexedFace`: the local engine's
//! stored records and the Rekognition adapter's responses both carry faces left out in that shape.

use crate::engine::{UnindexedFace, UnindexedReason};
use crate::model::{
    AgeRange, BoundingBox, Confidence, FaceAttributes, Gender, GenderValue, Pose, Quality,
};
use crate::rekognition::wire;

/// The domain form of a stored unindexed face; values out of range (never written by this engine)
/// are dropped rather than failing the call.
pub(crate) fn unindexed_of(u: &wire::UnindexedFace) -> UnindexedFace {
    let detail = u.face_detail.clone().unwrap_or_default();
    let bbox = detail
        .bounding_box
        .map(|b| BoundingBox {
            left: b.left.unwrap_or(0.0) as f32,
            top: b.top.unwrap_or(0.0) as f32,
            width: b.width.unwrap_or(0.0) as f32,
            height: b.height.unwrap_or(0.0) as f32,
        })
        .unwrap_or_default();
    let gender = detail.gender.as_ref().and_then(|g| {
        let value = match g.value.as_ref()? {
            wire::GenderType::Male => GenderValue::Male,
            wire::GenderType::Female => GenderValue::Female,
            wire::GenderType::Other(_) => return None,
        };
        Some(Gender {
            value,
            confidence: Confidence::new(g.confidence?).ok()?,
        })
    });
    let attributes = FaceAttributes {
        gender,
        // Values out of range (never written by facegraph) are dropped rather than failing.
        age: detail
            .age_range
            .and_then(|a| AgeRange::new(a.low?, a.high?).ok()),
        quality: detail
            .quality
            .and_then(|q| Quality::new(q.brightness?, q.sharpness?).ok()),
        pose: detail
            .pose
            .and_then(|p| Pose::new(p.yaw?, p.pitch?, p.roll?).ok()),
    };
    let reasons = u
        .reasons
        .iter()
        .flatten()
        .filter_map(|r| reason_of(r.as_str()))
        .collect();
    UnindexedFace {
        bbox,
        confidence: detail.confidence.and_then(|c| Confidence::new(c).ok()),
        attributes,
        reasons,
    }
}

fn reason_of(s: &str) -> Option<UnindexedReason> {
    [
        UnindexedReason::ExceedsMaxFaces,
        UnindexedReason::ExtremePose,
        UnindexedReason::LowBrightness,
        UnindexedReason::LowSharpness,
        UnindexedReason::LowConfidence,
        UnindexedReason::SmallBoundingBox,
        UnindexedReason::LowFaceQuality,
    ]
    .into_iter()
    .find(|r| r.as_str() == s)
}
