//! `facegraph collections list|create|describe|delete` and `facegraph search`: the face engine's
//! collections (a routed id with its family) and searches of them by face id or by image. Tables
//! for people, `--json` for scripts (the REST API's own shapes).

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use clap::{ArgGroup, Args, Subcommand};

use super::photos::parse_threshold;
use super::{output, waiting, Shell};
use crate::engine::local::ImageLimits;
use crate::files::read_bounded;
use crate::model::{CollectionId, FaceId, Similarity};
use crate::service::{self, SearchBy, SearchRequest, DEFAULT_MAX_MATCHES};
use crate::startup::{Access, App, EngineSession, StartupError};

/// `collections` subcommands.
#[derive(Debug, Subcommand)]
pub enum CollectionsCommand {
    /// Every collection of the face engine, with its face count; a routed id with its family.
    List {
        /// One JSON object per collection.
        #[arg(long)]
        json: bool,
    },
    /// Create a collection (a routed id: its anchor; its family opens as faces arrive).
    Create {
        /// The collection id: 1-255 of [a-zA-Z0-9_.-].
        collection_id: String,
        /// Print it as JSON.
        #[arg(long)]
        json: bool,
    },
    /// One collection: faces, face model version, creation time, routing.
    Describe {
        /// The collection id.
        collection_id: String,
        /// Print it as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete a collection and its faces in the engine (a routed id: its whole family). The
    /// graph keeps the faces' matches and decisions.
    Delete {
        /// The collection id.
        collection_id: String,
    },
}

/// Arguments of `search`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("by").required(true).args(["image", "face_id"])))]
pub struct SearchArgs {
    /// Search for the largest face of this image (JPEG or PNG).
    #[arg(long, value_name = "FILE")]
    pub image: Option<PathBuf>,
    /// Search for this face of the collection.
    #[arg(long, value_name = "ID")]
    pub face_id: Option<String>,
    /// The collection to search (default from the settings); a routed id searches its family.
    #[arg(long, env = "FACEGRAPH_COLLECTION_ID", value_name = "ID")]
    pub collection_id: Option<String>,
    /// Hits at or above this similarity, 0-100.
    #[arg(long, default_value = "80", value_parser = parse_threshold, value_name = "0-100", allow_negative_numbers = true)]
    pub threshold: Similarity,
    /// At most this many hits.
    #[arg(long, default_value_t = DEFAULT_MAX_MATCHES, value_name = "N")]
    pub max_faces: u32,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs a `collections` subcommand.
pub(super) fn collections(
    shell: &Shell,
    cmd: &CollectionsCommand,
    out: &mut impl Write,
) -> Result<i32> {
    let settings = &shell.settings;
    let session = EngineSession::open(settings, shell.wait, &waiting)?;
    let engine = session.engine();
    let routes = &settings.routes;
    match cmd {
        CollectionsCommand::List { json } => {
            let views = service::list_collections(engine, routes)?;
            if *json {
                output::collection_lines(&views, out)?;
            } else {
                output::collection_table(&views, out)?;
            }
        }
        CollectionsCommand::Create {
            collection_id,
            json,
        } => {
            let id = CollectionId::parse(collection_id)?;
            let view = service::create_collection(engine, routes, &id)?;
            if *json {
                output::collection_lines(std::slice::from_ref(&view), out)?;
            } else {
                writeln!(out, "Created collection {id}")?;
                output::collection_detail(&view, out)?;
            }
        }
        CollectionsCommand::Describe {
            collection_id,
            json,
        } => {
            let id = CollectionId::parse(collection_id)?;
            let view = service::describe_collection(engine, routes, &id)?;
            if *json {
                output::collection_lines(std::slice::from_ref(&view), out)?;
            } else {
                output::collection_detail(&view, out)?;
            }
        }
        CollectionsCommand::Delete { collection_id } => {
            let id = CollectionId::parse(collection_id)?;
            service::delete_collection(engine, &id)?;
            writeln!(out, "Deleted collection {id}")?;
        }
    }
    if let Some(calls) = session.calls() {
        output::rekognition_calls(&calls, &settings.prices, &mut std::io::stderr())?;
    }
    Ok(0)
}

/// Runs `search`: through the engine, each hit described from the graph when there is one.
pub(super) fn search(shell: &Shell, args: &SearchArgs, out: &mut impl Write) -> Result<i32> {
    let settings = &shell.settings;
    let collection_id = match &args.collection_id {
        Some(c) => CollectionId::parse(c)?,
        None => settings.collection_id.clone(),
    };
    let bytes = match &args.image {
        Some(path) => Some(read_bounded(path, ImageLimits::default().max_bytes as u64)?),
        None => None,
    };
    let face_id = args.face_id.as_deref().map(FaceId::parse).transpose()?;
    let by = match (&bytes, &face_id) {
        (Some(b), _) => SearchBy::Image(b),
        (None, Some(id)) => SearchBy::Face(id),
        (None, None) => anyhow::bail!("give --image FILE or --face-id ID"),
    };
    let req = SearchRequest {
        collection_id: &collection_id,
        by,
        threshold: args.threshold,
        max_faces: args.max_faces,
    };
    // The graph describes the faces found when there is one; the engine searches without it.
    let (report, calls) = match App::build(settings, Access::read().with_engine(), &waiting) {
        Ok(app) => (
            app.graph().search(app.engine()?.as_ref(), &req)?,
            app.calls(),
        ),
        Err(StartupError::NoGraph { .. }) => {
            let session = EngineSession::open(settings, shell.wait, &waiting)?;
            (
                service::search_engine(session.engine(), &req)?,
                session.calls(),
            )
        }
        Err(e) => return Err(e.into()),
    };
    if args.json {
        output::search_json(&report, out)?;
    } else {
        output::search_table(&report, out)?;
    }
    if let Some(calls) = calls {
        output::rekognition_calls(&calls, &settings.prices, &mut std::io::stderr())?;
    }
    Ok(0)
}
