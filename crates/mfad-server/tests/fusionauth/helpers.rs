//! Harness for the FusionAuth API tests: the real application in-process on port 0 with a
//! manual clock, a Twilio stand-in and an SMTP sink on loopback, JWT keys of every kind,
//! and request helpers that send exactly what FusionAuth clients send (the raw API key in
//! `Authorization`, `X-FusionAuth-TenantId`, Elixir's two `Authorization` headers).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::routing::post;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mfad_core::{ManualClock, TenantId};
use mfad_server::config::Config;
use mfad_server::startup::Application;
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// HS256 secret configured on every test server.
pub const HS_SECRET: &str = "test-hs256-secret-with-at-least-32-bytes!";
/// A phone number libphonenumber accepts.
pub const PHONE: &str = "+14155552671";

/// One message received by a stand-in.
#[derive(Debug, Clone)]
pub struct Message {
    pub to: String,
    pub body: String,
}

pub type Inbox = Arc<Mutex<Vec<Message>>>;

/// Twilio's Messages API, as much as mfad uses: Basic auth, form `To`/`From`/`Body`, 201.
async fn twilio_standin() -> (String, Inbox) {
    let inbox: Inbox = Arc::default();
    let app = axum::Router::new()
        .route(
            "/2010-04-01/Accounts/{sid}/Messages.json",
            post(
                |State(inbox): State<Inbox>,
                 Path(sid): Path<String>,
                 headers: axum::http::HeaderMap,
                 axum::Form(form): axum::Form<HashMap<String, String>>| async move {
                    let expected = format!(
                        "Basic {}",
                        data_encoding::BASE64.encode(format!("{sid}:test-token").as_bytes())
                    );
                    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&expected)
                    {
                        return (
                            axum::http::StatusCode::UNAUTHORIZED,
                            axum::Json(json!({"code": 20003})),
                        );
                    }
                    inbox.lock().unwrap().push(Message {
                        to: form["To"].clone(),
                        body: form["Body"].clone(),
                    });
                    (
                        axum::http::StatusCode::CREATED,
                        axum::Json(json!({"sid": "SM0", "status": "queued"})),
                    )
                },
            ),
        )
        .with_state(inbox.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), inbox)
}

/// A minimal SMTP server that stores every message (RFC 5321's happy path: EHLO, MAIL,
/// RCPT, DATA, RSET, NOOP, QUIT).
async fn smtp_sink() -> (SocketAddr, Inbox) {
    let inbox: Inbox = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let store = inbox.clone();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let store = store.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                let _ = write.write_all(b"220 sink ESMTP\r\n").await;
                let mut rcpt = String::new();
                while let Ok(Some(line)) = lines.next_line().await {
                    let upper = line.to_ascii_uppercase();
                    let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                        b"250-sink\r\n250 8BITMIME\r\n"
                    } else if upper.starts_with("RCPT TO:") {
                        rcpt = line[8..].trim().trim_matches(['<', '>']).to_owned();
                        b"250 OK\r\n"
                    } else if upper.starts_with("DATA") {
                        let _ = write.write_all(b"354 go ahead\r\n").await;
                        let mut data = String::new();
                        while let Ok(Some(l)) = lines.next_line().await {
                            if l == "." {
                                break;
                            }
                            data.push_str(&l);
                            data.push('\n');
                        }
                        store.lock().unwrap().push(Message {
                            to: rcpt.clone(),
                            body: data,
                        });
                        b"250 OK queued\r\n"
                    } else if upper.starts_with("QUIT") {
                        let _ = write.write_all(b"221 bye\r\n").await;
                        return;
                    } else {
                        b"250 OK\r\n"
                    };
                    if write.write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, inbox)
}

/// JWT signing keys: the server trusts the public halves (a PEM bundle) and the HS secret,
/// as keys of the `acme` tenant.
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

/// Knobs for one server.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Extra `MFAD_*` variables.
    pub vars: Vec<(&'static str, String)>,
    /// Run on a fresh PostgreSQL database (from `MFAD_TEST_DATABASE_URL`) instead of SQLite.
    pub postgres: bool,
}

