//! The `serve` and `api-key` commands: build the server with [`App::build`] (refusing to start
//! without keys unless told to run open), serve until SIGTERM or SIGINT, and make or hash API keys.

use std::io::{BufRead, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use secrecy::{ExposeSecret, SecretString};

use super::{output, Shell};
use crate::api::rekognition::{self, AccessKeys, EndpointConfig};
use crate::api::{hash_key, ApiConfig, ApiKey, Role};
use crate::engine::FaceEngine;
use crate::model::Similarity;
use crate::service::{SearchOptions, DEFAULT_MAX_MATCHES, DEFAULT_SEARCH_THRESHOLD};
use crate::startup::{Access, App};

/// The default listen address: loopback only, so that nothing is exposed by accident.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Arguments of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (default 127.0.0.1:8080; `listen` in the config file; FACEGRAPH_LISTEN).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Serve without authentication: every caller gets every role. For local experiments only.
    #[arg(long)]
    pub insecure_no_auth: bool,
    /// Serve without the face engine (no models are loaded; image uploads answer 503).
    #[arg(long)]
    pub no_engine: bool,
    /// Also run the stream (every stage) in this process, which owns the data directory; its
    /// metrics join the API's /metrics.
    #[arg(long)]
    pub stream: bool,
    /// The stream's mode: sync (one message in flight per partition) or async.
    #[arg(long, value_enum, default_value_t = super::stream::ModeArg::Sync, requires = "stream")]
    pub stream_mode: super::stream::ModeArg,
    /// In async mode, at most this many messages in flight per stage.
    #[arg(long, default_value_t = 8, value_name = "N", requires = "stream")]
    pub stream_concurrency: usize,
    /// Also answer Rekognition's own protocol (AWS JSON 1.1, SigV4) on this address, with the
    /// face engine behind it, for any AWS SDK (`listen` in [rekognition_endpoint];
    /// FACEGRAPH_REKOGNITION_LISTEN). Its access keys come from FACEGRAPH_AWS_ACCESS_KEYS
    /// (ACCESS_KEY_ID:SECRET,...) or [[rekognition_endpoint.access_keys]].
    #[arg(long, value_name = "ADDR")]
    pub rekognition_listen: Option<String>,
}

/// `api-key` subcommands.
#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Make a new random key; prints it once with the config entry that holds only its hash.
    Generate {
        /// Who holds the key (recorded as the analyst on decisions).
        #[arg(long)]
        name: String,
        /// Roles joined by '+': ingest, analyst, admin.
        #[arg(long)]
        roles: String,
    },
    /// Print the SHA-256 of a key read from standard input, for the config file's `sha256`.
    Hash,
}

