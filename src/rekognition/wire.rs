//! Serde wire types of the IndexFaces, SearchFaces, SearchFacesByImage and ListFaces responses, with
//! the member names, types and enum values of the Rekognition API model (2016-06-27); they serialise to
//! the PascalCase shape the service returns, so that a response written with them reads back.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The response of `IndexFaces`: the faces added to the collection and those left out.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IndexFacesResponse {
    /// One record per face that was indexed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub face_records: Option<Vec<FaceRecord>>,
    /// The rotation the service applied (only older face models report it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub orientation_correction: Option<OrientationCorrection>,
    /// The collection's face model version, such as `6.0`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub face_model_version: Option<String>,
    /// The faces that were detected and not indexed, with the reasons why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unindexed_faces: Option<Vec<UnindexedFace>>,
}

/// The response of `SearchFaces`: the faces of the collection that match a face of the collection.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SearchFacesResponse {
    /// The face that was searched for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub searched_face_id: Option<String>,
    /// The matching faces, most similar first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub face_matches: Option<Vec<FaceMatch>>,
    /// The collection's face model version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub face_model_version: Option<String>,
}

/// The response of `SearchFacesByImage`: the faces of the collection that match the largest face of
/// an image. It does not say which face of the collection (if any) that face is.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SearchFacesByImageResponse {
    /// Where the searched face is in the input image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub searched_face_bounding_box: Option<BoundingBox>,
    /// How sure the detector is that the searched region is a face.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub searched_face_confidence: Option<f64>,
    /// The matching faces, most similar first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub face_matches: Option<Vec<FaceMatch>>,
    /// The collection's face model version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub face_model_version: Option<String>,
}

/// The response of `ListFaces`: one page of the faces of a collection.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListFacesResponse {
    /// The faces of this page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub faces: Option<Vec<Face>>,
    /// The token of the next page, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
    /// The collection's face model version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub face_model_version: Option<String>,
}

/// One indexed face: its entry in the collection and what the detector saw.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FaceRecord {
    /// The face as stored in the collection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub face: Option<Face>,
    /// The detector's and classifiers' findings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub face_detail: Option<FaceDetail>,
}

/// A face as stored in a collection.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Face {
    /// The collection's id of the face (a UUID).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub face_id: Option<String>,
    /// Where the face is in its image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bounding_box: Option<BoundingBox>,
    /// The service's id of the image the face was found in (a UUID).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    /// The caller's name for that image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_image_id: Option<String>,
    /// How sure the detector is that this is a face, 0-100.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    /// The face model version that indexed the face.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index_faces_model_version: Option<String>,
    /// The user the face is associated with, when any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

/// A box as ratios of the image's width and height.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BoundingBox {
    /// Width, as a ratio of the image width.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<f64>,
    /// Height, as a ratio of the image height.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<f64>,
    /// Left edge, as a ratio of the image width.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub left: Option<f64>,
    /// Top edge, as a ratio of the image height.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top: Option<f64>,
}

/// What the detector and the classifiers found about a face.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FaceDetail {
    /// Where the face is in the image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bounding_box: Option<BoundingBox>,
    /// Estimated age range in years.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age_range: Option<AgeRange>,
    /// Whether the face smiles.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smile: Option<Smile>,
    /// Whether the face wears glasses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eyeglasses: Option<Eyeglasses>,
    /// Whether the face wears sunglasses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sunglasses: Option<Sunglasses>,
    /// Predicted gender.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gender: Option<Gender>,
    /// Whether the face has a beard.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beard: Option<Beard>,
    /// Whether the face has a mustache.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mustache: Option<Mustache>,
    /// Whether the eyes are open.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eyes_open: Option<EyeOpen>,
    /// Whether the mouth is open.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mouth_open: Option<MouthOpen>,
    /// Predicted emotions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emotions: Option<Vec<Emotion>>,
    /// Positions of facial landmarks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub landmarks: Option<Vec<Landmark>>,
    /// Head pose.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pose: Option<Pose>,
    /// Brightness and sharpness of the face region.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality: Option<ImageQuality>,
    /// How sure the detector is that this is a face, 0-100.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    /// Whether the face is partly hidden.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub face_occluded: Option<FaceOccluded>,
    /// Where the eyes look.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eye_direction: Option<EyeDirection>,
}

