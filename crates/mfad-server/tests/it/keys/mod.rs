//! Master-key rotation and idempotent retries through the real `mfad` binary, on the run's
//! backend (a SQLite file, or a fresh PostgreSQL database with `MFAD_TEST_BACKEND=postgres`).
//! The processes run on the real clock, as deployed.

use std::process::Command;
use std::time::Duration;

use mfad_store::testing::TestDatabase;
use serde_json::Value;

use crate::support::process::{Server, mfad, output_ok};
use crate::support::{on_postgres, test_database};

mod idempotency;
mod rotation;

/// A database for the processes of one test, and a directory for their files.
pub(crate) struct Site {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) url: String,
    // Kept so the PostgreSQL database lives as long as the test.
    _pg: Option<TestDatabase>,
}

impl Site {
    pub(crate) async fn new() -> Site {
        let dir = tempfile::tempdir().unwrap();
        let (url, pg) = if on_postgres() {
            let db = test_database().await;
            (db.url().to_owned(), Some(db))
        } else {
            (
                format!("sqlite://{}", dir.path().join("mfad.db").display()),
                None,
            )
        };
        Site { dir, url, _pg: pg }
    }

    /// `mfad` with this site's database, the given master-key variables and `extra`.
    pub(crate) fn command(&self, name: &str, extra: &[(&str, &str)]) -> Command {
        let data = self.dir.path().join(name);
        std::fs::create_dir_all(&data).unwrap();
        let mut cmd = mfad(self.dir.path(), &data);
        cmd.env("MFAD_DATABASE_URL", &self.url)
            .env("MFAD_DB_MAX_CONNECTIONS", "4")
            .env("MFAD_RATE_LIMIT_PER_KEY", "0")
            .env("RUST_LOG", "warn");
        for (k, v) in extra {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs the CLI; its output, whatever the exit status.
    pub(crate) fn cli(&self, env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
        self.command("cli", env).args(args).output().unwrap()
    }

    /// Runs the CLI, which must succeed; its standard output.
    pub(crate) fn cli_ok(&self, env: &[(&str, &str)], args: &[&str]) -> String {
        let mut cmd = self.command("cli", env);
        cmd.args(args);
        output_ok(cmd, &args)
    }

    /// A new API key for tenant `t`.
    pub(crate) fn api_key(&self, env: &[(&str, &str)]) -> String {
        let out = self.cli_ok(env, &["api-key", "create", "--tenant", "t"]);
        out.lines().last().unwrap().trim().to_owned()
    }

    /// Starts `mfad serve` and waits until it answers.
    pub(crate) async fn serve(&self, name: &str, env: &[(&str, &str)]) -> Server {
        let log = self.dir.path().join(format!("{name}.log"));
        let mut node = Server::spawn(self.command(name, env), log);
        node.wait_ready().await;
        node
    }
}

/// A JSON response, read whole.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: Value,
    pub(crate) replayed: bool,
}

/// A request with `Authorization` (as given) and optionally an `Idempotency-Key`.
pub(crate) async fn post(
    http: &reqwest::Client,
    url: &str,
    auth: &str,
    idempotency_key: Option<&str>,
    body: &Value,
) -> Answer {
    let mut rb = http
        .post(url)
        .header("Authorization", auth)
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .timeout(Duration::from_secs(30));
    if let Some(k) = idempotency_key {
        rb = rb.header("Idempotency-Key", k);
    }
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    let replayed = r.headers().contains_key("idempotent-replayed");
    let text = r.text().await.unwrap();
    Answer {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        replayed,
    }
}

/// A TOTP code for a base32 secret at `offset_steps` from now.
#[expect(
    clippy::disallowed_methods,
    reason = "the spawned servers run on the real clock"
)]
pub(crate) fn totp_step(secret: &[u8], offset_steps: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let at = now.saturating_add_signed(offset_steps * 30);
    mfad_otp::Totp::default().code_at(secret, at)
}
