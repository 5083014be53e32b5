//! Building and running the server: keys, database, providers, listener.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use mfad_core::email::EmailSender;
use mfad_core::sms::SmsSender;
use mfad_core::store::Store;
use mfad_core::verify::ThrottlePolicy;
use mfad_core::{Clock, Policy, Service};
use mfad_crypto::Keyring;
use mfad_providers::email::SmtpOptions;
use mfad_providers::{ConsoleEmail, ConsoleSms, SmtpEmail, TwilioSms, WebhookSms};
use mfad_store::{Database, Db, StoreOptions};
use secrecy::ExposeSecret;
use tokio::net::TcpListener;

use crate::config::{Config, EmailConfig, MasterKeySource, SmsConfig, ThrottleConfig, redact_url};
use crate::jwt::JwtKeys;
use crate::state::AppState;

/// Loads the master keys, generating one into the data dir on first start.
pub fn load_keyring(config: &Config) -> anyhow::Result<Keyring> {
    let mut var = "MFAD_MASTER_KEY_FILE";
    let text = match &config.master_key {
        MasterKeySource::Inline(name, k) => {
            var = name;
            mfad_crypto::Zeroizing::new(k.expose_secret().to_owned())
        }
        MasterKeySource::File(name, path) => {
            var = name;
            mfad_crypto::Zeroizing::new(
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading {name} {}", path.display()))?,
            )
        }
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
                std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?,
            )
        }
    };
    let ring = Keyring::parse(text.trim()).context(var)?;
    for (name, id) in ring.keys() {
        tracing::info!(key = name, key_id = %id, active = ring.is_active(Some(id)), "master key loaded");
    }
    Ok(ring)
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
    let password = match &config.database_password_file {
        None => None,
        Some(path) => Some(read_password_file(path)?),
    };
    let opts = StoreOptions {
        max_connections: config.db_max_connections,
        acquire_timeout: config.db_connect_timeout,
        sqlite_synchronous_full: config.sqlite_synchronous_full,
        statement_timeout: config.db_statement_timeout,
        password,
        migration_locking: config.migration_locking,
    };
    Db::connect(&config.database_url, &opts)
        .await
        .with_context(|| format!("opening database {}", redact_url(&config.database_url)))
}

/// The database password from `MFAD_DATABASE_PASSWORD_FILE`: the file's text without the
/// line break editors and `echo` leave at its end (other whitespace is kept: it may be part
/// of the password).
fn read_password_file(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading MFAD_DATABASE_PASSWORD_FILE {}", path.display()))?;
    let password = text.strip_suffix('\n').unwrap_or(&text);
    let password = password.strip_suffix('\r').unwrap_or(password);
    anyhow::ensure!(
        !password.is_empty(),
        "MFAD_DATABASE_PASSWORD_FILE {} is empty",
        path.display()
    );
    Ok(password.to_owned())
}

