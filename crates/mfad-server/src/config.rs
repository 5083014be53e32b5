//! Configuration from `MFAD_*` environment variables. Parsing is a pure function of a
//! variable lookup, so tests pass a map instead of touching the process environment.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mfad_core::send_limits::SendLimits;
use secrecy::{ExposeSecret, SecretString};

/// Which SMS adapter delivers codes. Secrets are [`SecretString`]s, whose `Debug` prints
/// nothing of them.
#[derive(Debug, Clone)]
pub enum SmsConfig {
    /// Log messages (development only).
    Console,
    /// Twilio's Messages API.
    Twilio {
        /// API host, normally `https://api.twilio.com`.
        base_url: String,
        /// `AC…` account id.
        account_sid: String,
        /// Auth token.
        auth_token: SecretString,
        /// Sender number or messaging service.
        from: String,
    },
    /// A signed JSON webhook.
    Webhook {
        /// Where to POST.
        url: String,
        /// HMAC key.
        secret: SecretString,
    },
}

/// Which email adapter delivers codes.
#[derive(Clone)]
pub enum EmailConfig {
    /// Log messages (development only).
    Console,
    /// An SMTP relay.
    Smtp {
        /// `MFAD_SMTP_URL`: `smtp://` (plain), `smtp+starttls://` (or `?tls=starttls`) or
        /// `smtps://` `host[:port]`, optionally with percent-encoded `user[:password]@`
        /// (see [`mfad_providers::email::SmtpEndpoint`]). May hold a password.
        url: SecretString,
        /// `MFAD_SMTP_FROM` (default `mfad@localhost`): the sender address.
        from: String,
        /// `MFAD_SMTP_PASSWORD_FILE`: a file holding the password, instead of the URL.
        password_file: Option<PathBuf>,
        /// `MFAD_SMTP_CA_FILE`: extra trusted CA certificates (PEM) for a private CA.
        ca_file: Option<PathBuf>,
    },
}

impl std::fmt::Debug for EmailConfig {
    // Hand-written to show the relay without the password in its URL.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EmailConfig::Console => f.write_str("Console"),
            EmailConfig::Smtp {
                url,
                from,
                password_file,
                ca_file,
            } => f
                .debug_struct("Smtp")
                .field("url", &redact_url(url.expose_secret()))
                .field("from", from)
                .field("password_file", password_file)
                .field("ca_file", ca_file)
                .finish(),
        }
    }
}

/// JWTs on the FusionAuth API: which tokens `Authorization: Bearer` may carry, and how the
/// token of a completed two-factor login is signed.
#[derive(Debug, Clone, Default)]
pub struct JwtConfig {
    /// `MFAD_JWT_HS256_SECRET` (at least 32 bytes): verifies HS256 tokens and signs the
    /// `token` of a completed two-factor login.
    pub hs256_secret: Option<SecretString>,
    /// `MFAD_JWT_PUBLIC_KEYS_FILE`: PEM public keys (RSA → RS256, P-256 → ES256, P-384 →
    /// ES384, Ed25519 → EdDSA) or a JWKS document (each key pinned to its `alg`, or to the
    /// algorithm of its type).
    pub public_keys_file: Option<PathBuf>,
    /// `MFAD_JWT_DEFAULT_TENANT`: the tenant (by name) the two keys above belong to, the
    /// single-tenant shortcut for `mfad jwt-key add`; required when either is set.
    pub default_tenant: Option<String>,
    /// `MFAD_JWT_ISSUER`: when set, tokens must carry this `iss` (and issued ones do).
    pub issuer: Option<String>,
    /// `MFAD_JWT_AUDIENCE`: when set, tokens must carry this `aud`.
    pub audience: Option<String>,
    /// `MFAD_JWT_TTL_SECS` (default 3600): lifetime of issued tokens.
    pub ttl: Duration,
}

