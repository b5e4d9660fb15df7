//! A face as indexed in a collection, with the classifier attributes that the rules weigh.

use super::{CollectionId, Confidence, ContentHash, ExternalImageId, FaceId, ImageId, Timestamp};

/// A face in a collection: where it is, what the classifiers said about it, and the engine's own
/// response kept verbatim so that nothing the engine reported is lost.
#[derive(Clone, Debug, PartialEq)]
pub struct Face {
    /// The engine's id of the face.
    pub face_id: FaceId,
    /// The collection the face was indexed into.
    pub collection_id: CollectionId,
    /// The image the face was found in; two faces of one image are two people.
    pub image_id: ImageId,
    /// The caller's name for that image, when it gave one.
    pub external_image_id: Option<ExternalImageId>,
    /// Where the face is in the image, as ratios of the image's size.
    pub bbox: BoundingBox,
    /// How sure the detector is that this is a face.
    pub detection_confidence: Option<Confidence>,
    /// What the classifiers said about the face.
    pub attributes: FaceAttributes,
    /// Whether this was the largest face of its image (the face a selfie is about).
    pub is_largest: bool,
    /// When the face was indexed.
    pub indexed_at: Timestamp,
    /// The engine's response for this face, verbatim (JSON), for audits.
    pub raw: Option<String>,
}

/// A face's bounding box as ratios (0-1) of the image's width and height, like Rekognition's.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct BoundingBox {
    /// Left edge, as a ratio of the image width.
    pub left: f32,
    /// Top edge, as a ratio of the image height.
    pub top: f32,
    /// Width, as a ratio of the image width.
    pub width: f32,
    /// Height, as a ratio of the image height.
    pub height: f32,
}

impl BoundingBox {
    /// The share of the image that the box covers, used to rank faces by size.
    pub fn area(&self) -> f32 {
        self.width.max(0.0) * self.height.max(0.0)
    }
}

/// Classifier attributes of a face; each is absent when the engine did not report it.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct FaceAttributes {
    /// Predicted gender and its confidence.
    pub gender: Option<Gender>,
    /// Estimated age range in years.
    pub age: Option<AgeRange>,
    /// Image quality of the face region.
    pub quality: Option<Quality>,
    /// Head pose in degrees.
    pub pose: Option<Pose>,
}

/// A predicted gender with the classifier's confidence.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Gender {
    /// The predicted value.
    pub value: GenderValue,
    /// How sure the classifier is.
    pub confidence: Confidence,
}

/// The values of Rekognition's `GenderType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GenderValue {
    /// `Male`.
    Male,
    /// `Female`.
    Female,
}

impl GenderValue {
    /// The name as Rekognition spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Male => "Male",
            Self::Female => "Female",
        }
    }

    /// Parses Rekognition's spelling, ignoring case.
    pub fn parse(s: &str) -> Option<Self> {
        if s.eq_ignore_ascii_case("male") {
            Some(Self::Male)
        } else if s.eq_ignore_ascii_case("female") {
            Some(Self::Female)
        } else {
            None
        }
    }
}

/// An estimated age range in whole years, `low <= high`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AgeRange {
    /// The lowest estimated age.
    pub low: u32,
    /// The highest estimated age.
    pub high: u32,
}

impl AgeRange {
    /// An age range; the bounds are swapped when given in the wrong order.
    pub fn new(low: u32, high: u32) -> Self {
        Self {
            low: low.min(high),
            high: low.max(high),
        }
    }

    /// How many years apart two ranges are at their closest; 0 when they overlap.
    pub fn gap(&self, other: &AgeRange) -> u32 {
        self.low
            .saturating_sub(other.high)
            .max(other.low.saturating_sub(self.high))
    }
}

/// Brightness and sharpness of the face region, 0-100 as Rekognition reports them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quality {
    /// Brightness, 0 (dark) to 100 (bright).
    pub brightness: f32,
    /// Sharpness, 0 (blurred) to 100 (sharp).
    pub sharpness: f32,
}

/// Head pose in degrees, -180 to 180.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pose {
    /// Turn left or right.
    pub yaw: f32,
    /// Nod up or down.
    pub pitch: f32,
    /// Tilt.
    pub roll: f32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_gap_is_zero_when_ranges_overlap() {
        assert_eq!(AgeRange::new(20, 30).gap(&AgeRange::new(25, 40)), 0);
        assert_eq!(AgeRange::new(20, 30).gap(&AgeRange::new(50, 60)), 20);
        assert_eq!(AgeRange::new(60, 50).gap(&AgeRange::new(20, 30)), 20);
    }
}

/// A face collection.
#[derive(Clone, Debug, PartialEq)]
pub struct Collection {
    /// Its id.
    pub collection_id: CollectionId,
    /// The engine that holds it (`rekognition`, `local`).
    pub engine: String,
    /// The engine's face model version, when known.
    pub face_model_version: Option<String>,
    /// When facegraph first saw it.
    pub created_at: Timestamp,
}

/// An image that faces were found in: one upload. Two uploads of the same bytes are two images
/// sharing a content hash; merging them would lose a customer and hide the strongest fraud signal.
#[derive(Clone, Debug, PartialEq)]
pub struct Image {
    /// The image's identity.
    pub image_id: ImageId,
    /// The caller's name for it.
    pub external_image_id: Option<ExternalImageId>,
    /// The SHA-256 of its bytes, when facegraph read them (not for saved responses).
    pub content_sha256: Option<ContentHash>,
    /// The collection it was uploaded into, when known.
    pub collection_id: Option<CollectionId>,
    /// Whether the upload is still in progress: recorded before the engine saw it, and completed
    /// once its faces and their searches are stored. A crash leaves it pending, and the next writer
    /// completes it.
    pub pending: bool,
    /// Where the bytes came from (a path, a URL, a saved response file).
    pub source: Option<String>,
    /// Width in pixels, when known.
    pub width: Option<u32>,
    /// Height in pixels, when known.
    pub height: Option<u32>,
    /// How many faces the detector found in it.
    pub face_count: u32,
    /// When it was received.
    pub received_at: Timestamp,
}
