//! The stream's Prometheus metrics: messages per stage (counted, and per second over the last
//! interval), consumer lag per partition, dead letters by reason, match events sent, and how the
//! Bloom filter answered. Names follow `facegraph_stream_<name>_<unit>[_total]`.

use prometheus::{GaugeVec, IntCounterVec, IntGaugeVec, Opts, Registry};

/// The stream's metrics, registered in a registry the caller owns (the REST server's, or one of
/// the stream's own for `--listen`).
#[derive(Clone, Debug)]
pub struct StreamMetrics {
    messages: IntCounterVec,
    rate: GaugeVec,
    lag: IntGaugeVec,
    in_flight: IntGaugeVec,
    dead_letters: IntCounterVec,
    events: IntCounterVec,
    bloom: IntCounterVec,
}

impl StreamMetrics {
    /// Registers every metric in `registry`.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(c.clone()))?;
            Ok::<_, prometheus::Error>(c)
        };
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            let g = IntGaugeVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(g.clone()))?;
            Ok::<_, prometheus::Error>(g)
        };
        let rate = GaugeVec::new(
            Opts::new(
                "facegraph_stream_messages_per_second",
                "Messages finished per second over the last interval, by stage.",
            ),
            &["stage"],
        )?;
        registry.register(Box::new(rate.clone()))?;
        Ok(Self {
            messages: counter(
                "facegraph_stream_messages_total",
                "Messages finished, by stage and outcome (processed, duplicate, dead_letter).",
                &["stage", "outcome"],
            )?,
            rate,
            lag: gauge(
                "facegraph_stream_lag_messages",
                "Messages of a partition not yet finished by the stage's group, by stage, topic and partition.",
                &["stage", "topic", "partition"],
            )?,
            in_flight: gauge(
                "facegraph_stream_in_flight_messages",
                "Messages being processed, by stage.",
                &["stage"],
            )?,
            dead_letters: counter(
                "facegraph_stream_dead_letters_total",
                "Messages sent to the dead-letter topic, by stage and reason.",
                &["stage", "reason"],
            )?,
            events: counter(
                "facegraph_stream_match_events_total",
                "Match events sent, by verdict.",
                &["verdict"],
            )?,
            bloom: counter(
                "facegraph_stream_bloom_answers_total",
                "Answers of the Bloom filter of message keys: certainly_new, maybe_seen, and false_positive (maybe seen, but not in the store).",
                &["answer"],
            )?,
        })
    }

    /// Counts a finished message.
    pub fn finished(&self, stage: &str, outcome: &str) {
        self.messages.with_label_values(&[stage, outcome]).inc();
    }

    /// Messages a stage finished so far, whatever the outcome.
    pub fn finished_total(&self, stage: &str) -> u64 {
        ["processed", "duplicate", "dead_letter"]
            .iter()
            .map(|o| self.messages.with_label_values(&[stage, o]).get())
            .sum()
    }

    /// Sets a stage's rate.
    pub fn set_rate(&self, stage: &str, per_second: f64) {
        self.rate.with_label_values(&[stage]).set(per_second);
    }

    /// Sets the lag of a partition.
    pub fn set_lag(&self, stage: &str, topic: &str, partition: i32, lag: i64) {
        self.lag
            .with_label_values(&[stage, topic, &partition.to_string()])
            .set(lag);
    }

    /// Sets how many messages a stage is processing.
    pub fn set_in_flight(&self, stage: &str, n: usize) {
        self.in_flight
            .with_label_values(&[stage])
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Counts a dead letter.
    pub fn dead_letter(&self, stage: &str, reason: &str) {
        self.dead_letters.with_label_values(&[stage, reason]).inc();
    }

    /// Counts a match event sent.
    pub fn event(&self, verdict: &str) {
        self.events.with_label_values(&[verdict]).inc();
    }

    /// Counts an answer of the Bloom filter.
    pub fn bloom(&self, answer: &str) {
        self.bloom.with_label_values(&[answer]).inc();
    }
}
