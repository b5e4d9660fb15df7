//! The `serve` and `api-key` commands: build the server from the settings (refusing to start without
//! keys unless told to run open), serve until SIGTERM or SIGINT, and make or hash API keys.

use std::io::{BufRead, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use secrecy::{ExposeSecret, SecretString};

use super::auth::{hash_key, parse_env_keys, ApiKey, ApiKeys, Role};
use super::{run, ApiConfig, AppState};
use crate::adjudication::Adjudicator;
use crate::engine::{EngineError, FaceEngine};
use crate::settings::Settings;

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
    /// Serve without the local face engine (no models are loaded; image uploads answer 503).
    #[arg(long)]
    pub no_engine: bool,
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

/// Runs `serve`: blocks until a shutdown signal, then lets in-flight requests finish within the
/// shutdown deadline.
pub fn serve_command(settings: &Settings, args: &ServeArgs) -> Result<i32> {
    let keys = load_keys(settings, args.insecure_no_auth)?;
    let listen = args
        .listen
        .clone()
        .or_else(|| settings.listen.clone())
        .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
    let addr: SocketAddr = listen
        .parse()
        .with_context(|| format!("--listen {listen:?} is not an address like 127.0.0.1:8080"))?;
    let store = crate::store::open(settings)?;
    let adjudicator = Adjudicator::new(settings.rule_set()?);
    let engine = if args.no_engine {
        tracing::warn!("--no-engine: POST /v1/collections/{{id}}/images answers 503");
        None
    } else {
        local_engine(settings)?
    };
    let state = AppState::new(store, adjudicator, engine, keys, ApiConfig::default())
        .context("cannot register the metrics")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let served = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let local = listener.local_addr().context("no local address")?;
        tracing::info!(%local, "facegraph is serving");
        eprintln!("facegraph: serving on http://{local}");
        run(listener, state, shutdown_signal())
            .await
            .context("the server failed")?;
        tracing::info!("facegraph stopped");
        eprintln!("facegraph: stopped");
        Ok::<_, anyhow::Error>(())
    });
    // Work left on the blocking pool belongs to connections the shutdown deadline closed: its
    // answers have nowhere to go and the stores are crash-safe, so exit without waiting for it.
    runtime.shutdown_background();
    served?;
    Ok(0)
}

/// The local engine over the data directory. Without models the server still serves adjudications
/// (image uploads answer 503) and says loudly how to get the models.
fn local_engine(settings: &Settings) -> Result<Option<Arc<dyn FaceEngine>>> {
    match crate::photos::open_local_engine(settings) {
        Ok(engine) => Ok(Some(Arc::new(engine))),
        Err(e) => match e.downcast_ref::<EngineError>() {
            Some(missing @ EngineError::ModelsMissing { .. }) => {
                tracing::warn!(error = %missing, "no face engine: image uploads answer 503");
                eprintln!("facegraph: WARNING: {missing}; until then image uploads answer 503");
                Ok(None)
            }
            _ => Err(e.context("cannot open the local face engine")),
        },
    }
}

fn load_keys(settings: &Settings, insecure: bool) -> Result<ApiKeys> {
    let mut keys = Vec::new();
    for s in &settings.api_keys {
        keys.push(ApiKey::from_setting(s)?);
    }
    if let Some(env) = &settings.api_keys_env {
        keys.extend(parse_env_keys(env)?);
    }
    if insecure {
        if !keys.is_empty() {
            bail!(
                "--insecure-no-auth was given but API keys are configured: drop one or the other"
            );
        }
        tracing::warn!("serving WITHOUT authentication (--insecure-no-auth): anyone who can reach the port can read and decide");
        eprintln!("facegraph: WARNING: serving without authentication (--insecure-no-auth)");
        return Ok(ApiKeys::insecure());
    }
    if keys.is_empty() {
        bail!(
            "no API keys are configured: add [[api_keys]] entries to the config file (facegraph api-key generate) \
             or set FACEGRAPH_API_KEYS=NAME:ROLES:KEY,...; or pass --insecure-no-auth for a local experiment"
        );
    }
    Ok(ApiKeys::new(keys)?)
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
pub fn api_key_command(cmd: &ApiKeyCommand, out: &mut impl Write) -> Result<()> {
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
    Ok(())
}
