//! Test harness: `spawn_app` boots the real application in-process on port 0 with a manual
//! clock, a temp data dir and a local stand-in for Twilio's Messages API.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::routing::post;
use mfad_core::ManualClock;
use mfad_server::config::Config;
use mfad_server::startup::Application;
use serde_json::{Value, json};
use time::OffsetDateTime;

/// One text received by the Twilio stand-in.
#[derive(Debug, Clone)]
pub struct Sms {
    pub account: String,
    pub to: String,
    pub from: String,
    pub body: String,
}

pub type Inbox = Arc<Mutex<Vec<Sms>>>;

/// A minimal Twilio Messages API: checks Basic auth, records the form, answers 201 JSON.
pub async fn twilio_standin() -> (String, Inbox) {
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
                    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&expected) {
                        return (
                            axum::http::StatusCode::UNAUTHORIZED,
                            axum::Json(json!({"code": 20003, "message": "Authenticate", "status": 401})),
                        );
                    }
                    inbox.lock().unwrap().push(Sms {
                        account: sid,
                        to: form["To"].clone(),
                        from: form["From"].clone(),
                        body: form["Body"].clone(),
                    });
                    (
                        axum::http::StatusCode::CREATED,
                        axum::Json(json!({"sid": "SM00000000000000000000000000000000", "status": "queued"})),
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

/// Knobs for one test server.
#[derive(Debug, Clone)]
pub struct Options {
    pub max_attempts: u32,
    pub ttl_secs: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_attempts: 5,
            ttl_secs: 600,
        }
    }
}

/// A running server and what tests need to talk to it.
pub struct TestApp {
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    pub key: String,
    pub other_key: String,
    pub clock: ManualClock,
    pub inbox: Inbox,
    /// Kept alive so the data dir outlives the server.
    pub _dir: tempfile::TempDir,
    pub app_state: mfad_server::state::AppState,
    pub db_path: std::path::PathBuf,
    /// The PostgreSQL database of this test, when the suite runs on PostgreSQL.
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

pub async fn spawn_with(opts: Options) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let (twilio_url, inbox) = twilio_standin().await;
    let db_path = dir.path().join("mfad.db");
    let pg = if on_postgres() {
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
    let vars: HashMap<&str, String> = HashMap::from([
        ("MFAD_LISTEN", "127.0.0.1:0".to_owned()),
        ("MFAD_DATA_DIR", dir.path().display().to_string()),
        ("MFAD_DATABASE_URL", database_url),
        ("MFAD_SMS_PROVIDER", "twilio".into()),
        ("MFAD_TWILIO_BASE_URL", twilio_url),
        ("MFAD_TWILIO_ACCOUNT_SID", "ACtest".into()),
        ("MFAD_TWILIO_AUTH_TOKEN", "test-token".into()),
        ("MFAD_TWILIO_FROM", "+15005550006".into()),
        ("MFAD_CHALLENGE_MAX_ATTEMPTS", opts.max_attempts.to_string()),
        ("MFAD_CHALLENGE_TTL_SECS", opts.ttl_secs.to_string()),
    ]);
    let config = Config::from_lookup(|k| vars.get(k).cloned()).unwrap();
    let clock = ManualClock::new(start_time());
    let app = Application::build(&config, Arc::new(clock.clone()))
        .await
        .unwrap();
    let addr = app.local_addr().unwrap();
    let app_state = app.state().clone();
    let service = app_state.service.clone();
    let key = service
        .create_api_key("acme", None)
        .await
        .unwrap()
        .token
        .to_string();
    let other_key = service
        .create_api_key("globex", None)
        .await
        .unwrap()
        .token
        .to_string();
    tokio::spawn(app.run_until(std::future::pending()));
    TestApp {
        addr,
        http: reqwest::Client::new(),
        key,
        other_key,
        clock,
        inbox,
        _dir: dir,
        app_state,
        db_path,
        pg,
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Value,
    pub text: String,
    /// The `Retry-After` header.
    pub retry_after: Option<String>,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Sends a request with the primary tenant's key.
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        self.call_as(&self.key.clone(), method, path, body).await
    }

    /// Sends a request with `key` as the bearer token.
    pub async fn call_as(&self, key: &str, method: &str, path: &str, body: Option<Value>) -> Resp {
        let mut req = self
            .http
            .request(method.parse().unwrap(), self.url(path))
            .header("Authorization", format!("Bearer {key}"));
        if let Some(b) = body {
            req = req
                .header("Content-Type", "application/json")
                .body(b.to_string());
        }
        read(req.send().await.unwrap()).await
    }

    /// Sends raw bytes (for malformed-input tests).
    pub async fn raw(&self, method: &str, path: &str, body: &'static str) -> Resp {
        let req = self
            .http
            .request(method.parse().unwrap(), self.url(path))
            .header("Authorization", format!("Bearer {}", self.key))
            .header("Content-Type", "application/json")
            .body(body);
        read(req.send().await.unwrap()).await
    }

    pub async fn enroll(&self, body: Value) -> Value {
        let r = self.call("POST", "/auth/factors/enroll", Some(body)).await;
        assert_eq!(r.status, 201, "{}", r.text);
        r.body
    }

    pub async fn challenge(&self, factor_id: &str) -> Value {
        let r = self
            .call(
                "POST",
                &format!("/auth/factors/{factor_id}/challenge"),
                Some(json!({})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        r.body
    }

    pub async fn verify(&self, challenge_id: &str, code: &str) -> Resp {
        self.call(
            "POST",
            &format!("/auth/challenges/{challenge_id}/verify"),
            Some(json!({"code": code})),
        )
        .await
    }

    /// The current TOTP code for a base32 secret on the server's clock, `offset` steps away.
    pub fn totp_code(&self, secret_b32: &str, offset: i64) -> String {
        let secret = data_encoding::BASE32_NOPAD
            .decode(secret_b32.as_bytes())
            .unwrap();
        let totp = mfad_otp::Totp::default();
        let now = self.clock_unix();
        let step = totp.step_at(now).checked_add_signed(offset).unwrap();
        totp.code_at_step(&secret, step)
    }

    pub fn clock_unix(&self) -> u64 {
        use mfad_core::Clock;
        self.clock.now().unix_timestamp() as u64
    }
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
    let text = resp.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::Null)
    };
    Resp {
        status,
        content_type,
        body,
        text,
        retry_after,
    }
}

/// Asserts a WorkOS-shaped error.
pub fn assert_error(r: &Resp, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", r.text);
    assert!(
        r.content_type
            .as_deref()
            .unwrap_or("")
            .starts_with("application/json"),
        "content type {:?}",
        r.content_type
    );
    assert_eq!(r.body["code"], code, "{}", r.text);
    assert!(
        r.body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{}",
        r.text
    );
}

/// Decodes a `data:image/png;base64,…` QR code to its text.
pub fn decode_qr(data_uri: &str) -> String {
    let b64 = data_uri
        .strip_prefix("data:image/png;base64,")
        .expect("data URI prefix");
    let bytes = data_encoding::BASE64.decode(b64.as_bytes()).unwrap();
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Grayscale);
    let (w, h) = (info.width as usize, info.height as usize);
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| buf[y * w + x]);
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "exactly one QR symbol");
    grids[0].decode().unwrap().1
}
