//! The `[kafka]` table: the stream's brokers, consumer group, topics and Bloom filter, with their
//! defaults and checks.

use serde::Deserialize;

use super::SettingsError;

/// The stream's Kafka connection and topics (`[kafka]`; `FACEGRAPH_KAFKA_BROKERS` and
/// `FACEGRAPH_KAFKA_GROUP` override the file).
#[derive(Debug, Clone, PartialEq)]
pub struct KafkaSettings {
    /// Bootstrap brokers, `HOST:PORT,...`; `None` when not configured (the stream refuses to start).
    pub brokers: Option<String>,
    /// The consumer group of the stream's stages (default `facegraph`).
    pub group: String,
    /// Where uploads arrive (default `facegraph.uploads`).
    pub uploads_topic: String,
    /// Intra-service: the largest face of each indexed upload (default `facegraph.faces`).
    pub faces_topic: String,
    /// Intra-service: the hits of each searched face (default `facegraph.hits`).
    pub hits_topic: String,
    /// Confirmed matches and later changes of their verdicts (default `facegraph.matches`).
    pub matches_topic: String,
    /// Messages that cannot succeed, with why (default `facegraph.dlq`).
    pub dlq_topic: String,
    /// Partitions of the topics the stream creates when they are missing (default 3).
    pub partitions: u32,
    /// Replicas of each partition of the topics the stream creates (default 1, for one broker;
    /// 3 on a production cluster).
    pub replication_factor: u16,
    /// The consumer group's session timeout in milliseconds (default 10,000).
    pub session_timeout_ms: u32,
    /// How many message keys the persistent Bloom filter is sized for (default 10 million).
    pub bloom_items: u64,
    /// The Bloom filter's false-positive rate at that size (default 0.001).
    pub bloom_false_positive_rate: f64,
}

/// The `[kafka]` table of the settings file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct KafkaFile {
    brokers: Option<String>,
    group: Option<String>,
    uploads_topic: Option<String>,
    faces_topic: Option<String>,
    hits_topic: Option<String>,
    matches_topic: Option<String>,
    dlq_topic: Option<String>,
    partitions: Option<u32>,
    replication_factor: Option<u16>,
    session_timeout_ms: Option<u32>,
    bloom_items: Option<u64>,
    bloom_false_positive_rate: Option<f64>,
}

/// The `[kafka]` settings with their defaults, the environment beating the file.
pub(super) fn kafka_settings(
    file: KafkaFile,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<KafkaSettings, SettingsError> {
    let invalid = |name, message: &str| SettingsError::Invalid {
        name,
        message: message.to_owned(),
    };
    let topic = |v: Option<String>, default: &str, name| -> Result<String, SettingsError> {
        let t = v.unwrap_or_else(|| default.to_owned());
        let ok = !t.is_empty()
            && t.len() <= 249
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if ok {
            Ok(t)
        } else {
            Err(invalid(
                name,
                "a Kafka topic is 1 to 249 of a-z A-Z 0-9 . _ -",
            ))
        }
    };
    let brokers = env("FACEGRAPH_KAFKA_BROKERS")
        .or(file.brokers)
        .map(|b| b.trim().to_owned())
        .filter(|b| !b.is_empty());
    let group = env("FACEGRAPH_KAFKA_GROUP")
        .or(file.group)
        .unwrap_or_else(|| "facegraph".to_owned());
    let partitions = file.partitions.unwrap_or(3);
    if partitions == 0 {
        return Err(invalid("kafka.partitions", "must be at least 1"));
    }
    let rate = file.bloom_false_positive_rate.unwrap_or(0.001);
    if !(rate > 0.0 && rate < 1.0) {
        return Err(invalid(
            "kafka.bloom_false_positive_rate",
            "must be above 0 and below 1",
        ));
    }
    Ok(KafkaSettings {
        brokers,
        group,
        uploads_topic: topic(
            file.uploads_topic,
            "facegraph.uploads",
            "kafka.uploads_topic",
        )?,
        faces_topic: topic(file.faces_topic, "facegraph.faces", "kafka.faces_topic")?,
        hits_topic: topic(file.hits_topic, "facegraph.hits", "kafka.hits_topic")?,
        matches_topic: topic(
            file.matches_topic,
            "facegraph.matches",
            "kafka.matches_topic",
        )?,
        dlq_topic: topic(file.dlq_topic, "facegraph.dlq", "kafka.dlq_topic")?,
        partitions,
        replication_factor: file.replication_factor.unwrap_or(1).max(1),
        session_timeout_ms: file.session_timeout_ms.unwrap_or(10_000),
        bloom_items: file.bloom_items.unwrap_or(10_000_000).max(1),
        bloom_false_positive_rate: rate,
    })
}

#[cfg(test)]
mod tests {
    use crate::settings::{Overrides, Settings};

    #[test]
    fn kafka_settings_have_defaults_and_come_from_file_and_environment() {
        let s = Settings::load_with_env(&Overrides::default(), |_| None).unwrap();
        assert_eq!(s.kafka.brokers, None);
        assert_eq!(s.kafka.group, "facegraph");
        assert_eq!(
            [
                s.kafka.uploads_topic.as_str(),
                s.kafka.faces_topic.as_str(),
                s.kafka.hits_topic.as_str(),
                s.kafka.matches_topic.as_str(),
                s.kafka.dlq_topic.as_str()
            ],
            [
                "facegraph.uploads",
                "facegraph.faces",
                "facegraph.hits",
                "facegraph.matches",
                "facegraph.dlq"
            ]
        );
        assert_eq!(s.kafka.session_timeout_ms, 10_000);
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("facegraph.toml");
        std::fs::write(
            &cfg,
            "[kafka]\nbrokers = \"file:9092\"\nmatches_topic = \"out\"\npartitions = 6\n",
        )
        .unwrap();
        let o = Overrides {
            config: Some(cfg.clone()),
            ..Overrides::default()
        };
        let env = |k: &str| (k == "FACEGRAPH_KAFKA_BROKERS").then(|| "env:9092".to_owned());
        let s = Settings::load_with_env(&o, env).unwrap();
        assert_eq!(s.kafka.brokers.as_deref(), Some("env:9092"));
        assert_eq!(
            (s.kafka.matches_topic.as_str(), s.kafka.partitions),
            ("out", 6)
        );
        std::fs::write(&cfg, "[kafka]\nhits_topic = \"no spaces\"\n").unwrap();
        let err = Settings::load_with_env(&o, |_| None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("kafka.hits_topic"), "{err}");
    }
}
