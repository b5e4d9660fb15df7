//! One typed configuration: a TOML file (`--config`), overridden by `FACEGRAPH_…` environment
//! variables, overridden by command-line options. Unknown settings are refused by name.

use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde::Deserialize;

use crate::adjudication::{RuleSet, RuleSetError};
use crate::engine::calls::{Operation, Prices};
use crate::engine::prefilter::DEFAULT_MIN_SCORE;
use crate::engine::rekognition::RekognitionConfig;
use crate::engine::routing::{Route, RouteKey, Routes, SearchScope};
use crate::model::CollectionId;

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The config file could not be read.
    #[error("cannot read config file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The config file is not valid.
    #[error("config file {path} is invalid")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: toml::de::Error,
    },
    /// The rule set file could not be read.
    #[error("cannot read rule set file {path}")]
    ReadRules {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The rule set is not valid.
    #[error("rule set file {path} is invalid")]
    Rules {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: RuleSetError,
    },
    /// A setting's value is invalid.
    #[error("setting {name} is invalid: {message}")]
    Invalid {
        /// The setting.
        name: &'static str,
        /// Why.
        message: String,
    },
}

/// The settings file as written; every member is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsFile {
    data_dir: Option<PathBuf>,
    rules: Option<PathBuf>,
    collection_id: Option<String>,
    listen: Option<String>,
    #[serde(default)]
    api_keys: Vec<ApiKeySetting>,
    models_dir: Option<PathBuf>,
    store: Option<String>,
    #[serde(default)]
    neo4j: Neo4jFile,
    engine: Option<String>,
    #[serde(default)]
    rekognition: RekognitionFile,
    #[serde(default)]
    rekognition_endpoint: RekognitionEndpointFile,
    #[serde(default)]
    kafka: KafkaFile,
    #[serde(default)]
    routes: Vec<RouteFile>,
}

/// A `[[routes]]` entry of the settings file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteFile {
    collection_id: String,
    key: String,
    separator: Option<String>,
    max_faces: u64,
    search: Option<String>,
}

/// The `[kafka]` table of the settings file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct KafkaFile {
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

/// The `[neo4j]` table of the settings file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Neo4jFile {
    user: Option<String>,
    password: Option<String>,
    database: Option<String>,
}

/// The `[rekognition]` table of the settings file: how the Rekognition engine reaches the service.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RekognitionFile {
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
struct RekognitionEndpointFile {
    listen: Option<String>,
    #[serde(default)]
    access_keys: Vec<AccessKeyFile>,
}

/// An AWS access key of the endpoint as the settings file holds it. SigV4 is an HMAC keyed with the
/// secret, so the endpoint needs the secret itself, not a digest of it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AccessKeyFile {
    access_key_id: String,
    secret_access_key: String,
}

/// Which face engine indexes and searches faces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EngineKind {
    /// The local engine: models in-process, collections in the data directory (the default).
    #[default]
    Local,
    /// AWS Rekognition (or a Rekognition-compatible endpoint) through aws-sdk-rekognition.
    Rekognition,
}

impl EngineKind {
    /// Parses `local` or `rekognition`; the error says what is accepted.
    pub fn parse(value: &str) -> Result<Self, String> {
        match value.trim().to_ascii_lowercase().as_str() {
            "local" => Ok(Self::Local),
            "rekognition" => Ok(Self::Rekognition),
            _ => Err(format!(
                "{value:?} is not a face engine: give local (the models in-process, the default) or \
                 rekognition (AWS Rekognition through its SDK)"
            )),
        }
    }

    /// The name as settings spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Rekognition => "rekognition",
        }
    }
}

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

/// Where the match graph lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// The embedded store in the data directory (`sqlite`, the default).
    Sqlite,
    /// A Neo4j server (or another server speaking Bolt and Cypher) at this URL: `bolt://HOST:PORT`,
    /// `neo4j://HOST:PORT`, or their `+s`/`+ssc` TLS forms.
    Bolt(String),
}

