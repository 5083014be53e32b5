//! Building and running the server: keys, database, providers, listener.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use mfad_core::sms::SmsSender;
use mfad_core::store::Store;
use mfad_core::{Clock, Policy, Service};
use mfad_crypto::Keyring;
use mfad_providers::{ConsoleSms, TwilioSms, WebhookSms};
use mfad_store::{Db, StoreOptions};
use tokio::net::TcpListener;

use crate::config::{Config, MasterKeySource, SmsConfig, redact_url};
use crate::state::AppState;

/// Loads the master key, generating one into the data dir on first start.
pub fn load_keyring(config: &Config) -> anyhow::Result<Keyring> {
    let text = match &config.master_key {
        MasterKeySource::Inline(k) => mfad_crypto::Zeroizing::new(k.clone()),
        MasterKeySource::File(path) => mfad_crypto::Zeroizing::new(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading MFAD_MASTER_KEY_FILE {}", path.display()))?,
        ),
        MasterKeySource::DataDir => {
            let path = config.data_dir.join("master.key");
            if !path.exists() {
                write_new_key(&path)?;
                tracing::warn!(
                    path = %path.display(),
                    "generated a new master key; back it up: without it, stored TOTP secrets cannot be decrypted"
                );
            }
            mfad_crypto::Zeroizing::new(
                std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?,
            )
        }
    };
    Keyring::parse(text.trim()).context("MFAD_MASTER_KEY")
}

fn write_new_key(path: &Path) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let key = mfad_crypto::generate_master_key_text()?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(key.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    Ok(())
}

/// Creates the data directory (mode 0700) if it is missing.
pub fn ensure_data_dir(config: &Config) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if !config.data_dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&config.data_dir)
            .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
    }
    Ok(())
}

/// Opens the configured database.
pub async fn open_database(config: &Config) -> anyhow::Result<Db> {
    ensure_data_dir(config)?;
    let opts = StoreOptions {
        max_connections: config.db_max_connections,
        sqlite_synchronous_full: config.sqlite_synchronous_full,
        ..StoreOptions::default()
    };
    Db::connect(&config.database_url, &opts)
        .await
        .with_context(|| format!("opening database {}", redact_url(&config.database_url)))
}

fn sms_sender(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Arc<dyn SmsSender>> {
    Ok(match &config.sms {
        SmsConfig::Console => {
            tracing::warn!("SMS provider is 'console': codes are logged, not sent (development only)");
            Arc::new(ConsoleSms)
        }
        SmsConfig::Twilio { base_url, account_sid, auth_token, from } => {
            Arc::new(TwilioSms::new(base_url, account_sid, auth_token, from).map_err(anyhow::Error::msg)?)
        }
        SmsConfig::Webhook { url, secret } => {
            Arc::new(WebhookSms::new(url, secret.as_bytes(), clock).map_err(anyhow::Error::msg)?)
        }
    })
}

/// Builds the service over an opened database.
pub fn build_service(config: &Config, db: Db, clock: Arc<dyn Clock>) -> anyhow::Result<Service<Db>> {
    let keyring = Arc::new(load_keyring(config)?);
    let sms = sms_sender(config, clock.clone())?;
    let policy = Policy {
        challenge_ttl: time::Duration::try_from(config.challenge_ttl).unwrap_or(time::Duration::minutes(10)),
        max_attempts: config.challenge_max_attempts,
        totp_skew: config.totp_skew,
    };
    Ok(Service::new(db, keyring, clock, sms, policy))
}

/// A bound, ready-to-run server.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    state: AppState,
}

impl Application {
    /// Opens everything and binds the listener (port 0 picks a free port).
    pub async fn build(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Application> {
        let db = open_database(config).await?;
        if config.auto_migrate {
            db.migrate().await.context("applying migrations")?;
        }
        let service = Arc::new(build_service(config, db, clock)?);
        let ready = Arc::new(AtomicBool::new(service.store().ping().await.is_ok()));
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        Ok(Application { listener, state: AppState { service, ready } })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The shared state (for tests that inspect the service).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then drains in-flight requests and closes the
    /// database.
    pub async fn run_until(self, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let probe = tokio::spawn(probe_database(self.state.clone()));
        let app = crate::routes::app(self.state.clone());
        let result = axum::serve(self.listener, app).with_graceful_shutdown(shutdown).await;
        probe.abort();
        self.state.service.store().close().await;
        result.context("serving HTTP")
    }
}

/// Keeps `ready` in step with the database, once a second.
async fn probe_database(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let ok = tokio::time::timeout(Duration::from_secs(2), state.service.store().ping())
            .await
            .is_ok_and(|r| r.is_ok());
        if state.ready.swap(ok, Ordering::Relaxed) != ok {
            if ok {
                tracing::info!("database reachable again: ready");
            } else {
                tracing::warn!("database unreachable: not ready");
            }
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