/// Where the master keys come from: `ID:KEY` entries (or bare keys, named by their
/// fingerprint), the first active. See [`mfad_crypto::Keyring::parse`].
#[derive(Debug, Clone)]
pub enum MasterKeySource {
    /// `MFAD_MASTER_KEYS` or `MFAD_MASTER_KEY` (the variable's name, its text).
    Inline(&'static str, SecretString),
    /// `MFAD_MASTER_KEYS_FILE` or `MFAD_MASTER_KEY_FILE`.
    File(&'static str, PathBuf),
    /// Neither: `<data dir>/master.key`, generated on first start.
    DataDir,
}

/// Effective configuration.
#[derive(Clone)]
pub struct Config {
    /// `MFAD_LISTEN`.
    pub listen: SocketAddr,
    /// `MFAD_DATA_DIR`.
    pub data_dir: PathBuf,
    /// `MFAD_DATABASE_URL`, defaulting to `sqlite://<data dir>/mfad.db`.
    pub database_url: String,
    /// `MFAD_MASTER_KEYS` / `MFAD_MASTER_KEYS_FILE` / `MFAD_MASTER_KEY` / `MFAD_MASTER_KEY_FILE`.
    pub master_key: MasterKeySource,
    /// `MFAD_SMS_PROVIDER` and its settings.
    pub sms: SmsConfig,
    /// `MFAD_EMAIL_PROVIDER` and its settings.
    pub email: EmailConfig,
    /// `MFAD_CHALLENGE_TTL_SECS`.
    pub challenge_ttl: Duration,
    /// `MFAD_CHALLENGE_MAX_ATTEMPTS`.
    pub challenge_max_attempts: u32,
    /// `MFAD_TOTP_SKEW_STEPS`: steps accepted either side of now (default 1).
    pub totp_skew: u64,
    /// `MFAD_DB_MAX_CONNECTIONS`: pool size (SQLite: readers; PostgreSQL: the one pool).
    pub db_max_connections: u32,
    /// `MFAD_DB_CONNECT_TIMEOUT_SECS` (default 3): the longest a request waits for a
    /// database connection, including opening one, before answering 503.
    pub db_connect_timeout: Duration,
    /// `MFAD_DB_STATEMENT_TIMEOUT_MS` (default 5000, 0 = none): PostgreSQL's
    /// `statement_timeout` on every serving connection; also bounds each store operation
    /// client-side (connect timeout + statement timeout + 1 s).
    pub db_statement_timeout: Option<Duration>,
    /// `MFAD_DATABASE_PASSWORD_FILE`: a file holding the PostgreSQL password (Docker and
    /// Kubernetes secrets), overriding any password in the URL.
    pub database_password_file: Option<PathBuf>,
    /// `MFAD_MIGRATION_LOCKING` (default true): serialise concurrent migrators with an
    /// advisory lock. Turn off only for databases without advisory locks (CockroachDB),
    /// and then migrate once with `mfad migrate` before starting nodes.
    pub migration_locking: bool,
    /// `MFAD_SQLITE_SYNCHRONOUS` = `normal` (default) | `full`.
    pub sqlite_synchronous_full: bool,
    /// `MFAD_AUTO_MIGRATE` (default true): `serve` applies migrations at start.
    pub auto_migrate: bool,
    /// `MFAD_LOG_FORMAT` = `pretty` (default) | `json`.
    pub log_json: bool,
    /// JWT verification and signing for the FusionAuth API.
    pub jwt: JwtConfig,
    /// `MFAD_TWO_FACTOR_LOGIN_TTL_SECS` (default 300): how long a FusionAuth two-factor
    /// login (`twoFactorId`) lasts.
    pub two_factor_login_ttl: Duration,
    /// `MFAD_TWO_FACTOR_TRUST_TTL_SECS` (default 2592000, 30 days): how long a trusted
    /// computer (`twoFactorTrustId`) skips the second factor.
    pub two_factor_trust_ttl: Duration,
    /// `MFAD_IDEMPOTENCY_TTL_SECS` (default 86400, 24 h; 0 turns the header off): how long
    /// the response to a POST with an `Idempotency-Key` is replayed to repeats.
    pub idempotency_ttl: Duration,
    /// `MFAD_API_KEY_CACHE_SECS` (default 2, 0 disables): how long a validated API key is
    /// reused without rereading it, i.e. how long a revocation takes to reach other nodes.
    pub api_key_cache_ttl: Duration,
    /// `MFAD_THROTTLE` and `MFAD_FAILURE_*`: brute-force throttling per factor and user.
    pub throttle: ThrottleConfig,
    /// `MFAD_SMS_*` send limits (SMS-pumping defence), see [`send_limits_config`].
    pub send_limits: SendLimits,
    /// `MFAD_HEADER_TIMEOUT_SECS` (10), `MFAD_IDLE_TIMEOUT_SECS` (60),
    /// `MFAD_MAX_CONNECTIONS` (10000).
    pub connections: crate::serve::ConnectionLimits,
    /// `MFAD_BODY_TIMEOUT_SECS` (10), `MFAD_REQUEST_TIMEOUT_SECS` (15).
    pub requests: crate::edge::RequestLimits,
    /// `MFAD_RATE_LIMIT_PER_KEY`, `MFAD_RATE_LIMIT_PER_ADDRESS`, `MFAD_TRUSTED_PROXY_HEADER`.
    pub rate_limits: crate::rate_limit::RateLimitConfig,
    /// `MFAD_ADMIN_LISTEN` (default: none): a second listener for `/metrics`, `/health`
    /// and `/ready`; when set, `/metrics` is served there only.
    pub admin_listen: Option<SocketAddr>,
    /// `MFAD_SHUTDOWN_GRACE_SECS` (default 20, at most 3600): on SIGTERM or SIGINT, how
    /// long requests already accepted may take to finish before they are cut.
    pub shutdown_grace: Duration,
    /// `MFAD_EVENTS`, `MFAD_EVENT_RETENTION_DAYS`: audit events (issue 12).
    pub events: EventsConfig,
    /// `MFAD_WEBHOOK_*`: webhook delivery from the outbox (docs/WEBHOOKS.md).
    pub webhooks: WebhookConfig,
}

/// Webhook delivery (docs/WEBHOOKS.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhookConfig {
    /// `MFAD_WEBHOOK_MAX_ATTEMPTS` (default 12, 1–100): POSTs per delivery before it is
    /// marked failed.
    pub max_attempts: u32,
    /// `MFAD_WEBHOOK_RETRY_BASE_MS` (default 5000, 100–30000): the first retry waits
    /// between half of this and this (so always within 30 s), each next one twice as long.
    pub retry_base: Duration,
    /// `MFAD_WEBHOOK_RETRY_MAX_MS` (default 3600000, one hour; at least the base, at most
    /// a day): the longest wait between attempts.
    pub retry_max: Duration,
    /// `MFAD_WEBHOOK_TIMEOUT_SECS` (default 10, 1–60): how long one POST may take. An
    /// endpoint's lease is this plus 5 s.
    pub timeout: Duration,
    /// `MFAD_WEBHOOK_POLL_MS` (default 500, 50–2000): how often each server looks for
    /// due deliveries (a new endpoint's first delivery waits at most this long).
    pub poll: Duration,
    /// `MFAD_WEBHOOK_CONCURRENCY` (default 16, 1–256): endpoints one server delivers to
    /// at once (each endpoint gets one delivery at a time, in order).
    pub concurrency: u32,
}

impl WebhookConfig {
    /// How long a claim holds an endpoint: one POST at its timeout, with room for the
    /// settlement, so a healthy node never loses an endpoint mid-delivery.
    pub fn lease(&self) -> Duration {
        self.timeout + Duration::from_secs(5)
    }
}

/// Audit events and their retention (docs/EVENTS.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventsConfig {
    /// `MFAD_EVENTS` = `on` (default) | `off`. Off records no events at all: only for
    /// measuring what they cost (docs/BENCHMARKS.md), never for production.
    pub enabled: bool,
    /// `MFAD_EVENT_RETENTION_DAYS` (default 90, 1–3650): older events are purged.
    pub retention: Duration,
}

/// Brute-force throttling (see `mfad_core::verify::ThrottlePolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleConfig {
    /// `MFAD_THROTTLE` = `on` (default) | `off`. Off is for load tests of the wrong-code
    /// path only, never for production.
    pub enabled: bool,
    /// `MFAD_FAILURE_THRESHOLD` (default 5): consecutive failures before the first delay.
    pub threshold: u32,
    /// `MFAD_FAILURE_DELAY_SECS` (default 30): the first delay, doubling per failure.
    pub delay: Duration,
    /// `MFAD_FAILURE_DELAY_MAX_SECS` (default 3600): the longest delay.
    pub max_delay: Duration,
    /// `MFAD_FAILURE_CAP` (default and maximum 100): consecutive failures after which
    /// every code is refused until `mfad factor unlock`.
    pub cap: u32,
}

impl std::fmt::Debug for Config {
    // Hand-written for the database URL, which may hold a password; the other secrets are
    // `SecretString`s.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("database", &redact_url(&self.database_url))
            .field("master_key", &self.master_key)
            .field("sms", &self.sms)
            .field("email", &self.email)
            .field("challenge_ttl", &self.challenge_ttl)
            .field("challenge_max_attempts", &self.challenge_max_attempts)
            .field("throttle", &self.throttle)
            .field("jwt", &self.jwt)
            .field("send_limits", &self.send_limits)
            .finish_non_exhaustive()
    }
}