impl StoreLocation {
    /// Parses `sqlite` or a Bolt URL; the error says what is accepted.
    pub fn parse(value: &str) -> Result<Self, String> {
        const SCHEMES: &[&str] = &[
            "bolt://",
            "bolt+s://",
            "bolt+ssc://",
            "neo4j://",
            "neo4j+s://",
            "neo4j+ssc://",
        ];
        let value = value.trim();
        if value.eq_ignore_ascii_case("sqlite") {
            return Ok(Self::Sqlite);
        }
        match SCHEMES.iter().find(|s| value.starts_with(*s)) {
            Some(scheme) if value.len() > scheme.len() => Ok(Self::Bolt(value.to_owned())),
            _ => Err(format!(
                "{value:?} is not a store: give sqlite (the embedded store) or a Neo4j server as \
                 bolt://HOST:PORT or neo4j://HOST:PORT"
            )),
        }
    }
}

impl std::fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite => f.write_str("sqlite"),
            Self::Bolt(url) => f.write_str(url),
        }
    }
}

/// How to log in to a Neo4j store.
#[derive(Debug, Clone)]
pub struct Neo4jSettings {
    /// `FACEGRAPH_NEO4J_USER`, or `user` in `[neo4j]`; default `neo4j`.
    pub user: String,
    /// `FACEGRAPH_NEO4J_PASSWORD`, or `password` in `[neo4j]`.
    pub password: Option<SecretString>,
    /// `FACEGRAPH_NEO4J_DATABASE`, or `database` in `[neo4j]`; default `neo4j`.
    pub database: String,
}

/// An API key as the config file holds it: the holder's name, the roles, and the SHA-256 of the key
/// in hex (`facegraph api-key hash`), never the key itself.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeySetting {
    /// Who holds the key; recorded as the analyst on decisions.
    pub name: String,
    /// `ingest`, `analyst`, `admin`.
    pub roles: Vec<String>,
    /// The key's SHA-256, 64 hex digits.
    pub sha256: String,
}

/// The effective settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where the embedded store and other state live.
    pub data_dir: PathBuf,
    /// The rule set file, when not the built-in default.
    pub rules_file: Option<PathBuf>,
    /// The collection that saved responses and new images go to by default.
    pub collection_id: CollectionId,
    /// Where `serve` listens (`listen`; `FACEGRAPH_LISTEN`); `None` for the default.
    pub listen: Option<String>,
    /// API keys from the config file (digests only).
    pub api_keys: Vec<ApiKeySetting>,
    /// API keys from `FACEGRAPH_API_KEYS` (`NAME:ROLES:KEY,...`), still secret.
    pub api_keys_env: Option<SecretString>,
    /// Where the local engine's models (and the sample photos) are cached; never inside the repository.
    pub models_dir: PathBuf,
    /// Where the match graph lives (`--store`, `FACEGRAPH_STORE`, `store`).
    pub store: StoreLocation,
    /// The Neo4j login, used when `store` is a Bolt URL.
    pub neo4j: Neo4jSettings,
    /// The face engine (`--engine`, `FACEGRAPH_ENGINE`, `engine`); `local` by default.
    pub engine: EngineKind,
    /// How the Rekognition engine reaches the service (`[rekognition]`,
    /// `FACEGRAPH_REKOGNITION_…`); the AWS SDK's own settings (AWS_REGION, profiles,
    /// AWS_ENDPOINT_URL_REKOGNITION) apply where these say nothing.
    pub rekognition: RekognitionConfig,
    /// The Rekognition-compatible endpoint of `serve`.
    pub rekognition_endpoint: RekognitionEndpointSettings,
    /// The stream's Kafka connection and topics.
    pub kafka: KafkaSettings,
    /// The local detector in front of Rekognition (`prefilter` in `[rekognition]`).
    pub prefilter: PrefilterSettings,
    /// What Rekognition calls cost, for the estimates of run summaries and metrics
    /// (`[rekognition.price_per_1000]`, `currency` in `[rekognition]`).
    pub prices: Prices,
    /// Routed collections (`[[routes]]`).
    pub routes: Routes,
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