fn sms_sender(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Arc<dyn SmsSender>> {
    Ok(match &config.sms {
        SmsConfig::Console => {
            tracing::warn!(
                "SMS provider is 'console': codes are logged, not sent (development only)"
            );
            Arc::new(ConsoleSms)
        }
        SmsConfig::Twilio {
            base_url,
            account_sid,
            auth_token,
            from,
        } => Arc::new(
            TwilioSms::new(base_url, account_sid, auth_token.expose_secret(), from)
                .map_err(anyhow::Error::msg)?,
        ),
        SmsConfig::Webhook { url, secret } => Arc::new(
            WebhookSms::new(url, secret.expose_secret().as_bytes(), clock)
                .map_err(anyhow::Error::msg)?,
        ),
    })
}

/// The email sender chosen by `MFAD_EMAIL_PROVIDER`: the console (development only) or an
/// SMTP relay, with its password file and extra CA certificates read now, so a bad setting
/// stops the start. The SMTP connection itself is opened on the first message.
pub fn email_sender(config: &Config) -> anyhow::Result<Arc<dyn EmailSender>> {
    Ok(match &config.email {
        EmailConfig::Console => {
            tracing::warn!(
                "email provider is 'console': codes are logged, not sent (development only)"
            );
            Arc::new(ConsoleEmail)
        }
        EmailConfig::Smtp {
            url,
            from,
            password_file,
            ca_file,
        } => {
            let password = match password_file {
                None => None,
                Some(path) => Some(read_secret_file("MFAD_SMTP_PASSWORD_FILE", path)?.into()),
            };
            let extra_ca_pem = match ca_file {
                None => None,
                Some(path) => Some(
                    std::fs::read(path)
                        .with_context(|| format!("reading MFAD_SMTP_CA_FILE {}", path.display()))?,
                ),
            };
            let options = SmtpOptions {
                password,
                extra_ca_pem,
                ..SmtpOptions::default()
            };
            let smtp = SmtpEmail::new(url.expose_secret(), from, options)
                .map_err(|e| anyhow::anyhow!("email provider smtp: {e}"))?;
            tracing::info!(sender = ?smtp, "email codes go through SMTP");
            Arc::new(smtp)
        }
    })
}

/// A secret from a file named by `var`: the file's text without one final line break.
fn read_secret_file(var: &str, path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading {var} {}", path.display()))?;
    let secret = text.strip_suffix('\n').unwrap_or(&text);
    let secret = secret.strip_suffix('\r').unwrap_or(secret);
    anyhow::ensure!(!secret.is_empty(), "{var} {} is empty", path.display());
    Ok(secret.to_owned())
}

/// Builds the service over an opened database.
pub fn build_service(
    config: &Config,
    db: Db,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Service<Arc<dyn Database>>> {
    let keyring = Arc::new(load_keyring(config)?);
    let sms = sms_sender(config, clock.clone())?;
    let policy = Policy {
        challenge_ttl: time::Duration::try_from(config.challenge_ttl)
            .unwrap_or(time::Duration::minutes(10)),
        max_attempts: config.challenge_max_attempts,
        totp_skew: config.totp_skew,
        two_factor_login_ttl: time::Duration::try_from(config.two_factor_login_ttl)
            .unwrap_or(time::Duration::minutes(5)),
        two_factor_trust_ttl: time::Duration::try_from(config.two_factor_trust_ttl)
            .unwrap_or(time::Duration::days(30)),
        api_key_cache_ttl: time::Duration::try_from(config.api_key_cache_ttl)
            .unwrap_or(time::Duration::ZERO),
        throttle: throttle_policy(&config.throttle),
    };
    let service = Service::new(db.shared(), keyring, clock, sms, policy)
        .with_email(email_sender(config)?)
        .with_send_limits(config.send_limits.clone())
        .with_event_encoder(Arc::new(crate::events::WorkosPayload))
        .with_webhook_encoder(Arc::new(crate::webhooks::VendorEncoder))
        .with_idempotency(mfad_core::idempotency::IdempotencyPolicy {
            ttl: time::Duration::try_from(config.idempotency_ttl)
                .unwrap_or(time::Duration::hours(24)),
            ..Default::default()
        });
    Ok(if config.events.enabled {
        service
    } else {
        service.without_events()
    })
}

/// Refuses to go on when a master key that still seals values is not configured, naming
/// each such key (by the id its values carry) and how many values it seals.
pub async fn require_master_keys(service: &Service<Arc<dyn Database>>) -> anyhow::Result<()> {
    let missing = service
        .missing_keys()
        .await
        .context("counting sealed values per master key")?;
    if missing.is_empty() {
        return Ok(());
    }
    let list = missing
        .iter()
        .map(|u| format!("{} (seals {} values)", u.id, u.count))
        .collect::<Vec<_>>()
        .join(", ");
    let loaded = service
        .master_keys()
        .iter()
        .map(|(name, id)| format!("{name}={id}"))
        .collect::<Vec<_>>()
        .join(", ");
    anyhow::bail!(
        "master key {list} is still needed but not configured (loaded: {loaded}); add it \
         back to MFAD_MASTER_KEYS, and retire a key only once `mfad keys status` shows it \
         sealing 0 values"
    )
}

/// The throttle the configuration asks for.
fn throttle_policy(t: &ThrottleConfig) -> ThrottlePolicy {
    let secs = |d: Duration| time::Duration::try_from(d).unwrap_or(time::Duration::ZERO);
    ThrottlePolicy {
        enabled: t.enabled,
        threshold: t.threshold,
        delay: secs(t.delay),
        max_delay: secs(t.max_delay),
        cap: t.cap,
    }
}

/// A bound, ready-to-run server.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    admin: Option<TcpListener>,
    state: AppState,
    connections: crate::serve::ConnectionLimits,
    event_retention: Duration,
    shutdown_grace: Duration,
    webhooks: crate::config::WebhookConfig,
    dispatcher: Arc<crate::webhooks::dispatch::ServerDispatcher>,
}

impl Application {
    /// Opens everything and binds the listener (port 0 picks a free port).
    pub async fn build(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Application> {
        if !config.events.enabled {
            tracing::warn!(
                "MFAD_EVENTS=off: NO AUDIT EVENTS ARE RECORDED. This is for measuring what \
                 events cost only; never run production like this."
            );
        }
        if !config.throttle.enabled {
            tracing::warn!(
                "MFAD_THROTTLE=off: WRONG CODES ARE NEVER THROTTLED OR CAPPED. This is for load \
                 tests of the wrong-code path only; never run production like this."
            );
        }
        let db = open_database(config).await?;
        if config.auto_migrate {
            db.migrate().await.context("applying migrations")?;
        }
        let metrics = Arc::new(crate::metrics::Metrics::new());
        let service = Arc::new(build_service(config, db, clock)?.with_metrics(metrics.clone()));
        require_master_keys(&service).await?;
        let jwt = Arc::new(load_jwt_keys(config, &service).await?);
        let dispatcher = Arc::new(webhook_dispatcher(&service, &config.webhooks)?);
        let ready = Arc::new(AtomicBool::new(service.store().ping().await.is_ok()));
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let admin = match config.admin_listen {
            None => None,
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding MFAD_ADMIN_LISTEN {addr}"))?,
            ),
        };
        Ok(Application {
            listener,
            admin,
            shutdown_grace: config.shutdown_grace,
            state: AppState {
                service,
                ready,
                jwt,
                limits: config.requests,
                rates: Arc::new(crate::rate_limit::RateLimits::new(&config.rate_limits)),
                metrics,
            },
            connections: config.connections,
            event_retention: config.events.retention,
            webhooks: config.webhooks,
            dispatcher,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The bound address of the admin listener, if one is configured.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The shared state (for tests that inspect the service).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves; then stops accepting, lets requests already
    /// accepted finish (at most `MFAD_SHUTDOWN_GRACE_SECS`), and closes the database.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let probe = tokio::spawn(probe_database(self.state.clone()));
        let jwt_reload = tokio::spawn(reload_jwt_keys(self.state.clone()));
        let rates = self.state.rates.clone();
        let metrics = self.state.metrics.clone();
        let upkeep = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(10));
            loop {
                tick.tick().await;
                rates.prune();
                metrics.upkeep();
            }
        });
        let event_purge = tokio::spawn(purge_events(self.state.clone(), self.event_retention));
        let webhooks = tokio::spawn(crate::webhooks::dispatch::run(
            self.dispatcher,
            self.webhooks.poll,
            self.webhooks.concurrency,
        ));
        let service = self.state.service.clone();
        let purge = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                if let Err(e) = service.purge_expired().await {
                    tracing::warn!(error = %e, "purging expired rows failed; retrying later");
                }
            }
        });
        // One signal, two listeners.
        let (stop, stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop.send(true);
        });
        let signal = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        let grace = self.shutdown_grace;
        let admin = self.admin.map(|listener| {
            let app = crate::routes::admin(self.state.clone());
            tokio::spawn(crate::serve::serve(
                listener,
                app,
                self.connections,
                signal(stopped.clone()),
                grace,
            ))
        });
        let app = crate::routes::app_with_metrics(self.state.clone(), admin.is_none());
        let result =
            crate::serve::serve(self.listener, app, self.connections, signal(stopped), grace).await;
        if let Some(admin) = admin {
            match admin.await {
                Ok(Err(e)) => tracing::warn!(error = %e, "admin listener failed"),
                Err(e) => tracing::warn!(error = %e, "admin listener task failed"),
                Ok(Ok(())) => {}
            }
        }
        probe.abort();
        jwt_reload.abort();
        upkeep.abort();
        purge.abort();
        event_purge.abort();
        webhooks.abort();
        self.state.service.store().close().await;
        tracing::info!("stopped");
        result.context("serving HTTP")
    }
}

