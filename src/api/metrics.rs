//! Prometheus metrics: request counts and latency per route template, verdicts handed out, and the
//! latency of every store and engine call (through timing decorators around the two ports). Names
//! follow `facegraph_<name>_<unit>[_total]`; labels are low-cardinality (route templates, never ids).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

use crate::engine::calls::{AvoidedBy, CallLedger, Operation, Prices};
use crate::engine::{
    CollectionInfo, EngineError, FaceEngine, FaceMatch, FacePage, HeldFace, IndexFacesRequest,
    IndexFacesResult, SearchByImageResult,
};
use crate::model::Timestamp;
use crate::model::{
    CollectionId, ContentHash, ExternalImageId, FaceId, FacePair, Image, ImageId, Similarity,
    SubjectId, Verdict,
};
use crate::store::{
    ClusterMembership, EdgeRecord, FaceRecord, GraphStore, IngestBatch, IngestOutcome,
    JudgementEntry, MatchEventRecord, ProcessedMessage, StoreError, StoreStats, VerdictUpdate,
};

use super::AppState;

/// Latency buckets in seconds, from half a millisecond (a stateless adjudication) to ten seconds
/// (indexing a large image).
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The server's metrics, in a registry of their own (no global state).
#[derive(Clone, Debug)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    request_seconds: HistogramVec,
    in_flight: IntGauge,
    verdicts: IntCounterVec,
    verdict_changes: IntCounterVec,
    store_seconds: HistogramVec,
    store_errors: IntCounterVec,
    engine_seconds: HistogramVec,
    engine_errors: IntCounterVec,
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(c.clone()))?;
            Ok::<_, prometheus::Error>(c)
        };
        let histogram = |name: &str, help: &str, labels: &[&str]| {
            let h = HistogramVec::new(
                HistogramOpts::new(name, help).buckets(BUCKETS.to_vec()),
                labels,
            )?;
            registry.register(Box::new(h.clone()))?;
            Ok::<_, prometheus::Error>(h)
        };
        let in_flight = IntGauge::new(
            "facegraph_http_requests_in_flight",
            "HTTP requests being served.",
        )?;
        registry.register(Box::new(in_flight.clone()))?;
        Ok(Self {
            requests: counter(
                "facegraph_http_requests_total",
                "HTTP requests served, by method, route template and status.",
                &["method", "route", "status"],
            )?,
            request_seconds: histogram(
                "facegraph_http_request_duration_seconds",
                "HTTP request latency, by method and route template.",
                &["method", "route"],
            )?,
            in_flight,
            verdicts: counter(
                "facegraph_verdicts_total",
                "Verdicts returned by adjudication requests, by verdict and mode (stateless, stored).",
                &["verdict", "mode"],
            )?,
            verdict_changes: counter(
                "facegraph_verdict_changes_total",
                "Stored verdicts changed by API requests (decisions, stored adjudications, images), by new verdict.",
                &["verdict"],
            )?,
            store_seconds: histogram(
                "facegraph_store_operation_duration_seconds",
                "Graph store call latency, by operation.",
                &["operation"],
            )?,
            store_errors: counter(
                "facegraph_store_errors_total",
                "Graph store calls that failed, by operation.",
                &["operation"],
            )?,
            engine_seconds: histogram(
                "facegraph_engine_operation_duration_seconds",
                "Face engine call latency, by operation.",
                &["operation"],
            )?,
            engine_errors: counter(
                "facegraph_engine_errors_total",
                "Face engine calls that failed, by operation.",
                &["operation"],
            )?,
            registry,
        })
    }

    /// The registry, for metrics of other parts of the process (the stream of `serve --stream`).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The metrics in Prometheus' text format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::warn!(error = %e, "metrics could not be encoded");
        }
        String::from_utf8(buf).unwrap_or_default()
    }

    /// Counts a verdict handed to a client.
    pub fn verdict(&self, verdict: Verdict, mode: &'static str) {
        self.verdicts
            .with_label_values(&[verdict.as_str(), mode])
            .inc();
    }

    /// Counts stored verdicts that changed.
    pub fn changes<'a>(&self, changed: impl IntoIterator<Item = &'a Verdict>) {
        for v in changed {
            self.verdict_changes.with_label_values(&[v.as_str()]).inc();
        }
    }

    /// Exposes the Rekognition calls of a ledger: `facegraph_rekognition_calls_total{operation}`,
    /// `facegraph_rekognition_calls_avoided_total{operation,reason}` and the estimated cost of
    /// both at `prices`, read from the ledger at every scrape.
    pub fn register_calls(
        &self,
        calls: Arc<CallLedger>,
        prices: Prices,
    ) -> Result<(), prometheus::Error> {
        self.registry
            .register(Box::new(CallsCollector::new(calls, prices)?))
    }

    /// Wraps a store so that every call is timed.
    pub fn timed_store(&self, inner: Arc<dyn GraphStore>) -> Arc<dyn GraphStore> {
        Arc::new(TimedStore {
            inner,
            seconds: self.store_seconds.clone(),
            errors: self.store_errors.clone(),
        })
    }

    /// Wraps an engine so that every call is timed.
    pub fn timed_engine(&self, inner: Arc<dyn FaceEngine>) -> Arc<dyn FaceEngine> {
        Arc::new(TimedEngine {
            inner,
            seconds: self.engine_seconds.clone(),
            errors: self.engine_errors.clone(),
        })
    }
}

