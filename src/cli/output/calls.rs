//! The Rekognition bill of a run (calls made and avoided, and what they cost), printed by `ingest`,
//! `match-faces` and the collection commands.

use std::io::Write;

use anyhow::Result;

use crate::engine::calls::{AvoidedBy, CallCounts, Operation, Prices};

/// The Rekognition bill of a run: `Rekognition calls: N made, M avoided (…)`, then the calls made
/// by operation, the calls avoided by reason, and the estimated cost of both.
pub fn rekognition_calls(counts: &CallCounts, prices: &Prices, out: &mut impl Write) -> Result<()> {
    let reasons: Vec<String> = AvoidedBy::ALL
        .iter()
        .map(|r| {
            let name = match r {
                AvoidedBy::Prefilter => "pre-filter",
                AvoidedBy::Duplicate => "duplicates",
                AvoidedBy::BloomFilter => "Bloom filter",
            };
            format!("{name} {}", counts.avoided_by(*r))
        })
        .collect();
    writeln!(
        out,
        "Rekognition calls: {} made, {} avoided ({})",
        counts.made_total(),
        counts.avoided_total(),
        reasons.join(", ")
    )?;
    let by_op = |pick: &dyn Fn(Operation) -> u64| -> String {
        let parts: Vec<String> = Operation::ALL
            .iter()
            .filter_map(|op| {
                let n = pick(*op);
                (n > 0).then(|| format!("{} {n}", op.as_str()))
            })
            .collect();
        if parts.is_empty() {
            "none".to_owned()
        } else {
            parts.join(", ")
        }
    };
    writeln!(
        out,
        "  made: {}",
        by_op(&|op| counts.made.get(&op).copied().unwrap_or(0))
    )?;
    for reason in AvoidedBy::ALL {
        if counts.avoided_by(reason) > 0 {
            writeln!(
                out,
                "  avoided {}: {}",
                reason.describe(),
                by_op(&|op| counts.avoided.get(&(reason, op)).copied().unwrap_or(0))
            )?;
        }
    }
    let cost = prices.estimate(counts);
    let priced: Vec<String> = Operation::ALL
        .iter()
        .filter(|op| prices.per_1000(**op) > 0.0)
        .map(|op| format!("{} {}", op.as_str(), prices.per_1000(*op)))
        .collect();
    writeln!(
        out,
        "  estimated cost: {:.4} {cur} made, {:.4} {cur} avoided (per 1,000 calls: {}; estimates, set [rekognition.price_per_1000] to the account's prices)",
        cost.made,
        cost.avoided,
        if priced.is_empty() { "all free".to_owned() } else { priced.join(", ") },
        cur = prices.currency,
    )?;
    Ok(())
}
