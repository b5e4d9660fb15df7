//! The per-partition commit watermark: which offset of a partition may be committed when messages
//! finish out of order. Kafka's committed offset means "everything before it is done", so it is the
//! lowest offset still unfinished, or one past the last offset received when none is.

use std::collections::{BTreeSet, HashMap};

/// A topic and partition.
pub type TopicPartition = (String, i32);

/// The messages of one partition received and not yet finished.
#[derive(Debug, Default, Clone)]
pub struct Partition {
    unfinished: BTreeSet<i64>,
    next: Option<i64>,
    committed: Option<i64>,
}

impl Partition {
    /// A message was received.
    pub fn received(&mut self, offset: i64) {
        self.unfinished.insert(offset);
        self.next = Some(self.next.map_or(offset + 1, |n| n.max(offset + 1)));
    }

    /// A message finished (its result stored and its outputs sent).
    pub fn finished(&mut self, offset: i64) {
        self.unfinished.remove(&offset);
    }

    /// The offset that may be committed: every message before it has finished.
    pub fn position(&self) -> Option<i64> {
        self.unfinished.first().copied().or(self.next)
    }

    /// How many messages are unfinished.
    pub fn unfinished(&self) -> usize {
        self.unfinished.len()
    }
}

/// The watermarks of the partitions a consumer holds.
#[derive(Debug, Default)]
pub struct Watermarks {
    partitions: HashMap<TopicPartition, Partition>,
}

impl Watermarks {
    /// The partition's state, created empty on first use.
    pub fn partition(&mut self, tp: &TopicPartition) -> &mut Partition {
        self.partitions.entry(tp.clone()).or_default()
    }

    /// Forgets partitions taken away in a rebalance.
    pub fn forget(&mut self, tp: &TopicPartition) {
        self.partitions.remove(tp);
    }

    /// Positions that moved since they were last taken, marked as committed.
    pub fn to_commit(&mut self) -> Vec<(TopicPartition, i64)> {
        let mut out = Vec::new();
        for (tp, p) in &mut self.partitions {
            if let Some(pos) = p.position() {
                if p.committed != Some(pos) {
                    p.committed = Some(pos);
                    out.push((tp.clone(), pos));
                }
            }
        }
        out.sort();
        out
    }

    /// The position of every partition that has one.
    pub fn positions(&self) -> Vec<(TopicPartition, i64)> {
        let mut out: Vec<_> = self
            .partitions
            .iter()
            .filter_map(|(tp, p)| p.position().map(|pos| (tp.clone(), pos)))
            .collect();
        out.sort();
        out
    }

    /// How many messages are unfinished in all partitions.
    pub fn unfinished(&self) -> usize {
        self.partitions.values().map(Partition::unfinished).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_committed_past_an_unfinished_message() {
        let tp = ("t".to_owned(), 0);
        let mut w = Watermarks::default();
        for o in 10..15 {
            w.partition(&tp).received(o);
        }
        assert_eq!(w.to_commit(), [(tp.clone(), 10)], "nothing finished yet");
        // Later messages finish first: the watermark stays at the first unfinished one.
        for o in [11, 13, 14] {
            w.partition(&tp).finished(o);
        }
        assert!(w.to_commit().is_empty(), "10 is still running");
        w.partition(&tp).finished(10);
        assert_eq!(w.to_commit(), [(tp.clone(), 12)], "up to 12, which runs");
        w.partition(&tp).finished(12);
        assert_eq!(w.to_commit(), [(tp.clone(), 15)], "all done: past the last");
        assert!(w.to_commit().is_empty(), "taken once");
        assert_eq!(w.unfinished(), 0);
    }

    #[test]
    fn partitions_move_on_their_own() {
        let (a, b) = (("t".to_owned(), 0), ("t".to_owned(), 1));
        let mut w = Watermarks::default();
        w.partition(&a).received(0);
        w.partition(&b).received(7);
        w.partition(&b).finished(7);
        assert_eq!(w.to_commit(), [(a.clone(), 0), (b.clone(), 8)]);
        w.forget(&b);
        assert_eq!(w.positions(), [(a, 0)]);
    }
}
