//! One typed configuration: a TOML file (`--config`), overridden by `FACEGRAPH_…` environment
//! variables, overridden by command-line options. Unknown settings are refused by name; each table
//! of the file has its submodule, and the top-level settings and their precedence live here.

mod kafka;
mod neo4j;
mod rekognition;
mod routes;

use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde::Deserialize;

use crate::adjudication::{RuleSet, RuleSetError};
use crate::engine::calls::Prices;
use crate::engine::rekognition::RekognitionConfig;
use crate::engine::routing::Routes;
use crate::model::CollectionId;
use kafka::{kafka_settings, KafkaFile};
use neo4j::{neo4j_settings, Neo4jFile};
use rekognition::{
    endpoint_settings, rekognition_config, rekognition_extras, RekognitionEndpointFile,
    RekognitionFile,
};
use routes::{routes, RouteFile};

pub use kafka::KafkaSettings;
pub use neo4j::Neo4jSettings;
pub use rekognition::{AccessKeySetting, PrefilterSettings, RekognitionEndpointSettings};

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
        let neo4j = neo4j_settings(file.neo4j, &env);
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
    use crate::engine::calls::Operation;
    use crate::engine::routing::{RouteKey, SearchScope};

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