/// The Rekognition ledger as Prometheus metrics, built from the ledger's counts at each scrape (the
/// ledger is the one source; nothing is counted twice).
#[derive(Debug)]
struct CallsCollector {
    calls: Arc<CallLedger>,
    prices: Prices,
    made: IntCounterVec,
    avoided: IntCounterVec,
    cost: GaugeVec,
    /// Held while a scrape fills the vectors, so that two scrapes at once do not mix.
    scrape: std::sync::Mutex<()>,
}

impl CallsCollector {
    fn new(calls: Arc<CallLedger>, prices: Prices) -> Result<Self, prometheus::Error> {
        Ok(Self {
            calls,
            prices,
            made: IntCounterVec::new(
                Opts::new(
                    "facegraph_rekognition_calls_total",
                    "Calls sent to Rekognition, by operation.",
                ),
                &["operation"],
            )?,
            avoided: IntCounterVec::new(
                Opts::new(
                    "facegraph_rekognition_calls_avoided_total",
                    "Rekognition calls not made, by operation and reason (prefilter, duplicate, bloom_filter).",
                ),
                &["operation", "reason"],
            )?,
            cost: GaugeVec::new(
                Opts::new(
                    "facegraph_rekognition_estimated_cost",
                    "Estimated cost of the Rekognition calls made and avoided, at the prices of the settings.",
                ),
                &["calls", "currency"],
            )?,
            scrape: std::sync::Mutex::new(()),
        })
    }
}

impl prometheus::core::Collector for CallsCollector {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        let mut d = self.made.desc();
        d.extend(self.avoided.desc());
        d.extend(self.cost.desc());
        d
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        let _scrape = self
            .scrape
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let counts = self.calls.snapshot();
        // Every operation is exported, zeros included, so that rates start from the first scrape.
        self.made.reset();
        self.avoided.reset();
        for op in Operation::ALL {
            self.made
                .with_label_values(&[op.as_str()])
                .inc_by(counts.made.get(&op).copied().unwrap_or(0));
        }
        for ((reason, op), n) in &counts.avoided {
            self.avoided
                .with_label_values(&[op.as_str(), reason.as_str()])
                .inc_by(*n);
        }
        let estimate = self.prices.estimate(&counts);
        let currency = self.prices.currency.as_str();
        self.cost
            .with_label_values(&["made", currency])
            .set(estimate.made);
        self.cost
            .with_label_values(&["avoided", currency])
            .set(estimate.avoided);
        let mut families = self.made.collect();
        families.extend(self.avoided.collect());
        families.extend(self.cost.collect());
        families
    }
}

