//! Measures rule sets on an ingested labelled graph until `facegraph eval-adjudication` does: the
//! stored verdicts, the band alone, the default rules and any rule set files, against the labels.
//! Usage: `eval_adjudication DATA_DIR LABELS.csv [RULES.toml ...]`, where LABELS.csv has the
//! columns `file` (a path under the ingested directory) and `identity`; a photo of several faces
//! lists their identities left to right separated by `;`, given to its largest faces.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use facegraph::adjudication::{evaluate, Adjudicator, Figures, RuleSet};
use facegraph::model::{FaceId, Judgement};
use facegraph::service::Facegraph;
use facegraph::store::sqlite::SqliteStore;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [data_dir, labels, rule_files @ ..] = args.as_slice() else {
        bail!("usage: eval_adjudication DATA_DIR LABELS.csv [RULES.toml ...]");
    };
    let store = SqliteStore::open(&Path::new(data_dir).join("facegraph.sqlite3"))
        .with_context(|| format!("opening the store in {data_dir}"))?;
    let app = Facegraph::new(Arc::new(store), Adjudicator::new(RuleSet::default()));
    let view = app.load_view()?;
    let mut by_external: HashMap<String, Vec<String>> = HashMap::new();
    let mut reader = csv::Reader::from_path(labels).with_context(|| format!("reading {labels}"))?;
    for row in reader.deserialize::<HashMap<String, String>>() {
        let row = row?;
        let (Some(file), Some(ids)) = (row.get("file"), row.get("identity")) else {
            bail!("{labels}: the columns are file and identity");
        };
        let ids = ids.split(';').map(|s| s.trim().to_owned()).collect();
        by_external.insert(file.replace('/', ":"), ids);
    }
    let mut faces_of: HashMap<String, Vec<_>> = HashMap::new();
    for f in app.store().all_faces()? {
        if let Some(ext) = &f.face.external_image_id {
            faces_of
                .entry(ext.as_str().to_owned())
                .or_default()
                .push(f.face);
        }
    }
    let mut identity_of: HashMap<FaceId, String> = HashMap::new();
    for (ext, mut faces) in faces_of {
        let Some(ids) = by_external.get(&ext) else {
            continue;
        };
        // The labelled faces are the largest ones, named left to right.
        let area = |f: &facegraph::model::Face| f.bbox.width * f.bbox.height;
        faces.sort_by(|x, y| area(y).total_cmp(&area(x)));
        faces.truncate(ids.len());
        faces.sort_by(|x, y| x.bbox.left.total_cmp(&y.bbox.left));
        if faces.len() == ids.len() {
            for (face, id) in faces.into_iter().zip(ids) {
                identity_of.insert(face.face_id, id.clone());
            }
        }
    }
    let defaults = RuleSet::default();
    let band_alone = defaults.band_alone();
    let judge = |rules: &RuleSet| Adjudicator::new(rules.clone()).judge_all(&view);
    let yardstick = evaluate(&view, &judge(&band_alone), &identity_of, &band_alone);
    let stored: Vec<Judgement> = view
        .pairs()
        .map(|p| view.stored(p).cloned())
        .collect::<Option<_>>()
        .context("some edges have no stored verdict")?;
    let mut runs: Vec<(String, Figures)> = vec![
        ("band alone".into(), yardstick.clone()),
        (
            "stored verdicts".into(),
            evaluate(&view, &stored, &identity_of, &defaults),
        ),
        (
            "default rules".into(),
            evaluate(&view, &judge(&defaults), &identity_of, &defaults),
        ),
    ];
    for file in rule_files {
        let text = std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?;
        let rules = RuleSet::from_toml(&text)?;
        runs.push((
            file.clone(),
            evaluate(&view, &judge(&rules), &identity_of, &rules),
        ));
    }
    for (name, f) in &runs {
        print(name, f, &yardstick);
    }
    Ok(())
}

fn print(name: &str, f: &Figures, yardstick: &Figures) {
    let c = &f.clusters;
    println!("== {name} ({}), {} labelled faces", f.rule_set, f.faces);
    println!(
        "impostor pairs {}: with edge {}, confirmed {}, review {}",
        f.impostor.total, f.impostor.with_edge, f.impostor.confirmed, f.impostor.review
    );
    println!(
        "genuine pairs {}: with edge {}, confirmed {}, review {}, kept {}, rejected {}; joined at the review band {}, kept {}",
        f.genuine.total,
        f.genuine.with_edge,
        f.genuine.confirmed,
        f.genuine.review,
        f.genuine.kept(),
        f.genuine.rejected(),
        f.genuine_joined,
        f.genuine_joined_kept
    );
    println!(
        "review verdicts {}, in the queue {}",
        f.review, f.review_queue
    );
    println!(
        "engine alone above {:?}: impostors {}, genuine {}",
        f.engine_alone.above, f.engine_alone.impostors_confirmed, f.engine_alone.genuine_confirmed
    );
    println!(
        "clusters {}, leads {}, mixed {}; lead pairs {} of which genuine {}; identities {} found as one lead {}; band groups {} in one lead {}",
        c.clusters,
        c.leads,
        c.mixed,
        c.lead_pairs,
        c.lead_pairs_genuine,
        c.identities,
        c.identities_as_one_lead,
        c.band_groups,
        c.band_groups_in_one_lead
    );
    for t in f.targets(yardstick) {
        println!(
            "  [{}] {}: {}",
            if t.met { "met" } else { "MISSED" },
            t.target,
            t.measured
        );
    }
}
