//! What `collections` and `search` print: collections with their routing, and a search's hits with
//! what the graph knows of each.

use std::io::Write;

use anyhow::Result;

use super::{json_lines, similarity, table};
use crate::api::wire::{CollectionOut, SearchOut};
use crate::service::{CollectionView, SearchReport};

/// Collections as JSON lines (the REST API's `CollectionOut`).
pub fn collection_lines(views: &[CollectionView], out: &mut impl Write) -> Result<()> {
    json_lines(views.iter().map(CollectionOut::from), out)
}

/// Collections as a table: id, faces, model version, created, and the routing of each.
pub fn collection_table(views: &[CollectionView], out: &mut impl Write) -> Result<()> {
    let rows: Vec<Vec<String>> = views
        .iter()
        .map(|v| {
            vec![
                v.info.collection_id.to_string(),
                v.info.face_count.to_string(),
                v.info.face_model_version.clone(),
                v.info.created_at.to_string(),
                routing_note(v),
            ]
        })
        .collect();
    write!(
        out,
        "{}",
        table(
            &["Collection", "Faces", "Face model", "Created", "Routing"],
            &rows
        )
    )?;
    Ok(())
}

fn routing_note(v: &CollectionView) -> String {
    match (&v.route, &v.member_of) {
        (Some(r), _) => format!(
            "routed by {}, {} collections of at most {} faces, searches cover {}",
            r.key,
            r.collections.len(),
            r.max_faces,
            if r.search == "all" {
                "all of them"
            } else {
                "the face's own key"
            }
        ),
        (None, Some((routed, key))) => format!("{key} of {routed}"),
        (None, None) => "-".to_owned(),
    }
}

/// One collection for people: its figures, then a routed id's family collection by collection.
pub fn collection_detail(v: &CollectionView, out: &mut impl Write) -> Result<()> {
    writeln!(out, "Collection: {}", v.info.collection_id)?;
    writeln!(out, "Faces: {}", v.info.face_count)?;
    writeln!(out, "Face model: {}", v.info.face_model_version)?;
    writeln!(out, "Created: {}", v.info.created_at)?;
    writeln!(out, "Routing: {}", routing_note(v))?;
    if let Some(r) = &v.route {
        let rows: Vec<Vec<String>> = r
            .collections
            .iter()
            .map(|c| {
                vec![
                    c.collection_id.to_string(),
                    c.face_count.to_string(),
                    c.created_at.to_string(),
                ]
            })
            .collect();
        write!(out, "{}", table(&["Collection", "Faces", "Created"], &rows))?;
    }
    Ok(())
}

/// A search's result as JSON (the REST API's `SearchOut`).
pub fn search_json(report: &SearchReport, out: &mut impl Write) -> Result<()> {
    json_lines(std::iter::once(SearchOut::from(report)), out)
}

/// A search's result for people: what was searched, then the hits with what the graph knows.
pub fn search_table(report: &SearchReport, out: &mut impl Write) -> Result<()> {
    match (&report.searched_face, &report.searched_bbox) {
        (Some(face), _) => writeln!(
            out,
            "Searched collection {} for face {face}: {} faces found",
            report.collection_id,
            report.hits.len()
        )?,
        (None, Some(b)) => writeln!(
            out,
            "Searched collection {} for the largest face of the image (left {:.3}, top {:.3}, width {:.3}, height {:.3}): {} faces found",
            report.collection_id,
            b.left,
            b.top,
            b.width,
            b.height,
            report.hits.len()
        )?,
        (None, None) => writeln!(
            out,
            "Searched collection {}: {} faces found",
            report.collection_id,
            report.hits.len()
        )?,
    }
    let rows: Vec<Vec<String>> = report
        .hits
        .iter()
        .map(|h| {
            let f = h.face.as_ref();
            vec![
                h.found.face_id.to_string(),
                similarity(h.found.similarity.get()),
                h.found
                    .external_image_id
                    .as_ref()
                    .map_or("-".to_owned(), ToString::to_string),
                f.and_then(|f| f.subject.as_ref())
                    .map_or("-".to_owned(), ToString::to_string),
                f.map_or("(not in the graph)".to_owned(), |f| {
                    f.face.collection_id.to_string()
                }),
            ]
        })
        .collect();
    if !rows.is_empty() {
        write!(
            out,
            "{}",
            table(
                &[
                    "Face ID",
                    "Similarity",
                    "External Image ID",
                    "Subject",
                    "Collection"
                ],
                &rows
            )
        )?;
    }
    Ok(())
}
