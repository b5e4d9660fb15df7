//! `facegraph match-faces DIR`: the proof of concept's job. Every face of every photo of a directory
//! goes into a collection, then every face of the collection is searched against it, and the hits
//! are printed as a table (or JSON lines). Images already in the collection are skipped, so a
//! re-run only adds new photos and still prints the whole cross-match.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use serde::Serialize;

use super::{
    indexed_external_ids, open_local_engine, parallel_map, parse_quality_filter, parse_threshold,
    photo_files, progress_bar, PhotoFile,
};
use crate::engine::local::index_faces_response;
use crate::engine::local::MAX_RESULTS;
use crate::engine::{EngineError, FaceEngine, IndexFacesRequest, IndexFacesResult, QualityFilter};
use crate::model::{CollectionId, ExternalImageId, Face, FaceId, Similarity};
use crate::settings::Settings;

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
    /// Save each image's IndexFaces response (Rekognition's PascalCase shape) as JSON in --output-dir,
    /// for `facegraph ingest-rekognition`.
    #[arg(long)]
    pub save_image_data: bool,
    /// Where --save-image-data writes, one `<external image id>.json` per image.
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

/// One row of the cross-match.
#[derive(Debug, Serialize)]
struct Row {
    source_face_id: String,
    source_file: String,
    target_face_id: String,
    target_file: String,
    similarity: f64,
}

/// Runs `match-faces`; exit status 2 when some files could not be indexed.
pub fn run(settings: &Settings, args: &MatchFacesArgs, out: &mut impl Write) -> Result<i32> {
    let collection_id = CollectionId::parse(&args.collection_id)?;
    let files = photo_files(&args.dir)?;
    let engine = open_local_engine(settings)?;
    prepare_collection(&engine, &collection_id, args.force_recreate)?;
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

    let already = indexed_external_ids(&engine, &collection_id)?;
    let (skipped, todo): (Vec<&PhotoFile>, Vec<&PhotoFile>) = files
        .iter()
        .partition(|f| already.contains(&f.external_image_id));
    if args.verbose {
        for f in &skipped {
            writeln!(log, "Skipping image {}: already indexed", f.name)?;
        }
    }

    let started = Instant::now();
    let bar = progress_bar(todo.len(), "images");
    let (mut indexed, mut faces, mut failed) = (0usize, 0usize, 0usize);
    let mut error: Option<anyhow::Error> = None;
    parallel_map(
        &todo,
        |f| {
            let t = Instant::now();
            let r = index_file(&engine, &collection_id, f, args.quality_filter);
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
                            let line = format!(
                                "Found {n} faces in image {} in {} ms",
                                f.name,
                                elapsed.as_millis()
                            );
                            bar.suspend(|| writeln!(log, "{line}"))?;
                        }
                        if args.save_image_data {
                            save_response(&args.output_dir, &f.external_image_id, &result)?;
                        }
                    }
                    Err(e) => {
                        failed += 1;
                        bar.suspend(|| eprintln!("error: {}: {e}", f.path.display()));
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
    if let Some(e) = error {
        return Err(e);
    }
    writeln!(
        log,
        "Indexed {indexed} images ({faces} faces) in {:.2} s; {} already in collection {collection_id}, {failed} failed",
        started.elapsed().as_secs_f64(),
        skipped.len()
    )?;

    let names: HashMap<&ExternalImageId, &str> = files
        .iter()
        .map(|f| (&f.external_image_id, f.name.as_str()))
        .collect();
    let all_faces = list_all_faces(&engine, &collection_id)?;
    let started = Instant::now();
    let rows = cross_match(
        &engine,
        &collection_id,
        &all_faces,
        &names,
        args.match_confidence_threshold,
    )?;
    if args.json {
        for row in &rows {
            writeln!(out, "{}", serde_json::to_string(row)?)?;
        }
    } else {
        let table_rows: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                vec![
                    r.source_face_id.clone(),
                    r.source_file.clone(),
                    r.target_face_id.clone(),
                    r.target_file.clone(),
                    format!(
                        "{:.*}",
                        crate::model::similarity_decimals(r.similarity),
                        r.similarity
                    ),
                ]
            })
            .collect();
        write!(
            out,
            "{}",
            crate::report::table(
                &[
                    "Source Face ID",
                    "Source File",
                    "Target Face ID",
                    "Target File",
                    "Similarity"
                ],
                &table_rows
            )
        )?;
    }
    writeln!(
        log,
        "Searched {} faces in {:.2} s: {} matches at or above {}",
        all_faces.len(),
        started.elapsed().as_secs_f64(),
        rows.len(),
        args.match_confidence_threshold.get()
    )?;
    if args.delete {
        engine.delete_collection(&collection_id)?;
        writeln!(log, "Deleted collection {collection_id}")?;
    }
    Ok(if failed > 0 {
        crate::cli::EXIT_SOME_REJECTED
    } else {
        0
    })
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
) -> Result<IndexFacesResult> {
    let bytes = std::fs::read(&file.path)
        .with_context(|| format!("cannot read {}", file.path.display()))?;
    Ok(engine.index_faces(&IndexFacesRequest {
        collection_id,
        image: &bytes,
        external_image_id: Some(&file.external_image_id),
        max_faces: None,
        quality_filter,
    })?)
}

fn save_response(dir: &Path, id: &ExternalImageId, result: &IndexFacesResult) -> Result<()> {
    let path = dir.join(format!("{id}.json"));
    let text = serde_json::to_string_pretty(&index_faces_response(result))?;
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

/// Searches every face against the collection; rows by source file, then most similar first.
fn cross_match(
    engine: &dyn FaceEngine,
    id: &CollectionId,
    faces: &[Face],
    names: &HashMap<&ExternalImageId, &str>,
    threshold: Similarity,
) -> Result<Vec<Row>> {
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
        for m in engine.search_faces(id, &face.face_id, threshold, MAX_RESULTS)? {
            let target_file = match by_id.get(&m.face_id) {
                Some(t) => file_of(&t.external_image_id),
                None => file_of(&m.external_image_id),
            };
            rows.push(Row {
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
