//! The Rekognition bill's ledger: the calls the Rekognition engine made, by operation, the calls
//! that facegraph avoided and why (the local pre-filter, duplicate detection, the stream's Bloom
//! filter), and an estimate of what both cost at per-call prices from the settings.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// A Rekognition operation, as the service names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    /// CreateCollection.
    CreateCollection,
    /// DescribeCollection.
    DescribeCollection,
    /// ListCollections (one call per page).
    ListCollections,
    /// DeleteCollection.
    DeleteCollection,
    /// IndexFaces.
    IndexFaces,
    /// SearchFaces.
    SearchFaces,
    /// SearchFacesByImage.
    SearchFacesByImage,
    /// ListFaces (one call per page).
    ListFaces,
    /// DeleteFaces.
    DeleteFaces,
}

impl Operation {
    /// Every operation, in the order the ledger prints them.
    pub const ALL: [Operation; 9] = [
        Operation::IndexFaces,
        Operation::SearchFaces,
        Operation::SearchFacesByImage,
        Operation::ListFaces,
        Operation::DeleteFaces,
        Operation::CreateCollection,
        Operation::DescribeCollection,
        Operation::ListCollections,
        Operation::DeleteCollection,
    ];

    /// The service's name, such as `IndexFaces`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CreateCollection => "CreateCollection",
            Self::DescribeCollection => "DescribeCollection",
            Self::ListCollections => "ListCollections",
            Self::DeleteCollection => "DeleteCollection",
            Self::IndexFaces => "IndexFaces",
            Self::SearchFaces => "SearchFaces",
            Self::SearchFacesByImage => "SearchFacesByImage",
            Self::ListFaces => "ListFaces",
            Self::DeleteFaces => "DeleteFaces",
        }
    }

    /// The operation of a service name, exactly as the service spells it.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == name)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Why a call was not made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AvoidedBy {
    /// The local detector found no face in the image (IndexFaces, SearchFacesByImage).
    Prefilter,
    /// The same bytes under the same external image id were ingested before (IndexFaces).
    Duplicate,
    /// The stream's Bloom filter recognised a replayed message (IndexFaces).
    BloomFilter,
}

impl AvoidedBy {
    /// Every reason, in the order the ledger prints them.
    pub const ALL: [AvoidedBy; 3] = [
        AvoidedBy::Prefilter,
        AvoidedBy::Duplicate,
        AvoidedBy::BloomFilter,
    ];

    /// A short stable name, used as a metrics label: `prefilter`, `duplicate`, `bloom_filter`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Prefilter => "prefilter",
            Self::Duplicate => "duplicate",
            Self::BloomFilter => "bloom_filter",
        }
    }

    /// How a summary names it.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Prefilter => "by the pre-filter (no face found locally, or not an image)",
            Self::Duplicate => "by duplicate detection (bytes already ingested)",
            Self::BloomFilter => "by the stream's Bloom filter (a replayed message)",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

const OPS: usize = Operation::ALL.len();
const REASONS: usize = AvoidedBy::ALL.len();

/// Counts of calls made and avoided, shared by the engine and whoever reports them. Counting is
/// lock-free: every thread of a parallel ingest records into the same ledger.
#[derive(Debug, Default)]
pub struct CallLedger {
    made: [AtomicU64; OPS],
    avoided: [[AtomicU64; OPS]; REASONS],
}

