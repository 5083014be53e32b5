//! Test support: the real `mfad` binary on a free port, a recording HTTP server with scripted
//! replies, and an independent TOTP computation (totp-rs).

use std::collections::VecDeque;
use std::io::Read;
use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

// ---------------------------------------------------------------------------------------
// The real server

/// The `mfad` binary: `$MFAD_BIN`, else `<target dir>/debug/mfad`.
pub fn mfad_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("MFAD_BIN") {
        return PathBuf::from(bin);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("debug").join("mfad")
}

/// A running `mfad serve` with its own data directory; killed on drop.
pub struct Mfad {
    child: Child,
    pub url: String,
    pub api_key: String,
    pub tenant_id: String,
    pub dir: tempfile::TempDir,
}

impl Mfad {
    /// The tenant id as FusionAuth's API shows it: the UUID of the same 128 bits.
    pub fn tenant_uuid(&self) -> String {
        mfad_core::TenantId::parse(&self.tenant_id)
            .expect("a tenant id")
            .as_uuid()
    }

    /// A server with the default configuration.
    pub async fn start() -> Mfad {
        Mfad::start_with(&[]).await
    }

    /// A server with extra `MFAD_*` environment variables.
    pub async fn start_with(env: &[(&str, &str)]) -> Mfad {
        let bin = mfad_bin();
        assert!(
            bin.is_file(),
            "the mfad binary is missing at {}: build it with `cargo build -p mfad-server` or set MFAD_BIN",
            bin.display()
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        let command = |args: &[&str]| {
            let mut c = Command::new(&bin);
            c.args(args)
                .current_dir(dir.path())
                .env_clear()
                .env("MFAD_DATA_DIR", &data)
                // These tests exercise the client, not the send limits (tested in
                // mfad-server): one phone gets several codes in a row.
                .env("MFAD_SMS_COOLDOWN_SECS", "0")
                .env("MFAD_SMS_PER_NUMBER_HOUR", "1000")
                .env("MFAD_SMS_PER_NUMBER_DAY", "1000")
                .envs(env.iter().copied());
            c
        };

        let out = command(&["api-key", "create", "--tenant", "t1"])
            .output()
            .expect("run mfad api-key create");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "mfad api-key create failed: {}\n{}",
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
        let api_key = stdout
            .lines()
            .last()
            .expect("a key on the last line")
            .trim()
            .to_owned();
        let tenant_id = stdout
            .lines()
            .find_map(|l| l.strip_prefix("tenant: "))
            .and_then(|l| {
                l.rsplit_once('(')
                    .map(|(_, id)| id.trim_end_matches(')').to_owned())
            })
            .unwrap_or_default();

        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let log = std::fs::File::create(dir.path().join("mfad.log")).expect("log file");
        let child = command(&["serve"])
            .env("MFAD_LISTEN", &listen)
            .stdout(Stdio::from(log.try_clone().expect("log handle")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn mfad serve");
        let mut server = Mfad {
            child,
            url: format!("http://{listen}"),
            api_key,
            tenant_id,
            dir,
        };
        server.wait_healthy().await;
        server
    }

    async fn wait_healthy(&mut self) {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "mfad serve exited with {status} before becoming healthy:\n{}",
                    self.log()
                );
            }
            if let Ok(r) = http.get(format!("{}/health", self.url)).send().await
                && r.status() == 200
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "mfad serve not healthy within 20 s:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Runs an `mfad` command on this server's data (the CLI beside a running server).
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(mfad_bin())
            .args(args)
            .current_dir(self.dir.path())
            .env_clear()
            .env("MFAD_DATA_DIR", self.dir.path().join("data"))
            .output()
            .expect("run mfad")
    }

    /// What the server has logged so far.
    pub fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(self.dir.path().join("mfad.log")) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// A client for this server with fast retries.
    pub fn client(&self) -> mfad_client::Client {
        mfad_client::Client::builder()
            .base_url(&self.url)
            .api_key(&self.api_key)
            .initial_backoff(Duration::from_millis(20))
            .build()
            .expect("client")
    }
}

impl Drop for Mfad {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

// ---------------------------------------------------------------------------------------
// TOTP, computed independently of the server (totp-rs)

#[expect(
    clippy::disallowed_methods,
    reason = "TOTP codes depend on the real clock the server also reads"
)]
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// The SHA-1 / 6-digit / 30 s code of a raw secret at `unix` seconds.
pub fn totp_code_bytes(secret: &[u8], unix: u64) -> String {
    totp_rs::Builder::new()
        .with_secret(secret.to_vec())
        .with_digits(6)
        .with_step_duration(30)
        .build_noncompliant()
        .generate(unix)
        .to_string()
}

/// The code of a base32 secret at `unix` seconds.
pub fn totp_code(secret_base32: &str, unix: u64) -> String {
    let bytes = data_encoding::BASE32_NOPAD
        .decode(secret_base32.as_bytes())
        .expect("base32 secret");
    totp_code_bytes(&bytes, unix)
}

// ---------------------------------------------------------------------------------------
// A recording HTTP/1.1 server with scripted replies