/// A database URL without its password.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}{}:***{}", &url[..s + 3], user, &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// A configuration problem, naming the variable.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {problem}")]
pub struct ConfigError {
    var: &'static str,
    problem: String,
}

fn err(var: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        problem: problem.into(),
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads configuration through `get` (a variable name to its value).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        // Empty values count as unset, as shells make it easy to export `X=`.
        let var = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let parse = |k: &'static str, default: u64| -> Result<u64, ConfigError> {
            match var(k) {
                None => Ok(default),
                Some(v) => v
                    .trim()
                    .parse()
                    .map_err(|_| err(k, format!("not a whole number: {v:?}"))),
            }
        };
        let listen = var("MFAD_LISTEN").unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen = listen
            .parse()
            .map_err(|_| err("MFAD_LISTEN", format!("not an address:port: {listen:?}")))?;
        let data_dir = PathBuf::from(var("MFAD_DATA_DIR").unwrap_or_else(|| "./mfad-data".into()));
        let database_url = match var("MFAD_DATABASE_URL") {
            Some(u) => u,
            None => default_sqlite_url(&data_dir),
        };
        let mut sources = [
            "MFAD_MASTER_KEYS",
            "MFAD_MASTER_KEYS_FILE",
            "MFAD_MASTER_KEY",
            "MFAD_MASTER_KEY_FILE",
        ]
        .into_iter()
        .filter_map(|k| var(k).map(|v| (k, v)));
        let master_key = match (sources.next(), sources.next()) {
            (None, _) => MasterKeySource::DataDir,
            (Some((k, f)), None) if k.ends_with("_FILE") => {
                MasterKeySource::File(k, PathBuf::from(f))
            }
            (Some((k, v)), None) => MasterKeySource::Inline(k, v.into()),
            (Some((k, _)), Some(_)) => {
                return Err(err(
                    k,
                    "set one of MFAD_MASTER_KEYS, MFAD_MASTER_KEYS_FILE, MFAD_MASTER_KEY and \
                     MFAD_MASTER_KEY_FILE",
                ));
            }
        };
        let need =
            |k: &'static str| var(k).ok_or_else(|| err(k, "required by the chosen SMS provider"));
        let sms = match var("MFAD_SMS_PROVIDER")
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("console") => SmsConfig::Console,
            Some("twilio") => SmsConfig::Twilio {
                base_url: var("MFAD_TWILIO_BASE_URL")
                    .unwrap_or_else(|| mfad_providers::TwilioSms::DEFAULT_BASE_URL.into()),
                account_sid: need("MFAD_TWILIO_ACCOUNT_SID")?,
                auth_token: need("MFAD_TWILIO_AUTH_TOKEN")?.into(),
                from: need("MFAD_TWILIO_FROM")?,
            },
            Some("webhook") => SmsConfig::Webhook {
                url: need("MFAD_SMS_WEBHOOK_URL")?,
                secret: need("MFAD_SMS_WEBHOOK_SECRET")?.into(),
            },
            Some(other) => {
                return Err(err(
                    "MFAD_SMS_PROVIDER",
                    format!("unknown provider {other:?} (console, twilio, webhook)"),
                ));
            }
        };
        let email = match var("MFAD_EMAIL_PROVIDER")
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("console") => EmailConfig::Console,
            Some("smtp") => {
                let url = var("MFAD_SMTP_URL").ok_or_else(|| {
                    err("MFAD_SMTP_URL", "required when MFAD_EMAIL_PROVIDER=smtp")
                })?;
                let endpoint = mfad_providers::email::SmtpEndpoint::parse(&url)
                    .map_err(|e| err("MFAD_SMTP_URL", e))?;
                let from = var("MFAD_SMTP_FROM").unwrap_or_else(|| "mfad@localhost".into());
                mfad_providers::email::check_from_address(&from)
                    .map_err(|e| err("MFAD_SMTP_FROM", e))?;
                let password_file = var("MFAD_SMTP_PASSWORD_FILE").map(PathBuf::from);
                if password_file.is_some() {
                    if endpoint.password.is_some() {
                        return Err(err(
                            "MFAD_SMTP_PASSWORD_FILE",
                            "MFAD_SMTP_URL already holds a password; use one or the other",
                        ));
                    }
                    if endpoint.user.is_none() {
                        return Err(err(
                            "MFAD_SMTP_PASSWORD_FILE",
                            "needs a user name in MFAD_SMTP_URL (smtps://user@host)",
                        ));
                    }
                }
                EmailConfig::Smtp {
                    url: url.into(),
                    from,
                    password_file,
                    ca_file: var("MFAD_SMTP_CA_FILE").map(PathBuf::from),
                }
            }
            Some(other) => {
                return Err(err(
                    "MFAD_EMAIL_PROVIDER",
                    format!("unknown provider {other:?} (console, smtp)"),
                ));
            }
        };
        let ttl = parse("MFAD_CHALLENGE_TTL_SECS", 600)?;
        if ttl == 0 || ttl > 86_400 {
            return Err(err(
                "MFAD_CHALLENGE_TTL_SECS",
                "must be between 1 and 86400",
            ));
        }
        let attempts = parse("MFAD_CHALLENGE_MAX_ATTEMPTS", 5)?;
        if attempts == 0 || attempts > 100 {
            return Err(err(
                "MFAD_CHALLENGE_MAX_ATTEMPTS",
                "must be between 1 and 100",
            ));
        }
        let skew = parse("MFAD_TOTP_SKEW_STEPS", 1)?;
        if skew > 10 {
            return Err(err("MFAD_TOTP_SKEW_STEPS", "must be at most 10"));
        }
        let conns = parse("MFAD_DB_MAX_CONNECTIONS", 8)?;
        let connect_timeout = parse("MFAD_DB_CONNECT_TIMEOUT_SECS", 3)?;
        if connect_timeout == 0 || connect_timeout > 300 {
            return Err(err(
                "MFAD_DB_CONNECT_TIMEOUT_SECS",
                "must be between 1 and 300",
            ));
        }
        let statement_timeout = parse("MFAD_DB_STATEMENT_TIMEOUT_MS", 5000)?;
        if statement_timeout > 3_600_000 {
            return Err(err(
                "MFAD_DB_STATEMENT_TIMEOUT_MS",
                "must be at most 3600000 (one hour); 0 disables it",
            ));
        }
        let bool_var = |k: &'static str, default: bool| -> Result<bool, ConfigError> {
            match var(k).map(|v| v.to_ascii_lowercase()).as_deref() {
                None => Ok(default),
                Some("1" | "true" | "yes" | "on") => Ok(true),
                Some("0" | "false" | "no" | "off") => Ok(false),
                Some(v) => Err(err(k, format!("expected true or false, got {v:?}"))),
            }
        };
        let sync_full = match var("MFAD_SQLITE_SYNCHRONOUS")
            .map(|v| v.to_ascii_lowercase())
            .as_deref()
        {
            None | Some("normal") => false,
            Some("full") => true,
            Some(v) => {
                return Err(err(
                    "MFAD_SQLITE_SYNCHRONOUS",
                    format!("expected normal or full, got {v:?}"),
                ));
            }
        };
        let log_json = match var("MFAD_LOG_FORMAT")
            .map(|v| v.to_ascii_lowercase())
            .as_deref()
        {
            None | Some("pretty") => false,
            Some("json") => true,
            Some(v) => {
                return Err(err(
                    "MFAD_LOG_FORMAT",
                    format!("expected pretty or json, got {v:?}"),
                ));
            }
        };
        let jwt = jwt_config(&var, &parse)?;
        let throttle = throttle_config(&parse, bool_var("MFAD_THROTTLE", true)?)?;
        let send_limits = send_limits_config(&var, &parse)?;
        let key_cache = parse("MFAD_API_KEY_CACHE_SECS", 2)?;
        if key_cache > 300 {
            return Err(err("MFAD_API_KEY_CACHE_SECS", "must be at most 300"));
        }
        let login_ttl = parse("MFAD_TWO_FACTOR_LOGIN_TTL_SECS", 300)?;
        if login_ttl == 0 || login_ttl > 86_400 {
            return Err(err(
                "MFAD_TWO_FACTOR_LOGIN_TTL_SECS",
                "must be between 1 and 86400",
            ));
        }
        let trust_ttl = parse("MFAD_TWO_FACTOR_TRUST_TTL_SECS", 2_592_000)?;
        if trust_ttl == 0 || trust_ttl > 31_536_000 {
            return Err(err(
                "MFAD_TWO_FACTOR_TRUST_TTL_SECS",
                "must be between 1 and 31536000 (a year)",
            ));
        }
        let idempotency_ttl = parse("MFAD_IDEMPOTENCY_TTL_SECS", 86_400)?;
        if idempotency_ttl > 604_800 {
            return Err(err(
                "MFAD_IDEMPOTENCY_TTL_SECS",
                "must be between 0 (off) and 604800 (a week)",
            ));
        }
        let secs = |k: &'static str, default: u64| -> Result<Duration, ConfigError> {
            match parse(k, default)? {
                n @ 1..=3600 => Ok(Duration::from_secs(n)),
                _ => Err(err(k, "must be between 1 and 3600")),
            }
        };
        let max_connections = parse("MFAD_MAX_CONNECTIONS", 10_000)?;
        if max_connections == 0 || max_connections > 1_000_000 {
            return Err(err("MFAD_MAX_CONNECTIONS", "must be between 1 and 1000000"));
        }
        let connections = crate::serve::ConnectionLimits {
            header_timeout: secs("MFAD_HEADER_TIMEOUT_SECS", 10)?,
            idle_timeout: secs("MFAD_IDLE_TIMEOUT_SECS", 60)?,
            max_connections: usize::try_from(max_connections).unwrap_or(10_000),
        };
        let requests = crate::edge::RequestLimits {
            body_timeout: secs("MFAD_BODY_TIMEOUT_SECS", 10)?,
            request_timeout: secs("MFAD_REQUEST_TIMEOUT_SECS", 15)?,
        };
        let rate = |k: &'static str, default: &str| {
            crate::rate_limit::Rate::parse(&var(k).unwrap_or_else(|| default.to_owned()))
                .map_err(|e| err(k, e))
        };
        let proxy_header = match var("MFAD_TRUSTED_PROXY_HEADER") {
            None => None,
            Some(h) => Some(axum::http::HeaderName::try_from(h.trim()).map_err(|_| {
                err(
                    "MFAD_TRUSTED_PROXY_HEADER",
                    format!("not a header name: {h:?}"),
                )
            })?),
        };
        let rate_limits = crate::rate_limit::RateLimitConfig {
            per_key: rate("MFAD_RATE_LIMIT_PER_KEY", "200/400")?,
            per_address: rate("MFAD_RATE_LIMIT_PER_ADDRESS", "20/100")?,
            proxy_header,
        };
        let retention_days = parse("MFAD_EVENT_RETENTION_DAYS", 90)?;
        if retention_days == 0 || retention_days > 3650 {
            return Err(err(
                "MFAD_EVENT_RETENTION_DAYS",
                "must be between 1 and 3650",
            ));
        }
        let events = EventsConfig {
            enabled: bool_var("MFAD_EVENTS", true)?,
            retention: Duration::from_secs(retention_days * 86_400),
        };
        let webhooks = webhook_config(&parse)?;
        let admin_listen =
            match var("MFAD_ADMIN_LISTEN") {
                None => None,
                Some(a) => Some(a.trim().parse().map_err(|_| {
                    err("MFAD_ADMIN_LISTEN", format!("not an address:port: {a:?}"))
                })?),
            };
        let grace = parse("MFAD_SHUTDOWN_GRACE_SECS", 20)?;
        if grace > 3600 {
            return Err(err("MFAD_SHUTDOWN_GRACE_SECS", "must be at most 3600"));
        }
        Ok(Config {
            events,
            webhooks,
            admin_listen,
            shutdown_grace: Duration::from_secs(grace),
            connections,
            requests,
            rate_limits,
            listen,
            data_dir,
            database_url,
            master_key,
            sms,
            email,
            challenge_ttl: Duration::from_secs(ttl),
            challenge_max_attempts: u32::try_from(attempts).unwrap_or(5),
            totp_skew: skew,
            db_max_connections: u32::try_from(conns.clamp(1, 1000)).unwrap_or(8),
            sqlite_synchronous_full: sync_full,
            auto_migrate: bool_var("MFAD_AUTO_MIGRATE", true)?,
            db_connect_timeout: Duration::from_secs(connect_timeout),
            db_statement_timeout: (statement_timeout > 0)
                .then(|| Duration::from_millis(statement_timeout)),
            database_password_file: var("MFAD_DATABASE_PASSWORD_FILE").map(PathBuf::from),
            migration_locking: bool_var("MFAD_MIGRATION_LOCKING", true)?,
            log_json,
            jwt,
            two_factor_login_ttl: Duration::from_secs(login_ttl),
            two_factor_trust_ttl: Duration::from_secs(trust_ttl),
            idempotency_ttl: Duration::from_secs(idempotency_ttl),
            api_key_cache_ttl: Duration::from_secs(key_cache),
            throttle,
            send_limits,
        })
    }
}

