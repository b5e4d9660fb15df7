//! The stream's Kafka clients on rdkafka (librdkafka built from source by the crate): the client
//! settings every client shares, the topics created at start when missing, the producer with its
//! delivery acknowledgements, and consumers that commit only what the stream tells them to.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;

use super::StreamError;
use crate::settings::KafkaSettings;

/// How long a produced message may wait for the broker's acknowledgement.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// The settings every client of the stream starts from: the brokers, and loopback-friendly
/// timeouts.
pub fn client_config(kafka: &KafkaSettings) -> Result<ClientConfig, StreamError> {
    let brokers = kafka.brokers.as_deref().ok_or(StreamError::NoBrokers)?;
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("client.id", "facegraph")
        .set("log_level", "4");
    Ok(config)
}

/// The producer: idempotent (no duplicates from its own retries), every message acknowledged by
/// the broker before the stream counts it sent.
pub fn producer(kafka: &KafkaSettings) -> Result<FutureProducer, StreamError> {
    client_config(kafka)?
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set(
            "message.timeout.ms",
            DELIVERY_TIMEOUT.as_millis().to_string(),
        )
        // Messages produced within 10 ms go in one request: under load most of a stage's outputs
        // share requests, which is what the broker's cost follows.
        .set("linger.ms", "10")
        .create()
        .map_err(|source| StreamError::Kafka {
            action: "create the producer",
            source,
        })
}

/// The consumer settings of a stage's group: offsets committed only by the stream (never
/// automatically), a new group starting at the earliest offset, the session timeout of the
/// settings.
pub fn consumer_config(kafka: &KafkaSettings, group: &str) -> Result<ClientConfig, StreamError> {
    let mut config = client_config(kafka)?;
    config
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", kafka.session_timeout_ms.to_string())
        .set(
            "heartbeat.interval.ms",
            (kafka.session_timeout_ms / 3).max(100).to_string(),
        )
        // The stream holds messages of its own while they wait for a slot; librdkafka's
        // prefetch queue need not be large too.
        .set("queued.max.messages.kbytes", "16384")
        // A fetch waits up to 20 ms for 64 KB instead of returning each message as it comes:
        // under load, fewer and fuller fetches; idle, 20 ms more latency per stage.
        .set("fetch.min.bytes", "65536")
        .set("fetch.wait.max.ms", "20");
    Ok(config)
}

/// Creates the topics that are missing with the partitions of the settings; existing topics are
/// left as they are.
pub async fn ensure_topics(kafka: &KafkaSettings, topics: &[&str]) -> Result<(), StreamError> {
    let admin: AdminClient<DefaultClientContext> =
        client_config(kafka)?
            .create()
            .map_err(|source| StreamError::Kafka {
                action: "create the admin client",
                source,
            })?;
    let partitions = i32::try_from(kafka.partitions).unwrap_or(i32::MAX);
    let replicas = i32::from(kafka.replication_factor);
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(replicas)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics(&new, &options)
        .await
        .map_err(|source| StreamError::Kafka {
            action: "create the topics",
            source,
        })?;
    for r in results {
        match r {
            Ok(topic) => tracing::info!(%topic, partitions, "created a topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(StreamError::Topic {
                    topic,
                    code: code.to_string(),
                })
            }
        }
    }
    Ok(())
}

/// One message to produce.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The topic.
    pub topic: String,
    /// The message key (messages with one key go to one partition, in order).
    pub key: Vec<u8>,
    /// The value.
    pub payload: Vec<u8>,
    /// Headers, in order.
    pub headers: Vec<(&'static str, Vec<u8>)>,
}

/// Produces `messages` in order and waits until the broker has acknowledged every one (messages
/// with one key keep their order: the producer is idempotent).
pub async fn send_all(producer: &FutureProducer, messages: &[Outgoing]) -> Result<(), StreamError> {
    let mut pending: Vec<(&str, DeliveryFuture)> = Vec::with_capacity(messages.len());
    for m in messages {
        loop {
            match producer.send_result(record(m)) {
                Ok(delivery) => {
                    pending.push((&m.topic, delivery));
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    // The producer's queue is full: wait for what is on its way, then go on.
                    for (topic, delivery) in pending.drain(..) {
                        acknowledged(topic, delivery).await?;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err((source, _)) => {
                    return Err(StreamError::Send {
                        topic: m.topic.clone(),
                        source,
                    })
                }
            }
        }
    }
    for (topic, delivery) in pending {
        acknowledged(topic, delivery).await?;
    }
    Ok(())
}

fn record(m: &Outgoing) -> FutureRecord<'_, [u8], [u8]> {
    let mut headers = OwnedHeaders::new_with_capacity(m.headers.len());
    for (name, value) in &m.headers {
        headers = headers.insert(Header {
            key: name,
            value: Some(value.as_slice()),
        });
    }
    FutureRecord::to(&m.topic)
        .key(m.key.as_slice())
        .payload(m.payload.as_slice())
        .headers(headers)
}

async fn acknowledged(topic: &str, delivery: DeliveryFuture) -> Result<(), StreamError> {
    match delivery.await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((source, _))) => Err(StreamError::Send {
            topic: topic.to_owned(),
            source,
        }),
        Err(_) => Err(StreamError::Send {
            topic: topic.to_owned(),
            source: KafkaError::Canceled,
        }),
    }
}
