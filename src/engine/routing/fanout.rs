//! Running one call on several collections in parallel, and merging their hits by similarity.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::engine::FaceMatch;
use crate::model::CollectionId;

/// At most this many calls of one fan-out run at once: a family of hundreds of collections is
/// searched in waves rather than with hundreds of threads.
pub const MAX_PARALLEL: usize = 16;

/// `call` on every target, in parallel (at most [`MAX_PARALLEL`] at once), the results in the
/// targets' order. One target is called on the calling thread.
pub fn in_parallel<T: Send>(
    targets: &[CollectionId],
    call: impl Fn(&CollectionId) -> T + Sync,
) -> Vec<T> {
    if targets.len() <= 1 {
        return targets.iter().map(call).collect();
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<T>>> = Mutex::new((0..targets.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..targets.len().min(MAX_PARALLEL) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(target) = targets.get(i) else { break };
                let r = call(target);
                results
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)[i] = Some(r);
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .into_iter()
        // Every slot was filled: each index was taken by exactly one worker, and a worker that
        // panics takes the whole scope down with it.
        .flatten()
        .collect()
}

/// The hits of several collections as one search's: most similar first (ties by face id, so that
/// the order does not depend on which collection answered first), each face once, at most `max`.
pub fn merge(lists: impl IntoIterator<Item = Vec<FaceMatch>>, max: u32) -> Vec<FaceMatch> {
    let mut all: Vec<FaceMatch> = lists.into_iter().flatten().collect();
    all.sort_by(|a, b| {
        b.similarity
            .get()
            .total_cmp(&a.similarity.get())
            .then_with(|| a.face_id.cmp(&b.face_id))
    });
    let mut seen = std::collections::HashSet::new();
    all.retain(|m| seen.insert(m.face_id.clone()));
    all.truncate(max as usize);
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FaceId, ImageId, Similarity};

    fn hit(n: u32, similarity: f64) -> FaceMatch {
        FaceMatch {
            face_id: FaceId::parse(&format!("aaaaaaaa-0000-4000-8000-{n:012}")).unwrap(),
            similarity: Similarity::new(similarity).unwrap(),
            image_id: ImageId::parse(&format!("{n:064}")).unwrap(),
            external_image_id: None,
        }
    }

    #[test]
    fn hits_merge_by_similarity_each_face_once_up_to_the_limit() {
        let merged = merge(
            vec![
                vec![hit(1, 99.0), hit(2, 85.0)],
                vec![hit(3, 97.0), hit(1, 99.0)],
                vec![hit(4, 85.0)],
            ],
            3,
        );
        let got: Vec<(String, f64)> = merged
            .iter()
            .map(|m| (m.face_id.to_string()[24..].to_owned(), m.similarity.get()))
            .collect();
        assert_eq!(
            got,
            [
                ("000000000001".to_owned(), 99.0),
                ("000000000003".to_owned(), 97.0),
                ("000000000002".to_owned(), 85.0)
            ]
        );
    }

    #[test]
    fn every_target_is_called_once_and_answers_in_order() {
        let targets: Vec<CollectionId> = (0..40)
            .map(|i| CollectionId::parse(&format!("c{i}")).unwrap())
            .collect();
        let calls = AtomicUsize::new(0);
        let out = in_parallel(&targets, |t| {
            calls.fetch_add(1, Ordering::Relaxed);
            t.as_str().to_owned()
        });
        assert_eq!(calls.load(Ordering::Relaxed), 40);
        let want: Vec<String> = targets.iter().map(|t| t.as_str().to_owned()).collect();
        assert_eq!(out, want);
    }
}
