//! `App::build(&Settings, Access)`: the one place that wires facegraph together. It opens the graph
//! store the settings name, the rules, the data directory's writer lock when the command writes to
//! the data directory, the face engine on first use, and the API keys for `serve`. Every command,
//! `serve` and the tests' `spawn_app` start here, so the tests exercise the production wiring.

mod lock;

use std::path::Path;
use std::sync::{Arc, Mutex};

pub use lock::{current_holder, DataDirLock, Holder, LockError, LockWait, LOCK_FILE};

use crate::adjudication::Adjudicator;
use crate::api::{ApiConfig, ApiKey, ApiKeys, AppState, KeyError};
use crate::engine::calls::{CallCounts, CallLedger};
use crate::engine::local::{ImageLimits, LocalAnalyzer, LocalDetector, LocalEngine};
use crate::engine::prefilter::PrefilterEngine;
use crate::engine::rekognition::RekognitionEngine;
use crate::engine::routing::RoutedEngine;
use crate::engine::{EngineError, FaceEngine};
use crate::service::Facegraph;
use crate::settings::{EngineKind, Settings, SettingsError, StoreLocation};
use crate::store::{neo4j, sqlite, GraphStore, StoreError};

/// Why the application could not be built.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The settings or the rule set are invalid.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// A reading command found no graph to read.
    #[error(
        "there is no graph in {data_dir} yet: ingest something first (facegraph ingest DIR, or \
         ingest-rekognition PATH...), or point --data-dir at an existing one"
    )]
    NoGraph {
        /// The data directory.
        data_dir: String,
    },
    /// The graph store could not be opened.
    #[error("cannot open the graph at {location}")]
    Store {
        /// Where the store is (a file, or a server and database).
        location: String,
        /// Why.
        #[source]
        source: StoreError,
    },
    /// The data directory could not be created.
    #[error("cannot create the data directory {path}")]
    DataDir {
        /// The directory.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The pre-filter in front of Rekognition could not load the local detector.
    #[error(
        "cannot open the pre-filter (the local face detector in front of Rekognition): fetch the \
         models (facegraph models fetch), or turn it off with prefilter = false in [rekognition] \
         or FACEGRAPH_REKOGNITION_PREFILTER=false"
    )]
    Prefilter(#[source] EngineError),
    /// The face engine could not be opened.
    #[error("cannot open the {engine} face engine")]
    Engine {
        /// Which engine.
        engine: &'static str,
        /// Why.
        #[source]
        source: EngineError,
    },
    /// Another process writes to the data directory.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The API keys are invalid.
    #[error("the API keys are invalid")]
    Keys(#[source] KeyError),
    /// `serve` has no key and was not told to run open.
    #[error(
        "no API keys are configured: add [[api_keys]] entries to the config file (facegraph api-key \
         generate) or set FACEGRAPH_API_KEYS=NAME:ROLES:KEY,...; or pass --insecure-no-auth for a \
         local experiment"
    )]
    NoKeys,
    /// `serve --insecure-no-auth` with keys configured.
    #[error("--insecure-no-auth was given but API keys are configured: drop one or the other")]
    InsecureWithKeys,
    /// The metrics registry refused a metric.
    #[error("cannot register the metrics")]
    Metrics(#[source] prometheus::Error),
}

impl StartupError {
    /// Whether the face models are missing (the engine can be fetched, the rest still works).
    pub fn models_missing(&self) -> Option<&EngineError> {
        match self {
            Self::Engine {
                source: e @ EngineError::ModelsMissing { .. },
                ..
            } => Some(e),
            _ => None,
        }
    }
}

/// What a command does with the data: it decides whether the graph must exist, whether the data
/// directory's writer lock is taken, and whether the engine may be opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    writes: bool,
    creates: bool,
    engine: bool,
    wait: LockWait,
}

impl Access {
    /// Reads an existing graph; never locks, works alongside a writer.
    pub const fn read() -> Self {
        Self {
            writes: false,
            creates: false,
            engine: false,
            wait: LockWait::Wait,
        }
    }

    /// Writes the graph, creating it when missing (ingest, serve).
    pub const fn write(wait: LockWait) -> Self {
        Self {
            writes: true,
            creates: true,
            engine: false,
            wait,
        }
    }

    /// Writes an existing graph (decide, adjudicate): a missing one is an error, not a new file.
    pub const fn update(wait: LockWait) -> Self {
        Self {
            creates: false,
            ..Self::write(wait)
        }
    }

    /// Also uses the face engine.
    pub const fn with_engine(self) -> Self {
        Self {
            engine: true,
            ..self
        }
    }

