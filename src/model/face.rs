//! A face as indexed in a collection, with the classifier attributes that the rules weigh.

use super::{
    CollectionId, Confidence, ContentHash, ExternalImageId, FaceId, ImageId, ParseError, Timestamp,
};

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

/// An estimated age range in whole years, `low <= high <= 150`; every door (the API, saved
/// responses, the local engine, the stores) builds it with [`AgeRange::new`], which refuses
/// anything else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AgeRange {
    low: u32,
    high: u32,
}

impl AgeRange {
    /// The oldest age a range may reach.
    pub const MAX: u32 = 150;

    /// An age range, refused unless `low <= high <= 150`.
    pub fn new(low: u32, high: u32) -> Result<Self, ParseError> {
        if low > high || high > Self::MAX {
            return Err(ParseError::new(
                "age range",
                format!("{low}-{high}"),
                format!("must have low <= high <= {}", Self::MAX),
            ));
        }
        Ok(Self { low, high })
    }

    /// The lowest estimated age.
    pub fn low(&self) -> u32 {
        self.low
    }

    /// The highest estimated age.
    pub fn high(&self) -> u32 {
        self.high
    }

    /// How many years apart two ranges are at their closest; 0 when they overlap.
    pub fn gap(&self, other: &AgeRange) -> u32 {
        self.low
            .saturating_sub(other.high)
            .max(other.low.saturating_sub(self.high))
    }
}

/// Brightness and sharpness of the face region, each 0-100 as Rekognition reports them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quality {
    brightness: f32,
    sharpness: f32,
}

impl Quality {
    /// Brightness and sharpness, refused unless each is a number from 0 to 100.
    pub fn new(brightness: f64, sharpness: f64) -> Result<Self, ParseError> {
        Ok(Self {
            brightness: Self::check("brightness", brightness)?,
            sharpness: Self::check("sharpness", sharpness)?,
        })
    }

    /// Checks one part (`brightness` or `sharpness`), so that a caller can name every bad one.
    pub fn check(part: &'static str, v: f64) -> Result<f32, ParseError> {
        if (0.0..=100.0).contains(&v) {
            Ok(v as f32)
        } else {
            Err(ParseError::new(part, v, "must be a number from 0 to 100"))
        }
    }

    /// Brightness, 0 (dark) to 100 (bright).
    pub fn brightness(&self) -> f32 {
        self.brightness
    }

    /// Sharpness, 0 (blurred) to 100 (sharp).
    pub fn sharpness(&self) -> f32 {
        self.sharpness
    }
}

/// Head pose in degrees, each from -180 to 180.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pose {
    yaw: f32,
    pitch: f32,
    roll: f32,
}

impl Pose {
    /// Yaw, pitch and roll, refused unless each is a number from -180 to 180.
    pub fn new(yaw: f64, pitch: f64, roll: f64) -> Result<Self, ParseError> {
        Ok(Self {
            yaw: Self::check("yaw", yaw)?,
            pitch: Self::check("pitch", pitch)?,
            roll: Self::check("roll", roll)?,
        })
    }

    /// Checks one part (`yaw`, `pitch` or `roll`), so that a caller can name every bad one.
    pub fn check(part: &'static str, v: f64) -> Result<f32, ParseError> {
        if (-180.0..=180.0).contains(&v) {
            Ok(v as f32)
        } else {
            Err(ParseError::new(
                part,
                v,
                "must be a number from -180 to 180",
            ))
        }
    }

    /// Turn left or right.
    pub fn yaw(&self) -> f32 {
        self.yaw
    }

    /// Nod up or down.
    pub fn pitch(&self) -> f32 {
        self.pitch
    }

    /// Tilt.
    pub fn roll(&self) -> f32 {
        self.roll
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn age(low: u32, high: u32) -> AgeRange {
        AgeRange::new(low, high).unwrap()
    }

    #[test]
    fn age_gap_is_zero_when_ranges_overlap() {
        assert_eq!(age(20, 30).gap(&age(25, 40)), 0);
        assert_eq!(age(20, 30).gap(&age(50, 60)), 20);
        assert_eq!(age(50, 60).gap(&age(20, 30)), 20);
    }

    #[test]
    fn ranges_are_refused_by_their_type() {
        let err = AgeRange::new(60, 50).unwrap_err().to_string();
        assert!(
            err.contains("60-50") && err.contains("low <= high"),
            "{err}"
        );
        assert!(AgeRange::new(20, 151).is_err());
        assert!(AgeRange::new(150, 150).is_ok());
        let err = Quality::new(50.0, 100.5).unwrap_err().to_string();
        assert!(err.contains("sharpness") && err.contains("100.5"), "{err}");
        assert!(Quality::new(f64::NAN, 1.0).is_err());
        let err = Pose::new(0.0, -181.0, 0.0).unwrap_err().to_string();
        assert!(
            err.contains("pitch") && err.contains("-180 to 180"),
            "{err}"
        );
        assert_eq!(Pose::new(1.0, 2.0, 3.0).unwrap().roll(), 3.0);
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
