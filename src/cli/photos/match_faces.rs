//! `facegraph match-faces DIR`: the proof of concept's job. Every face of every photo of a directory
//! goes into a collection, then every face of the collection is searched against it, and the hits
//! are printed as a table (or JSON lines). Images already in the collection are skipped, so a
//! re-run only adds new photos and still prints the whole cross-match.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;

use super::{
    parallel_map, parse_quality_filter, parse_threshold, photo_files, progress_bar, PhotoFile,
};
use crate::cli::output::{self, CrossMatchRow};
use crate::cli::{waiting, Shell, EXIT_SOME_REJECTED};
use crate::engine::local::{index_faces_response, search_faces_response, ImageLimits, MAX_RESULTS};
use crate::engine::{
    EngineError, FaceEngine, ImageSource, IndexFacesRequest, IndexFacesResult, QualityFilter,
};
use crate::files::read_bounded;
use crate::model::{CollectionId, ExternalImageId, Face, FaceId, Similarity};
use crate::startup::EngineSession;

/// The collection `match-faces` uses unless told otherwise.
pub const DEFAULT_COLLECTION: &str = "ephemeral-faces-collection";

/// Arguments of `match-faces`.
#[derive(Debug, Args)]
pub struct MatchFacesArgs {
    /// The collection to index into and search.
    #[arg(long, default_value = DEFAULT_COLLECTION, value_name = "ID")]
    pub collection_id: String,
    /// Delete the collection when done.
    #[arg(long)]
    pub delete: bool,
    /// Delete the collection first if it exists, and start from an empty one.
    #[arg(long)]
    pub force_recreate: bool,
    /// Report matches at or above this similarity, 0-100.
    #[arg(long, default_value = "80", value_parser = parse_threshold, value_name = "0-100", allow_negative_numbers = true)]
    pub match_confidence_threshold: Similarity,
    /// Save each image's IndexFaces response and each face's SearchFaces response (Rekognition's
    /// PascalCase shapes) as JSON in --output-dir, for `facegraph ingest-rekognition`.
    #[arg(long)]
    pub save_image_data: bool,
    /// Where --save-image-data writes: `<external image id>.json` per image and
    /// `search-<face id>.json` per face.
    #[arg(long, default_value = "image-data", value_name = "DIR")]
    pub output_dir: PathBuf,
    /// Which detected faces are too poor to index: NONE, AUTO, LOW, MEDIUM, HIGH.
    #[arg(long, default_value = "AUTO", value_parser = parse_quality_filter, value_name = "FILTER")]
    pub quality_filter: QualityFilter,
    /// Say how many faces every image has (not only those with none or several) and which were skipped.
    #[arg(long, short)]
    pub verbose: bool,
    /// Print the matches as JSON lines (the progress lines go to standard error).
    #[arg(long)]
    pub json: bool,
    /// The directory of photos (JPEG or PNG; searched recursively).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

/// Runs `match-faces`; exit status 2 when some files could not be indexed or were skipped.
pub(crate) fn run(shell: &Shell, args: &MatchFacesArgs, out: &mut impl Write) -> Result<i32> {
    let collection_id = CollectionId::parse(&args.collection_id)?;
    let found = photo_files(&args.dir)?;
    if found.files.is_empty() && found.skipped.is_empty() {
        output::no_photos(&args.dir, out)?;
        return Ok(0);
    }
    let session = EngineSession::open(&shell.settings, shell.wait, &waiting)?;
    let engine = session.engine();
    prepare_collection(engine, &collection_id, args.force_recreate)?;
    if args.save_image_data {
        std::fs::create_dir_all(&args.output_dir)
            .with_context(|| format!("cannot create {}", args.output_dir.display()))?;
    }
    // Progress lines go where the table does, unless the table is JSON.
    let mut log: Box<dyn Write> = if args.json {
        Box::new(std::io::stderr())
    } else {
        Box::new(std::io::stdout())
    };
    for e in &found.skipped {
        writeln!(log, "Skipped {}", output::reason(e))?;
    }
    let (todo, skipped) = photos_to_index(engine, &collection_id, &found.files, args, &mut log)?;
    let started = Instant::now();
    let Indexed {
        images: indexed,
        faces,
        failed,
    } = index_photos(engine, &collection_id, &todo, args, &mut log)?;
    writeln!(
        log,
        "Indexed {indexed} images ({faces} faces) in {:.2} s; {} already in collection {collection_id}, {failed} failed",
        started.elapsed().as_secs_f64(),
        skipped
    )?;
    search_all(engine, &collection_id, &found.files, args, &mut log, out)?;
    if args.delete {
        engine.delete_collection(&collection_id)?;
        writeln!(log, "Deleted collection {collection_id}")?;
    }
    if let Some(calls) = session.calls() {
        output::rekognition_calls(&calls, &shell.settings.prices, &mut log)?;
    }
    Ok(if failed > 0 || !found.skipped.is_empty() {
        EXIT_SOME_REJECTED
    } else {
        0
    })
}

/// What indexing the new photos did.
struct Indexed {
    images: usize,
    faces: usize,
    failed: usize,
}

/// The photos whose external image id the collection does not hold yet, and how many it does;
/// with --verbose, a line for each photo skipped.
fn photos_to_index<'a>(
    engine: &dyn FaceEngine,
    collection_id: &CollectionId,
    files: &'a [PhotoFile],
    args: &MatchFacesArgs,
    log: &mut dyn Write,
) -> Result<(Vec<&'a PhotoFile>, usize)> {
    let already = indexed_external_ids(engine, collection_id)?;
    let (skipped, todo): (Vec<&PhotoFile>, Vec<&PhotoFile>) = files
        .iter()
        .partition(|f| already.contains(&f.external_image_id));
    if args.verbose {
        for f in &skipped {
            writeln!(log, "Skipping image {}: already indexed", f.name)?;
        }
    }
    Ok((todo, skipped.len()))
}

