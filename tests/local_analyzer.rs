//! The local analyzer on the sample photos that `facegraph models fetch` puts in the model cache:
//! one face per portrait, unit embeddings, the same person more similar than two people, gender,
//! image refusals and EXIF orientation.

use std::path::PathBuf;
use std::sync::OnceLock;

use facegraph::engine::local::calibration::similarity_from_cosine;
use facegraph::engine::local::models::samples_dir;
use facegraph::engine::local::{FaceAnalyzer, ImageAnalysis, ImageLimits, LocalAnalyzer};
use facegraph::engine::{EngineError, ImageError};
use facegraph::model::GenderValue;
use facegraph::settings::{Overrides, Settings};

fn models_dir() -> PathBuf {
    Settings::load(&Overrides::default())
        .expect("settings")
        .models_dir
}

fn analyzer() -> &'static LocalAnalyzer {
    static A: OnceLock<LocalAnalyzer> = OnceLock::new();
    A.get_or_init(|| {
        LocalAnalyzer::load(&models_dir(), ImageLimits::default()).unwrap_or_else(|e| {
            panic!("{e}: run `facegraph models fetch` (scripts/test does) before the tests")
        })
    })
}

fn sample(name: &str) -> Vec<u8> {
    let path = samples_dir(&models_dir()).join(name);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}: run `facegraph models fetch` (scripts/test does) before the tests",
            path.display()
        )
    })
}

fn analyze(name: &str) -> ImageAnalysis {
    analyzer()
        .analyze(&sample(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn each_portrait_has_one_face_with_a_unit_embedding_and_a_male_gender() {
    for name in ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg"] {
        let a = analyze(name);
        assert_eq!(
            a.faces.len(),
            1,
            "{name}: {:?}",
            a.faces.iter().map(|f| f.bbox).collect::<Vec<_>>()
        );
        let face = &a.faces[0];
        assert_eq!(face.embedding.len(), analyzer().embedding_dim());
        let norm = face.embedding.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "{name}: norm {norm}");
        let gender = face.attributes.gender.expect("gender");
        assert_eq!(gender.value, GenderValue::Male, "{name}");
        let age = face.attributes.age.expect("age");
        assert!(age.low() >= 25 && age.high() <= 80, "{name}: {age:?}");
        assert!(face.confidence.get() > 80.0, "{name}");
    }
}

#[test]
fn the_same_person_scores_high_and_two_people_far_below_80() {
    let obama: Vec<Vec<f32>> = ["obama.jpg", "obama2.jpg", "obama3.jpg"]
        .iter()
        .map(|n| analyze(n).faces[0].embedding.clone())
        .collect();
    let biden = analyze("biden.jpg").faces[0].embedding.clone();
    for i in 0..3 {
        for j in i + 1..3 {
            let s = similarity_from_cosine(cosine(&obama[i], &obama[j])).get();
            assert!(s >= 90.0, "obama {i}-{j}: similarity {s}");
        }
        let s = similarity_from_cosine(cosine(&obama[i], &biden)).get();
        assert!(s < 50.0, "obama {i}-biden: similarity {s}");
    }
}

#[test]
fn a_32_bit_png_decodes_and_a_partial_face_is_still_analysed() {
    let a = analyze("32bit.png");
    assert!(a.width > 0 && a.height > 0);
    let partial = analyze("obama_partial_face.jpg");
    let full = analyze("obama.jpg");
    if let Some(face) = partial.faces.first() {
        assert!(cosine(&face.embedding, &full.faces[0].embedding) > 0.2);
    }
}

#[test]
fn bad_input_gets_the_matching_image_error() {
    let refused = |bytes: &[u8], limits: ImageLimits| -> ImageError {
        let a = if limits == ImageLimits::default() {
            analyzer().clone()
        } else {
            LocalAnalyzer::load(&models_dir(), limits).expect("models")
        };
        match a.analyze(bytes) {
            Err(EngineError::InvalidImage(e)) => e,
            other => panic!("expected an image error, got {other:?}"),
        }
    };
    let jpeg = sample("obama.jpg");
    assert_eq!(refused(b"", ImageLimits::default()), ImageError::Empty);
    assert!(matches!(
        refused(b"%PDF-1.4 not an image at all", ImageLimits::default()),
        ImageError::UnsupportedFormat { .. }
    ));
    assert!(matches!(
        refused(&jpeg[..jpeg.len() / 3], ImageLimits::default()),
        ImageError::Decode(_)
    ));
    let small = ImageLimits {
        max_bytes: 10_000,
        ..ImageLimits::default()
    };
    assert!(matches!(
        refused(&jpeg, small),
        ImageError::TooManyBytes { .. }
    ));
    let few_pixels = ImageLimits {
        max_pixels: 10_000,
        ..ImageLimits::default()
    };
    assert!(matches!(
        refused(&jpeg, few_pixels),
        ImageError::TooManyPixels { .. }
    ));
    let little_memory = ImageLimits {
        max_decoded_bytes: 100_000,
        ..ImageLimits::default()
    };
    assert!(matches!(
        refused(&jpeg, little_memory),
        ImageError::TooManyDecodedBytes { limit: 100_000, .. }
    ));
}

/// A JPEG whose pixels are stored turned a quarter clockwise, with the EXIF tag (orientation 8) that
/// tells viewers to turn it back.
fn rotated_with_exif(jpeg: &[u8]) -> Vec<u8> {
    let img = image::load_from_memory(jpeg).expect("decodes").to_rgb8();
    let turned = image::imageops::rotate90(&img);
    let mut encoded = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut encoded, 95)
        .encode_image(&turned)
        .expect("encodes");
    let mut tiff = b"MM\0\x2a\0\0\0\x08".to_vec();
    tiff.extend_from_slice(&[0, 1]); // one IFD entry
    tiff.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 8, 0, 0]); // Orientation, SHORT, 8
    tiff.extend_from_slice(&[0, 0, 0, 0]); // no next IFD
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let len = u16::try_from(app1.len() + 2).expect("small");
    let mut out = encoded[..2].to_vec(); // SOI
    out.extend_from_slice(&[0xff, 0xe1]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&encoded[2..]);
    out
}

#[test]
fn exif_orientation_is_applied_before_detection() {
    let jpeg = sample("obama.jpg");
    let upright = analyzer().analyze(&jpeg).expect("upright");
    let rotated = analyzer()
        .analyze(&rotated_with_exif(&jpeg))
        .expect("rotated");
    assert_eq!(
        (rotated.width, rotated.height),
        (upright.width, upright.height)
    );
    assert_eq!(rotated.faces.len(), 1);
    let c = cosine(&rotated.faces[0].embedding, &upright.faces[0].embedding);
    assert!(c > 0.95, "cosine {c}");
}

#[test]
fn a_batch_is_analysed_in_order_on_all_cores() {
    let bytes = [sample("biden.jpg"), Vec::new(), sample("obama.jpg")];
    let slices: Vec<&[u8]> = bytes.iter().map(Vec::as_slice).collect();
    let results = analyzer().analyze_many(&slices);
    assert_eq!(results.len(), 3);
    assert!(matches!(
        results[1],
        Err(EngineError::InvalidImage(ImageError::Empty))
    ));
    let biden = results[0].as_ref().expect("biden");
    assert_eq!(
        biden.faces[0].embedding,
        analyze("biden.jpg").faces[0].embedding
    );
    assert_eq!(
        analyzer().model_version(),
        "yunet-2023mar+sface-2021dec+dlib-age-gender-v1"
    );
}
