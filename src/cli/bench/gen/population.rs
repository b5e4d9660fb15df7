//! People photographed for onboarding: people with a few photos each, some photos with bystanders,
//! most photos a customer's, and each face with the attributes a classifier reports.

use super::{round, Rng, EPOCH_MS};
use crate::model::{
    AgeRange, BoundingBox, Collection, CollectionId, Confidence, ExternalImageId, Face,
    FaceAttributes, FaceId, Gender, GenderValue, Image, ImageId, ParseError, Pose, Quality,
    SubjectId, Timestamp,
};

/// People photographed for onboarding: each person has a few photos, some photos show bystanders,
/// most photos belong to a customer (subject), and a few people hold two customer accounts.
#[derive(Debug)]
pub(crate) struct Population {
    pub(crate) collection: Collection,
    pub(crate) images: Vec<Image>,
    pub(crate) faces: Vec<Face>,
    /// The subject of each face, through its image.
    pub(crate) subjects: Vec<Option<SubjectId>>,
    /// The subject of each external image id, as an ingest names them.
    pub(crate) subject_links: Vec<(ExternalImageId, SubjectId)>,
    /// The person behind each face.
    pub(crate) person: Vec<u32>,
    /// The faces of each person.
    pub(crate) persons: Vec<Vec<u32>>,
    /// The true gender and age of each person, which look-alikes mostly share.
    pub(super) looks: Vec<(GenderValue, u32)>,
    /// The faces of each image that shows more than one.
    pub(crate) group_photos: Vec<Vec<u32>>,
}

struct Person {
    gender: GenderValue,
    age: u32,
}

/// `n` faces of people with 1 to 8 photos each (P(k) ~ 1/k).
pub(crate) fn population(rng: &mut Rng, n: usize) -> Result<Population, ParseError> {
    let collection_id = CollectionId::parse("bench-faces")?;
    let collection = Collection {
        collection_id: collection_id.clone(),
        engine: "rekognition".to_owned(),
        face_model_version: Some("7.0".to_owned()),
        created_at: Timestamp::from_millis(EPOCH_MS),
    };
    let mut pop = Population {
        collection,
        images: Vec::new(),
        faces: Vec::with_capacity(n),
        subjects: Vec::with_capacity(n),
        subject_links: Vec::new(),
        person: Vec::with_capacity(n),
        persons: Vec::new(),
        looks: Vec::new(),
        group_photos: Vec::new(),
    };
    while pop.faces.len() < n {
        let person = Person {
            gender: gender(rng),
            age: 18 + rng.below(60) as u32,
        };
        let id = pop.persons.len();
        // One person in ten has no customer record (a watch-list photo); one customer in fifty has a
        // second account, which is the fraud the clusters look for.
        let subject = rng
            .chance(0.9)
            .then(|| SubjectId::parse(&format!("C{id:08}")))
            .transpose()?;
        let alias = match &subject {
            Some(_) if rng.chance(0.02) => {
                Some(SubjectId::parse(&format!("C{:08}", 90_000_000 + id))?)
            }
            _ => None,
        };
        pop.persons.push(Vec::new());
        pop.looks.push((person.gender, person.age));
        for photo in 0..rng.group_size(8) {
            if pop.faces.len() >= n {
                break;
            }
            let subject = if photo % 2 == 1 && alias.is_some() {
                alias.clone()
            } else {
                subject.clone()
            };
            let image = new_image(rng, &mut pop, subject.clone())?;
            let face = new_face(rng, &pop, image, &person, true)?;
            push_face(&mut pop, face, subject.clone(), id);
            // One photo in twenty-five shows one or two bystanders as well.
            if rng.chance(0.04) {
                add_bystanders(rng, &mut pop, image, &subject, n)?;
            }
        }
    }
    Ok(pop)
}

/// Adds one or two bystanders to the photo `image` (while the population has fewer than `n`
/// faces), and records the photo as a group photo when it got one.
fn add_bystanders(
    rng: &mut Rng,
    pop: &mut Population,
    image: usize,
    subject: &Option<SubjectId>,
    n: usize,
) -> Result<(), ParseError> {
    let mut group = vec![pop.faces.len() as u32 - 1];
    for _ in 0..1 + rng.below(2) {
        if pop.faces.len() >= n {
            break;
        }
        let bystander = Person {
            gender: gender(rng),
            age: 18 + rng.below(60) as u32,
        };
        let face = new_face(rng, pop, image, &bystander, false)?;
        let bid = pop.persons.len();
        pop.persons.push(Vec::new());
        pop.looks.push((bystander.gender, bystander.age));
        group.push(pop.faces.len() as u32);
        push_face(pop, face, subject.clone(), bid);
    }
    pop.images[image].face_count = group.len() as u32;
    if group.len() > 1 {
        pop.group_photos.push(group);
    }
    Ok(())
}

fn gender(rng: &mut Rng) -> GenderValue {
    if rng.chance(0.5) {
        GenderValue::Male
    } else {
        GenderValue::Female
    }
}

/// Adds a face of `person` whose image belongs to `subject`.
fn push_face(pop: &mut Population, face: Face, subject: Option<SubjectId>, person: usize) {
    pop.persons[person].push(pop.faces.len() as u32);
    pop.person.push(person as u32);
    pop.subjects.push(subject);
    pop.faces.push(face);
}