impl CallLedger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a call sent to the service (whatever its answer: a call the service refuses may
    /// still be billed, so the estimate errs on the side of counting it).
    pub fn made(&self, operation: Operation) {
        self.made[operation.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Records `calls` calls of `operation` that were not made, and why.
    pub fn avoided(&self, operation: Operation, reason: AvoidedBy, calls: u64) {
        self.avoided[reason.index()][operation.index()].fetch_add(calls, Ordering::Relaxed);
    }

    /// The counts so far.
    pub fn snapshot(&self) -> CallCounts {
        let mut made = BTreeMap::new();
        let mut avoided = BTreeMap::new();
        for op in Operation::ALL {
            let n = self.made[op.index()].load(Ordering::Relaxed);
            if n > 0 {
                made.insert(op, n);
            }
            for reason in AvoidedBy::ALL {
                let n = self.avoided[reason.index()][op.index()].load(Ordering::Relaxed);
                if n > 0 {
                    avoided.insert((reason, op), n);
                }
            }
        }
        CallCounts { made, avoided }
    }
}

/// A snapshot of a [`CallLedger`]: only non-zero counts are kept.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallCounts {
    /// Calls made, by operation.
    pub made: BTreeMap<Operation, u64>,
    /// Calls avoided, by reason and operation.
    pub avoided: BTreeMap<(AvoidedBy, Operation), u64>,
}

impl CallCounts {
    /// Every call made.
    pub fn made_total(&self) -> u64 {
        self.made.values().sum()
    }

    /// Every call avoided.
    pub fn avoided_total(&self) -> u64 {
        self.avoided.values().sum()
    }

    /// Calls avoided for one reason, all operations together.
    pub fn avoided_by(&self, reason: AvoidedBy) -> u64 {
        self.avoided
            .iter()
            .filter(|((r, _), _)| *r == reason)
            .map(|(_, n)| n)
            .sum()
    }
}

/// What Rekognition charges per 1,000 calls of each operation, in `currency`. These are estimates
/// for the run summaries and metrics, to be set to the account's own prices (region, volume tier,
/// agreements).
#[derive(Clone, Debug, PartialEq)]
pub struct Prices {
    per_1000: [f64; OPS],
    /// The currency the prices are in, as printed (default `USD`).
    pub currency: String,
}

impl Default for Prices {
    /// The shape of the public price list: the face-search operations (IndexFaces, SearchFaces,
    /// SearchFacesByImage, which Rekognition bills as "Group 1" image analysis) at 1.00 USD per
    /// 1,000 calls, the first volume tier in US East; the collection and listing calls at 0, as
    /// the price list bills no image analysis for them.
    fn default() -> Self {
        let mut per_1000 = [0.0; OPS];
        for op in [
            Operation::IndexFaces,
            Operation::SearchFaces,
            Operation::SearchFacesByImage,
        ] {
            per_1000[op.index()] = 1.0;
        }
        Self {
            per_1000,
            currency: "USD".to_owned(),
        }
    }
}

impl Prices {
    /// The price of 1,000 calls of `operation`.
    pub fn per_1000(&self, operation: Operation) -> f64 {
        self.per_1000[operation.index()]
    }

    /// Sets the price of 1,000 calls of `operation`; refuses a negative or non-finite price.
    pub fn set(&mut self, operation: Operation, per_1000: f64) -> Result<(), String> {
        if !(per_1000.is_finite() && per_1000 >= 0.0) {
            return Err(format!(
                "the price of 1,000 {} calls must be a number of at least 0, not {per_1000}",
                operation.as_str()
            ));
        }
        self.per_1000[operation.index()] = per_1000;
        Ok(())
    }

    /// What `calls` calls of `operation` cost.
    pub fn cost(&self, operation: Operation, calls: u64) -> f64 {
        self.per_1000(operation) * calls as f64 / 1000.0
    }

    /// The estimated cost of the calls made and of the calls avoided.
    pub fn estimate(&self, counts: &CallCounts) -> CostEstimate {
        // Folded from +0.0: the standard sum of no terms is -0.0, which prints as "-0.0000".
        CostEstimate {
            made: counts
                .made
                .iter()
                .fold(0.0, |sum, (op, n)| sum + self.cost(*op, *n)),
            avoided: counts
                .avoided
                .iter()
                .fold(0.0, |sum, ((_, op), n)| sum + self.cost(*op, *n)),
        }
    }
}

/// What the calls made cost and what the calls avoided would have cost, in the prices' currency.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CostEstimate {
    /// The calls made.
    pub made: f64,
    /// The calls avoided.
    pub avoided: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ledger_counts_by_operation_and_reason_and_prices_them() {
        let ledger = CallLedger::new();
        for _ in 0..3 {
            ledger.made(Operation::IndexFaces);
        }
        ledger.made(Operation::SearchFaces);
        ledger.made(Operation::DescribeCollection);
        ledger.avoided(Operation::IndexFaces, AvoidedBy::Prefilter, 4);
        ledger.avoided(Operation::IndexFaces, AvoidedBy::Duplicate, 1);
        let counts = ledger.snapshot();
        assert_eq!((counts.made_total(), counts.avoided_total()), (5, 5));
        assert_eq!(counts.avoided_by(AvoidedBy::Prefilter), 4);
        assert_eq!(counts.avoided_by(AvoidedBy::BloomFilter), 0);
        let prices = Prices::default();
        let cost = prices.estimate(&counts);
        // Four billed calls made at 1.00 per 1,000, DescribeCollection free; five avoided.
        assert!((cost.made - 0.004).abs() < 1e-12, "{cost:?}");
        assert!((cost.avoided - 0.005).abs() < 1e-12, "{cost:?}");
        let none = prices.estimate(&CallCounts::default());
        assert_eq!(
            format!("{:.4} {:.4}", none.made, none.avoided),
            "0.0000 0.0000"
        );
    }

    #[test]
    fn prices_refuse_what_is_not_a_price() {
        let mut p = Prices::default();
        assert!(p.set(Operation::ListFaces, 0.01).is_ok());
        assert_eq!(p.per_1000(Operation::ListFaces), 0.01);
        assert!(p.set(Operation::IndexFaces, -1.0).is_err());
        assert!(p.set(Operation::IndexFaces, f64::NAN).is_err());
        assert_eq!(
            Operation::parse("SearchFacesByImage"),
            Some(Operation::SearchFacesByImage)
        );
        assert_eq!(Operation::parse("indexfaces"), None);
    }
}
