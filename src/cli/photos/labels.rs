//! Labelled photos, for the commands that measure the engine on them (`eval`): a CSV of photos with
//! the identity and gender of each face, left to right, and each photo's detected faces assigned
//! to its labelled ones.

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};

use super::parallel_map;
use crate::engine::local::{AnalyzedFace, FaceAnalyzer};
use crate::model::GenderValue;

/// One labelled photo: its file and its faces left to right.
#[derive(Debug)]
pub(crate) struct LabelledPhoto {
    /// The file, relative to the directory of the labels file (see [`photos_dir`]).
    pub(crate) file: String,
    /// The labelled faces, left to right.
    pub(crate) faces: Vec<LabelledFace>,
}

/// One labelled face.
#[derive(Debug)]
pub(crate) struct LabelledFace {
    /// Who it is: faces with the same identity are the same person.
    pub(crate) identity: String,
    /// The gender, when it is labelled.
    pub(crate) gender: Option<GenderValue>,
}

/// What the analyzer made of one labelled photo.
#[derive(Debug)]
pub(crate) enum PhotoFaces {
    /// The detected face of each labelled face, in the order of the labels.
    Assigned(Vec<AnalyzedFace>),
    /// Fewer faces were detected (this many) than labelled; which one was missed is unknown.
    Missed(usize),
    /// The photo could not be read or analysed.
    Failed(anyhow::Error),
}

/// Reads a labels file: a CSV with the header `file,identity[,gender,...]` (other columns are
/// ignored); a photo of several faces lists their identities and genders left to right, separated
/// by `;`; a gender is `male`, `female` or empty. Errors name the file and the line.
pub(crate) fn read_labels(path: &Path) -> Result<Vec<LabelledPhoto>> {
    let bad = |msg: String| anyhow!("labels file {}: {msg}", path.display());
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| bad(format!("cannot read it: {e}")))?;
    let headers = reader
        .headers()
        .map_err(|e| bad(format!("cannot read the header: {e}")))?
        .clone();
    let col = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let (Some(file_col), Some(identity_col)) = (col("file"), col("identity")) else {
        bail!(bad(format!(
            "the header must name the columns file and identity (found: {})",
            headers.iter().collect::<Vec<_>>().join(",")
        )));
    };
    let gender_col = col("gender");
    let mut labels = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = record.map_err(|e| bad(format!("line {line}: {e}")))?;
        let field = |c: usize| record.get(c).unwrap_or("").to_owned();
        let (file, identities) = (field(file_col), field(identity_col));
        if file.is_empty() || identities.is_empty() {
            bail!(bad(format!(
                "line {line}: file and identity must not be empty"
            )));
        }
        let genders = gender_col.map(field).unwrap_or_default();
        let faces =
            labelled_faces(&identities, &genders).map_err(|e| bad(format!("line {line}: {e}")))?;
        labels.push(LabelledPhoto { file, faces });
    }
    if labels.is_empty() {
        bail!(bad("it has no rows".to_owned()));
    }
    Ok(labels)
}

/// The faces of one row: its identities and genders, each list separated by `;`.
fn labelled_faces(identities: &str, genders: &str) -> Result<Vec<LabelledFace>, String> {
    let identities: Vec<&str> = identities.split(';').map(str::trim).collect();
    let genders: Vec<&str> = if genders.is_empty() {
        vec![""; identities.len()]
    } else {
        genders.split(';').map(str::trim).collect()
    };
    if genders.len() != identities.len() || identities.iter().any(|i| i.is_empty()) {
        return Err(format!(
            "{} identities and {} genders; a photo of several faces lists both left to right, separated by ';'",
            identities.len(),
            genders.len()
        ));
    }
    let mut faces = Vec::with_capacity(identities.len());
    for (identity, g) in identities.into_iter().zip(genders) {
        let gender = match g {
            "" => None,
            g if g.eq_ignore_ascii_case("male") => Some(GenderValue::Male),
            g if g.eq_ignore_ascii_case("female") => Some(GenderValue::Female),
            g => return Err(format!("gender {g:?} is not male, female or empty")),
        };
        faces.push(LabelledFace {
            identity: identity.to_owned(),
            gender,
        });
    }
    Ok(faces)
}

