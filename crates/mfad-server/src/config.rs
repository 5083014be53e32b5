//! Configuration from `MFAD_*` environment variables. Parsing is a pure function of a
//! variable lookup, so tests pass a map instead of touching the process environment.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Which SMS adapter delivers codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmsConfig {
    /// Log messages (development only).
    Console,
    /// Twilio's Messages API.
    Twilio {
        /// API host, normally `https://api.twilio.com`.
        base_url: String,
        /// `AC…` account id.
        account_sid: String,
        /// Auth token (secret).
        auth_token: String,
        /// Sender number or messaging service.
        from: String,
    },
    /// A signed JSON webhook.
    Webhook {
        /// Where to POST.
        url: String,
        /// HMAC key (secret).
        secret: String,
    },
}

/// Where the master key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MasterKeySource {
    /// `MFAD_MASTER_KEY`.
    Inline(String),
    /// `MFAD_MASTER_KEY_FILE`.
    File(PathBuf),
    /// Neither: `<data dir>/master.key`, generated on first start.
    DataDir,
}

/// Effective configuration.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    /// `MFAD_LISTEN`.
    pub listen: SocketAddr,
    /// `MFAD_DATA_DIR`.
    pub data_dir: PathBuf,
    /// `MFAD_DATABASE_URL`, defaulting to `sqlite://<data dir>/mfad.db`.
    pub database_url: String,
    /// `MFAD_MASTER_KEY` / `MFAD_MASTER_KEY_FILE`.
    pub master_key: MasterKeySource,
    /// `MFAD_SMS_PROVIDER` and its settings.
    pub sms: SmsConfig,
    /// `MFAD_CHALLENGE_TTL_SECS`.
    pub challenge_ttl: Duration,
    /// `MFAD_CHALLENGE_MAX_ATTEMPTS`.
    pub challenge_max_attempts: u32,
    /// `MFAD_TOTP_SKEW_STEPS`: steps accepted either side of now (default 1).
    pub totp_skew: u64,
    /// `MFAD_DB_MAX_CONNECTIONS`.
    pub db_max_connections: u32,
    /// `MFAD_SQLITE_SYNCHRONOUS` = `normal` (default) | `full`.
    pub sqlite_synchronous_full: bool,
    /// `MFAD_AUTO_MIGRATE` (default true): `serve` applies migrations at start.
    pub auto_migrate: bool,
    /// `MFAD_LOG_FORMAT` = `pretty` (default) | `json`.
    pub log_json: bool,
}

