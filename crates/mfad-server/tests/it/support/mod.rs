//! The harness: `spawn_app` boots the real application in-process on port 0 with a manual
//! clock, a temp data dir, the Twilio and SMTP stand-ins, and the JWT keys of every kind the
//! FusionAuth API accepts, on the run's [`Backend`]. Request helpers for each API live in
//! `workos` and `fusionauth`.

mod fusionauth;
pub mod process;
mod receiver;
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
pub use receiver::*;
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
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_attempts: 5,
            ttl_secs: 600,
            vars: Vec::new(),
        }
    }
}

/// A running server and what tests need to talk to it.
pub struct TestApp {
    pub addr: SocketAddr,
    /// The admin listener (`MFAD_ADMIN_LISTEN`), when the test configured one.
    pub admin: Option<SocketAddr>,
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

/// The storage under every server of a test run. One variable chooses it for the whole
/// binary, so each suite runs on PostgreSQL the same way: `MFAD_TEST_BACKEND=postgres
/// cargo nextest run -p mfad-server` (CI runs the binary once per backend).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in the test's temp dir (the default).
    Sqlite,
    /// A fresh database per test on the server of `MFAD_TEST_DATABASE_URL` (default the
    /// local one, `postgres://postgres@127.0.0.1:5432/test`); unreachable means failed.
    Postgres,
}

impl Backend {
    /// The backend of this run, from `MFAD_TEST_BACKEND` (`sqlite` or `postgres`).
    pub fn of_run() -> Backend {
        match std::env::var("MFAD_TEST_BACKEND").as_deref() {
            Err(_) | Ok("" | "sqlite") => Backend::Sqlite,
            Ok("postgres") => Backend::Postgres,
            Ok(other) => panic!("MFAD_TEST_BACKEND={other}: expected sqlite or postgres"),
        }
    }
}

/// Whether this run is on PostgreSQL, for the few tests that belong to one backend.
pub fn on_postgres() -> bool {
    Backend::of_run() == Backend::Postgres
}

/// A fresh PostgreSQL database for one test, dropped with the value.
pub async fn test_database() -> mfad_store::testing::TestDatabase {
    let admin = mfad_store::testing::admin_url();
    mfad_store::testing::TestDatabase::create(&admin)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL test database at {admin}: {e}"))
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
    let pg = match Backend::of_run() {
        Backend::Postgres => Some(test_database().await),
        Backend::Sqlite => None,
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
        // The keys above are acme's (`mfad jwt-key` gives other tenants theirs).
        ("MFAD_JWT_DEFAULT_TENANT", "acme".into()),
        // Suites that page through hundreds of factors in a second; rate limits have their
        // own tests (workos::edge).
        ("MFAD_RATE_LIMIT_PER_KEY", "0".into()),
        ("MFAD_RATE_LIMIT_PER_ADDRESS", "0".into()),
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
    let admin = app.admin_addr();
    let app_state = app.state().clone();
    let service = app_state.service.clone();
    let acme = service.create_api_key("acme", None).await.unwrap();
    let globex = service.create_api_key("globex", None).await.unwrap();
    tokio::spawn(app.run_until(std::future::pending()));
    TestApp {
        addr,
        admin,
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

/// Loads the test key pairs, made on first use and kept under the target dir: RSA key
/// generation is slow, and nextest runs every test in a process of its own.
fn keys() -> Keys {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("jwt-test-keys");
    if !dir.exists() {
        generate_keys(&dir);
    }
    let load = |name: &str, alg: &'static rcgen::SignatureAlgorithm| {
        let pem = std::fs::read_to_string(dir.join(name)).unwrap();
        rcgen::KeyPair::from_pem_and_sign_algo(&pem, alg).unwrap()
    };
    let rsa = load("rsa.pem", &rcgen::PKCS_RSA_SHA256);
    let ec = load("ec.pem", &rcgen::PKCS_ECDSA_P256_SHA256);
    let stranger = load("stranger.pem", &rcgen::PKCS_RSA_SHA256);
    Keys {
        rsa: EncodingKey::from_rsa_pem(rsa.serialize_pem().as_bytes()).unwrap(),
        rsa_public_pem: rsa.public_key_pem(),
        ec: EncodingKey::from_ec_pem(ec.serialize_pem().as_bytes()).unwrap(),
        ec_public_pem: ec.public_key_pem(),
        stranger_rsa: EncodingKey::from_rsa_pem(stranger.serialize_pem().as_bytes()).unwrap(),
    }
}

/// Writes fresh key pairs into `dir`, whole or not at all: they are made in a directory of
/// this process and renamed into place (a concurrent test that renamed first wins).
fn generate_keys(dir: &std::path::Path) {
    let tmp = dir.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let rsa = || {
        rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048).unwrap()
    };
    let ec = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    for (name, key) in [("rsa.pem", rsa()), ("ec.pem", ec), ("stranger.pem", rsa())] {
        std::fs::write(tmp.join(name), key.serialize_pem()).unwrap();
    }
    if std::fs::rename(&tmp, dir).is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
}

static KEYS: std::sync::OnceLock<Arc<Keys>> = std::sync::OnceLock::new();

/// The JWT key pairs every test server trusts.
pub fn test_keys() -> Arc<Keys> {
    KEYS.get_or_init(|| Arc::new(keys())).clone()
}

/// The TOTP code of a base32 secret now, on the real clock: for the tests that run the
/// real `mfad` binary, which reads that clock.
#[expect(
    clippy::disallowed_methods,
    reason = "the spawned servers run on the real clock"
)]
pub fn totp_now(secret_b32: &str) -> String {
    let secret = data_encoding::BASE32_NOPAD
        .decode(secret_b32.as_bytes())
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    mfad_otp::Totp::default().code_at(&secret, now)
}

/// A response, read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub content_type: Option<String>,
    pub text: String,
    /// The body as JSON, or `Null` when empty or not JSON.
    pub body: Value,
    /// The `Retry-After` header.
    pub retry_after: Option<String>,
}

impl Resp {
    /// Whether the response claims a JSON body.
    pub fn is_json(&self) -> bool {
        self.content_type
            .as_deref()
            .is_some_and(|t| t.starts_with("application/json"))
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

/// Sends `rb` with `body` as its JSON; the response.
pub async fn send_json(rb: reqwest::RequestBuilder, body: &serde_json::Value) -> Resp {
    read(
        rb.header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap(),
    )
    .await
}

pub async fn read(resp: reqwest::Response) -> Resp {
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    let retry_after = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let path = resp.url().path().to_owned();
    let text = resp.text().await.unwrap();
    if path.starts_with("/api/") {
        fusionauth::assert_fusionauth_model(&path, status, &text);
    }
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Resp {
        status,
        content_type,
        text,
        body,
        retry_after,
    }
}
