//! `mfad-loadgen`: drives a running mfad over HTTP/1.1 keep-alive with real one-time
//! codes and reports throughput, latency percentiles and (optionally) the server's RSS.
//!
//! See the crate README for the scenarios. The process exits with status 1 when any
//! measured request got an unexpected status or body, so a benchmark can never silently
//! measure an error path, and with status 2 when the run could not be carried out.

mod client;
mod report;
mod rss;
mod scenarios;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// `GET /health` back to back: the HTTP floor.
    Health,
    /// `POST /auth/factors/enroll` of TOTP factors (secret, URI and QR code).
    EnrollTotp,
    /// Verify prepared generic_otp challenges with their right codes (setup not measured).
    Verify,
    /// Challenge + verify pre-enrolled TOTP factors with real TOTP codes.
    VerifyTotp,
    /// Enroll TOTP -> challenge -> verify with a real code, per iteration.
    Flow,
}

impl Scenario {
    /// The command-line spelling.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Health => "health",
            Scenario::EnrollTotp => "enroll-totp",
            Scenario::Verify => "verify",
            Scenario::VerifyTotp => "verify-totp",
            Scenario::Flow => "flow",
        }
    }
}

/// Load generator for mfad (WorkOS MFA API compatible server).
#[derive(Debug, Parser)]
#[command(name = "mfad-loadgen", version, about)]
pub struct Cli {
    /// Scenario to run.
    #[arg(long, value_enum)]
    pub scenario: Scenario,

    /// Base URL of the server (plain http only).
    #[arg(long, env = "MFAD_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,

    /// API key sent as `Authorization: Bearer <key>` (required except for `health`).
    #[arg(long, env = "MFAD_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,

    /// Concurrent keep-alive connections, one worker task each.
    #[arg(long, short = 'c', default_value_t = 64)]
    pub connections: usize,

    /// Length of the measured phase: seconds, or a value like `10s`, `500ms`, `2m`.
    #[arg(long, visible_alias = "duration", default_value = "10", value_parser = parse_duration)]
    pub seconds: Duration,

    /// PID of the server: report its peak RSS (VmHWM) and the highest VmRSS sampled.
    #[arg(long)]
    pub server_pid: Option<u32>,

    /// `verify`: number of generic_otp challenges to prepare before measuring; the
    /// measured phase stops early when they are used up.
    #[arg(long, default_value_t = 200_000)]
    pub prepare: usize,

    /// `verify`: challenges created per generic_otp factor during preparation.
    #[arg(long, default_value_t = 10)]
    pub challenges_per_factor: usize,

    /// `verify-totp`: TOTP factors to enroll; each can succeed once per 30 s step, so
    /// verify throughput is capped near factors/30 per second.
    #[arg(long, default_value_t = 5_000)]
    pub factors: usize,

    /// Per-request timeout (counts as an error when exceeded).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// Tokio worker threads (default: the number of CPUs).
    #[arg(long)]
    pub threads: Option<usize>,

    /// Print the report as one JSON line on stdout (the table then goes to stderr).
    #[arg(long)]
    pub json: bool,
}

/// Parses `10`, `2.5`, `10s`, `500ms` or `2m`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        (s, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (try 10, 10s, 500ms or 2m)"))?;
    Duration::try_from_secs_f64(value * scale).map_err(|e| format!("{s:?}: {e}"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mfad-loadgen: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: &Cli) -> Result<ExitCode> {
    let threads = cli
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
        .max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let report = runtime.block_on(scenarios::run(cli, threads))?;

    if cli.json {
        eprint!("{}", report.table());
        println!("{}", report.json());
    } else {
        print!("{}", report.table());
    }
    let errors = report.errors();
    if errors > 0 {
        eprintln!("mfad-loadgen: FAILED: {errors} request(s) got an unexpected response");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("-1").is_err());
    }

    #[test]
    fn cli_parses() {
        let cli = Cli::try_parse_from([
            "mfad-loadgen",
            "--scenario",
            "verify-totp",
            "--duration",
            "3s",
            "-c",
            "8",
        ])
        .unwrap();
        assert_eq!(cli.scenario, Scenario::VerifyTotp);
        assert_eq!(cli.seconds, Duration::from_secs(3));
        assert_eq!(cli.connections, 8);
    }
}