/// What the command line says, each `None` when not given.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--config`.
    pub config: Option<PathBuf>,
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--rules`.
    pub rules: Option<PathBuf>,
    /// `--models-dir`.
    pub models_dir: Option<PathBuf>,
    /// `--store`.
    pub store: Option<String>,
    /// `--engine`.
    pub engine: Option<String>,
}

/// The default collection id, the proof of concept's.
pub const DEFAULT_COLLECTION: &str = "ephemeral-faces-collection";

impl Settings {
    /// Loads settings: defaults, then the config file, then the environment, then the command line.
    pub fn load(overrides: &Overrides) -> Result<Self, SettingsError> {
        Self::load_with_env(overrides, |k| std::env::var(k).ok())
    }

    /// Like [`Settings::load`], reading the environment through `env` (for tests).
    pub fn load_with_env(
        overrides: &Overrides,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, SettingsError> {
        let file = match &overrides.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
                    path: path.clone(),
                    source,
                })?;
                toml::from_str::<SettingsFile>(&text).map_err(|source| SettingsError::Parse {
                    path: path.clone(),
                    source,
                })?
            }
            None => SettingsFile::default(),
        };
        let data_dir = overrides
            .data_dir
            .clone()
            .or_else(|| env("FACEGRAPH_DATA_DIR").map(PathBuf::from))
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("./facegraph-data"));
        let rules_file = overrides
            .rules
            .clone()
            .or_else(|| env("FACEGRAPH_RULES").map(PathBuf::from))
            .or(file.rules);
        let collection = env("FACEGRAPH_COLLECTION_ID")
            .or(file.collection_id)
            .unwrap_or_else(|| DEFAULT_COLLECTION.to_owned());
        let collection_id =
            CollectionId::parse(&collection).map_err(|e| SettingsError::Invalid {
                name: "collection_id",
                message: e.to_string(),
            })?;
        let listen = env("FACEGRAPH_LISTEN").or(file.listen);
        let api_keys_env = env("FACEGRAPH_API_KEYS").map(SecretString::from);
        let models_dir = overrides
            .models_dir
            .clone()
            .or_else(|| env("FACEGRAPH_MODELS_DIR").map(PathBuf::from))
            .or(file.models_dir)
            .unwrap_or_else(|| default_models_dir(&env));
        let store = overrides
            .store
            .clone()
            .or_else(|| env("FACEGRAPH_STORE"))
            .or(file.store)
            .map(|s| StoreLocation::parse(&s))
            .transpose()
            .map_err(|message| SettingsError::Invalid {
                name: "store",
                message,
            })?
            .unwrap_or(StoreLocation::Sqlite);
        let neo4j = Neo4jSettings {
            user: env("FACEGRAPH_NEO4J_USER")
                .or(file.neo4j.user)
                .unwrap_or_else(|| "neo4j".to_owned()),
            password: env("FACEGRAPH_NEO4J_PASSWORD")
                .or(file.neo4j.password)
                .map(SecretString::from),
            database: env("FACEGRAPH_NEO4J_DATABASE")
                .or(file.neo4j.database)
                .unwrap_or_else(|| "neo4j".to_owned()),
        };
        let engine = overrides
            .engine
            .clone()
            .or_else(|| env("FACEGRAPH_ENGINE"))
            .or(file.engine)
            .map(|s| EngineKind::parse(&s))
            .transpose()
            .map_err(|message| SettingsError::Invalid {
                name: "engine",
                message,
            })?
            .unwrap_or_default();
        let rekognition = rekognition_config(&file.rekognition, &env)?;
        let rekognition_endpoint = endpoint_settings(file.rekognition_endpoint, &env)?;
        let (prefilter, prices) = rekognition_extras(&file.rekognition, &env)?;
        let kafka = kafka_settings(file.kafka, &env)?;
        let routes = routes(file.routes)?;
        Ok(Self {
            data_dir,
            rules_file,
            collection_id,
            listen,
            api_keys: file.api_keys,
            api_keys_env,
            models_dir,
            store,
            neo4j,
            engine,
            rekognition,
            rekognition_endpoint,
            kafka,
            prefilter,
            prices,
            routes,
        })
    }

    /// The effective rule set: the rule set file's, or the built-in default.
    pub fn rule_set(&self) -> Result<RuleSet, SettingsError> {
        match &self.rules_file {
            Some(path) => load_rule_set(path),
            None => Ok(RuleSet::default()),
        }
    }

    /// The embedded store's file.
    pub fn sqlite_path(&self) -> PathBuf {
        self.data_dir.join("facegraph.sqlite3")
    }
}

/// The Rekognition engine's settings: `FACEGRAPH_REKOGNITION_…` over `[rekognition]` over the
/// defaults.
fn rekognition_config(
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
fn rekognition_extras(
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

/// The `[[routes]]` of the settings file, checked.
fn routes(file: Vec<RouteFile>) -> Result<Routes, SettingsError> {
    let invalid = |message: String| SettingsError::Invalid {
        name: "routes",
        message,
    };
    let mut routes = Vec::with_capacity(file.len());
    for r in file {
        let collection_id =
            CollectionId::parse(&r.collection_id).map_err(|e| invalid(e.to_string()))?;
        let key = match r.key.as_str() {
            "tenant" => {
                let sep = r.separator.as_deref().unwrap_or(":");
                let mut chars = sep.chars();
                match (chars.next(), chars.next()) {
                    (Some(separator), None) => RouteKey::Tenant { separator },
                    _ => {
                        return Err(invalid(format!(
                            "route {collection_id}: separator must be one character, not {sep:?}"
                        )))
                    }
                }
            }
            "month" if r.separator.is_none() => RouteKey::Month,
            "month" => {
                return Err(invalid(format!(
                    "route {collection_id}: a separator is for routes by tenant"
                )))
            }
            other => {
                return Err(invalid(format!(
                    "route {collection_id}: key {other:?} is not tenant or month"
                )))
            }
        };
        let search = match r.search.as_deref() {
            None | Some("route") => SearchScope::Route,
            Some("all") => SearchScope::All,
            Some(other) => {
                return Err(invalid(format!(
                    "route {collection_id}: search {other:?} is not route or all"
                )))
            }
        };
        routes.push(Route {
            collection_id,
            key,
            max_faces: r.max_faces,
            search,
        });
    }
    Routes::new(routes).map_err(invalid)
}

/// The Rekognition-compatible endpoint's settings: the file's access keys, then those of
/// `FACEGRAPH_AWS_ACCESS_KEYS`.
fn endpoint_settings(
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

/// The `[kafka]` settings with their defaults, the environment beating the file.
fn kafka_settings(
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

/// The default model cache: `$XDG_CACHE_HOME/facegraph`, else `$HOME/.cache/facegraph`, else a
/// directory under the system's temporary directory.
pub fn default_models_dir(env: impl Fn(&str) -> Option<String>) -> PathBuf {
    if let Some(xdg) = env("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(xdg).join("facegraph");
    }
    match env("HOME").filter(|v| !v.is_empty()) {
        Some(home) => PathBuf::from(home).join(".cache").join("facegraph"),
        None => std::env::temp_dir().join("facegraph-cache"),
    }
}

/// Reads and checks a rule set file.
pub fn load_rule_set(path: &Path) -> Result<RuleSet, SettingsError> {
    let text = std::fs::read_to_string(path).map_err(|source| SettingsError::ReadRules {
        path: path.to_owned(),
        source,
    })?;
    RuleSet::from_toml(&text).map_err(|source| SettingsError::Rules {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_beats_environment_beats_file() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("facegraph.toml");
        std::fs::write(
            &cfg,
            "data_dir = \"/from/file\"\ncollection_id = \"file-coll\"\n",
        )
        .unwrap();
        let mut o = Overrides {
            config: Some(cfg.clone()),
            ..Overrides::default()
        };
        let s = Settings::load_with_env(&o, |_| None).unwrap();
        assert_eq!(s.data_dir, PathBuf::from("/from/file"));
        assert_eq!(s.collection_id.as_str(), "file-coll");
        let env = |k: &str| (k == "FACEGRAPH_DATA_DIR").then(|| "/from/env".to_owned());
        assert_eq!(
            Settings::load_with_env(&o, env).unwrap().data_dir,
            PathBuf::from("/from/env")
        );
        o.data_dir = Some(PathBuf::from("/from/cli"));
        assert_eq!(
            Settings::load_with_env(&o, env).unwrap().data_dir,
            PathBuf::from("/from/cli")
        );
    }

    #[test]
    fn api_keys_and_listen_come_from_file_and_environment() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("facegraph.toml");
        std::fs::write(
            &cfg,
            "listen = \"127.0.0.1:9000\"\n[[api_keys]]\nname = \"alice\"\nroles = [\"analyst\"]\nsha256 = \"00\"\n",
        )
        .unwrap();
        let o = Overrides {
            config: Some(cfg),
            ..Overrides::default()
        };
        let s = Settings::load_with_env(&o, |_| None).unwrap();
        assert_eq!(s.listen.as_deref(), Some("127.0.0.1:9000"));
        assert_eq!(s.api_keys.len(), 1);
        assert_eq!(s.api_keys[0].name, "alice");
        assert!(s.api_keys_env.is_none());
        let env = |k: &str| match k {
            "FACEGRAPH_LISTEN" => Some("0.0.0.0:1".to_owned()),
            "FACEGRAPH_API_KEYS" => Some("bob:admin:secret-secret-secret".to_owned()),
            _ => None,
        };
        let s = Settings::load_with_env(&o, env).unwrap();
        assert_eq!(s.listen.as_deref(), Some("0.0.0.0:1"));
        assert!(s.api_keys_env.is_some());
        assert!(
            !format!("{s:?}").contains("secret-secret"),
            "secrets stay out of Debug"
        );
    }

    #[test]
    fn models_dir_defaults_to_the_user_cache() {
        let o = Overrides::default();
        let env = |k: &str| (k == "HOME").then(|| "/home/u".to_owned());
        assert_eq!(
            Settings::load_with_env(&o, env).unwrap().models_dir,
            PathBuf::from("/home/u/.cache/facegraph")
        );
        let env = |k: &str| match k {
            "HOME" => Some("/home/u".to_owned()),
            "XDG_CACHE_HOME" => Some("/xdg".to_owned()),
            "FACEGRAPH_MODELS_DIR" => Some("/models".to_owned()),
            _ => None,
        };
        assert_eq!(
            Settings::load_with_env(&o, env).unwrap().models_dir,
            PathBuf::from("/models")
        );
    }

    #[test]
    fn store_and_neo4j_login_come_from_file_environment_and_command_line() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("facegraph.toml");
        std::fs::write(
            &cfg,
            "store = \"bolt://db:7687\"\n[neo4j]\nuser = \"u\"\npassword = \"p-file\"\n",
        )
        .unwrap();
        let mut o = Overrides {
            config: Some(cfg),
            ..Overrides::default()
        };
        let s = Settings::load_with_env(&o, |_| None).unwrap();
        assert_eq!(s.store, StoreLocation::Bolt("bolt://db:7687".to_owned()));
        assert_eq!(
            (s.neo4j.user.as_str(), s.neo4j.database.as_str()),
            ("u", "neo4j")
        );
        let env = |k: &str| match k {
            "FACEGRAPH_STORE" => Some("neo4j://other:7687".to_owned()),
            "FACEGRAPH_NEO4J_DATABASE" => Some("faces".to_owned()),
            "FACEGRAPH_NEO4J_PASSWORD" => Some("p-env-secret".to_owned()),
            _ => None,
        };
        let s = Settings::load_with_env(&o, env).unwrap();
        assert_eq!(
            s.store,
            StoreLocation::Bolt("neo4j://other:7687".to_owned())
        );
        assert_eq!(s.neo4j.database, "faces");
        assert!(!format!("{s:?}").contains("p-env-secret"));
        o.store = Some("sqlite".to_owned());
        assert_eq!(
            Settings::load_with_env(&o, env).unwrap().store,
            StoreLocation::Sqlite
        );
        o.store = Some("postgres://x".to_owned());
        let err = Settings::load_with_env(&o, env).unwrap_err().to_string();
        assert!(
            err.contains("bolt://HOST:PORT") && err.contains("postgres://x"),
            "{err}"
        );
        assert_eq!(
            Settings::load_with_env(&Overrides::default(), |_| None)
                .unwrap()
                .store,
            StoreLocation::Sqlite
        );
    }

    #[test]
    fn the_engine_and_rekognition_come_from_file_environment_and_command_line() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("facegraph.toml");
        std::fs::write(
            &cfg,
            "engine = \"rekognition\"\n\
             [rekognition]\nregion = \"eu-west-1\"\nendpoint = \"http://127.0.0.1:9000\"\n\
             requests_per_second = 5\nmax_attempts = 7\n\
             [rekognition_endpoint]\nlisten = \"127.0.0.1:9001\"\n\
             [[rekognition_endpoint.access_keys]]\naccess_key_id = \"AKIDFILE\"\n\
             secret_access_key = \"file-secret-value\"\n",
        )
        .unwrap();
        let mut o = Overrides {
            config: Some(cfg),
            ..Overrides::default()
        };
        let s = Settings::load_with_env(&o, |_| None).unwrap();
        assert_eq!(s.engine, EngineKind::Rekognition);
        assert_eq!(s.rekognition.region.as_deref(), Some("eu-west-1"));
        assert_eq!(
            s.rekognition.endpoint.as_deref(),
            Some("http://127.0.0.1:9000")
        );
        assert_eq!(s.rekognition.requests_per_second, Some(5.0));
        assert_eq!(s.rekognition.max_attempts, 7);
        assert_eq!(
            s.rekognition_endpoint.listen.as_deref(),
            Some("127.0.0.1:9001")
        );
        assert_eq!(s.rekognition_endpoint.access_keys.len(), 1);

        let env = |k: &str| match k {
            "FACEGRAPH_ENGINE" => Some("local".to_owned()),
            "FACEGRAPH_REKOGNITION_REGION" => Some("us-west-2".to_owned()),
            "FACEGRAPH_REKOGNITION_REQUESTS_PER_SECOND" => Some("2.5".to_owned()),
            "FACEGRAPH_AWS_ACCESS_KEYS" => {
                Some("AKIDONE:env-secret-one, AKIDTWO:env-secret-two".to_owned())
            }
            _ => None,
        };
        let s = Settings::load_with_env(&o, env).unwrap();
        assert_eq!(s.engine, EngineKind::Local);
        assert_eq!(s.rekognition.region.as_deref(), Some("us-west-2"));
        assert_eq!(s.rekognition.requests_per_second, Some(2.5));
        let ids: Vec<&str> = s
            .rekognition_endpoint
            .access_keys
            .iter()
            .map(|k| k.access_key_id.as_str())
            .collect();
        assert_eq!(ids, ["AKIDFILE", "AKIDONE", "AKIDTWO"]);
        let debug = format!("{s:?}");
        assert!(
            !debug.contains("env-secret") && !debug.contains("file-secret"),
            "secrets stay out of Debug"
        );
        o.engine = Some("rekognition".to_owned());
        assert_eq!(
            Settings::load_with_env(&o, env).unwrap().engine,
            EngineKind::Rekognition
        );
        assert_eq!(
            Settings::load_with_env(&Overrides::default(), |_| None)
                .unwrap()
                .engine,
            EngineKind::Local,
            "local is the default"
        );
    }

    #[test]
    fn bad_engine_settings_are_refused_by_name() {
        let o = Overrides {
            engine: Some("opencv".to_owned()),
            ..Overrides::default()
        };
        let err = Settings::load_with_env(&o, |_| None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("engine") && err.contains("rekognition"),
            "{err}"
        );
        let cases = [
            (
                "FACEGRAPH_REKOGNITION_REQUESTS_PER_SECOND",
                "0",
                "requests_per_second",
            ),
            (
                "FACEGRAPH_REKOGNITION_REQUESTS_PER_SECOND",
                "fast",
                "requests_per_second",
            ),
            (
                "FACEGRAPH_AWS_ACCESS_KEYS",
                "AKIDNOSECRET",
                "FACEGRAPH_AWS_ACCESS_KEYS",
            ),
            ("FACEGRAPH_AWS_ACCESS_KEYS", "AKID:", "access_keys"),
            (
                "FACEGRAPH_AWS_ACCESS_KEYS",
                "AK/ID:topsecret",
                "access_keys",
            ),
        ];
        for (name, value, setting) in cases {
            let env = |k: &str| (k == name).then(|| value.to_owned());
            let err = Settings::load_with_env(&Overrides::default(), env)
                .unwrap_err()
                .to_string();
            assert!(err.contains(setting), "{name}={value}: {err}");
            assert!(!err.contains("topsecret"), "no secret in messages: {err}");
        }
    }

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

    #[test]
    fn the_prefilter_prices_and_routes_come_from_the_file_and_are_checked() {
        let defaults = Settings::load_with_env(&Overrides::default(), |_| None).unwrap();
        assert!(defaults.prefilter.enabled, "on by default");
        assert!((defaults.prefilter.min_score - 0.5).abs() < 1e-6);
        assert_eq!(defaults.prices, Prices::default());
        assert!(defaults.routes.is_empty());

        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("facegraph.toml");
        std::fs::write(
            &cfg,
            "[rekognition]\nprefilter = false\nprefilter_min_confidence = 70\ncurrency = \"EUR\"\n\
             [rekognition.price_per_1000]\nIndexFaces = 0.8\nListFaces = 0.01\n\
             [[routes]]\ncollection_id = \"customers\"\nkey = \"tenant\"\nseparator = \"/\"\n\
             max_faces = 1000\n\
             [[routes]]\ncollection_id = \"archive\"\nkey = \"month\"\nmax_faces = 5\nsearch = \"all\"\n",
        )
        .unwrap();
        let o = Overrides {
            config: Some(cfg.clone()),
            ..Overrides::default()
        };
        let s = Settings::load_with_env(&o, |_| None).unwrap();
        assert!(!s.prefilter.enabled);
        assert!((s.prefilter.min_score - 0.7).abs() < 1e-6);
        assert_eq!(s.prices.currency, "EUR");
        assert_eq!(s.prices.per_1000(Operation::IndexFaces), 0.8);
        assert_eq!(s.prices.per_1000(Operation::ListFaces), 0.01);
        assert_eq!(
            s.prices.per_1000(Operation::SearchFaces),
            1.0,
            "the others keep their defaults"
        );
        let customers = s
            .routes
            .route(&CollectionId::parse("customers").unwrap())
            .unwrap();
        assert_eq!(customers.key, RouteKey::Tenant { separator: '/' });
        assert_eq!(
            (customers.max_faces, customers.search),
            (1000, SearchScope::Route)
        );
        let archive = s
            .routes
            .route(&CollectionId::parse("archive").unwrap())
            .unwrap();
        assert_eq!(
            (&archive.key, archive.search),
            (&RouteKey::Month, SearchScope::All)
        );
        let env = |k: &str| (k == "FACEGRAPH_REKOGNITION_PREFILTER").then(|| "on".to_owned());
        assert!(Settings::load_with_env(&o, env).unwrap().prefilter.enabled);

        let cases = [
            ("[rekognition.price_per_1000]\nDetectFaces = 1.0\n", "IndexFaces"),
            ("[rekognition.price_per_1000]\nIndexFaces = -1.0\n", "at least 0"),
            ("[rekognition]\nprefilter_min_confidence = 150\n", "0 to 100"),
            ("[[routes]]\ncollection_id = \"c\"\nkey = \"week\"\nmax_faces = 1\n", "tenant or month"),
            ("[[routes]]\ncollection_id = \"c\"\nkey = \"tenant\"\nmax_faces = 0\n", "at least 1"),
            ("[[routes]]\ncollection_id = \"c\"\nkey = \"month\"\nseparator = \":\"\nmax_faces = 1\n", "by tenant"),
        ];
        for (text, want) in cases {
            std::fs::write(&cfg, text).unwrap();
            let err = Settings::load_with_env(&o, |_| None)
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
        let bad = |k: &str| (k == "FACEGRAPH_REKOGNITION_PREFILTER").then(|| "maybe".to_owned());
        std::fs::write(&cfg, "").unwrap();
        assert!(Settings::load_with_env(&o, bad)
            .unwrap_err()
            .to_string()
            .contains("rekognition.prefilter"));
    }

    #[test]
    fn unknown_settings_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("facegraph.toml");
        std::fs::write(&cfg, "data_dri = \"x\"\n").unwrap();
        let o = Overrides {
            config: Some(cfg),
            ..Overrides::default()
        };
        let err = Settings::load_with_env(&o, |_| None).unwrap_err();
        assert!(format!("{err:#}").contains("is invalid"));
        let chain = std::error::Error::source(&err)
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(chain.contains("data_dri"), "{chain}");
    }
}