/// Middleware: counts and times every request by its route template (`/v1/faces/{face_id}`, never
/// the id itself), or `unmatched` for paths no route serves.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let m = state.metrics();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    // Only the standard methods name themselves: a client inventing methods must not invent series.
    let method = match *req.method() {
        Method::GET
        | Method::POST
        | Method::PUT
        | Method::DELETE
        | Method::HEAD
        | Method::OPTIONS
        | Method::PATCH => req.method().as_str().to_owned(),
        _ => "other".to_owned(),
    };
    m.in_flight.inc();
    let start = Instant::now();
    let response = next.run(req).await;
    let elapsed = start.elapsed();
    m.in_flight.dec();
    m.request_seconds
        .with_label_values(&[method.as_str(), route.as_str()])
        .observe(elapsed.as_secs_f64());
    m.requests
        .with_label_values(&[method.as_str(), route.as_str(), response.status().as_str()])
        .inc();
    tracing::debug!(
        method,
        route,
        status = response.status().as_u16(),
        micros = elapsed.as_micros() as u64,
        "request"
    );
    response
}

fn timed<T, E>(
    seconds: &HistogramVec,
    errors: &IntCounterVec,
    op: &'static str,
    f: impl FnOnce() -> Result<T, E>,
) -> Result<T, E> {
    let start = Instant::now();
    let r = f();
    seconds
        .with_label_values(&[op])
        .observe(start.elapsed().as_secs_f64());
    if r.is_err() {
        errors.with_label_values(&[op]).inc();
    }
    r
}

/// A store that times every call of the store it wraps.
#[derive(Debug)]
struct TimedStore {
    inner: Arc<dyn GraphStore>,
    seconds: HistogramVec,
    errors: IntCounterVec,
}

impl TimedStore {
    fn t<T>(
        &self,
        op: &'static str,
        f: impl FnOnce() -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        timed(&self.seconds, &self.errors, op, f)
    }
}