/// Indexes the photos on all cores behind a progress bar, saving each IndexFaces response with
/// --save-image-data: a line for each photo without exactly one face (for every photo with
/// --verbose), an error line for each that failed.
fn index_photos(
    engine: &dyn FaceEngine,
    collection_id: &CollectionId,
    todo: &[&PhotoFile],
    args: &MatchFacesArgs,
    log: &mut dyn Write,
) -> Result<Indexed> {
    let bar = progress_bar(todo.len(), "images");
    let (mut indexed, mut faces, mut failed) = (0usize, 0usize, 0usize);
    let mut error: Option<anyhow::Error> = None;
    let limit = ImageLimits::default().max_bytes as u64;
    parallel_map(
        todo,
        |f| {
            let t = Instant::now();
            let r = index_file(engine, collection_id, f, args.quality_filter, limit);
            (r, t.elapsed())
        },
        |i, (r, elapsed)| {
            bar.inc(1);
            let f = todo[i];
            let step = || -> Result<()> {
                match r {
                    Ok(result) => {
                        indexed += 1;
                        faces += result.faces.len();
                        let n = result.faces.len();
                        if n != 1 || args.verbose {
                            let line = output::faces_found(n, &f.name, elapsed);
                            bar.suspend(|| writeln!(log, "{line}"))?;
                        }
                        if args.save_image_data {
                            save_json(
                                &args.output_dir,
                                f.external_image_id.as_str(),
                                &index_faces_response(&result),
                            )?;
                        }
                    }
                    Err(e) => {
                        failed += 1;
                        bar.suspend(|| eprintln!("error: {}", output::reason(e.as_ref())));
                    }
                }
                Ok(())
            };
            if let Err(e) = step() {
                error.get_or_insert(e);
            }
        },
    );
    bar.finish_and_clear();
    match error {
        Some(e) => Err(e),
        None => Ok(Indexed {
            images: indexed,
            faces,
            failed,
        }),
    }
}

/// Searches every face of the collection against it and prints the matches (a table, or JSON
/// lines), then a summary line to the log; with --save-image-data, each search's response is saved.
fn search_all(
    engine: &dyn FaceEngine,
    collection_id: &CollectionId,
    files: &[PhotoFile],
    args: &MatchFacesArgs,
    log: &mut dyn Write,
    out: &mut impl Write,
) -> Result<()> {
    let names: HashMap<&ExternalImageId, &str> = files
        .iter()
        .map(|f| (&f.external_image_id, f.name.as_str()))
        .collect();
    let all_faces = list_all_faces(engine, collection_id)?;
    let started = Instant::now();
    let save = args.save_image_data.then_some(args.output_dir.as_path());
    let rows = cross_match(
        engine,
        collection_id,
        &all_faces,
        &names,
        args.match_confidence_threshold,
        save,
    )?;
    if args.json {
        output::json_lines(&rows, out)?;
    } else {
        output::cross_match_table(&rows, out)?;
    }
    writeln!(
        log,
        "Searched {} faces in {:.2} s: {} matches at or above {}",
        all_faces.len(),
        started.elapsed().as_secs_f64(),
        rows.len(),
        args.match_confidence_threshold.get()
    )?;
    Ok(())
}

