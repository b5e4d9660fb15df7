//! Contradicting records of one face, found before an ingest writes anything: both adapters read
//! the stored records of a batch's faces and run [`refuse_conflicts`], so that they refuse the
//! same batches with the same [`StoreError::Conflict`].

use std::borrow::Cow;
use std::collections::hash_map::Entry;
use std::collections::HashMap;

use super::StoreError;
use crate::model::{Face, FaceId};

/// A part of a face record that two records of one face id can contradict each other on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaceField {
    /// The collection the face was indexed into.
    Collection,
    /// The image the face was found in.
    ImageId,
    /// The caller's name for that image.
    ExternalImageId,
    /// Where the face is in the image.
    BoundingBox,
    /// The detector's confidence that it is a face.
    DetectionConfidence,
    /// The predicted gender and its confidence.
    Gender,
    /// The estimated age range.
    Age,
    /// Brightness and sharpness.
    Quality,
    /// Yaw, pitch and roll.
    Pose,
}

impl FaceField {
    /// The field's name in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Collection => "collection",
            Self::ImageId => "image id",
            Self::ExternalImageId => "external image id",
            Self::BoundingBox => "bounding box",
            Self::DetectionConfidence => "detection confidence",
            Self::Gender => "gender",
            Self::Age => "age",
            Self::Quality => "quality",
            Self::Pose => "pose",
        }
    }
}

impl std::fmt::Display for FaceField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Fails with [`StoreError::Conflict`] on the first face of `incoming` that contradicts the stored
/// record of its id in `stored`, or an earlier record of it in `incoming`. A record that only adds
/// what the other lacks is no conflict: the known record is completed with it before the next
/// record of that face is compared.
pub(crate) fn refuse_conflicts(stored: &[Face], incoming: &[Face]) -> Result<(), StoreError> {
    let mut known: HashMap<&FaceId, Cow<'_, Face>> = stored
        .iter()
        .map(|face| (&face.face_id, Cow::Borrowed(face)))
        .collect();
    for face in incoming {
        match known.entry(&face.face_id) {
            Entry::Vacant(slot) => {
                slot.insert(Cow::Borrowed(face));
            }
            Entry::Occupied(mut slot) => {
                if let Some((field, stored, incoming)) = difference(slot.get(), face) {
                    return Err(StoreError::Conflict {
                        face_id: face.face_id.clone(),
                        field,
                        stored,
                        incoming,
                    });
                }
                complete(slot.get_mut().to_mut(), face);
            }
        }
    }
    Ok(())
}

/// The first field that both records report and that differs, with both values as written in
/// messages.
fn difference(known: &Face, face: &Face) -> Option<(FaceField, String, String)> {
    let (a, b) = (&known.attributes, &face.attributes);
    differs(
        FaceField::Collection,
        Some(&known.collection_id),
        Some(&face.collection_id),
        ToString::to_string,
    )
    .or_else(|| {
        differs(
            FaceField::ImageId,
            Some(&known.image_id),
            Some(&face.image_id),
            ToString::to_string,
        )
    })
    .or_else(|| {
        differs(
            FaceField::ExternalImageId,
            known.external_image_id.as_ref(),
            face.external_image_id.as_ref(),
            ToString::to_string,
        )
    })
    .or_else(|| {
        differs(
            FaceField::BoundingBox,
            Some(&known.bbox),
            Some(&face.bbox),
            |b| format!("{} x {} at ({}, {})", b.width, b.height, b.left, b.top),
        )
    })
    .or_else(|| {
        differs(
            FaceField::DetectionConfidence,
            known.detection_confidence.as_ref(),
            face.detection_confidence.as_ref(),
            |c| c.get().to_string(),
        )
    })
    .or_else(|| {
        differs(
            FaceField::Gender,
            a.gender.as_ref(),
            b.gender.as_ref(),
            |g| format!("{} ({})", g.value.as_str(), g.confidence.get()),
        )
    })
    .or_else(|| {
        differs(FaceField::Age, a.age.as_ref(), b.age.as_ref(), |r| {
            format!("{}-{}", r.low(), r.high())
        })
    })
    .or_else(|| {
        differs(
            FaceField::Quality,
            a.quality.as_ref(),
            b.quality.as_ref(),
            |q| format!("brightness {}, sharpness {}", q.brightness(), q.sharpness()),
        )
    })
    .or_else(|| {
        differs(FaceField::Pose, a.pose.as_ref(), b.pose.as_ref(), |p| {
            format!("yaw {}, pitch {}, roll {}", p.yaw(), p.pitch(), p.roll())
        })
    })
}