impl GraphStore for TimedStore {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
    fn ingest(&self, batch: &IngestBatch) -> Result<IngestOutcome, StoreError> {
        self.t("ingest", || self.inner.ingest(batch))
    }
    fn record_verdicts(&self, updates: &[VerdictUpdate]) -> Result<usize, StoreError> {
        self.t("record_verdicts", || self.inner.record_verdicts(updates))
    }
    fn record_decision(&self, decision: &crate::model::Decision) -> Result<(), StoreError> {
        self.t("record_decision", || self.inner.record_decision(decision))
    }
    fn replace_clusters(&self, clusters: &[ClusterMembership]) -> Result<(), StoreError> {
        self.t("replace_clusters", || self.inner.replace_clusters(clusters))
    }
    fn faces(&self, ids: &[FaceId]) -> Result<Vec<FaceRecord>, StoreError> {
        self.t("faces", || self.inner.faces(ids))
    }
    fn all_faces(&self) -> Result<Vec<FaceRecord>, StoreError> {
        self.t("all_faces", || self.inner.all_faces())
    }
    fn edge(&self, pair: &FacePair) -> Result<Option<EdgeRecord>, StoreError> {
        self.t("edge", || self.inner.edge(pair))
    }
    fn edges_touching(&self, ids: &[FaceId]) -> Result<Vec<EdgeRecord>, StoreError> {
        self.t("edges_touching", || self.inner.edges_touching(ids))
    }
    fn edges(&self, verdict: Option<Verdict>) -> Result<Vec<EdgeRecord>, StoreError> {
        self.t("edges", || self.inner.edges(verdict))
    }
    fn decisions(&self) -> Result<Vec<crate::model::Decision>, StoreError> {
        self.t("decisions", || self.inner.decisions())
    }
    fn searches(&self, ids: &[FaceId]) -> Result<Vec<crate::model::SearchRecord>, StoreError> {
        self.t("searches", || self.inner.searches(ids))
    }
    fn clusters(&self) -> Result<Vec<ClusterMembership>, StoreError> {
        self.t("clusters", || self.inner.clusters())
    }
    fn stats(&self) -> Result<StoreStats, StoreError> {
        self.t("stats", || self.inner.stats())
    }
    fn images(&self, ids: &[ImageId]) -> Result<Vec<Image>, StoreError> {
        self.t("images", || self.inner.images(ids))
    }
    fn pending_images(&self) -> Result<Vec<Image>, StoreError> {
        self.t("pending_images", || self.inner.pending_images())
    }
    fn forget_pending_image(&self, id: &ImageId) -> Result<(), StoreError> {
        self.t("forget_pending_image", || {
            self.inner.forget_pending_image(id)
        })
    }
    fn faces_of_subject(&self, subject: &SubjectId) -> Result<Vec<FaceRecord>, StoreError> {
        self.t("faces_of_subject", || self.inner.faces_of_subject(subject))
    }
    // The stream's bookkeeping.
    fn processed_message(&self, key: &str) -> Result<Option<ProcessedMessage>, StoreError> {
        self.t("processed_message", || self.inner.processed_message(key))
    }
    fn record_processed_messages(&self, messages: &[ProcessedMessage]) -> Result<(), StoreError> {
        self.t("record_processed_messages", || {
            self.inner.record_processed_messages(messages)
        })
    }
    fn judgements_after(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<JudgementEntry>, StoreError> {
        self.t("judgements_after", || {
            self.inner.judgements_after(after, limit)
        })
    }
    fn stream_cursor(&self, name: &str) -> Result<Option<String>, StoreError> {
        self.t("stream_cursor", || self.inner.stream_cursor(name))
    }
    fn set_stream_cursor(&self, name: &str, value: &str) -> Result<(), StoreError> {
        self.t("set_stream_cursor", || {
            self.inner.set_stream_cursor(name, value)
        })
    }
    fn take_lease(
        &self,
        name: &str,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        self.t("take_lease", || {
            self.inner.take_lease(name, holder, now, until)
        })
    }
    fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        self.t("release_lease", || self.inner.release_lease(name, holder))
    }
    fn last_match_events(&self, pairs: &[FacePair]) -> Result<Vec<MatchEventRecord>, StoreError> {
        self.t("last_match_events", || self.inner.last_match_events(pairs))
    }
    fn enqueue_match_events(
        &self,
        cursor: &str,
        from: Option<&str>,
        to: &str,
        events: &[MatchEventRecord],
    ) -> Result<bool, StoreError> {
        self.t("enqueue_match_events", || {
            self.inner.enqueue_match_events(cursor, from, to, events)
        })
    }
    fn unsent_match_events(&self, limit: usize) -> Result<Vec<MatchEventRecord>, StoreError> {
        self.t("unsent_match_events", || {
            self.inner.unsent_match_events(limit)
        })
    }
    fn mark_match_events_sent(
        &self,
        event_ids: &[String],
        at: Timestamp,
    ) -> Result<(), StoreError> {
        self.t("mark_match_events_sent", || {
            self.inner.mark_match_events_sent(event_ids, at)
        })
    }
    // Scoped adjudication (issue 13).
    fn dirty_faces(&self, limit: usize) -> Result<crate::store::DirtyFaces, StoreError> {
        self.t("dirty_faces", || self.inner.dirty_faces(limit))
    }
    fn clear_dirty(&self, through: i64) -> Result<(), StoreError> {
        self.t("clear_dirty", || self.inner.clear_dirty(through))
    }
    fn similar_edges(
        &self,
        ids: &[FaceId],
    ) -> Result<Vec<(crate::model::Edge, Option<Verdict>)>, StoreError> {
        self.t("similar_edges", || self.inner.similar_edges(ids))
    }
    fn decisions_touching(
        &self,
        ids: &[FaceId],
    ) -> Result<Vec<crate::model::Decision>, StoreError> {
        self.t("decisions_touching", || self.inner.decisions_touching(ids))
    }
    fn clusters_of(&self, ids: &[FaceId]) -> Result<Vec<ClusterMembership>, StoreError> {
        self.t("clusters_of", || self.inner.clusters_of(ids))
    }
    fn replace_some_clusters(
        &self,
        removed: &[String],
        added: &[ClusterMembership],
    ) -> Result<(), StoreError> {
        self.t("replace_some_clusters", || {
            self.inner.replace_some_clusters(removed, added)
        })
    }
    fn cluster_totals(&self) -> Result<crate::store::ClusterTotals, StoreError> {
        self.t("cluster_totals", || self.inner.cluster_totals())
    }
    fn review_page(
        &self,
        after: Option<&crate::store::QueuePosition>,
        limit: usize,
    ) -> Result<Vec<EdgeRecord>, StoreError> {
        self.t("review_page", || self.inner.review_page(after, limit))
    }
}