/// Runs `serve`: blocks until a shutdown signal, then lets in-flight requests finish. It writes
/// to the data directory (its graph and, with the engine, its collections), so it holds the data
/// directory's lock for its lifetime; with a Bolt store and no engine it takes none.
pub(super) fn run(shell: &Shell, args: &ServeArgs) -> Result<i32> {
    let settings = &shell.settings;
    let listen = args
        .listen
        .clone()
        .or_else(|| settings.listen.clone())
        .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
    let addr: SocketAddr = listen
        .parse()
        .with_context(|| format!("--listen {listen:?} is not an address like 127.0.0.1:8080"))?;
    let rekognition_addr = rekognition_address(settings, args)?;
    let mut access = Access::write(shell.wait);
    if !args.no_engine {
        access = access.with_engine();
    }
    let app = App::build(settings, access, &super::waiting)?;
    let engine = if args.no_engine {
        tracing::warn!("--no-engine: POST /v1/collections/{{id}}/images answers 503");
        None
    } else {
        local_engine(&app)?
    };
    if let Some(engine) = &engine {
        resume(&app, engine.as_ref())?;
    }
    let stream = if args.stream {
        let Some(engine) = engine.clone() else {
            bail!("--stream needs the face engine: drop --no-engine, or fetch the models");
        };
        let pipeline = super::stream::PipelineArgs {
            collection_id: None,
            match_confidence_threshold: Similarity::new(DEFAULT_SEARCH_THRESHOLD)?,
            faces: super::stream::FacesArg::Models,
        };
        let config = super::stream::config(
            shell,
            crate::stream::Stage::ALL.to_vec(),
            args.stream_mode,
            args.stream_concurrency,
            &pipeline,
        )?;
        if config.kafka.brokers.is_none() {
            return Err(crate::stream::StreamError::NoBrokers.into());
        }
        Some((engine, config))
    } else {
        None
    };
    let state = app.api_state(engine, args.insecure_no_auth, ApiConfig::default())?;
    // The endpoint uses the engine as the REST API does, timed in the same metrics.
    let rekognition = match rekognition_addr {
        Some(addr) => {
            let engine = state.engine().cloned().with_context(|| {
                "--rekognition-listen needs the face engine: drop --no-engine, and fetch the \
                 models (facegraph models fetch) when the engine is the local one"
            })?;
            Some((addr, engine))
        }
        None => None,
    };
    if args.insecure_no_auth {
        tracing::warn!("serving WITHOUT authentication (--insecure-no-auth): anyone who can reach the port can read and decide");
        output::warning("serving without authentication (--insecure-no-auth)");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let graph = app.graph().clone();
    let keys = AccessKeys::new(&settings.rekognition_endpoint.access_keys);
    let served = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let local = listener.local_addr().context("no local address")?;
        // One signal stops both servers and the stream.
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stop_tx = std::sync::Arc::new(stop_tx);
        let on_signal = std::sync::Arc::clone(&stop_tx);
        tokio::spawn(async move {
            shutdown_signal().await;
            let _ = on_signal.send(true);
        });
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        let endpoint = match rekognition {
            Some((rek_addr, engine)) => {
                let rek_listener = tokio::net::TcpListener::bind(rek_addr)
                    .await
                    .with_context(|| format!("cannot listen on {rek_addr}"))?;
                let rek_local = rek_listener.local_addr().context("no local address")?;
                tracing::info!(%rek_local, "the Rekognition-compatible endpoint is serving");
                output::notice(&format!(
                    "Rekognition-compatible endpoint on http://{rek_local}"
                ));
                Some(tokio::spawn(rekognition::run(
                    rek_listener,
                    engine,
                    EndpointConfig::new(keys),
                    stopped(stop_rx.clone()),
                )))
            }
            None => None,
        };
        tracing::info!(%local, "facegraph is serving");
        output::notice(&format!("serving on http://{local}"));
        let streaming = match stream {
            Some((engine, config)) => {
                let metrics = crate::stream::StreamMetrics::register(state.metrics().registry())?;
                output::notice("streaming: every stage, in this process");
                let run = crate::stream::run(
                    graph,
                    Some(engine),
                    config,
                    metrics,
                    stopped(stop_rx.clone()),
                );
                let stop = std::sync::Arc::clone(&stop_tx);
                Some(tokio::spawn(async move {
                    let result = run.await;
                    if result.is_err() {
                        // A stream that cannot run (no broker) stops the server too: the
                        // operator asked for both.
                        let _ = stop.send(true);
                    }
                    result
                }))
            }
            None => None,
        };
        crate::api::run(listener, state, stopped(stop_rx))
            .await
            .context("the server failed")?;
        if let Some(endpoint) = endpoint {
            endpoint
                .await
                .context("the Rekognition-compatible endpoint stopped abnormally")?
                .context("the Rekognition-compatible endpoint failed")?;
        }
        if let Some(streaming) = streaming {
            streaming
                .await
                .context("the stream's task failed")?
                .context("the stream failed")?;
        }
        tracing::info!("facegraph stopped");
        output::notice("stopped");
        Ok::<_, anyhow::Error>(())
    });
    // Work left on the blocking pool belongs to connections the shutdown deadline closed: its
    // answers have nowhere to go and the stores are crash-safe, so exit without waiting for it.
    runtime.shutdown_background();
    served?;
    drop(app);
    Ok(0)
}