/// The `MFAD_FAILURE_*` settings.
/// `MFAD_WEBHOOK_*`, each within its bounds.
fn webhook_config(
    parse: &impl Fn(&'static str, u64) -> Result<u64, ConfigError>,
) -> Result<WebhookConfig, ConfigError> {
    let within = |k: &'static str, default: u64, min: u64, max: u64| match parse(k, default)? {
        n if (min..=max).contains(&n) => Ok(n),
        _ => Err(err(k, format!("must be between {min} and {max}"))),
    };
    let retry_base = within("MFAD_WEBHOOK_RETRY_BASE_MS", 5_000, 100, 30_000)?;
    let retry_max = within(
        "MFAD_WEBHOOK_RETRY_MAX_MS",
        3_600_000.max(retry_base),
        retry_base,
        86_400_000,
    )?;
    Ok(WebhookConfig {
        max_attempts: u32::try_from(within("MFAD_WEBHOOK_MAX_ATTEMPTS", 12, 1, 100)?).unwrap_or(12),
        retry_base: Duration::from_millis(retry_base),
        retry_max: Duration::from_millis(retry_max),
        timeout: Duration::from_secs(within("MFAD_WEBHOOK_TIMEOUT_SECS", 10, 1, 60)?),
        poll: Duration::from_millis(within("MFAD_WEBHOOK_POLL_MS", 500, 50, 2_000)?),
        concurrency: u32::try_from(within("MFAD_WEBHOOK_CONCURRENCY", 16, 1, 256)?).unwrap_or(16),
    })
}

