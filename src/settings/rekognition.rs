//! The `[rekognition]` and `[rekognition_endpoint]` tables: how the Rekognition engine reaches the
//! service, its pre-filter and prices, and the access keys of the Rekognition-compatible endpoint.

use secrecy::SecretString;
use serde::Deserialize;

use super::SettingsError;
use crate::engine::calls::{Operation, Prices};
use crate::engine::prefilter::DEFAULT_MIN_SCORE;
use crate::engine::rekognition::RekognitionConfig;

/// An access key of the Rekognition-compatible endpoint: the id clients send, and the secret their
/// signatures are checked with.
#[derive(Debug, Clone)]
pub struct AccessKeySetting {
    /// The access key id, such as `AKIAIOSFODNN7EXAMPLE`.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: SecretString,
}

/// The Rekognition-compatible endpoint's settings.
#[derive(Debug, Clone, Default)]
pub struct RekognitionEndpointSettings {
    /// Where it listens (`--rekognition-listen`, `FACEGRAPH_REKOGNITION_LISTEN`, `listen` in
    /// `[rekognition_endpoint]`); `None`: not opened.
    pub listen: Option<String>,
    /// The access keys: those of the settings file, then `FACEGRAPH_AWS_ACCESS_KEYS`
    /// (`ACCESS_KEY_ID:SECRET,...`).
    pub access_keys: Vec<AccessKeySetting>,
}

/// The pre-filter: the local face detector in front of the Rekognition engine, so that images
/// without a face are never sent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PrefilterSettings {
    /// Whether it runs (`prefilter` in `[rekognition]`, `FACEGRAPH_REKOGNITION_PREFILTER`); on by
    /// default. Only the Rekognition engine has it: the local engine detects faces itself.
    pub enabled: bool,
    /// The lowest detection score (0-1) that counts as a face (`prefilter_min_confidence`, 0-100,
    /// default 50).
    pub min_score: f32,
}

/// The `[rekognition]` table of the settings file: how the Rekognition engine reaches the service.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RekognitionFile {
    region: Option<String>,
    endpoint: Option<String>,
    requests_per_second: Option<f64>,
    max_attempts: Option<u32>,
    prefilter: Option<bool>,
    prefilter_min_confidence: Option<f64>,
    currency: Option<String>,
    price_per_1000: Option<std::collections::BTreeMap<String, f64>>,
}

/// The `[rekognition_endpoint]` table: the Rekognition-compatible endpoint that `serve` can open.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RekognitionEndpointFile {
    listen: Option<String>,
    #[serde(default)]
    access_keys: Vec<AccessKeyFile>,
}

/// An AWS access key of the endpoint as the settings file holds it. SigV4 is an HMAC keyed with the
/// secret, so the endpoint needs the secret itself, not a digest of it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AccessKeyFile {
    access_key_id: String,
    secret_access_key: String,
}