/// A running server.
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
    pub sms: Inbox,
    pub mail: Inbox,
    pub keys: Arc<Keys>,
    pub _dir: tempfile::TempDir,
    /// The PostgreSQL database, dropped with the app.
    pub _pg: Option<mfad_store::testing::TestDatabase>,
}

/// 2026-01-15T12:00:10Z: 10 s into a TOTP step.
pub fn start_time() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_768_478_410).unwrap()
}

static KEYS: std::sync::OnceLock<Arc<Keys>> = std::sync::OnceLock::new();

/// The JWT key pairs every test server trusts (made once per test binary: RSA key
/// generation is slow).
pub fn test_keys() -> Arc<Keys> {
    KEYS.get_or_init(|| Arc::new(keys())).clone()
}

pub async fn spawn_app() -> TestApp {
    spawn_with(Options::default()).await
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
    let mut vars: HashMap<&str, String> = HashMap::from([
        ("MFAD_LISTEN", "127.0.0.1:0".to_owned()),
        ("MFAD_DATA_DIR", dir.path().display().to_string()),
        (
            "MFAD_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("mfad.db").display()),
        ),
        ("MFAD_SMS_PROVIDER", "twilio".into()),
        ("MFAD_TWILIO_BASE_URL", twilio_url),
        ("MFAD_TWILIO_ACCOUNT_SID", "ACtest".into()),
        ("MFAD_TWILIO_AUTH_TOKEN", "test-token".into()),
        ("MFAD_TWILIO_FROM", "+15005550006".into()),
        ("MFAD_EMAIL_PROVIDER", "smtp".into()),
        ("MFAD_SMTP_URL", format!("smtp://{smtp_addr}")),
        ("MFAD_SMTP_FROM", "mfad@example.com".into()),
        ("MFAD_JWT_HS256_SECRET", HS_SECRET.into()),
        ("MFAD_JWT_PUBLIC_KEYS_FILE", pem_path.display().to_string()),
        // The keys above are acme's (`mfad jwt-key` gives other tenants theirs).
        ("MFAD_JWT_DEFAULT_TENANT", "acme".into()),
    ]);
    // `MFAD_FUSIONAUTH_TESTS_BACKEND=postgres` runs every test of this binary on PostgreSQL.
    let all_pg = std::env::var("MFAD_FUSIONAUTH_TESTS_BACKEND").is_ok_and(|v| v == "postgres");
    let pg = if opts.postgres || all_pg {
        let admin = mfad_store::testing::admin_url_from_env()
            .expect("postgres tests need MFAD_TEST_DATABASE_URL");
        let db = mfad_store::testing::TestDatabase::create(&admin)
            .await
            .unwrap();
        vars.insert("MFAD_DATABASE_URL", db.url().to_owned());
        Some(db)
    } else {
        None
    };
    for (k, v) in opts.vars {
        vars.insert(k, v);
    }
    let config = Config::from_lookup(|k| vars.get(k).cloned()).unwrap();
    let clock = ManualClock::new(start_time());
    let app = Application::build(&config, Arc::new(clock.clone()))
        .await
        .unwrap();
    let addr = app.local_addr().unwrap();
    let service = app.state().service.clone();
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
        _pg: pg,
    }
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

impl Resp {
    /// Asserts an empty body with no JSON content type, as FusionAuth answers 200s without a
    /// body, and 401/404/421.
    #[track_caller]
    pub fn assert_empty(&self, status: u16) {
        assert_eq!(self.status, status, "{}", self.text);
        assert_eq!(self.text, "", "body of a {status} must be empty");
        assert!(
            !self
                .content_type
                .as_deref()
                .unwrap_or("")
                .starts_with("application/json"),
            "an empty {status} must not claim JSON: {:?}",
            self.content_type
        );
    }