/// An estimated age range in years.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AgeRange {
    /// The lowest estimated age.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub low: Option<u32>,
    /// The highest estimated age.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub high: Option<u32>,
}

/// A yes-or-no classifier finding with its confidence; the API model has one shape of this form per
/// attribute (`Smile`, `Eyeglasses`, ...), all with the same members.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BooleanAttribute {
    /// What the classifier found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<bool>,
    /// How sure it is, 0-100.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
}

/// Whether the face smiles.
pub type Smile = BooleanAttribute;
/// Whether the face wears glasses.
pub type Eyeglasses = BooleanAttribute;
/// Whether the face wears sunglasses.
pub type Sunglasses = BooleanAttribute;
/// Whether the face has a beard.
pub type Beard = BooleanAttribute;
/// Whether the face has a mustache.
pub type Mustache = BooleanAttribute;
/// Whether the eyes are open (the API model's `EyeOpen`, the member `EyesOpen`).
pub type EyeOpen = BooleanAttribute;
/// Whether the mouth is open.
pub type MouthOpen = BooleanAttribute;
/// Whether the face is partly hidden.
pub type FaceOccluded = BooleanAttribute;

/// A predicted gender with its confidence.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Gender {
    /// The predicted value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<GenderType>,
    /// How sure the classifier is, 0-100.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
}

/// A predicted emotion with its confidence.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Emotion {
    /// Which emotion.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub r#type: Option<EmotionName>,
    /// How sure the classifier is, 0-100.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
}

/// The position of a facial landmark, as ratios of the image's width and height.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Landmark {
    /// Which landmark.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub r#type: Option<LandmarkType>,
    /// Horizontal position.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x: Option<f64>,
    /// Vertical position.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub y: Option<f64>,
}

/// Head pose in degrees, -180 to 180.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Pose {
    /// Tilt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roll: Option<f64>,
    /// Turn left or right.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub yaw: Option<f64>,
    /// Nod up or down.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pitch: Option<f64>,
}

/// Brightness and sharpness of the face region, 0-100.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageQuality {
    /// Brightness, 0 (dark) to 100 (bright).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brightness: Option<f64>,
    /// Sharpness, 0 (blurred) to 100 (sharp).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sharpness: Option<f64>,
}

/// Where the eyes look, in degrees.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EyeDirection {
    /// Left or right.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub yaw: Option<f64>,
    /// Up or down.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pitch: Option<f64>,
    /// How sure the classifier is, 0-100.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
}

/// One face a search returned.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FaceMatch {
    /// How similar it is to the searched face, 0-100.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub similarity: Option<f64>,
    /// The matching face of the collection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub face: Option<Face>,
}

/// A face that `IndexFaces` detected and did not index.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UnindexedFace {
    /// Why it was not indexed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasons: Option<Vec<Reason>>,
    /// What the detector found about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub face_detail: Option<FaceDetail>,
}

/// Declares a string enum of the API model. The service adds values over time, so a value this
/// version does not know is kept as `Other` with its spelling, and written back unchanged.
macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $text:literal,)* }) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $(
                #[doc = concat!("`", $text, "`.")]
                $variant,
            )*
            /// A value that this version of the API model does not list, as the service spelled it.
            Other(String),
        }

        impl $name {
            /// The value as the service spells it.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $text,)*
                    Self::Other(s) => s,
                }
            }

            /// The value of a spelling; an unlisted spelling becomes `Other`.
            pub fn from_wire(s: &str) -> Self {
                match s {
                    $($text => Self::$variant,)*
                    _ => Self::Other(s.to_owned()),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = String::deserialize(deserializer)?;
                Ok(Self::from_wire(&s))
            }
        }
    };
}

wire_enum!(
    /// The API model's `GenderType`.
    GenderType {
        Male = "Male",
        Female = "Female",
    }
);

wire_enum!(
    /// The API model's `EmotionName`.
    EmotionName {
        Happy = "HAPPY",
        Sad = "SAD",
        Angry = "ANGRY",
        Confused = "CONFUSED",
        Disgusted = "DISGUSTED",
        Surprised = "SURPRISED",
        Calm = "CALM",
        Unknown = "UNKNOWN",
        Fear = "FEAR",
    }
);

