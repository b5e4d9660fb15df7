//! Pair verification figures from `(similarity, same identity)` pairs: accuracy at a threshold, the
//! threshold that maximises it, and the area under the ROC curve. Pure functions for `facegraph eval`.

/// Accuracy (0-1) of "same person when similarity >= threshold" over the pairs.
pub fn pair_accuracy(pairs: &[(f64, bool)], threshold: f64) -> f64 {
    if pairs.is_empty() {
        return 0.0;
    }
    let right = pairs
        .iter()
        .filter(|(s, same)| (*s >= threshold) == *same)
        .count();
    right as f64 / pairs.len() as f64
}

/// The threshold with the best pair accuracy, and that accuracy. Candidates are the midpoints
/// between consecutive distinct scores (and just past both ends), so the result does not sit on one
/// pair's score.
pub fn best_threshold(pairs: &[(f64, bool)]) -> (f64, f64) {
    let mut scores: Vec<f64> = pairs
        .iter()
        .map(|p| p.0)
        .filter(|s| s.is_finite())
        .collect();
    scores.sort_by(f64::total_cmp);
    scores.dedup();
    let mut candidates = Vec::with_capacity(scores.len() + 1);
    if let (Some(first), Some(last)) = (scores.first(), scores.last()) {
        candidates.push(first - 1e-6);
        candidates.push(last + 1e-6);
    }
    candidates.extend(scores.windows(2).map(|w| (w[0] + w[1]) / 2.0));
    candidates
        .into_iter()
        .map(|t| (t, pair_accuracy(pairs, t)))
        .fold((0.0, -1.0), |best, c| if c.1 > best.1 { c } else { best })
}

/// Area under the ROC curve: the probability that a random genuine pair scores above a random
/// impostor pair (ties count half). `None` without both kinds of pair.
pub fn roc_auc(pairs: &[(f64, bool)]) -> Option<f64> {
    let mut sorted: Vec<(f64, bool)> = pairs.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let positives = sorted.iter().filter(|p| p.1).count() as f64;
    let negatives = sorted.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return None;
    }
    // Mann-Whitney U with average ranks for ties.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i;
        while j + 1 < sorted.len() && sorted[j + 1].0 == sorted[i].0 {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += sorted[i..=j].iter().filter(|p| p.1).count() as f64 * avg_rank;
        i = j + 1;
    }
    Some((rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separable_pairs_score_perfectly() {
        let pairs = [(95.0, true), (90.0, true), (40.0, false), (10.0, false)];
        assert_eq!(pair_accuracy(&pairs, 80.0), 1.0);
        assert_eq!(pair_accuracy(&pairs, 92.0), 0.75);
        assert_eq!(roc_auc(&pairs), Some(1.0));
        let (t, acc) = best_threshold(&pairs);
        assert_eq!(acc, 1.0);
        assert!(t > 40.0 && t < 90.0, "{t}");
    }

    #[test]
    fn auc_counts_ties_half_and_needs_both_kinds() {
        assert_eq!(roc_auc(&[(50.0, true), (50.0, false)]), Some(0.5));
        assert_eq!(roc_auc(&[(30.0, true), (60.0, false)]), Some(0.0));
        assert_eq!(roc_auc(&[(1.0, true)]), None);
        assert_eq!(pair_accuracy(&[], 50.0), 0.0);
    }
}
