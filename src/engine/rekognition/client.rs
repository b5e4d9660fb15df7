//! The SDK client of the Rekognition engine and what wraps each call: the client built from the
//! AWS default chains with one HTTP/TLS stack (hyper and rustls on ring), the standard retry mode
//! in a retry partition of its own, a pacer that holds calls to the configured rate, and an
//! interceptor that keeps the body of the response verbatim.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_sdk_rekognition::config::interceptors::AfterDeserializationInterceptorContextRef;
use aws_sdk_rekognition::config::retry::{RetryConfig, RetryPartition};
use aws_sdk_rekognition::config::{ConfigBag, Credentials, Intercept, Region, RuntimeComponents};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use secrecy::ExposeSecret;
use tokio::time::Instant;

use super::RekognitionConfig;
use crate::engine::EngineError;

/// Partitions are named per engine instance: the SDK shares its retry token bucket between the
/// clients of one partition name, so that two engines (two tests, or a production engine and a
/// health probe) never spend each other's retry budget.
static PARTITIONS: AtomicU64 = AtomicU64::new(0);

/// Builds the SDK client: credentials from the default chain (environment, profiles, web
/// identity, container and instance metadata), the region of the settings or of the default chain,
/// the endpoint of the settings or the SDK's own (`AWS_ENDPOINT_URL_REKOGNITION`,
/// `AWS_ENDPOINT_URL`, profiles), and throttling retried with jittered exponential backoff.
pub(super) async fn build(
    config: &RekognitionConfig,
) -> Result<aws_sdk_rekognition::Client, EngineError> {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http);
    if let Some(region) = &config.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some((id, secret)) = &config.credentials {
        loader = loader.credentials_provider(Credentials::new(
            id.clone(),
            secret.expose_secret().to_owned(),
            None,
            None,
            "facegraph",
        ));
    }
    let shared = loader.load().await;
    if shared.region().is_none() {
        return Err(EngineError::InvalidParameter(
            "the Rekognition engine has no AWS region: set AWS_REGION (or a profile's region), \
             FACEGRAPH_REKOGNITION_REGION, or region in the [rekognition] table of the settings"
                .to_owned(),
        ));
    }
    let partition = format!(
        "facegraph-rekognition-{}-{}",
        std::process::id(),
        PARTITIONS.fetch_add(1, Ordering::Relaxed)
    );
    let mut builder = aws_sdk_rekognition::config::Builder::from(&shared)
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(config.max_attempts)
                .with_initial_backoff(config.initial_backoff)
                .with_max_backoff(config.max_backoff),
        )
        .retry_partition(RetryPartition::new(partition));
    if let Some(endpoint) = &config.endpoint {
        builder = builder.endpoint_url(endpoint.clone());
    }
    Ok(aws_sdk_rekognition::Client::from_conf(builder.build()))
}

/// Holds calls to at most `rate` per second, spread evenly: each call takes the next free slot,
/// so a burst of callers leaves one per interval instead of all at once. Retries inside the SDK are
/// paced by its backoff instead.
#[derive(Debug)]
pub(super) struct Pacer {
    interval: Option<Duration>,
    next: Mutex<Option<Instant>>,
}

impl Pacer {
    /// A pacer for `rate` calls per second; `None` lets every call through at once.
    pub(super) fn new(rate: Option<f64>) -> Self {
        Self {
            interval: rate.map(|r| Duration::from_secs_f64(1.0 / r)),
            next: Mutex::new(None),
        }
    }

    /// Waits for this call's slot.
    pub(super) async fn wait(&self) {
        let Some(interval) = self.interval else {
            return;
        };
        let slot = {
            let mut next = self
                .next
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let now = Instant::now();
            let slot = next.map_or(now, |n| n.max(now));
            *next = Some(slot + interval);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

/// Keeps the body of a call's successful response, exactly as the service sent it: the faces'
/// records are stored verbatim, and the service's JSON is read with facegraph's own wire types and
/// conversions, the same as a saved response.
#[derive(Clone, Debug, Default)]
pub(super) struct KeepBody(Arc<Mutex<Option<Vec<u8>>>>);

impl KeepBody {
    /// The body kept, if the call succeeded.
    pub(super) fn take(&self) -> Option<Vec<u8>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }
}

impl Intercept for KeepBody {
    fn name(&self) -> &'static str {
        "facegraph-keep-body"
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let response = context.response();
        // Each attempt passes here; only a success's body is the answer (a retried attempt's
        // error body must not stand in for it).
        if response.status().is_success() {
            if let Some(bytes) = response.body().bytes() {
                *self
                    .0
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(bytes.to_vec());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_pacer_spreads_a_burst_over_the_interval() {
        let pacer = Pacer::new(Some(10.0));
        let start = Instant::now();
        for _ in 0..5 {
            pacer.wait().await;
        }
        // Five calls at 10 per second: the first at once, the fifth 400 ms later.
        assert_eq!(start.elapsed(), Duration::from_millis(400));
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_rate_nothing_waits() {
        let pacer = Pacer::new(None);
        let start = Instant::now();
        for _ in 0..100 {
            pacer.wait().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