/// The webhook delivery loop over the service, posting through the address-checked
/// HTTP client (docs/WEBHOOKS.md).
fn webhook_dispatcher(
    service: &Service<Arc<dyn Database>>,
    config: &crate::config::WebhookConfig,
) -> anyhow::Result<crate::webhooks::dispatch::ServerDispatcher> {
    let d = |d: Duration| time::Duration::try_from(d).unwrap_or(time::Duration::ZERO);
    let transport = crate::webhooks::HttpTransport::new(config.timeout)
        .context("building the webhook HTTP client")?;
    let policy = mfad_core::webhooks::dispatch::DispatchPolicy {
        max_attempts: config.max_attempts,
        retry_base: d(config.retry_base),
        retry_max: d(config.retry_max),
        lease: d(config.lease()),
        ..Default::default()
    };
    Ok(service.webhook_dispatcher(Arc::new(transport), policy)?)
}

/// Events purged per statement: small batches keep each delete short, so requests
/// writing events never wait long behind one.
const EVENT_PURGE_BATCH: u32 = 500;

/// Deletes events older than the retention, once a minute, in batches until none is left;
/// first the webhook deliveries settled as long ago (an event's remaining deliveries go
/// with it).
async fn purge_events(state: AppState, retention: Duration) {
    let retention = time::Duration::try_from(retention).unwrap_or(time::Duration::days(90));
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        loop {
            match state
                .service
                .purge_webhook_deliveries(retention, EVENT_PURGE_BATCH)
                .await
            {
                Ok(n) if n == u64::from(EVENT_PURGE_BATCH) => tokio::task::yield_now().await,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "purging old webhook deliveries failed; retrying next minute");
                    break;
                }
            }
        }
        loop {
            match state
                .service
                .purge_events(retention, EVENT_PURGE_BATCH)
                .await
            {
                Ok(n) if n == u64::from(EVENT_PURGE_BATCH) => tokio::task::yield_now().await,
                Ok(n) => {
                    if n > 0 {
                        tracing::info!(purged = n, "old events purged");
                    }
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "purging old events failed; retrying next minute");
                    break;
                }
            }
        }
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

