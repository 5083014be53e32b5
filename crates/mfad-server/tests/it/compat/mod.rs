//! The official-SDK compatibility suites (`tests/compat/`), run against the `mfad` binary
//! that cargo just built. Each suite installs its pinned SDKs from npm/PyPI on first run,
//! starts the server, a Twilio stand-in (and an SMTP sink), and drives the SDKs as black
//! boxes, on this run's backend. They need `node`, `npm` and `python3`, as every machine
//! of this project's kind has. nextest runs them one at a time (`.config/nextest.toml`).

use std::path::PathBuf;
use std::process::Command;

use crate::support::{on_postgres, test_database};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run_suite(script: &str, extra_env: &[(&str, String)]) {
    let root = repo_root();
    let mut cmd = Command::new("bash");
    cmd.arg(root.join(script))
        .arg(env!("CARGO_BIN_EXE_mfad"))
        .current_dir(&root);
    cmd.env_remove("MFAD_DATABASE_URL");
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("running the compatibility suite");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(out.status.success(), "{script} failed with {}", out.status);
}

/// Runs a suite with mfad on this run's backend (on PostgreSQL, a fresh database).
fn run_suite_on_backend(script: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let db = on_postgres().then(|| runtime.block_on(test_database()));
    let env: Vec<_> = db
        .iter()
        .map(|db| ("MFAD_DATABASE_URL", db.url().to_owned()))
        .collect();
    run_suite(script, &env);
}

#[test]
fn workos_official_sdks() {
    run_suite_on_backend("tests/compat/run.sh");
}

#[test]
fn fusionauth_official_clients_and_elixir_shapes() {
    run_suite_on_backend("tests/compat/fusionauth/run.sh");
}
