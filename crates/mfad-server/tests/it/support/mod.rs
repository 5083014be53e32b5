//! The harness: `spawn_app` boots the real application in-process on port 0 with a manual
//! clock, a temp data dir, the Twilio and SMTP stand-ins, and the JWT keys of every kind the
//! FusionAuth API accepts. Request helpers for each API live in `workos` and `fusionauth`.

mod fusionauth;
mod standins;
mod workos;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use jsonwebtoken::EncodingKey;
use mfad_core::{ManualClock, TenantId};
use mfad_server::config::Config;
use mfad_server::startup::Application;
use serde_json::Value;
use time::OffsetDateTime;

pub use fusionauth::*;
pub use standins::*;
pub use workos::*;

/// HS256 secret configured on every test server.
pub const HS_SECRET: &str = "test-hs256-secret-with-at-least-32-bytes!";
/// A phone number libphonenumber accepts.
pub const PHONE: &str = "+14155552671";

/// Knobs for one test server.
#[derive(Debug, Clone)]
pub struct Options {
    pub max_attempts: u32,
    pub ttl_secs: u64,
    /// Extra `MFAD_*` variables (they win over the harness's own).
    pub vars: Vec<(&'static str, String)>,
    /// Run on a fresh PostgreSQL database (from `MFAD_TEST_DATABASE_URL`) instead of SQLite.
    pub postgres: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_attempts: 5,
            ttl_secs: 600,
            vars: Vec::new(),
            postgres: false,
        }
    }
}

/// A running server and what tests need to talk to it.
pub struct TestApp {
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    /// The `acme` tenant's key and id.
    pub key: String,
    pub tenant: TenantId,
    /// The `globex` tenant's key and id.
    pub other_key: String,
    pub other_tenant: TenantId,
    pub clock: ManualClock,
    /// Texts received by the Twilio stand-in, and mail by the SMTP sink.
    pub sms: Inbox<Sms>,
    pub mail: Inbox<Mail>,
    pub keys: Arc<Keys>,
    /// Kept alive so the data dir outlives the server.
    pub _dir: tempfile::TempDir,
    pub app_state: mfad_server::state::AppState,
    pub db_path: std::path::PathBuf,
    /// The PostgreSQL database of this test, when it runs on PostgreSQL; dropped with the app.
    pub pg: Option<mfad_store::testing::TestDatabase>,
}

/// Which backend this run of the suite uses: SQLite, or PostgreSQL when
/// `MFAD_API_TEST_BACKEND=postgres` (each test then gets a fresh database on the server of
/// `MFAD_TEST_DATABASE_URL`, default the local one).
pub fn on_postgres() -> bool {
    std::env::var("MFAD_API_TEST_BACKEND").is_ok_and(|v| v == "postgres")
}

/// 2026-01-15T12:00:10Z: 10 s into a TOTP step, so ±1 step stays clear of edges.
pub fn start_time() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_768_478_410).unwrap()
}

pub async fn spawn_app() -> TestApp {
    spawn_with(Options::default()).await
}

/// Send limits relaxed (no cooldown, 1000 per number an hour and a day), for tests that
/// send one number several codes to test something else; limits keep their defaults
/// everywhere else and are tested in `*::send_limits`.
pub fn relaxed_sends() -> Vec<(&'static str, String)> {
    vec![
        ("MFAD_SMS_COOLDOWN_SECS", "0".into()),
        ("MFAD_SMS_PER_NUMBER_HOUR", "1000".into()),
        ("MFAD_SMS_PER_NUMBER_DAY", "1000".into()),
    ]
}

/// [`spawn_app`] with [`relaxed_sends`].
pub async fn spawn_relaxed() -> TestApp {
    spawn_with(Options {
        vars: relaxed_sends(),
        ..Options::default()
    })
    .await
}

