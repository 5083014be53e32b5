//! The real `mfad` binary as the process tests run it: a clean environment, `mfad serve`
//! on a free port with its log in a file, readiness read from `/health`, SIGKILL. Each
//! test adds its own environment (database, master key, limits).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_mfad");

/// `mfad` run in `dir` with nothing of this process's environment but `PATH`, its data
/// in `data`.
pub fn mfad(dir: &Path, data: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("MFAD_DATA_DIR", data);
    c
}

/// `mfad` on the default SQLite store in `dir/data`, with `extra` set.
pub fn command(dir: &Path, extra: &[(&str, &str)]) -> Command {
    let mut c = mfad(dir, &dir.join("data"));
    c.envs(extra.iter().copied());
    c
}

/// Runs `cmd`, asserting success; its standard output.
pub fn output_ok(mut cmd: Command, what: &dyn std::fmt::Debug) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "mfad {what:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `mfad <args>` on the data dir in `dir`, asserting success; its standard output.
pub fn run_cli(dir: &Path, args: &[&str]) -> String {
    let mut cmd = command(dir, &[]);
    cmd.args(args);
    output_ok(cmd, &args)
}

/// A port that was free on 127.0.0.1 a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `mfad serve`, killed when dropped.
pub struct Server {
    child: Child,
    pub url: String,
    pub log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `cmd serve` on a free port, its standard error appended to `log`, without
    /// waiting for it.
    pub fn spawn(mut cmd: Command, log: PathBuf) -> Server {
        let listen = format!("127.0.0.1:{}", free_port());
        let logfile = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let child = cmd
            .env("MFAD_LISTEN", &listen)
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(logfile)
            .spawn()
            .unwrap();
        Server {
            child,
            url: format!("http://{listen}"),
            log,
        }
    }

    /// Polls `/health` until it answers `status`, failing (with the log) if the process
    /// exits or `limit` passes first; how long it took.
    pub async fn wait_health(&mut self, status: u16, limit: Duration) -> Duration {
        let http = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if let Ok(Some(exit)) = self.child.try_wait() {
                panic!("mfad serve exited ({exit}): {}", self.log_text());
            }
            let answer = http
                .get(format!("{}/health", self.url))
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if answer.is_ok_and(|r| r.status().as_u16() == status) {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < limit,
                "{} did not report health {status} within {limit:?}; log:\n{}",
                self.url,
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until it serves (health 200), within 30 s.
    pub async fn wait_ready(&mut self) {
        self.wait_health(200, Duration::from_secs(30)).await;
    }

    /// SIGKILL: the process gets no chance to finish anything; reaped.
    pub fn kill9(&mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-KILL", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        self.child.wait().unwrap()
    }

    /// What it logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// `mfad serve` on the SQLite store in `dir` (debug logs appended to `log`, then `extra`
/// set), once it serves.
pub async fn start(dir: &Path, log: &Path, extra: &[(&str, &str)]) -> Server {
    let mut cmd = command(dir, &[("RUST_LOG", "debug")]);
    cmd.envs(extra.iter().copied());
    let mut server = Server::spawn(cmd, log.to_owned());
    server.wait_ready().await;
    server
}