/// Adds a photo that belongs to `subject`; returns its index.
fn new_image(
    rng: &mut Rng,
    pop: &mut Population,
    subject: Option<SubjectId>,
) -> Result<usize, ParseError> {
    let i = pop.images.len();
    let ext = ExternalImageId::parse(&format!("img-{i:08}.jpg"))?;
    if let Some(s) = subject {
        pop.subject_links.push((ext.clone(), s));
    }
    pop.images.push(Image {
        image_id: ImageId::parse(&rng.uuid())?,
        external_image_id: Some(ext.clone()),
        content_sha256: None,
        collection_id: None,
        pending: false,
        source: Some(format!("s3://bench-onboarding/{ext}")),
        width: Some(1080),
        height: Some(1440),
        face_count: 1,
        received_at: Timestamp::from_millis(EPOCH_MS + i as i64 * 1_000),
    });
    Ok(i)
}

/// A face with the attributes a classifier reports: mostly right and confident, sometimes wrong.
fn new_face(
    rng: &mut Rng,
    pop: &Population,
    image: usize,
    who: &Person,
    largest: bool,
) -> Result<Face, ParseError> {
    let seq = pop.faces.len() as i64;
    let img = &pop.images[image];
    // The draws happen in this order (gender, age, quality, pose, box, id, confidence), so that a
    // seed keeps naming one data set.
    let attributes = FaceAttributes {
        gender: gender_estimate(rng, who)?,
        age: Some(age_estimate(rng, who)?),
        quality: Some(quality(rng)?),
        pose: Some(pose(rng)?),
    };
    let bbox = face_box(rng, largest);
    let face_id = FaceId::parse(&rng.uuid())?;
    let detection = round(rng.range(99.0, 100.0), 4);
    let raw = raw_record(&face_id, &bbox, img, detection);
    Ok(Face {
        face_id,
        collection_id: pop.collection.collection_id.clone(),
        image_id: img.image_id.clone(),
        external_image_id: img.external_image_id.clone(),
        bbox,
        detection_confidence: Some(Confidence::new(detection)?),
        attributes,
        is_largest: largest,
        indexed_at: Timestamp::from_millis(EPOCH_MS + seq * 1_000),
        raw: Some(raw),
    })
}

/// The classifier's gender: none for a few faces, mostly right and confident, sometimes wrong.
fn gender_estimate(rng: &mut Rng, who: &Person) -> Result<Option<Gender>, ParseError> {
    if rng.chance(0.02) {
        return Ok(None);
    }
    let (value, confidence) = match rng.unit() {
        u if u < 0.90 => (who.gender, rng.range(95.0, 99.9)),
        u if u < 0.97 => (who.gender, rng.range(60.0, 95.0)),
        _ => (other(who.gender), rng.range(55.0, 96.0)),
    };
    Ok(Some(Gender {
        value,
        confidence: Confidence::new(round(confidence, 4))?,
    }))
}

/// The classifier's age range. Photos are up to five years old; the estimate is usually a range
/// around the age at the time and occasionally far off.
fn age_estimate(rng: &mut Rng, who: &Person) -> Result<AgeRange, ParseError> {
    let at_photo = who.age.saturating_sub(rng.below(6) as u32);
    let centre = if rng.chance(0.03) {
        at_photo + 15 + rng.below(10) as u32
    } else {
        at_photo
    };
    let low = centre.saturating_sub(rng.below(6) as u32);
    AgeRange::new(low, low + 3 + rng.below(8) as u32)
}

/// Brightness and sharpness, poor for a few faces.
fn quality(rng: &mut Rng) -> Result<Quality, ParseError> {
    // Drawn in this order, brightness first, so that a seed keeps naming one data set.
    let brightness = if rng.chance(0.03) {
        rng.range(5.0, 20.0)
    } else {
        rng.range(30.0, 95.0)
    };
    let sharpness = if rng.chance(0.03) {
        rng.range(2.0, 10.0)
    } else {
        rng.range(15.0, 95.0)
    };
    Quality::new(brightness, sharpness)
}

/// Yaw, pitch and roll, extreme for a few faces.
fn pose(rng: &mut Rng) -> Result<Pose, ParseError> {
    let yaw = if rng.chance(0.02) {
        rng.range(45.0, 80.0)
    } else {
        rng.range(-30.0, 30.0)
    };
    let pitch = if rng.chance(0.01) {
        rng.range(35.0, 60.0)
    } else {
        rng.range(-20.0, 20.0)
    };
    Pose::new(yaw, pitch, rng.range(-15.0, 15.0))
}

/// Where the face is: a bystander's is small, the photo's subject's large (tiny for a few).
fn face_box(rng: &mut Rng, largest: bool) -> BoundingBox {
    let width = if !largest {
        rng.range(0.03, 0.12)
    } else if rng.chance(0.01) {
        rng.range(0.01, 0.02)
    } else {
        rng.range(0.15, 0.5)
    };
    BoundingBox {
        left: rng.range(0.0, 1.0 - width) as f32,
        top: rng.range(0.0, 0.5) as f32,
        width: width as f32,
        height: (width * 1.3) as f32,
    }
}

/// The engine's own record of the face, as ListFaces returns it, kept verbatim by the store.
fn raw_record(face_id: &FaceId, bbox: &BoundingBox, img: &Image, detection: f64) -> String {
    format!(
        "{{\"FaceId\":\"{face_id}\",\"BoundingBox\":{{\"Width\":{:.6},\"Height\":{:.6},\"Left\":{:.6},\"Top\":{:.6}}},\
         \"ImageId\":\"{}\",\"ExternalImageId\":\"{}\",\"Confidence\":{detection},\"IndexFacesModelVersion\":\"7.0\"}}",
        bbox.width,
        bbox.height,
        bbox.left,
        bbox.top,
        img.image_id,
        img.external_image_id.as_ref().map_or("", |e| e.as_str()),
    )
}

fn other(g: GenderValue) -> GenderValue {
    match g {
        GenderValue::Male => GenderValue::Female,
        GenderValue::Female => GenderValue::Male,
    }
}
