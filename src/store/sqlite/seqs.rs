//! The seqs (insertion numbers) of faces that a write names, looked up once per transaction: the
//! SQLite store keys edges, searches' coverage and cluster members by them.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension};

use super::backend;
use super::decode::{id_list, Cells};
use crate::model::FaceId;
use crate::store::StoreError;

/// The seqs of faces looked up in a transaction, so that each face costs at most one query however
/// many observations name it. Every lookup also checks that the face exists.
#[derive(Default)]
pub(super) struct FaceSeqs<'b> {
    seqs: HashMap<&'b FaceId, i64>,
}

impl<'b> FaceSeqs<'b> {
    pub(super) fn insert(&mut self, id: &'b FaceId, seq: i64) {
        self.seqs.insert(id, seq);
    }

    /// Looks up the stored faces among `ids` in one query, which is much faster than one query
    /// each when a batch names thousands of stored faces. Unknown ids are left out.
    pub(super) fn prefetch(
        &mut self,
        tx: &Connection,
        ids: impl Iterator<Item = &'b FaceId>,
        operation: &'static str,
    ) -> Result<(), StoreError> {
        let mut wanted: Vec<&'b FaceId> = ids.filter(|id| !self.seqs.contains_key(id)).collect();
        if wanted.is_empty() {
            return Ok(());
        }
        wanted.sort_unstable();
        wanted.dedup();
        let by_id: HashMap<&str, &'b FaceId> = wanted.iter().map(|id| (id.as_str(), *id)).collect();
        let mut stmt = tx
            .prepare_cached(
                "SELECT face_id, seq FROM faces WHERE face_id IN (SELECT value FROM json_each(?1))",
            )
            .map_err(backend(operation))?;
        let list = id_list(wanted.iter().copied());
        let mut rows = stmt.query([list]).map_err(backend(operation))?;
        while let Some(row) = rows.next().map_err(backend(operation))? {
            let mut c = Cells::new(row, "face");
            let face_id = c.text()?;
            let seq = c.int()?;
            if let Some(id) = by_id.get(face_id) {
                self.seqs.insert(id, seq);
            }
        }
        Ok(())
    }

    /// The face's seq, or [`StoreError::UnknownFace`] when the store does not hold it.
    pub(super) fn resolve(
        &mut self,
        tx: &Connection,
        id: &'b FaceId,
        operation: &'static str,
    ) -> Result<i64, StoreError> {
        if let Some(seq) = self.seqs.get(id) {
            return Ok(*seq);
        }
        let seq = tx
            .prepare_cached("SELECT seq FROM faces WHERE face_id = ?1")
            .and_then(|mut stmt| stmt.query_row([id.as_str()], |row| row.get(0)).optional())
            .map_err(backend(operation))?
            .ok_or_else(|| StoreError::UnknownFace(id.clone()))?;
        self.seqs.insert(id, seq);
        Ok(seq)
    }
}