/// The external image ids that a collection already holds faces of; empty when the collection
/// does not exist.
pub(crate) fn indexed_external_ids(
    engine: &dyn FaceEngine,
    collection_id: &CollectionId,
) -> Result<HashSet<ExternalImageId>> {
    let mut ids = HashSet::new();
    let mut token: Option<String> = None;
    loop {
        let page = match engine.list_faces(collection_id, token.as_deref(), 4096) {
            Ok(page) => page,
            Err(EngineError::CollectionNotFound(_)) => return Ok(ids),
            Err(e) => return Err(e.into()),
        };
        ids.extend(page.faces.into_iter().filter_map(|f| f.external_image_id));
        match page.next_token {
            Some(t) => token = Some(t),
            None => return Ok(ids),
        }
    }
}

/// Creates the collection when missing; with `recreate`, deletes it first.
fn prepare_collection(engine: &dyn FaceEngine, id: &CollectionId, recreate: bool) -> Result<()> {
    if recreate {
        match engine.delete_collection(id) {
            Ok(()) | Err(EngineError::CollectionNotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    match engine.describe_collection(id) {
        Ok(_) => Ok(()),
        Err(EngineError::CollectionNotFound(_)) => {
            engine.create_collection(id)?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

fn index_file(
    engine: &dyn FaceEngine,
    collection_id: &CollectionId,
    file: &PhotoFile,
    quality_filter: QualityFilter,
    limit: u64,
) -> Result<IndexFacesResult, Box<dyn std::error::Error + Send + Sync>> {
    let bytes = read_bounded(&file.path, limit)?;
    engine
        .index_faces(&IndexFacesRequest {
            collection_id,
            image: ImageSource::Bytes(&bytes),
            external_image_id: Some(&file.external_image_id),
            subject_id: None,
            max_faces: None,
            quality_filter,
        })
        .map_err(|source| {
            Box::new(PathError {
                path: file.path.clone(),
                source,
            }) as Box<dyn std::error::Error + Send + Sync>
        })
}

/// An engine error about one file.
#[derive(Debug, thiserror::Error)]
#[error("{path}")]
struct PathError {
    path: PathBuf,
    #[source]
    source: EngineError,
}

fn save_json(dir: &Path, name: &str, response: &impl serde::Serialize) -> Result<()> {
    let path = dir.join(format!("{name}.json"));
    let text = serde_json::to_string_pretty(response)?;
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
}

fn list_all_faces(engine: &dyn FaceEngine, id: &CollectionId) -> Result<Vec<Face>> {
    let mut faces = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = engine.list_faces(id, token.as_deref(), MAX_RESULTS)?;
        faces.extend(page.faces);
        match page.next_token {
            Some(t) => token = Some(t),
            None => return Ok(faces),
        }
    }
}

/// Searches every face against the collection; rows by source file, then most similar first. With
/// `save`, each search's response is written there in Rekognition's shape.
fn cross_match(
    engine: &dyn FaceEngine,
    id: &CollectionId,
    faces: &[Face],
    names: &HashMap<&ExternalImageId, &str>,
    threshold: Similarity,
    save: Option<&Path>,
) -> Result<Vec<CrossMatchRow>> {
    let model_version = engine.describe_collection(id)?.face_model_version;
    let file_of = |e: &Option<ExternalImageId>| match e {
        Some(e) => names
            .get(e)
            .map_or_else(|| e.to_string(), |n| (*n).to_owned()),
        None => String::new(),
    };
    let by_id: HashMap<&FaceId, &Face> = faces.iter().map(|f| (&f.face_id, f)).collect();
    let mut rows = Vec::new();
    for face in faces {
        let source_file = file_of(&face.external_image_id);
        let found = engine.search_faces(id, &face.face_id, threshold, MAX_RESULTS)?;
        if let Some(dir) = save {
            let name = format!("search-{}", face.face_id);
            save_json(
                dir,
                &name,
                &search_faces_response(&face.face_id, &found, &model_version),
            )?;
        }
        for m in found {
            let target_file = match by_id.get(&m.face_id) {
                Some(t) => file_of(&t.external_image_id),
                None => file_of(&m.external_image_id),
            };
            rows.push(CrossMatchRow {
                source_face_id: face.face_id.to_string(),
                source_file: source_file.clone(),
                target_face_id: m.face_id.to_string(),
                target_file,
                similarity: m.similarity.get(),
            });
        }
    }
    rows.sort_by(|a, b| {
        a.source_file
            .cmp(&b.source_file)
            .then_with(|| b.similarity.total_cmp(&a.similarity))
            .then_with(|| a.target_file.cmp(&b.target_file))
    });
    Ok(rows)
}