impl std::fmt::Debug for Config {
    // Hand-written so secrets never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sms = match &self.sms {
            SmsConfig::Console => "console".to_owned(),
            SmsConfig::Twilio { base_url, .. } => format!("twilio ({base_url})"),
            SmsConfig::Webhook { .. } => "webhook".to_owned(),
        };
        let key = match &self.master_key {
            MasterKeySource::Inline(_) => "MFAD_MASTER_KEY".to_owned(),
            MasterKeySource::File(p) => format!("file {}", p.display()),
            MasterKeySource::DataDir => "data dir".to_owned(),
        };
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("database", &redact_url(&self.database_url))
            .field("master_key", &key)
            .field("sms", &sms)
            .field("challenge_ttl", &self.challenge_ttl)
            .field("challenge_max_attempts", &self.challenge_max_attempts)
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
                Some(v) => v.trim().parse().map_err(|_| err(k, format!("not a whole number: {v:?}"))),
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
        let master_key = match (var("MFAD_MASTER_KEY"), var("MFAD_MASTER_KEY_FILE")) {
            (Some(k), None) => MasterKeySource::Inline(k),
            (None, Some(f)) => MasterKeySource::File(PathBuf::from(f)),
            (None, None) => MasterKeySource::DataDir,
            (Some(_), Some(_)) => {
                return Err(err("MFAD_MASTER_KEY", "set MFAD_MASTER_KEY or MFAD_MASTER_KEY_FILE, not both"));
            }
        };
        let need = |k: &'static str| var(k).ok_or_else(|| err(k, "required by the chosen SMS provider"));
        let sms = match var("MFAD_SMS_PROVIDER").as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("console") => SmsConfig::Console,
            Some("twilio") => SmsConfig::Twilio {
                base_url: var("MFAD_TWILIO_BASE_URL")
                    .unwrap_or_else(|| mfad_providers::TwilioSms::DEFAULT_BASE_URL.into()),
                account_sid: need("MFAD_TWILIO_ACCOUNT_SID")?,
                auth_token: need("MFAD_TWILIO_AUTH_TOKEN")?,
                from: need("MFAD_TWILIO_FROM")?,
            },
            Some("webhook") => SmsConfig::Webhook {
                url: need("MFAD_SMS_WEBHOOK_URL")?,
                secret: need("MFAD_SMS_WEBHOOK_SECRET")?,
            },
            Some(other) => {
                return Err(err("MFAD_SMS_PROVIDER", format!("unknown provider {other:?} (console, twilio, webhook)")));
            }
        };
        let ttl = parse("MFAD_CHALLENGE_TTL_SECS", 600)?;
        if ttl == 0 || ttl > 86_400 {
            return Err(err("MFAD_CHALLENGE_TTL_SECS", "must be between 1 and 86400"));
        }
        let attempts = parse("MFAD_CHALLENGE_MAX_ATTEMPTS", 5)?;
        if attempts == 0 || attempts > 100 {
            return Err(err("MFAD_CHALLENGE_MAX_ATTEMPTS", "must be between 1 and 100"));
        }
        let skew = parse("MFAD_TOTP_SKEW_STEPS", 1)?;
        if skew > 10 {
            return Err(err("MFAD_TOTP_SKEW_STEPS", "must be at most 10"));
        }
        let conns = parse("MFAD_DB_MAX_CONNECTIONS", 8)?;
        let bool_var = |k: &'static str, default: bool| -> Result<bool, ConfigError> {
            match var(k).map(|v| v.to_ascii_lowercase()).as_deref() {
                None => Ok(default),
                Some("1" | "true" | "yes" | "on") => Ok(true),
                Some("0" | "false" | "no" | "off") => Ok(false),
                Some(v) => Err(err(k, format!("expected true or false, got {v:?}"))),
            }
        };
        let sync_full = match var("MFAD_SQLITE_SYNCHRONOUS").map(|v| v.to_ascii_lowercase()).as_deref() {
            None | Some("normal") => false,
            Some("full") => true,
            Some(v) => return Err(err("MFAD_SQLITE_SYNCHRONOUS", format!("expected normal or full, got {v:?}"))),
        };
        let log_json = match var("MFAD_LOG_FORMAT").map(|v| v.to_ascii_lowercase()).as_deref() {
            None | Some("pretty") => false,
            Some("json") => true,
            Some(v) => return Err(err("MFAD_LOG_FORMAT", format!("expected pretty or json, got {v:?}"))),
        };
        Ok(Config {
            listen,
            data_dir,
            database_url,
            master_key,
            sms,
            challenge_ttl: Duration::from_secs(ttl),
            challenge_max_attempts: u32::try_from(attempts).unwrap_or(5),
            totp_skew: skew,
            db_max_connections: u32::try_from(conns.clamp(1, 1000)).unwrap_or(8),
            sqlite_synchronous_full: sync_full,
            auto_migrate: bool_var("MFAD_AUTO_MIGRATE", true)?,
            log_json,
        })
    }
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
        let map: HashMap<String, String> =
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults() {
        let c = load(&[]).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert!(c.database_url.starts_with("sqlite:///"), "{}", c.database_url);
        assert!(c.database_url.ends_with("mfad-data/mfad.db"));
        assert_eq!(c.sms, SmsConfig::Console);
        assert_eq!(c.master_key, MasterKeySource::DataDir);
        assert_eq!(c.challenge_ttl, Duration::from_secs(600));
        assert_eq!(c.challenge_max_attempts, 5);
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
            SmsConfig::Twilio { auth_token, base_url, .. } => {
                assert_eq!(auth_token, "0123456789");
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
        ] {
            let e = load(&[(k, v)]).unwrap_err().to_string();
            assert!(e.starts_with(k), "{e}");
        }
    }

    #[test]
    fn debug_hides_secrets() {
        let c = load(&[
            ("MFAD_MASTER_KEY", "aa".repeat(32).as_str()),
            ("MFAD_DATABASE_URL", "postgres://mfad:hunter2@db/mfad"),
            ("MFAD_SMS_PROVIDER", "webhook"),
            ("MFAD_SMS_WEBHOOK_URL", "http://x"),
            ("MFAD_SMS_WEBHOOK_SECRET", "whsecret"),
        ])
        .unwrap();
        let s = format!("{c:?}");
        assert!(!s.contains("hunter2") && !s.contains("whsecret") && !s.contains("aaaa"), "{s}");
    }
}