    /// Asserts a 400 whose Errors object holds `code` (e.g. `[blank]code`).
    #[track_caller]
    pub fn assert_field_error(&self, field: &str, code: &str) {
        assert_eq!(self.status, 400, "{}", self.text);
        assert!(
            self.content_type
                .as_deref()
                .unwrap_or("")
                .starts_with("application/json")
        );
        let codes: Vec<&str> = self.body["fieldErrors"][field]
            .as_array()
            .unwrap_or_else(|| panic!("no fieldErrors.{field} in {}", self.text))
            .iter()
            .filter_map(|e| e["code"].as_str())
            .collect();
        assert!(codes.contains(&code), "{code} not in {codes:?}");
    }

    /// Asserts a 400 whose Errors object holds the general error `code` (e.g.
    /// `[InvalidTenantId]`) and no field errors.
    #[track_caller]
    pub fn assert_general_error(&self, code: &str) {
        assert_eq!(self.status, 400, "{}", self.text);
        assert!(
            self.content_type
                .as_deref()
                .unwrap_or("")
                .starts_with("application/json"),
            "{:?}",
            self.content_type
        );
        let codes: Vec<&str> = self.body["generalErrors"]
            .as_array()
            .unwrap_or_else(|| panic!("no generalErrors in {}", self.text))
            .iter()
            .filter_map(|e| e["code"].as_str())
            .collect();
        assert_eq!(codes, [code], "{}", self.text);
        assert!(
            self.body["generalErrors"][0]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{}",
            self.text
        );
        assert_eq!(
            self.body["fieldErrors"].as_object().map(|m| m.len()),
            Some(0),
            "{}",
            self.text
        );
    }

    /// Asserts a JSON body with `status`.
    #[track_caller]
    pub fn assert_json(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "{}", self.text);
        assert!(
            self.content_type
                .as_deref()
                .unwrap_or("")
                .starts_with("application/json"),
            "{:?}",
            self.content_type
        );
        &self.body
    }
}

pub async fn read(r: reqwest::Response) -> Resp {
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = r.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Resp {
        status,
        content_type,
        text,
        body,
    }
}