fn throttle_config(
    parse: &impl Fn(&'static str, u64) -> Result<u64, ConfigError>,
    enabled: bool,
) -> Result<ThrottleConfig, ConfigError> {
    let cap_max = u64::from(mfad_core::verify::MAX_FAILURE_CAP);
    let threshold = parse("MFAD_FAILURE_THRESHOLD", 5)?;
    if threshold == 0 || threshold > cap_max {
        return Err(err(
            "MFAD_FAILURE_THRESHOLD",
            format!("must be between 1 and {cap_max}"),
        ));
    }
    let delay = parse("MFAD_FAILURE_DELAY_SECS", 30)?;
    let max_delay = parse("MFAD_FAILURE_DELAY_MAX_SECS", 3600)?;
    if delay == 0 || delay > 86_400 {
        return Err(err(
            "MFAD_FAILURE_DELAY_SECS",
            "must be between 1 and 86400",
        ));
    }
    if max_delay < delay || max_delay > 86_400 {
        return Err(err(
            "MFAD_FAILURE_DELAY_MAX_SECS",
            "must be at least MFAD_FAILURE_DELAY_SECS and at most 86400",
        ));
    }
    let cap = parse("MFAD_FAILURE_CAP", cap_max)?;
    if cap == 0 || cap > cap_max {
        // NIST SP 800-63B §5.2.2: at most 100 consecutive failed attempts.
        return Err(err(
            "MFAD_FAILURE_CAP",
            format!("must be between 1 and {cap_max} (NIST SP 800-63B)"),
        ));
    }
    Ok(ThrottleConfig {
        enabled,
        threshold: u32::try_from(threshold).unwrap_or(5),
        delay: Duration::from_secs(delay),
        max_delay: Duration::from_secs(max_delay),
        cap: u32::try_from(cap).unwrap_or(100),
    })
}

/// The `MFAD_JWT_*` settings.
fn jwt_config(
    var: &impl Fn(&str) -> Option<String>,
    parse: &impl Fn(&'static str, u64) -> Result<u64, ConfigError>,
) -> Result<JwtConfig, ConfigError> {
    let hs256_secret = var("MFAD_JWT_HS256_SECRET").map(SecretString::from);
    if hs256_secret
        .as_ref()
        .is_some_and(|s| s.expose_secret().len() < mfad_core::jwt_keys::MIN_HS256_SECRET_LEN)
    {
        return Err(err("MFAD_JWT_HS256_SECRET", "must be at least 32 bytes"));
    }
    let public_keys_file = var("MFAD_JWT_PUBLIC_KEYS_FILE").map(PathBuf::from);
    let default_tenant = var("MFAD_JWT_DEFAULT_TENANT");
    if (hs256_secret.is_some() || public_keys_file.is_some()) && default_tenant.is_none() {
        return Err(err(
            "MFAD_JWT_DEFAULT_TENANT",
            "required with MFAD_JWT_HS256_SECRET or MFAD_JWT_PUBLIC_KEYS_FILE: \
             name the tenant those keys act in (or add per-tenant keys with mfad jwt-key add)",
        ));
    }
    let ttl = parse("MFAD_JWT_TTL_SECS", 3600)?;
    if ttl == 0 || ttl > 86_400 {
        return Err(err("MFAD_JWT_TTL_SECS", "must be between 1 and 86400"));
    }
    Ok(JwtConfig {
        hs256_secret,
        public_keys_file,
        default_tenant,
        issuer: var("MFAD_JWT_ISSUER"),
        audience: var("MFAD_JWT_AUDIENCE"),
        ttl: Duration::from_secs(ttl),
    })
}

/// The `MFAD_SMS_*` send limits: `MFAD_SMS_COOLDOWN_SECS` (30, 0 = none),
/// `MFAD_SMS_PER_NUMBER_HOUR` (5), `MFAD_SMS_PER_NUMBER_DAY` (10),
/// `MFAD_SMS_PER_TENANT_HOUR` (1000), `MFAD_SMS_PER_PREFIX_HOUR` (100),
/// `MFAD_SMS_NUMBERS_PER_USER_DAY` (3), and `MFAD_SMS_ALLOWED_COUNTRIES` /
/// `MFAD_SMS_DENIED_COUNTRIES` (comma-separated ISO 3166 alpha-2 codes). The per-number
/// limits also bound emails per address.
fn send_limits_config(
    var: &impl Fn(&str) -> Option<String>,
    parse: &impl Fn(&'static str, u64) -> Result<u64, ConfigError>,
) -> Result<SendLimits, ConfigError> {
    let defaults = SendLimits::default();
    let count = |k: &'static str, default: u32| -> Result<u32, ConfigError> {
        let v = parse(k, u64::from(default))?;
        u32::try_from(v)
            .ok()
            .filter(|v| *v >= 1)
            .ok_or_else(|| err(k, "must be between 1 and 4294967295"))
    };
    let cooldown = parse("MFAD_SMS_COOLDOWN_SECS", 30)?;
    if cooldown > 86_400 {
        return Err(err("MFAD_SMS_COOLDOWN_SECS", "must be at most 86400"));
    }
    let list = |k: &'static str| var(k).unwrap_or_default();
    let allowed =
        mfad_core::send_limits::CountryRules::parse(&list("MFAD_SMS_ALLOWED_COUNTRIES"), "")
            .map_err(|e| err("MFAD_SMS_ALLOWED_COUNTRIES", e))?;
    let denied =
        mfad_core::send_limits::CountryRules::parse("", &list("MFAD_SMS_DENIED_COUNTRIES"))
            .map_err(|e| err("MFAD_SMS_DENIED_COUNTRIES", e))?;
    Ok(SendLimits {
        cooldown: time::Duration::seconds(i64::try_from(cooldown).unwrap_or(30)),
        per_destination_hour: count("MFAD_SMS_PER_NUMBER_HOUR", defaults.per_destination_hour)?,
        per_destination_day: count("MFAD_SMS_PER_NUMBER_DAY", defaults.per_destination_day)?,
        per_tenant_hour: count("MFAD_SMS_PER_TENANT_HOUR", defaults.per_tenant_hour)?,
        per_prefix_hour: count("MFAD_SMS_PER_PREFIX_HOUR", defaults.per_prefix_hour)?,
        numbers_per_user_day: count(
            "MFAD_SMS_NUMBERS_PER_USER_DAY",
            defaults.numbers_per_user_day,
        )?,
        countries: mfad_core::send_limits::CountryRules {
            allowed: allowed.allowed,
            denied: denied.denied,
        },
    })
}

fn default_sqlite_url(data_dir: &Path) -> String {
    let path = data_dir.join("mfad.db");
    let abs = std::path::absolute(&path).unwrap_or(path);
    format!("sqlite://{}", abs.display())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn send_limits() {
        let c = load(&[]).unwrap();
        assert_eq!(c.send_limits, SendLimits::default());
        let c = load(&[
            ("MFAD_SMS_COOLDOWN_SECS", "0"),
            ("MFAD_SMS_PER_NUMBER_HOUR", "7"),
            ("MFAD_SMS_PER_NUMBER_DAY", "20"),
            ("MFAD_SMS_PER_TENANT_HOUR", "50"),
            ("MFAD_SMS_PER_PREFIX_HOUR", "9"),
            ("MFAD_SMS_NUMBERS_PER_USER_DAY", "2"),
            ("MFAD_SMS_ALLOWED_COUNTRIES", "us, CA"),
            ("MFAD_SMS_DENIED_COUNTRIES", "gb"),
        ])
        .unwrap();
        let l = c.send_limits;
        assert_eq!(l.cooldown, time::Duration::ZERO);
        assert_eq!(
            (
                l.per_destination_hour,
                l.per_destination_day,
                l.per_tenant_hour,
                l.per_prefix_hour,
                l.numbers_per_user_day
            ),
            (7, 20, 50, 9, 2)
        );
        assert_eq!(l.countries.allowed, ["US", "CA"]);
        assert_eq!(l.countries.denied, ["GB"]);
        for (k, v) in [
            ("MFAD_SMS_PER_NUMBER_HOUR", "0"),
            ("MFAD_SMS_PER_TENANT_HOUR", "many"),
            ("MFAD_SMS_COOLDOWN_SECS", "100000"),
            ("MFAD_SMS_ALLOWED_COUNTRIES", "USA"),
            ("MFAD_SMS_DENIED_COUNTRIES", "XX"),
        ] {
            let e = load(&[(k, v)]).unwrap_err().to_string();
            assert!(e.starts_with(k), "{e}");
        }
    }

    #[test]
    fn master_keys_come_from_exactly_one_variable_and_idempotency_ttl_is_bounded() {
        let c = load(&[("MFAD_MASTER_KEYS", "a:00")]).unwrap();
        assert!(matches!(
            c.master_key,
            MasterKeySource::Inline("MFAD_MASTER_KEYS", _)
        ));
        let c = load(&[("MFAD_MASTER_KEYS_FILE", "/k")]).unwrap();
        assert!(matches!(
            c.master_key,
            MasterKeySource::File("MFAD_MASTER_KEYS_FILE", _)
        ));
        let e = load(&[("MFAD_MASTER_KEYS", "a:00"), ("MFAD_MASTER_KEY", "00")]).unwrap_err();
        assert!(e.to_string().contains("set one of"), "{e}");
        assert_eq!(
            load(&[]).unwrap().idempotency_ttl,
            Duration::from_secs(86_400)
        );
        assert_eq!(
            load(&[("MFAD_IDEMPOTENCY_TTL_SECS", "0")])
                .unwrap()
                .idempotency_ttl,
            Duration::ZERO
        );
        assert!(load(&[("MFAD_IDEMPOTENCY_TTL_SECS", "604801")]).is_err());
    }

    #[test]
    fn webhook_delivery_settings_have_defaults_and_bounds() {
        let w = load(&[]).unwrap().webhooks;
        assert_eq!(
            (w.max_attempts, w.retry_base, w.retry_max, w.timeout, w.poll),
            (
                12,
                Duration::from_secs(5),
                Duration::from_secs(3600),
                Duration::from_secs(10),
                Duration::from_millis(500)
            )
        );
        assert_eq!((w.concurrency, w.lease()), (16, Duration::from_secs(15)));
        let w = load(&[
            ("MFAD_WEBHOOK_MAX_ATTEMPTS", "3"),
            ("MFAD_WEBHOOK_RETRY_BASE_MS", "200"),
            ("MFAD_WEBHOOK_RETRY_MAX_MS", "1000"),
            ("MFAD_WEBHOOK_TIMEOUT_SECS", "2"),
            ("MFAD_WEBHOOK_POLL_MS", "100"),
            ("MFAD_WEBHOOK_CONCURRENCY", "4"),
        ])
        .unwrap()
        .webhooks;
        assert_eq!(
            (w.max_attempts, w.retry_base, w.retry_max, w.timeout, w.poll),
            (
                3,
                Duration::from_millis(200),
                Duration::from_secs(1),
                Duration::from_secs(2),
                Duration::from_millis(100)
            )
        );
        assert_eq!(w.concurrency, 4);
        for (k, v) in [
            ("MFAD_WEBHOOK_MAX_ATTEMPTS", "0"),
            // The first retry must come within 30 s.
            ("MFAD_WEBHOOK_RETRY_BASE_MS", "30001"),
            ("MFAD_WEBHOOK_RETRY_MAX_MS", "4000"),
            ("MFAD_WEBHOOK_TIMEOUT_SECS", "61"),
            ("MFAD_WEBHOOK_POLL_MS", "5000"),
            ("MFAD_WEBHOOK_CONCURRENCY", "many"),
        ] {
            let e = load(&[(k, v)]).unwrap_err().to_string();
            assert!(e.contains(k), "{k}={v}: {e}");
        }
    }

    #[test]
    fn events_are_on_with_90_days_retention_by_default() {
        let c = load(&[]).unwrap();
        assert!(c.events.enabled);
        assert_eq!(c.events.retention, Duration::from_secs(90 * 86_400));
        let c = load(&[("MFAD_EVENTS", "off"), ("MFAD_EVENT_RETENTION_DAYS", "7")]).unwrap();
        assert!(!c.events.enabled);
        assert_eq!(c.events.retention, Duration::from_secs(7 * 86_400));
        for (k, v) in [
            ("MFAD_EVENT_RETENTION_DAYS", "0"),
            ("MFAD_EVENT_RETENTION_DAYS", "3651"),
            ("MFAD_EVENT_RETENTION_DAYS", "forever"),
            ("MFAD_EVENTS", "some"),
        ] {
            let e = load(&[(k, v)]).unwrap_err().to_string();
            assert!(e.starts_with(k), "{e}");
        }
    }

    #[test]
    fn defaults() {
        let c = load(&[]).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert!(
            c.database_url.starts_with("sqlite:///"),
            "{}",
            c.database_url
        );
        assert!(c.database_url.ends_with("mfad-data/mfad.db"));
        assert!(matches!(c.sms, SmsConfig::Console));
        assert!(matches!(c.master_key, MasterKeySource::DataDir));
        assert_eq!(c.challenge_ttl, Duration::from_secs(600));
        assert_eq!(c.challenge_max_attempts, 5);
        assert_eq!(c.connections, crate::serve::ConnectionLimits::default());
        assert_eq!(c.requests, crate::edge::RequestLimits::default());
    }

    #[test]
    fn twilio_requires_its_settings_and_numeric_tokens_stay_strings() {
        assert!(load(&[("MFAD_SMS_PROVIDER", "twilio")]).is_err());
        let c = load(&[
            ("MFAD_SMS_PROVIDER", "twilio"),
            ("MFAD_TWILIO_ACCOUNT_SID", "AC1"),
            ("MFAD_TWILIO_AUTH_TOKEN", "0123456789"),
            ("MFAD_TWILIO_FROM", "+15005550006"),
        ])
        .unwrap();
        match c.sms {
            SmsConfig::Twilio {
                auth_token,
                base_url,
                ..
            } => {
                assert_eq!(auth_token.expose_secret(), "0123456789");
                assert_eq!(base_url, "https://api.twilio.com");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (k, v) in [
            ("MFAD_LISTEN", "nope"),
            ("MFAD_CHALLENGE_TTL_SECS", "ten"),
            ("MFAD_CHALLENGE_MAX_ATTEMPTS", "0"),
            ("MFAD_SMS_PROVIDER", "pigeon"),
            ("MFAD_AUTO_MIGRATE", "maybe"),
            ("MFAD_DB_CONNECT_TIMEOUT_SECS", "0"),
            ("MFAD_DB_CONNECT_TIMEOUT_SECS", "soon"),
            ("MFAD_DB_STATEMENT_TIMEOUT_MS", "4000000"),
            ("MFAD_DB_STATEMENT_TIMEOUT_MS", "-1"),
            ("MFAD_MIGRATION_LOCKING", "sometimes"),
            ("MFAD_HEADER_TIMEOUT_SECS", "0"),
            ("MFAD_BODY_TIMEOUT_SECS", "3601"),
            ("MFAD_IDLE_TIMEOUT_SECS", "soon"),
            ("MFAD_REQUEST_TIMEOUT_SECS", "0"),
            ("MFAD_MAX_CONNECTIONS", "0"),
            ("MFAD_RATE_LIMIT_PER_KEY", "fast"),
            ("MFAD_RATE_LIMIT_PER_ADDRESS", "10/0"),
            ("MFAD_TRUSTED_PROXY_HEADER", "not a header"),
        ] {
            let e = load(&[(k, v)]).unwrap_err().to_string();
            assert!(e.starts_with(k), "{e}");
        }
    }

    #[test]
    fn database_settings() {
        let c = load(&[]).unwrap();
        assert_eq!(c.db_max_connections, 8);
        assert_eq!(c.db_connect_timeout, Duration::from_secs(3));
        assert_eq!(c.db_statement_timeout, Some(Duration::from_millis(5000)));
        assert_eq!(c.database_password_file, None);
        assert!(c.migration_locking && c.auto_migrate);

        let c = load(&[
            (
                "MFAD_DATABASE_URL",
                "postgres://mfad@db.internal:5432/mfad?sslmode=verify-full",
            ),
            ("MFAD_DB_MAX_CONNECTIONS", "32"),
            ("MFAD_DB_CONNECT_TIMEOUT_SECS", "2"),
            ("MFAD_DB_STATEMENT_TIMEOUT_MS", "0"),
            ("MFAD_DATABASE_PASSWORD_FILE", "/run/secrets/db"),
            ("MFAD_MIGRATION_LOCKING", "false"),
            ("MFAD_AUTO_MIGRATE", "false"),
        ])
        .unwrap();
        assert_eq!(
            c.database_url,
            "postgres://mfad@db.internal:5432/mfad?sslmode=verify-full"
        );
        assert_eq!(c.db_max_connections, 32);
        assert_eq!(c.db_connect_timeout, Duration::from_secs(2));
        assert_eq!(
            c.db_statement_timeout, None,
            "0 disables the statement timeout"
        );
        assert_eq!(
            c.database_password_file,
            Some(PathBuf::from("/run/secrets/db"))
        );
        assert!(!c.migration_locking && !c.auto_migrate);
    }

    #[test]
    fn email_defaults_to_the_console_and_smtp_needs_a_url() {
        assert!(matches!(load(&[]).unwrap().email, EmailConfig::Console));
        let e = load(&[("MFAD_EMAIL_PROVIDER", "smtp")])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("MFAD_SMTP_URL"), "{e}");
        let c = load(&[
            ("MFAD_EMAIL_PROVIDER", "SMTP"),
            ("MFAD_SMTP_URL", "smtp+starttls://relay.example"),
        ])
        .unwrap();
        match c.email {
            EmailConfig::Smtp {
                url,
                from,
                password_file: None,
                ca_file: None,
            } => {
                assert_eq!(url.expose_secret(), "smtp+starttls://relay.example");
                assert_eq!(from, "mfad@localhost");
            }
            other => panic!("{other:?}"),
        }
        let c = load(&[
            ("MFAD_EMAIL_PROVIDER", "smtp"),
            ("MFAD_SMTP_URL", "smtps://apikey@relay.example"),
            ("MFAD_SMTP_FROM", "Example <no-reply@example.com>"),
            ("MFAD_SMTP_PASSWORD_FILE", "/run/secrets/smtp"),
            ("MFAD_SMTP_CA_FILE", "/etc/mfad/ca.pem"),
        ])
        .unwrap();
        match c.email {
            EmailConfig::Smtp {
                from,
                password_file,
                ca_file,
                ..
            } => {
                assert_eq!(from, "Example <no-reply@example.com>");
                assert_eq!(password_file, Some(PathBuf::from("/run/secrets/smtp")));
                assert_eq!(ca_file, Some(PathBuf::from("/etc/mfad/ca.pem")));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_email_settings_name_the_variable_without_the_password() {
        let smtp = |extra: &[(&'static str, &'static str)]| {
            let mut vars = vec![("MFAD_EMAIL_PROVIDER", "smtp")];
            vars.extend_from_slice(extra);
            load(&vars).unwrap_err().to_string()
        };
        for (k, e) in [
            (
                "MFAD_EMAIL_PROVIDER",
                load(&[("MFAD_EMAIL_PROVIDER", "pigeon")])
                    .unwrap_err()
                    .to_string(),
            ),
            (
                "MFAD_SMTP_URL",
                smtp(&[("MFAD_SMTP_URL", "http://u:hunter2@relay.example")]),
            ),
            (
                "MFAD_SMTP_URL",
                smtp(&[(
                    "MFAD_SMTP_URL",
                    "smtps://u:hunter2@relay.example?tls=starttls",
                )]),
            ),
            (
                "MFAD_SMTP_FROM",
                smtp(&[
                    ("MFAD_SMTP_URL", "smtps://relay.example"),
                    ("MFAD_SMTP_FROM", "nobody"),
                ]),
            ),
            (
                "MFAD_SMTP_PASSWORD_FILE",
                smtp(&[
                    ("MFAD_SMTP_URL", "smtps://u:hunter2@relay.example"),
                    ("MFAD_SMTP_PASSWORD_FILE", "/p"),
                ]),
            ),
            (
                "MFAD_SMTP_PASSWORD_FILE",
                smtp(&[
                    ("MFAD_SMTP_URL", "smtps://relay.example"),
                    ("MFAD_SMTP_PASSWORD_FILE", "/p"),
                ]),
            ),
        ] {
            assert!(e.starts_with(k), "{e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
    }

    #[test]
    fn fusionauth_settings() {
        let c = load(&[]).unwrap();
        assert_eq!(c.two_factor_login_ttl, Duration::from_secs(300));
        assert_eq!(c.two_factor_trust_ttl, Duration::from_secs(30 * 86_400));
        let JwtConfig {
            hs256_secret: None,
            public_keys_file: None,
            default_tenant: None,
            issuer: None,
            audience: None,
            ttl,
        } = c.jwt
        else {
            panic!("{:?}", c.jwt);
        };
        assert_eq!(ttl, Duration::from_secs(3600));
        let secret = "s".repeat(32);
        let e = load(&[("MFAD_JWT_HS256_SECRET", secret.as_str())])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("MFAD_JWT_DEFAULT_TENANT"), "{e}");
        let c = load(&[
            ("MFAD_JWT_HS256_SECRET", secret.as_str()),
            ("MFAD_JWT_PUBLIC_KEYS_FILE", "/etc/mfad/jwks.json"),
            ("MFAD_JWT_DEFAULT_TENANT", "acme"),
            ("MFAD_TWO_FACTOR_LOGIN_TTL_SECS", "60"),
        ])
        .unwrap();
        assert_eq!(c.jwt.default_tenant.as_deref(), Some("acme"));
        assert_eq!(
            c.jwt.hs256_secret.as_ref().map(|s| s.expose_secret()),
            Some(secret.as_str())
        );
        assert_eq!(
            c.jwt.public_keys_file,
            Some(PathBuf::from("/etc/mfad/jwks.json"))
        );
        assert_eq!(c.two_factor_login_ttl, Duration::from_secs(60));
        assert!(!format!("{c:?}").contains(&secret));
        for (k, v) in [
            ("MFAD_JWT_HS256_SECRET", "short"),
            ("MFAD_TWO_FACTOR_LOGIN_TTL_SECS", "0"),
            ("MFAD_TWO_FACTOR_TRUST_TTL_SECS", "x"),
            ("MFAD_JWT_TTL_SECS", "0"),
        ] {
            let e = load(&[(k, v)]).unwrap_err().to_string();
            assert!(e.starts_with(k), "{e}");
        }
    }

    /// Every secret the configuration holds, in each provider's settings, is absent from
    /// its `Debug` text, while the settings around it stay visible.
    #[test]
    fn debug_hides_secrets() {
        let jwt = "jwt-secret-".repeat(4);
        let common = [
            ("MFAD_MASTER_KEY", "ab".repeat(32)),
            (
                "MFAD_DATABASE_URL",
                "postgres://mfad:db-pw-1@db/mfad".into(),
            ),
            ("MFAD_JWT_HS256_SECRET", jwt.clone()),
            ("MFAD_JWT_DEFAULT_TENANT", "acme".into()),
        ];
        let providers: [&[(&str, &str)]; 3] = [
            &[
                ("MFAD_SMS_PROVIDER", "twilio"),
                ("MFAD_TWILIO_ACCOUNT_SID", "AC1"),
                ("MFAD_TWILIO_AUTH_TOKEN", "twilio-token-1"),
                ("MFAD_TWILIO_FROM", "+15005550006"),
            ],
            &[
                ("MFAD_SMS_PROVIDER", "webhook"),
                ("MFAD_SMS_WEBHOOK_URL", "http://hook.example"),
                ("MFAD_SMS_WEBHOOK_SECRET", "webhook-secret-1"),
            ],
            &[
                ("MFAD_EMAIL_PROVIDER", "smtp"),
                ("MFAD_SMTP_URL", "smtps://mailer:smtp-pw-1@relay.example"),
            ],
        ];
        for extra in providers {
            let mut vars: Vec<(&str, &str)> =
                common.iter().map(|(k, v)| (*k, v.as_str())).collect();
            vars.extend_from_slice(extra);
            let s = format!("{:?}", load(&vars).unwrap());
            for secret in [
                "abab",
                "db-pw-1",
                "jwt-secret",
                "twilio-token-1",
                "webhook-secret-1",
                "smtp-pw-1",
            ] {
                assert!(!s.contains(secret), "{secret} in {s}");
            }
            assert!(s.contains("acme") && s.contains("db/mfad"), "{s}");
        }
        let smtp = load(providers[2]).unwrap();
        assert!(format!("{smtp:?}").contains("relay.example"));
    }
}
