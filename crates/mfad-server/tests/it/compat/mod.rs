//! The official-SDK compatibility suites (`tests/compat/`), run against the `mfad` binary
//! that cargo just built. Each suite installs its pinned SDKs from npm/PyPI on first run,
//! starts the server, a Twilio stand-in (and an SMTP sink), and drives the SDKs as black
//! boxes. They need `node`, `npm` and `python3`, as every machine of this project's kind has.

use std::path::PathBuf;
use std::process::Command;

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

#[test]
fn workos_official_sdks_on_sqlite() {
    run_suite("tests/compat/run.sh", &[]);
}

#[test]
fn fusionauth_official_clients_and_elixir_shapes_on_sqlite() {
    run_suite("tests/compat/fusionauth/run.sh", &[]);
}

/// The same suites with mfad on PostgreSQL (a fresh database each), whenever a test
/// server is configured (`MFAD_TEST_DATABASE_URL`, or `CI`, where it is mandatory).
fn run_suite_on_postgres(script: &str) {
    let Some(admin) = mfad_store::testing::admin_url_from_env() else {
        eprintln!("skipping {script} on PostgreSQL: MFAD_TEST_DATABASE_URL is not set");
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let db = runtime
        .block_on(mfad_store::testing::TestDatabase::create(&admin))
        .unwrap();
    run_suite(script, &[("MFAD_DATABASE_URL", db.url().to_owned())]);
}

#[test]
fn workos_official_sdks_on_postgres() {
    run_suite_on_postgres("tests/compat/run.sh");
}

#[test]
fn fusionauth_official_clients_and_elixir_shapes_on_postgres() {
    run_suite_on_postgres("tests/compat/fusionauth/run.sh");
}