    /// Whether this access needs the data directory's writer lock under these settings: writes to
    /// the embedded store, or any use of the local engine, whose collections live in the data
    /// directory (opening them replays and repairs their logs). A Bolt store without the local
    /// engine needs none; the Rekognition engine keeps nothing in the data directory.
    pub fn needs_lock(&self, settings: &Settings) -> bool {
        (self.writes && settings.store == StoreLocation::Sqlite)
            || (self.engine && settings.engine == EngineKind::Local)
    }
}

/// The application: settings, the graph (store and rules), the engine when a command uses it, and
/// the data directory's lock while a writer runs.
#[derive(Debug)]
pub struct App {
    settings: Settings,
    graph: Facegraph,
    access: Access,
    engine: Mutex<Option<Arc<dyn FaceEngine>>>,
    /// The Rekognition calls made and avoided by this process.
    calls: Arc<CallLedger>,
    lock: Option<DataDirLock>,
}

impl App {
    /// Builds the application for a command with this access. A writer takes the data directory's
    /// lock first (telling `on_wait` whom it waits for), then opens the store; a reader of the
    /// embedded store needs an existing graph.
    pub fn build(
        settings: &Settings,
        access: Access,
        on_wait: &dyn Fn(&Holder),
    ) -> Result<Self, StartupError> {
        let rules = settings.rule_set()?;
        let lock = if access.needs_lock(settings) {
            Some(DataDirLock::acquire(
                &settings.data_dir,
                access.wait,
                on_wait,
            )?)
        } else {
            None
        };
        if !access.creates
            && settings.store == StoreLocation::Sqlite
            && !settings.sqlite_path().exists()
        {
            return Err(StartupError::NoGraph {
                data_dir: settings.data_dir.display().to_string(),
            });
        }
        let store = open_store(settings)?;
        Ok(Self {
            settings: settings.clone(),
            graph: Facegraph::new(store, Adjudicator::new(rules)),
            access,
            engine: Mutex::new(None),
            calls: Arc::new(CallLedger::new()),
            lock,
        })
    }

    /// The settings it was built from.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The graph: store and rules.
    pub fn graph(&self) -> &Facegraph {
        &self.graph
    }

    /// Whether this process holds the data directory's writer lock.
    pub fn holds_lock(&self) -> bool {
        self.lock.is_some()
    }

    /// The face engine of the settings, opened on first use: the local engine over the data
    /// directory's collections with the models of the cache, or the Rekognition engine. Commands
    /// built without engine access never load models or replay a collection log.
    pub fn engine(&self) -> Result<Arc<dyn FaceEngine>, StartupError> {
        assert!(
            self.access.engine,
            "App::engine called by a command built without engine access"
        );
        let mut slot = self
            .engine
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(engine) = slot.as_ref() {
            return Ok(Arc::clone(engine));
        }
        let engine = open_engine(&self.settings, &self.calls)?;
        *slot = Some(Arc::clone(&engine));
        Ok(engine)
    }

    /// The Rekognition calls this process made and avoided so far, when the engine is
    /// Rekognition's (the local engine makes none).
    pub fn calls(&self) -> Option<CallCounts> {
        (self.settings.engine == EngineKind::Rekognition).then(|| self.calls.snapshot())
    }

    /// The REST API's state over this application: the graph, the engine (or none, when `engine`
    /// is `None`: uploads then answer 503), the keys of the settings (or none with `insecure`), and
    /// the HTTP limits.
    pub fn api_state(
        &self,
        engine: Option<Arc<dyn FaceEngine>>,
        insecure: bool,
        config: ApiConfig,
    ) -> Result<AppState, StartupError> {
        let keys = load_keys(&self.settings, insecure)?;
        let state = AppState::new(
            Arc::clone(self.graph.store()),
            self.graph.adjudicator().clone(),
            engine,
            keys,
            config,
            self.settings.routes.clone(),
        )
        .map_err(StartupError::Metrics)?;
        if self.settings.engine == EngineKind::Rekognition {
            state
                .metrics()
                .register_calls(Arc::clone(&self.calls), self.settings.prices.clone())
                .map_err(StartupError::Metrics)?;
        }
        Ok(state)
    }
}

/// The face engine alone, for a command that needs no graph (`match-faces`): the engine of the
/// settings, with the data directory's lock held for as long as it lives when the engine is the
/// local one (whose collections live there).
#[derive(Debug)]
pub struct EngineSession {
    engine: Arc<dyn FaceEngine>,
    calls: Arc<CallLedger>,
    engine_kind: EngineKind,
    _lock: Option<DataDirLock>,
}

impl EngineSession {
    /// Takes the data directory's lock when the local engine needs it (telling `on_wait` whom it
    /// waits for) and opens the engine.
    pub fn open(
        settings: &Settings,
        wait: LockWait,
        on_wait: &dyn Fn(&Holder),
    ) -> Result<Self, StartupError> {
        let lock = if Access::read().with_engine().needs_lock(settings) {
            Some(DataDirLock::acquire(&settings.data_dir, wait, on_wait)?)
        } else {
            None
        };
        let calls = Arc::new(CallLedger::new());
        Ok(Self {
            engine: open_engine(settings, &calls)?,
            calls,
            engine_kind: settings.engine,
            _lock: lock,
        })
    }