/// The JWT keys: the configured ones as keys of `MFAD_JWT_DEFAULT_TENANT` (created if
/// new, as `mfad api-key create` does), and the stored ones.
async fn load_jwt_keys(
    config: &Config,
    service: &Service<Arc<dyn Database>>,
) -> anyhow::Result<JwtKeys> {
    let default_tenant = match &config.jwt.default_tenant {
        None => None,
        Some(name) => Some(
            service
                .tenant_by_name(name)
                .await
                .map_err(|e| anyhow::anyhow!("MFAD_JWT_DEFAULT_TENANT {name:?}: {e}"))?
                .id,
        ),
    };
    let keys = JwtKeys::load(&config.jwt, default_tenant.as_ref())?;
    keys.reload(service.open_jwt_keys().await.context("loading JWT keys")?);
    Ok(keys)
}

/// Keeps the stored JWT keys in step with the database, once a second, so a key added or
/// removed with `mfad jwt-key` takes effect on running servers within 2 s. On a read
/// failure the loaded keys stay (a removed key then lingers until the database answers).
async fn reload_jwt_keys(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        match state.service.open_jwt_keys().await {
            Ok(keys) => {
                if state.jwt.reload(keys) {
                    tracing::info!("JWT keys reloaded");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot reload JWT keys; keeping the loaded ones"),
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

#[cfg(test)]
mod tests {
    use super::read_password_file;

    #[test]
    fn password_file_loses_only_its_final_line_break() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            ("pw1", "s3cret\n", "s3cret"),
            ("pw2", "s3cret\r\n", "s3cret"),
            ("pw3", " two words ", " two words "),
        ];
        for (name, text, want) in cases {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            assert_eq!(read_password_file(&path).unwrap(), want);
        }
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        assert!(read_password_file(&empty).is_err());
        let e = read_password_file(&dir.path().join("missing"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("MFAD_DATABASE_PASSWORD_FILE"), "{e}");
    }
}

#[cfg(test)]
mod email_tests {
    use super::*;

    fn smtp_config(vars: &[(&str, &str)]) -> Config {
        let vars: std::collections::HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| vars.get(k).cloned()).unwrap()
    }

    #[test]
    fn console_by_default() {
        let sender = email_sender(&smtp_config(&[])).unwrap();
        assert!(format!("{sender:?}").contains("ConsoleEmail"));
    }

    #[test]
    fn smtp_reads_its_files_and_hides_the_password() {
        let dir = tempfile::tempdir().unwrap();
        let password = dir.path().join("smtp-password");
        std::fs::write(&password, "file-secret\n").unwrap();
        let password = password.to_string_lossy().into_owned();
        let base = [
            ("MFAD_EMAIL_PROVIDER", "smtp"),
            ("MFAD_SMTP_URL", "smtps://mailer@relay.example"),
            ("MFAD_SMTP_PASSWORD_FILE", password.as_str()),
        ];
        let sender = email_sender(&smtp_config(&base)).unwrap();
        let text = format!("{sender:?}");
        assert!(
            text.contains("smtps://relay.example:465") && !text.contains("file-secret"),
            "{text}"
        );

        let missing = dir.path().join("missing").to_string_lossy().into_owned();
        let mut vars = base.to_vec();
        vars[2] = ("MFAD_SMTP_PASSWORD_FILE", missing.as_str());
        let e = email_sender(&smtp_config(&vars)).unwrap_err().to_string();
        assert!(e.contains("MFAD_SMTP_PASSWORD_FILE"), "{e}");

        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "not a certificate").unwrap();
        let ca = ca.to_string_lossy().into_owned();
        let mut vars = base.to_vec();
        vars.push(("MFAD_SMTP_CA_FILE", ca.as_str()));
        let e = format!("{:#}", email_sender(&smtp_config(&vars)).unwrap_err());
        assert!(e.contains("CA file"), "{e}");
        vars[3] = ("MFAD_SMTP_CA_FILE", missing.as_str());
        let e = format!("{:#}", email_sender(&smtp_config(&vars)).unwrap_err());
        assert!(e.contains("MFAD_SMTP_CA_FILE"), "{e}");
    }
}