pub async fn spawn_with(opts: Options) -> TestApp {
    let keys = test_keys();
    let dir = tempfile::tempdir().unwrap();
    let (twilio_url, sms) = twilio_standin().await;
    let (smtp_addr, mail) = smtp_sink().await;
    let pem_path = dir.path().join("jwt-public.pem");
    std::fs::write(
        &pem_path,
        format!("{}\n{}", keys.rsa_public_pem, keys.ec_public_pem),
    )
    .unwrap();
    let db_path = dir.path().join("mfad.db");
    let pg = if opts.postgres || on_postgres() {
        let admin = mfad_store::testing::admin_url_from_env()
            .unwrap_or_else(|| mfad_store::testing::CI_DEFAULT_URL.to_owned());
        Some(
            mfad_store::testing::TestDatabase::create(&admin)
                .await
                .unwrap(),
        )
    } else {
        None
    };
    let database_url = match &pg {
        Some(db) => db.url().to_owned(),
        None => format!("sqlite://{}", db_path.display()),
    };
    let mut vars: HashMap<&str, String> = HashMap::from([
        ("MFAD_LISTEN", "127.0.0.1:0".to_owned()),
        ("MFAD_DATA_DIR", dir.path().display().to_string()),
        ("MFAD_DATABASE_URL", database_url),
        ("MFAD_SMS_PROVIDER", "twilio".into()),
        ("MFAD_TWILIO_BASE_URL", twilio_url),
        ("MFAD_TWILIO_ACCOUNT_SID", TWILIO_ACCOUNT_SID.into()),
        ("MFAD_TWILIO_AUTH_TOKEN", TWILIO_AUTH_TOKEN.into()),
        ("MFAD_TWILIO_FROM", "+15005550006".into()),
        ("MFAD_EMAIL_PROVIDER", "smtp".into()),
        ("MFAD_SMTP_URL", format!("smtp://{smtp_addr}")),
        ("MFAD_SMTP_FROM", "mfad@example.com".into()),
        ("MFAD_JWT_HS256_SECRET", HS_SECRET.into()),
        ("MFAD_JWT_PUBLIC_KEYS_FILE", pem_path.display().to_string()),
        ("MFAD_CHALLENGE_MAX_ATTEMPTS", opts.max_attempts.to_string()),
        ("MFAD_CHALLENGE_TTL_SECS", opts.ttl_secs.to_string()),
    ]);
    vars.extend(opts.vars);
    let config = Config::from_lookup(|k| vars.get(k).cloned()).unwrap();
    let clock = ManualClock::new(start_time());
    let app = Application::build(&config, Arc::new(clock.clone()))
        .await
        .unwrap();
    let addr = app.local_addr().unwrap();
    let app_state = app.state().clone();
    let service = app_state.service.clone();
    let acme = service.create_api_key("acme", None).await.unwrap();
    let globex = service.create_api_key("globex", None).await.unwrap();
    tokio::spawn(app.run_until(std::future::pending()));
    TestApp {
        addr,
        http: reqwest::Client::new(),
        key: acme.token.to_string(),
        tenant: acme.tenant.id,
        other_key: globex.token.to_string(),
        other_tenant: globex.tenant.id,
        clock,
        sms,
        mail,
        keys,
        _dir: dir,
        app_state,
        db_path,
        pg,
    }
}

/// JWT signing keys: the server trusts the public halves (a PEM bundle) and the HS secret.
pub struct Keys {
    pub rsa: EncodingKey,
    pub rsa_public_pem: String,
    pub ec: EncodingKey,
    pub ec_public_pem: String,
    /// A key pair the server does not know.
    pub stranger_rsa: EncodingKey,
}

fn keys() -> Keys {
    let rsa = rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
        .unwrap();
    let ec = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let stranger =
        rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
            .unwrap();
    Keys {
        rsa: EncodingKey::from_rsa_pem(rsa.serialize_pem().as_bytes()).unwrap(),
        rsa_public_pem: rsa.public_key_pem(),
        ec: EncodingKey::from_ec_pem(ec.serialize_pem().as_bytes()).unwrap(),
        ec_public_pem: ec.public_key_pem(),
        stranger_rsa: EncodingKey::from_rsa_pem(stranger.serialize_pem().as_bytes()).unwrap(),
    }
}

static KEYS: std::sync::OnceLock<Arc<Keys>> = std::sync::OnceLock::new();

/// The JWT key pairs every test server trusts (made once per test process: RSA key
/// generation is slow).
pub fn test_keys() -> Arc<Keys> {
    KEYS.get_or_init(|| Arc::new(keys())).clone()
}

/// A response, read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub content_type: Option<String>,
    pub text: String,
    /// The body as JSON, or `Null` when empty or not JSON.
    pub body: Value,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

pub async fn read(resp: reqwest::Response) -> Resp {
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Resp {
        status,
        content_type,
        text,
        body,
    }
}