/// What the recording server does with the next request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Answer with a status, extra headers and a body.
    With(u16, Vec<(&'static str, String)>, String),
    /// Close the connection without answering.
    Drop,
}

impl Reply {
    /// A JSON answer.
    pub fn json(status: u16, body: &str) -> Reply {
        Reply::With(
            status,
            vec![("content-type", "application/json; charset=utf-8".into())],
            body.to_owned(),
        )
    }

    /// An answer with no body and no content type.
    pub fn empty(status: u16) -> Reply {
        Reply::With(status, Vec::new(), String::new())
    }

    /// Adds a header.
    pub fn header(self, name: &'static str, value: impl Into<String>) -> Reply {
        match self {
            Reply::With(s, mut h, b) => {
                h.push((name, value.into()));
                Reply::With(s, h, b)
            }
            Reply::Drop => Reply::Drop,
        }
    }
}

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Recorded {
    /// The single value of a header (lower-case name); panics if repeated.
    pub fn header(&self, name: &str) -> Option<&str> {
        let all: Vec<&str> = self
            .headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect();
        assert!(all.len() <= 1, "header {name} sent {} times", all.len());
        all.first().copied()
    }

    pub fn path(&self) -> &str {
        self.target
            .split_once('?')
            .map_or(self.target.as_str(), |(p, _)| p)
    }

    pub fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, q)| q)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// The recording server: replies are taken from the script in order; with the script
/// exhausted it answers the fallback reply if one is set (a stand-in for a real service),
/// else 599 so that a stray request fails the test.
#[derive(Clone)]
pub struct Recorder {
    pub url: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
    script: Arc<Mutex<VecDeque<Reply>>>,
    fallback: Arc<Mutex<Option<Reply>>>,
}

impl Recorder {
    pub async fn start() -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let recorder = Recorder {
            url,
            requests: Arc::default(),
            script: Arc::default(),
            fallback: Arc::default(),
        };
        let r = recorder.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let r = r.clone();
                tokio::spawn(async move { r.serve(socket).await });
            }
        });
        recorder
    }

    /// Queues replies.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.script.lock().expect("lock").extend(replies);
    }

    /// The reply to every request once the script is exhausted.
    pub fn fallback(&self, reply: Reply) {
        *self.fallback.lock().expect("lock") = Some(reply);
    }

    /// Forgets the replies not used yet.
    pub fn clear_script(&self) {
        self.script.lock().expect("lock").clear();
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().expect("lock").clone()
    }

    /// Takes the requests so far.
    pub fn take(&self) -> Vec<Recorded> {
        std::mem::take(&mut *self.requests.lock().expect("lock"))
    }

    /// Takes the only request so far.
    pub fn take_one(&self) -> Recorded {
        let mut all = self.take();
        assert_eq!(all.len(), 1, "expected one request, got {all:#?}");
        all.remove(0)
    }

    async fn serve(&self, mut socket: tokio::net::TcpStream) {
        let mut buf = Vec::new();
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            let mut chunk = [0u8; 4096];
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let mut request_line = lines.next().unwrap_or_default().split(' ');
        let method = request_line.next().unwrap_or_default().to_owned();
        let target = request_line.next().unwrap_or_default().to_owned();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let length: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = buf[head_end + 4..].to_vec();
        while body.len() < length {
            let mut chunk = [0u8; 4096];
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => body.extend_from_slice(&chunk[..n]),
            }
        }
        self.requests.lock().expect("lock").push(Recorded {
            method,
            target,
            headers,
            body,
            at: Instant::now(),
        });
        let scripted = self.script.lock().expect("lock").pop_front();
        let reply = scripted.or_else(|| self.fallback.lock().expect("lock").clone());
        let (status, headers, body) = match reply {
            Some(Reply::Drop) => return,
            Some(Reply::With(s, h, b)) => (s, h, b),
            None => (599, Vec::new(), "no scripted reply".to_owned()),
        };
        let mut out = format!(
            "HTTP/1.1 {status} Scripted\r\ncontent-length: {}\r\nconnection: close\r\n",
            body.len()
        );
        for (k, v) in headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str("\r\n");
        out.push_str(&body);
        let _ = socket.write_all(out.as_bytes()).await;
        let _ = socket.shutdown().await;
    }
}

// Canned WorkOS objects (`docs/contracts/workos.md` §3).
pub const FACTOR_TOTP_ENROLLED: &str = r#"{"object":"authentication_factor","id":"auth_factor_01FZ4TS0MWPZR7GATS7KCXANQZ","created_at":"2022-03-27T04:40:00.410Z","updated_at":"2022-03-27T04:40:00.410Z","type":"totp","totp":{"issuer":"WorkOS","user":"some_user","qr_code":"data:image/png;base64,iVBORw0KGgo=","secret":"LNASAT3PGQDTE5J4M4YDCTTOPZGBCAIW","uri":"otpauth://totp/WorkOS:some_user?secret=LNASAT3PGQDTE5J4M4YDCTTOPZGBCAIW&issuer=WorkOS"}}"#;
pub const FACTOR_SMS: &str = r#"{"object":"authentication_factor","id":"auth_factor_01FZ4TS0MWPZR7GATS7KCXANQA","created_at":"2022-03-27T04:40:00.410Z","updated_at":"2022-03-27T04:40:00.410Z","type":"sms","sms":{"phone_number":"+15005550006"}}"#;
pub const FACTOR_GENERIC: &str = r#"{"object":"authentication_factor","id":"auth_factor_01FZ4WMXXA09XF6NK1XMKNWB3M","created_at":"2022-03-27T05:12:43.689Z","updated_at":"2022-03-27T05:12:43.689Z","type":"generic_otp"}"#;
pub const CHALLENGE: &str = r#"{"object":"authentication_challenge","id":"auth_challenge_01FZ4WSWV2SCEDX3GKY1NA9YTN","created_at":"2022-03-27T05:15:26.432Z","updated_at":"2022-03-27T05:15:26.432Z","expires_at":"2022-03-27T05:25:26.434Z","code":"541295","authentication_factor_id":"auth_factor_01FZ4WMXXA09XF6NK1XMKNWB3M"}"#;