/// An engine that times every call of the engine it wraps.
#[derive(Debug)]
struct TimedEngine {
    inner: Arc<dyn FaceEngine>,
    seconds: HistogramVec,
    errors: IntCounterVec,
}

impl TimedEngine {
    fn t<T>(
        &self,
        op: &'static str,
        f: impl FnOnce() -> Result<T, EngineError>,
    ) -> Result<T, EngineError> {
        timed(&self.seconds, &self.errors, op, f)
    }
}

impl FaceEngine for TimedEngine {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn create_collection(&self, id: &CollectionId) -> Result<CollectionInfo, EngineError> {
        self.t("create_collection", || self.inner.create_collection(id))
    }
    fn list_collections(&self) -> Result<Vec<CollectionId>, EngineError> {
        self.t("list_collections", || self.inner.list_collections())
    }
    fn describe_collection(&self, id: &CollectionId) -> Result<CollectionInfo, EngineError> {
        self.t("describe_collection", || self.inner.describe_collection(id))
    }
    fn delete_collection(&self, id: &CollectionId) -> Result<(), EngineError> {
        self.t("delete_collection", || self.inner.delete_collection(id))
    }
    fn index_faces(&self, req: &IndexFacesRequest<'_>) -> Result<IndexFacesResult, EngineError> {
        self.t("index_faces", || self.inner.index_faces(req))
    }
    fn find_indexed(
        &self,
        collection_id: &CollectionId,
        external_image_id: Option<&ExternalImageId>,
        content: &ContentHash,
    ) -> Result<Option<IndexFacesResult>, EngineError> {
        self.t("find_indexed", || {
            self.inner
                .find_indexed(collection_id, external_image_id, content)
        })
    }
    fn search_faces(
        &self,
        collection_id: &CollectionId,
        face_id: &FaceId,
        threshold: Similarity,
        max_faces: u32,
    ) -> Result<Vec<FaceMatch>, EngineError> {
        self.t("search_faces", || {
            self.inner
                .search_faces(collection_id, face_id, threshold, max_faces)
        })
    }
    fn search_held_face(
        &self,
        collection_id: &CollectionId,
        face: &HeldFace<'_>,
        threshold: Similarity,
        max_faces: u32,
    ) -> Result<Vec<FaceMatch>, EngineError> {
        self.t("search_held_face", || {
            self.inner
                .search_held_face(collection_id, face, threshold, max_faces)
        })
    }
    fn search_faces_by_image(
        &self,
        collection_id: &CollectionId,
        image: &[u8],
        threshold: Similarity,
        max_faces: u32,
    ) -> Result<SearchByImageResult, EngineError> {
        self.t("search_faces_by_image", || {
            self.inner
                .search_faces_by_image(collection_id, image, threshold, max_faces)
        })
    }
    fn list_faces(
        &self,
        collection_id: &CollectionId,
        next_token: Option<&str>,
        max_results: u32,
    ) -> Result<FacePage, EngineError> {
        self.t("list_faces", || {
            self.inner
                .list_faces(collection_id, next_token, max_results)
        })
    }
    fn delete_faces(
        &self,
        collection_id: &CollectionId,
        face_ids: &[FaceId],
    ) -> Result<Vec<FaceId>, EngineError> {
        self.t("delete_faces", || {
            self.inner.delete_faces(collection_id, face_ids)
        })
    }
    fn note_avoided(&self, operation: Operation, reason: AvoidedBy, calls: u64) {
        self.inner.note_avoided(operation, reason, calls);
    }
}