/// Where the Rekognition-compatible endpoint listens, if anywhere; it needs access keys, since
/// every request it takes is signed.
fn rekognition_address(
    settings: &crate::settings::Settings,
    args: &ServeArgs,
) -> Result<Option<SocketAddr>> {
    let Some(listen) = args
        .rekognition_listen
        .clone()
        .or_else(|| settings.rekognition_endpoint.listen.clone())
    else {
        return Ok(None);
    };
    let addr: SocketAddr = listen.parse().with_context(|| {
        format!("--rekognition-listen {listen:?} is not an address like 127.0.0.1:9000")
    })?;
    if settings.rekognition_endpoint.access_keys.is_empty() {
        bail!(
            "the Rekognition-compatible endpoint has no access keys: set \
             FACEGRAPH_AWS_ACCESS_KEYS=ACCESS_KEY_ID:SECRET,... or add \
             [[rekognition_endpoint.access_keys]] entries to the config file"
        );
    }
    Ok(Some(addr))
}

/// Completes the uploads a crash left pending before serving new ones.
fn resume(app: &App, engine: &dyn FaceEngine) -> Result<()> {
    let report = app.graph().resume_uploads(
        engine,
        SearchOptions {
            threshold: Similarity::new(DEFAULT_SEARCH_THRESHOLD)?,
            max_matches: DEFAULT_MAX_MATCHES,
        },
    )?;
    if !report.completed.is_empty() {
        app.graph().adjudicate_changes()?;
        output::notice(&format!(
            "completed {} uploads that a crash left unfinished",
            report.completed.len()
        ));
    }
    if !report.unresolved.is_empty() {
        output::warning(&format!(
            "{} uploads were recorded but never indexed (a crash came first); they stay pending \
             until their images are sent again",
            report.unresolved.len()
        ));
    }
    Ok(())
}

/// The engine of the settings. Without the local engine's models the server still serves
/// adjudications (image uploads answer 503) and says loudly how to get the models.
fn local_engine(app: &App) -> Result<Option<Arc<dyn FaceEngine>>> {
    match app.engine() {
        Ok(engine) => Ok(Some(engine)),
        Err(e) => match e.models_missing() {
            Some(missing) => {
                tracing::warn!(error = %missing, "no face engine: image uploads answer 503");
                output::warning(&format!("{missing}; until then image uploads answer 503"));
                Ok(None)
            }
            None => Err(e.into()),
        },
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}

/// Runs an `api-key` subcommand.
pub(super) fn api_key(cmd: &ApiKeyCommand, out: &mut impl Write) -> Result<i32> {
    match cmd {
        ApiKeyCommand::Hash => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("cannot read the key from standard input")?;
            let key = SecretString::from(line.trim().to_owned());
            if key.expose_secret().is_empty() {
                bail!("no key on standard input");
            }
            writeln!(out, "{}", hash_key(&key))?;
        }
        ApiKeyCommand::Generate { name, roles } => {
            let mut bytes = [0u8; 32];
            std::fs::File::open("/dev/urandom")
                .and_then(|mut f| f.read_exact(&mut bytes))
                .context("cannot read random bytes from /dev/urandom")?;
            let key = SecretString::from(format!("fgk_{}", hex::encode(bytes)));
            let parsed: Vec<Role> = roles
                .split('+')
                .map(|r| {
                    Role::parse(r.trim()).with_context(|| {
                        format!("unknown role {r:?}: roles are ingest, analyst, admin")
                    })
                })
                .collect::<Result<_>>()?;
            // Checks the name and builds the digest the same way the server will.
            ApiKey::from_secret(name, &parsed, &key)?;
            let roles_toml: Vec<String> =
                parsed.iter().map(|r| format!("{:?}", r.as_str())).collect();
            writeln!(
                out,
                "# The key, shown once; give it to {name} and keep only its hash:"
            )?;
            writeln!(out, "# {}", key.expose_secret())?;
            writeln!(out, "# In the config file:")?;
            writeln!(out, "[[api_keys]]")?;
            writeln!(out, "name = {name:?}")?;
            writeln!(out, "roles = [{}]", roles_toml.join(", "))?;
            writeln!(out, "sha256 = {:?}", hash_key(&key))?;
        }
    }
    Ok(0)
}