    /// The engine.
    pub fn engine(&self) -> &dyn FaceEngine {
        self.engine.as_ref()
    }

    /// The Rekognition calls made and avoided so far, when the engine is Rekognition's.
    pub fn calls(&self) -> Option<CallCounts> {
        (self.engine_kind == EngineKind::Rekognition).then(|| self.calls.snapshot())
    }
}

/// Opens the store the settings name: the embedded store in the data directory (created when
/// missing), or the Neo4j server, whose schema is applied before anything is written.
pub fn open_store(settings: &Settings) -> Result<Arc<dyn GraphStore>, StartupError> {
    match &settings.store {
        StoreLocation::Sqlite => {
            let path = settings.sqlite_path();
            let store = sqlite::SqliteStore::open(&path).map_err(|source| StartupError::Store {
                location: path.display().to_string(),
                source,
            })?;
            Ok(Arc::new(store))
        }
        StoreLocation::Bolt(url) => {
            let login = neo4j::Login::from_settings(url, &settings.neo4j);
            let store =
                neo4j::Neo4jStore::connect(&login).map_err(|source| StartupError::Store {
                    location: format!(
                        "{url} (Neo4j database {}, user {})",
                        settings.neo4j.database, settings.neo4j.user
                    ),
                    source,
                })?;
            Ok(Arc::new(store))
        }
    }
}

/// The engine the settings name: the local engine over the data directory, or the Rekognition
/// engine with the `[rekognition]` settings, counting its calls in `calls`; behind the collection
/// router when routes are configured, and for Rekognition behind the local pre-filter unless it
/// is turned off. The pre-filter is outermost, so that an image without a face costs no routing
/// either.
pub fn open_engine(
    settings: &Settings,
    calls: &Arc<CallLedger>,
) -> Result<Arc<dyn FaceEngine>, StartupError> {
    let base: Arc<dyn FaceEngine> = match settings.engine {
        EngineKind::Local => Arc::new(open_local_engine(&settings.data_dir, &settings.models_dir)?),
        EngineKind::Rekognition => Arc::new(
            RekognitionEngine::open(&settings.rekognition)
                .map_err(|source| StartupError::Engine {
                    engine: "rekognition",
                    source,
                })?
                .with_ledger(Arc::clone(calls)),
        ),
    };
    let routed: Arc<dyn FaceEngine> = if settings.routes.is_empty() {
        base
    } else {
        Arc::new(RoutedEngine::new(base, settings.routes.clone()))
    };
    if settings.engine == EngineKind::Rekognition && settings.prefilter.enabled {
        let detector = LocalDetector::load(
            &settings.models_dir,
            ImageLimits::default(),
            settings.prefilter.min_score,
        )
        .map_err(StartupError::Prefilter)?;
        return Ok(Arc::new(PrefilterEngine::new(routed, Arc::new(detector))));
    }
    Ok(routed)
}

/// The local engine over `data_dir`'s collections with the models of `models_dir`; says to fetch
/// the models when they are missing.
pub fn open_local_engine(data_dir: &Path, models_dir: &Path) -> Result<LocalEngine, StartupError> {
    let local = |source| StartupError::Engine {
        engine: "local",
        source,
    };
    let analyzer = LocalAnalyzer::load(models_dir, ImageLimits::default()).map_err(local)?;
    std::fs::create_dir_all(data_dir).map_err(|source| StartupError::DataDir {
        path: data_dir.display().to_string(),
        source,
    })?;
    LocalEngine::open(data_dir, Arc::new(analyzer)).map_err(local)
}

/// The API keys of the settings: the config file's digests and `FACEGRAPH_API_KEYS`. `insecure`
/// serves without keys and refuses to when keys are configured.
fn load_keys(settings: &Settings, insecure: bool) -> Result<ApiKeys, StartupError> {
    let mut keys = Vec::new();
    for s in &settings.api_keys {
        keys.push(ApiKey::from_setting(s).map_err(StartupError::Keys)?);
    }
    if let Some(env) = &settings.api_keys_env {
        keys.extend(crate::api::parse_env_keys(env).map_err(StartupError::Keys)?);
    }
    match (insecure, keys.is_empty()) {
        (true, true) => Ok(ApiKeys::insecure()),
        (true, false) => Err(StartupError::InsecureWithKeys),
        (false, true) => Err(StartupError::NoKeys),
        (false, false) => ApiKeys::new(keys).map_err(StartupError::Keys),
    }
}