/// The Rekognition engine's settings: `FACEGRAPH_REKOGNITION_…` over `[rekognition]` over the
/// defaults.
pub(super) fn rekognition_config(
    file: &RekognitionFile,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<RekognitionConfig, SettingsError> {
    let defaults = RekognitionConfig::default();
    let requests_per_second = match env("FACEGRAPH_REKOGNITION_REQUESTS_PER_SECOND") {
        Some(v) => Some(
            v.trim()
                .parse::<f64>()
                .map_err(|e| SettingsError::Invalid {
                    name: "rekognition.requests_per_second",
                    message: format!("{v:?} is not a number: {e}"),
                })?,
        ),
        None => file.requests_per_second,
    };
    if let Some(rps) = requests_per_second {
        if !(rps.is_finite() && rps > 0.0) {
            return Err(SettingsError::Invalid {
                name: "rekognition.requests_per_second",
                message: format!("{rps} is not a positive number of requests per second"),
            });
        }
    }
    let max_attempts = file.max_attempts.unwrap_or(defaults.max_attempts);
    if max_attempts == 0 {
        return Err(SettingsError::Invalid {
            name: "rekognition.max_attempts",
            message: "at least 1 attempt (the first call) is needed".to_owned(),
        });
    }
    Ok(RekognitionConfig {
        region: env("FACEGRAPH_REKOGNITION_REGION").or_else(|| file.region.clone()),
        endpoint: env("FACEGRAPH_REKOGNITION_ENDPOINT").or_else(|| file.endpoint.clone()),
        requests_per_second,
        max_attempts,
        ..defaults
    })
}

/// The pre-filter (`FACEGRAPH_REKOGNITION_PREFILTER` over `prefilter`, on by default) and the
/// prices of the `[rekognition]` table.
pub(super) fn rekognition_extras(
    file: &RekognitionFile,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<(PrefilterSettings, Prices), SettingsError> {
    let invalid = |name, message: String| SettingsError::Invalid { name, message };
    let enabled = match env("FACEGRAPH_REKOGNITION_PREFILTER") {
        Some(v) => match v.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "on" | "yes" => true,
            "0" | "false" | "off" | "no" => false,
            _ => {
                return Err(invalid(
                    "rekognition.prefilter",
                    format!("{v:?} is not true or false"),
                ))
            }
        },
        None => file.prefilter.unwrap_or(true),
    };
    let min_score = match file.prefilter_min_confidence {
        Some(c) if (0.0..=100.0).contains(&c) => (c / 100.0) as f32,
        Some(c) => {
            return Err(invalid(
                "rekognition.prefilter_min_confidence",
                format!("{c} is not a detection confidence from 0 to 100"),
            ))
        }
        None => DEFAULT_MIN_SCORE,
    };
    let mut prices = Prices::default();
    if let Some(currency) = &file.currency {
        prices.currency = currency.trim().to_owned();
    }
    for (name, price) in file.price_per_1000.iter().flatten() {
        let op = Operation::parse(name).ok_or_else(|| {
            invalid(
                "rekognition.price_per_1000",
                format!(
                    "{name:?} is not a Rekognition operation: give {}",
                    Operation::ALL.map(Operation::as_str).join(", ")
                ),
            )
        })?;
        prices
            .set(op, *price)
            .map_err(|m| invalid("rekognition.price_per_1000", m))?;
    }
    Ok((PrefilterSettings { enabled, min_score }, prices))
}

/// The Rekognition-compatible endpoint's settings: the file's access keys, then those of
/// `FACEGRAPH_AWS_ACCESS_KEYS`.
pub(super) fn endpoint_settings(
    file: RekognitionEndpointFile,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<RekognitionEndpointSettings, SettingsError> {
    let mut access_keys: Vec<AccessKeySetting> = file
        .access_keys
        .into_iter()
        .map(|k| AccessKeySetting {
            access_key_id: k.access_key_id,
            secret_access_key: SecretString::from(k.secret_access_key),
        })
        .collect();
    if let Some(list) = env("FACEGRAPH_AWS_ACCESS_KEYS") {
        for (i, entry) in list.split(',').map(str::trim).enumerate() {
            if entry.is_empty() {
                continue;
            }
            let Some((id, secret)) = entry.split_once(':') else {
                return Err(SettingsError::Invalid {
                    name: "FACEGRAPH_AWS_ACCESS_KEYS",
                    message: format!(
                        "entry {} has no ':' between the access key id and the secret \
                         (ACCESS_KEY_ID:SECRET,...)",
                        i + 1
                    ),
                });
            };
            access_keys.push(AccessKeySetting {
                access_key_id: id.trim().to_owned(),
                secret_access_key: SecretString::from(secret.trim().to_owned()),
            });
        }
    }
    for k in &access_keys {
        let id = &k.access_key_id;
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(SettingsError::Invalid {
                name: "rekognition_endpoint.access_keys",
                message: format!("access key id {id:?} is not 1 or more letters and digits"),
            });
        }
        if secrecy::ExposeSecret::expose_secret(&k.secret_access_key).is_empty() {
            return Err(SettingsError::Invalid {
                name: "rekognition_endpoint.access_keys",
                message: format!("access key {id} has an empty secret"),
            });
        }
    }
    Ok(RekognitionEndpointSettings {
        listen: env("FACEGRAPH_REKOGNITION_LISTEN").or(file.listen),
        access_keys,
    })
}