/// How a request authenticates.
#[derive(Debug, Clone)]
pub enum Auth<'a> {
    /// Nothing.
    None,
    /// A raw API key, as FusionAuth clients send it.
    Key(&'a str),
    /// `Bearer <jwt>` only.
    Jwt(&'a str),
    /// Elixir 0.3.0's JWT calls: `Bearer <jwt>` then the raw key, two headers.
    Elixir(&'a str, &'a str),
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn request(&self, method: &str, path: &str, auth: Auth<'_>) -> reqwest::RequestBuilder {
        let rb = self.http.request(method.parse().unwrap(), self.url(path));
        match auth {
            Auth::None => rb,
            Auth::Key(k) => rb.header("Authorization", k),
            Auth::Jwt(t) => rb.header("Authorization", format!("Bearer {t}")),
            Auth::Elixir(t, k) => rb
                .header("Authorization", format!("Bearer {t}"))
                .header("Authorization", k),
        }
    }

    /// A JSON request (no body for `None`).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        auth: Auth<'_>,
        body: Option<Value>,
    ) -> Resp {
        let mut rb = self.request(method, path, auth);
        if let Some(b) = body {
            rb = rb
                .header("Content-Type", "application/json")
                .body(b.to_string());
        }
        read(rb.send().await.unwrap()).await
    }

    /// A JSON request with the `acme` key.
    pub async fn key_call(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        self.call(method, path, Auth::Key(&self.key), body).await
    }

    pub fn now_unix(&self) -> u64 {
        u64::try_from(mfad_core::Clock::now(&self.clock).unix_timestamp()).unwrap()
    }

    /// Moves the clock on by `secs` seconds.
    pub fn advance(&self, secs: i64) {
        self.clock.advance(time::Duration::seconds(secs));
    }

    /// The TOTP of a base64 FusionAuth secret, now.
    pub fn totp(&self, secret_b64: &str) -> String {
        mfad_otp::Totp::default().code_at(&b64(secret_b64), self.now_unix())
    }

    /// A fresh secret from the server.
    pub async fn secret(&self) -> String {
        let r = self.key_call("GET", "/api/two-factor/secret", None).await;
        r.assert_json(200)["secret"].as_str().unwrap().to_owned()
    }

    /// Enables an authenticator for `user`; returns the secret and the response body.
    pub async fn enable_authenticator(&self, user: &str) -> (String, Value) {
        let secret = self.secret().await;
        let r = self
            .key_call(
                "POST",
                &format!("/api/user/two-factor/{user}"),
                Some(json!({"method": "authenticator", "secret": secret, "code": self.totp(&secret), "name": "Phone app"})),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        // The code that proved the secret is used up: step past it.
        self.advance(30);
        (secret, r.body)
    }

    /// Enables SMS on `phone` for `user` (send, then enable with the texted code).
    pub async fn enable_sms(&self, user: &str, phone: &str) -> Resp {
        let r = self
            .key_call(
                "POST",
                "/api/two-factor/send",
                Some(json!({"userId": user, "method": "sms", "mobilePhone": phone})),
            )
            .await;
        r.assert_empty(200);
        let code = self.last_sms_code(phone);
        self.key_call(
            "POST",
            &format!("/api/user/two-factor/{user}"),
            Some(json!({"method": "sms", "mobilePhone": phone, "code": code})),
        )
        .await
    }

    /// The user's methods, from `start` (which also opens a login).
    pub async fn start(&self, user: &str) -> Value {
        let r = self
            .key_call(
                "POST",
                "/api/two-factor/start",
                Some(json!({"userId": user})),
            )
            .await;
        r.assert_json(200).clone()
    }

    pub async fn login(&self, two_factor_id: &str, code: &str) -> Resp {
        self.call(
            "POST",
            "/api/two-factor/login",
            Auth::None,
            Some(json!({"twoFactorId": two_factor_id, "code": code})),
        )
        .await
    }

    pub async fn status(&self, user: &str) -> u16 {
        self.key_call(
            "GET",
            &format!("/api/two-factor/status?userId={user}"),
            None,
        )
        .await
        .status
    }

    /// The method id of `user`'s first method of `kind`.
    pub async fn method_id(&self, user: &str, kind: &str) -> String {
        let started = self.start(user).await;
        started["methods"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["method"] == kind)
            .unwrap_or_else(|| panic!("no {kind} method in {started}"))["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The code in the last text to `phone`.
    pub fn last_sms_code(&self, phone: &str) -> String {
        let inbox = self.sms.lock().unwrap();
        let m = inbox
            .iter()
            .rev()
            .find(|m| m.to == phone)
            .unwrap_or_else(|| panic!("no SMS to {phone}"));
        code_in(&m.body)
    }

    pub fn sms_count(&self) -> usize {
        self.sms.lock().unwrap().len()
    }

    /// The code in the last email to `address`.
    pub fn last_email_code(&self, address: &str) -> String {
        let inbox = self.mail.lock().unwrap();
        let m = inbox
            .iter()
            .rev()
            .find(|m| m.to == address)
            .unwrap_or_else(|| panic!("no email to {address}"));
        code_in(&m.body)
    }

    /// Signs a token with the HS256 secret the server trusts.
    pub fn hs_jwt(&self, claims: Value) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(HS_SECRET.as_bytes()),
        )
        .unwrap()
    }

    /// Standard claims for `user`, valid for an hour from the server's now.
    pub fn claims(&self, user: &str) -> Value {
        let now = self.now_unix() as i64;
        json!({"sub": user, "iat": now, "exp": now + 3600, "tid": self.tenant.as_str()})
    }
}

/// The six-digit code in a message.
pub fn code_in(body: &str) -> String {
    let at = body
        .find("code is ")
        .unwrap_or_else(|| panic!("no code in {body:?}"))
        + 8;
    body[at..at + 6].to_owned()
}

pub fn b64(s: &str) -> Vec<u8> {
    data_encoding::BASE64.decode(s.as_bytes()).unwrap()
}

/// A random FusionAuth-style user id (a UUID).
pub fn uuid() -> String {
    let b = mfad_crypto::random_bytes::<16>().unwrap();
    let h = data_encoding::HEXLOWER.encode(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}