wire_enum!(
    /// The API model's `LandmarkType`.
    LandmarkType {
        EyeLeft = "eyeLeft",
        EyeRight = "eyeRight",
        Nose = "nose",
        MouthLeft = "mouthLeft",
        MouthRight = "mouthRight",
        LeftEyeBrowLeft = "leftEyeBrowLeft",
        LeftEyeBrowRight = "leftEyeBrowRight",
        LeftEyeBrowUp = "leftEyeBrowUp",
        RightEyeBrowLeft = "rightEyeBrowLeft",
        RightEyeBrowRight = "rightEyeBrowRight",
        RightEyeBrowUp = "rightEyeBrowUp",
        LeftEyeLeft = "leftEyeLeft",
        LeftEyeRight = "leftEyeRight",
        LeftEyeUp = "leftEyeUp",
        LeftEyeDown = "leftEyeDown",
        RightEyeLeft = "rightEyeLeft",
        RightEyeRight = "rightEyeRight",
        RightEyeUp = "rightEyeUp",
        RightEyeDown = "rightEyeDown",
        NoseLeft = "noseLeft",
        NoseRight = "noseRight",
        MouthUp = "mouthUp",
        MouthDown = "mouthDown",
        LeftPupil = "leftPupil",
        RightPupil = "rightPupil",
        UpperJawlineLeft = "upperJawlineLeft",
        MidJawlineLeft = "midJawlineLeft",
        ChinBottom = "chinBottom",
        MidJawlineRight = "midJawlineRight",
        UpperJawlineRight = "upperJawlineRight",
    }
);

wire_enum!(
    /// The API model's `Reason`: why `IndexFaces` left a face out.
    Reason {
        ExceedsMaxFaces = "EXCEEDS_MAX_FACES",
        ExtremePose = "EXTREME_POSE",
        LowBrightness = "LOW_BRIGHTNESS",
        LowSharpness = "LOW_SHARPNESS",
        LowConfidence = "LOW_CONFIDENCE",
        SmallBoundingBox = "SMALL_BOUNDING_BOX",
        LowFaceQuality = "LOW_FACE_QUALITY",
    }
);

wire_enum!(
    /// The API model's `OrientationCorrection`.
    OrientationCorrection {
        Rotate0 = "ROTATE_0",
        Rotate90 = "ROTATE_90",
        Rotate180 = "ROTATE_180",
        Rotate270 = "ROTATE_270",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_in_the_service_spelling_and_skips_absent_members() {
        let record = FaceRecord {
            face: Some(Face {
                face_id: Some("aaaaaaaa-0000-4000-8000-000000000001".into()),
                confidence: Some(99.5),
                ..Face::default()
            }),
            face_detail: Some(FaceDetail {
                landmarks: Some(vec![Landmark {
                    r#type: Some(LandmarkType::EyeLeft),
                    x: Some(0.25),
                    y: Some(0.5),
                }]),
                gender: Some(Gender {
                    value: Some(GenderType::Female),
                    confidence: Some(99.5),
                }),
                ..FaceDetail::default()
            }),
        };
        let json = serde_json::to_string(&record).expect("a wire record serialises");
        assert_eq!(
            json,
            r#"{"Face":{"FaceId":"aaaaaaaa-0000-4000-8000-000000000001","Confidence":99.5},"FaceDetail":{"Gender":{"Value":"Female","Confidence":99.5},"Landmarks":[{"Type":"eyeLeft","X":0.25,"Y":0.5}]}}"#
        );
        let back: FaceRecord = serde_json::from_str(&json).expect("it reads back");
        assert_eq!(back, record);
    }

    #[test]
    fn enum_values_the_model_does_not_list_are_kept() {
        let reasons: Vec<Reason> =
            serde_json::from_str(r#"["EXCEEDS_MAX_FACES", "TOO_MUCH_GLITTER"]"#)
                .expect("reasons parse");
        assert_eq!(
            reasons,
            [
                Reason::ExceedsMaxFaces,
                Reason::Other("TOO_MUCH_GLITTER".into())
            ]
        );
        assert_eq!(
            serde_json::to_string(&reasons).expect("reasons serialise"),
            r#"["EXCEEDS_MAX_FACES","TOO_MUCH_GLITTER"]"#
        );
    }

    #[test]
    fn unknown_nested_members_are_ignored() {
        let face: Face = serde_json::from_str(
            r#"{"FaceId":"aaaaaaaa-0000-4000-8000-000000000001","ShinyNewMember":{"A":1}}"#,
        )
        .expect("a face with a new member parses");
        assert_eq!(
            face.face_id.as_deref(),
            Some("aaaaaaaa-0000-4000-8000-000000000001")
        );
    }
}