/// The directory the photos of a labels file are relative to: the file's own.
pub(crate) fn photos_dir(labels: &Path) -> &Path {
    labels.parent().unwrap_or(Path::new("."))
}

/// Reads and analyses every photo (files relative to `dir`) on all cores, and assigns each photo's
/// detected faces to its labelled ones; one entry per photo, in their order.
pub(crate) fn analyze_photos(
    analyzer: &dyn FaceAnalyzer,
    dir: &Path,
    photos: &[LabelledPhoto],
) -> Vec<PhotoFaces> {
    let mut found: Vec<Option<PhotoFaces>> =
        std::iter::repeat_with(|| None).take(photos.len()).collect();
    parallel_map(
        photos,
        |photo| match analyze_photo(analyzer, dir, photo) {
            Ok(faces) => {
                let detected = faces.len();
                assign(faces, photo.faces.len())
                    .map_or(PhotoFaces::Missed(detected), PhotoFaces::Assigned)
            }
            Err(e) => PhotoFaces::Failed(e),
        },
        |i, r| found[i] = Some(r),
    );
    // parallel_map hands back every result once, so no entry is left empty.
    found
        .into_iter()
        .zip(photos)
        .map(|(r, photo)| {
            r.unwrap_or_else(|| PhotoFaces::Failed(anyhow!("{} was not analysed", photo.file)))
        })
        .collect()
}

/// The faces the analyzer finds in one photo.
fn analyze_photo(
    analyzer: &dyn FaceAnalyzer,
    dir: &Path,
    photo: &LabelledPhoto,
) -> Result<Vec<AnalyzedFace>> {
    let path = dir.join(&photo.file);
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let analysis = analyzer
        .analyze(&bytes)
        .with_context(|| path.display().to_string())?;
    Ok(analysis.faces)
}

/// Pairs a photo's labelled faces with its detected ones: the `labelled` largest detections, left
/// to right. `None` when fewer faces were detected than labelled (which one was missed is unknown).
fn assign(mut faces: Vec<AnalyzedFace>, labelled: usize) -> Option<Vec<AnalyzedFace>> {
    if faces.len() < labelled {
        return None;
    }
    faces.sort_by(|a, b| (b.bbox.width * b.bbox.height).total_cmp(&(a.bbox.width * a.bbox.height)));
    faces.truncate(labelled);
    faces.sort_by(|a, b| a.bbox.left.total_cmp(&b.bbox.left));
    Some(faces)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_need_file_and_identity_and_a_known_gender() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("labels.csv");
        std::fs::write(
            &p,
            "file,identity,gender,note\na.jpg,ann,female,x\nb.jpg,bob,,\nc.jpg,ann;bob,female;male,\n",
        )
        .unwrap();
        let l = read_labels(&p).unwrap();
        assert_eq!(l.len(), 3);
        assert_eq!(l[0].faces[0].gender, Some(GenderValue::Female));
        assert_eq!(l[1].faces[0].gender, None);
        assert_eq!(l[2].faces[1].identity, "bob");
        assert_eq!(l[2].faces[1].gender, Some(GenderValue::Male));
        std::fs::write(&p, "file,who\na.jpg,ann\n").unwrap();
        let e = read_labels(&p).unwrap_err().to_string();
        assert!(e.contains("file and identity"), "{e}");
        std::fs::write(&p, "file,identity,gender\na.jpg,ann;bob,male\n").unwrap();
        let e = read_labels(&p).unwrap_err().to_string();
        assert!(e.contains("2 identities and 1 genders"), "{e}");
        std::fs::write(&p, "file,identity,gender\na.jpg,ann,f\n").unwrap();
        let e = read_labels(&p).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("\"f\""), "{e}");
    }
}