/// `field` with both values shown, when both records report it and the values differ.
fn differs<T: PartialEq>(
    field: FaceField,
    known: Option<&T>,
    incoming: Option<&T>,
    show: impl Fn(&T) -> String,
) -> Option<(FaceField, String, String)> {
    match (known, incoming) {
        (Some(k), Some(i)) if k != i => Some((field, show(k), show(i))),
        _ => None,
    }
}

/// Gives `known` what `face` reports and it lacked, as the adapters' writes do.
fn complete(known: &mut Face, face: &Face) {
    let (a, b) = (&mut known.attributes, &face.attributes);
    if known.external_image_id.is_none() {
        known.external_image_id.clone_from(&face.external_image_id);
    }
    known.detection_confidence = known.detection_confidence.or(face.detection_confidence);
    a.gender = a.gender.or(b.gender);
    a.age = a.age.or(b.age);
    a.quality = a.quality.or(b.quality);
    a.pose = a.pose.or(b.pose);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AgeRange, FaceAttributes};
    use crate::store::contract::fixtures::{face, image_id};

    fn conflict(stored: &[Face], incoming: &[Face]) -> Option<(FaceField, String, String)> {
        match refuse_conflicts(stored, incoming) {
            Ok(()) => None,
            Err(StoreError::Conflict {
                field,
                stored,
                incoming,
                ..
            }) => Some((field, stored, incoming)),
            Err(other) => panic!("expected a conflict or none, got {other:?}"),
        }
    }

    #[test]
    fn the_same_record_again_is_no_conflict() {
        assert_eq!(conflict(&[face(1, 1)], &[face(1, 1), face(1, 1)]), None);
    }

    #[test]
    fn a_record_that_only_adds_is_no_conflict_and_is_compared_completed() {
        let full = face(1, 1);
        let mut bare = full.clone();
        bare.attributes = FaceAttributes::default();
        bare.external_image_id = None;
        assert_eq!(
            conflict(std::slice::from_ref(&bare), std::slice::from_ref(&full)),
            None
        );
        assert_eq!(
            conflict(std::slice::from_ref(&full), std::slice::from_ref(&bare)),
            None
        );
        // The bare record is completed by the full one, so a third record is compared with both.
        let mut older = full.clone();
        if let Some(age) = older.attributes.age {
            older.attributes.age = AgeRange::new(age.low(), age.high() + 10).ok();
        }
        assert_eq!(
            conflict(&[bare], &[full, older]),
            Some((FaceField::Age, "25-35".to_owned(), "25-45".to_owned()))
        );
    }

    #[test]
    fn the_first_differing_field_is_named_with_both_values() {
        let stored = face(1, 1);
        let mut moved = stored.clone();
        moved.image_id = image_id(2);
        moved.bbox.left = 0.5;
        let (field, was, now) = conflict(&[stored], &[moved]).expect("a conflict");
        assert_eq!(field, FaceField::ImageId);
        assert_eq!(
            (was, now),
            (image_id(1).to_string(), image_id(2).to_string())
        );
    }

    #[test]
    fn a_conflict_inside_one_batch_is_found_too() {
        let first = face(3, 1);
        let mut second = first.clone();
        second.bbox.width = 0.5;
        assert_eq!(
            conflict(&[], &[first, second]).map(|(field, ..)| field),
            Some(FaceField::BoundingBox)
        );
    }
}
