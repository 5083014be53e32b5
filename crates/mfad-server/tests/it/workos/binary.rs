//! The real `mfad` binary on its default SQLite store: CLI beside a running server, crash
//! safety, and logs free of secrets. These run on the real clock, as a deployed server
//! does. (On PostgreSQL the same concerns — several processes on one database, outages,
//! nothing acknowledged lost — are covered by `multinode`.)

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinSet;

use serde_json::{Value, json};

use crate::support::process::{Server, command, free_port, output_ok, run_cli, start};
use crate::support::{read, totp_now};

fn create_key(dir: &std::path::Path, tenant: &str) -> String {
    run_cli(dir, &["api-key", "create", "--tenant", tenant])
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_owned()
}

async fn post(
    client: &reqwest::Client,
    url: String,
    key: &str,
    body: Value,
) -> crate::support::Resp {
    read(
        client
            .post(url)
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn cli_keys_work_against_a_running_server_and_revocation_is_immediate() {
    let dir = tempfile::tempdir().unwrap();
    let first = create_key(dir.path(), "acme");
    assert!(first.starts_with("sk_"));
    let log = dir.path().join("serve.log");
    let server = start(dir.path(), &log, &[]).await;
    let client = reqwest::Client::new();
    // Created while the server runs, on the same SQLite file.
    let second = create_key(dir.path(), "acme");
    let r = post(
        &client,
        format!("{}/auth/factors/enroll", server.url),
        &second,
        json!({"type": "generic_otp"}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let list = command(dir.path(), &[])
        .args(["api-key", "list"])
        .output()
        .unwrap();
    let listing = String::from_utf8(list.stdout).unwrap();
    assert_eq!(listing.lines().count(), 2, "{listing}");
    assert!(
        !listing.contains(&first) && !listing.contains(&second),
        "secrets never listed"
    );
    let second_id = listing
        .lines()
        .nth(1)
        .unwrap()
        .split('\t')
        .next()
        .unwrap()
        .to_owned();
    let out = command(dir.path(), &[])
        .args(["api-key", "revoke", &second_id])
        .output()
        .unwrap();
    assert!(out.status.success());
    // Revoked by another process: the server's key cache (MFAD_API_KEY_CACHE_SECS, 2 s by
    // default) bounds how long the key keeps working.
    let revoked_at = tokio::time::Instant::now();
    loop {
        let r = post(
            &client,
            format!("{}/auth/factors/enroll", server.url),
            &second,
            json!({"type": "generic_otp"}),
        )
        .await;
        if r.status == 401 {
            break;
        }
        assert_eq!(r.status, 201);
        assert!(
            revoked_at.elapsed() < Duration::from_millis(2500),
            "revocation not effective within the cache TTL"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = post(
        &client,
        format!("{}/auth/factors/enroll", server.url),
        &first,
        json!({"type": "generic_otp"}),
    )
    .await;
    assert_eq!(r.status, 201);
    // The master key was generated on first use, private to the owner.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("data/master.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[tokio::test]
async fn sigkill_during_enrollments_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let key = create_key(dir.path(), "acme");
    let log = dir.path().join("serve.log");
    let server = start(dir.path(), &log, &[]).await;
    let url = server.url.clone();
    let client = reqwest::Client::new();

    // Eight concurrent streams of enrollments; the server is killed mid-stream.
    let acked = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
    let mut tasks = JoinSet::new();
    for w in 0..8 {
        let (client, url, key, acked) = (client.clone(), url.clone(), key.clone(), acked.clone());
        tasks.spawn(async move {
            for i in 0.. {
                let body = json!({"type": "totp", "totp_issuer": "Crash", "totp_user": format!("w{w}-{i}")});
                let Ok(resp) = client.post(format!("{url}/auth/factors/enroll")).bearer_auth(&key).json(&body).send().await else { break };
                if resp.status() != 201 {
                    break;
                }
                let Ok(v) = resp.json::<Value>().await else { break };
                acked.lock().unwrap().push((v["id"].as_str().unwrap().to_owned(), v["totp"]["secret"].as_str().unwrap().to_owned()));
            }
        });
    }
    // Kill once a good number were acknowledged (polling, bounded).
    let acked = kill_mid_load(server, &acked, tasks, "enrollments", 10).await;

    let server = start(dir.path(), &log, &[]).await;
    for (id, _) in &acked {
        let r = read(
            client
                .get(format!("{}/auth/factors/{id}", server.url))
                .bearer_auth(&key)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, 200, "acknowledged factor {id} lost");
    }
    // Each one still verifies (the sealed secret decrypts to the one handed out).
    for (id, secret) in acked.iter().step_by(7) {
        let ch = post(
            &client,
            format!("{}/auth/factors/{id}/challenge", server.url),
            &key,
            json!({}),
        )
        .await;
        let v = post(
            &client,
            format!(
                "{}/auth/challenges/{}/verify",
                server.url,
                ch.body["id"].as_str().unwrap()
            ),
            &key,
            json!({"code": totp_now(secret)}),
        )
        .await;
        assert_eq!(v.body["valid"], true, "{id}: {}", v.text);
    }
}

/// Once `acked` holds 200 acknowledged answers (within 30 s, polled every `poll_ms`),
/// SIGKILLs the server under the load of `tasks`, lets them run out, and returns every
/// answer acknowledged before the kill.
async fn kill_mid_load<T: Clone>(
    mut server: Server,
    acked: &Arc<Mutex<Vec<T>>>,
    mut tasks: JoinSet<()>,
    what: &str,
    poll_ms: u64,
) -> Vec<T> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while acked.lock().unwrap().len() < 200 {
        assert!(tokio::time::Instant::now() < deadline, "{what} too slow");
        tokio::time::sleep(Duration::from_millis(poll_ms)).await;
    }
    server.kill9();
    while tasks.join_next().await.is_some() {}
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 200);
    acked
}

/// One API key drives the whole load here, so its request limit is lifted.
const NO_KEY_LIMIT: &[(&str, &str)] = &[("MFAD_RATE_LIMIT_PER_KEY", "0")];

/// Verifications are committed in groups on SQLite (issue 8 §4): a 201 still means its
/// group committed, so every verification answered `valid: true` before a SIGKILL is
/// still verified after the restart.
#[tokio::test]
async fn sigkill_during_verifications_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let key = create_key(dir.path(), "acme");
    let log = dir.path().join("serve.log");
    let server = start(dir.path(), &log, NO_KEY_LIMIT).await;
    let url = server.url.clone();
    let client = reqwest::Client::new();

    // Eight streams, each on a factor of its own (so the per-factor throttle never sees
    // more than one failure in a row) and its generic OTP challenges, prepared before the
    // load: each challenge gets one wrong code, then its right one.
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut tasks = JoinSet::new();
    for _ in 0..8 {
        let factor = post(
            &client,
            format!("{url}/auth/factors/enroll"),
            &key,
            json!({"type": "generic_otp"}),
        )
        .await;
        let fid = factor.body["id"].as_str().unwrap().to_owned();
        let mut challenges = Vec::new();
        for _ in 0..250 {
            let ch = post(
                &client,
                format!("{url}/auth/factors/{fid}/challenge"),
                &key,
                json!({}),
            )
            .await;
            assert_eq!(ch.status, 201, "{}", ch.text);
            challenges.push((
                ch.body["id"].as_str().unwrap().to_owned(),
                ch.body["code"].as_str().unwrap().to_owned(),
            ));
        }
        let (client, url, key, acked) = (client.clone(), url.clone(), key.clone(), acked.clone());
        tasks.spawn(async move {
            for (id, code) in challenges {
                let wrong = if code == "000000" { "000001" } else { "000000" };
                for (attempt, right) in [(wrong, false), (code.as_str(), true)] {
                    let verify = format!("{url}/auth/challenges/{id}/verify");
                    let Ok(resp) = client
                        .post(verify)
                        .bearer_auth(&key)
                        .json(&json!({"code": attempt}))
                        .send()
                        .await
                    else {
                        return;
                    };
                    if resp.status() != 201 {
                        return;
                    }
                    let Ok(v) = resp.json::<Value>().await else {
                        return;
                    };
                    assert_eq!(v["valid"], right, "{v}");
                    if right {
                        acked.lock().unwrap().push(id.clone());
                    }
                }
            }
        });
    }
    let acked = kill_mid_load(server, &acked, tasks, "verifications", 5).await;

    let server = start(dir.path(), &log, NO_KEY_LIMIT).await;
    for id in &acked {
        let again = post(
            &client,
            format!("{}/auth/challenges/{id}/verify", server.url),
            &key,
            json!({"code": "000000"}),
        )
        .await;
        assert_eq!(
            again.status, 422,
            "acknowledged verification of {id} lost: {}",
            again.text
        );
        assert_eq!(
            again.body["code"], "authentication_challenge_previously_verified",
            "{}",
            again.text
        );
    }
}

#[tokio::test]
async fn logs_carry_no_secrets_codes_keys_or_full_phone_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let key = create_key(dir.path(), "acme");
    let log = dir.path().join("serve.log");
    // Twilio pointed at a closed port: delivery fails, which is the path that logs the most.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let server = start(
        dir.path(),
        &log,
        &[
            ("MFAD_SMS_PROVIDER", "twilio"),
            ("MFAD_TWILIO_BASE_URL", &dead),
            ("MFAD_TWILIO_ACCOUNT_SID", "ACx"),
            ("MFAD_TWILIO_AUTH_TOKEN", "tw-secret-token"),
            ("MFAD_TWILIO_FROM", "+15005550006"),
        ],
    )
    .await;
    let client = reqwest::Client::new();
    let t = post(
        &client,
        format!("{}/auth/factors/enroll", server.url),
        &key,
        json!({"type": "totp", "totp_issuer": "A", "totp_user": "u"}),
    )
    .await;
    let secret = t.body["totp"]["secret"].as_str().unwrap().to_owned();
    let g = post(
        &client,
        format!("{}/auth/factors/enroll", server.url),
        &key,
        json!({"type": "generic_otp"}),
    )
    .await;
    let ch = post(
        &client,
        format!(
            "{}/auth/factors/{}/challenge",
            server.url,
            g.body["id"].as_str().unwrap()
        ),
        &key,
        json!({}),
    )
    .await;
    let code = ch.body["code"].as_str().unwrap().to_owned();
    post(
        &client,
        format!(
            "{}/auth/challenges/{}/verify",
            server.url,
            ch.body["id"].as_str().unwrap()
        ),
        &key,
        json!({"code": code}),
    )
    .await;
    let s = post(
        &client,
        format!("{}/auth/factors/enroll", server.url),
        &key,
        json!({"type": "sms", "phone_number": "+14155552671"}),
    )
    .await;
    let failed = post(
        &client,
        format!(
            "{}/auth/factors/{}/challenge",
            server.url,
            s.body["id"].as_str().unwrap()
        ),
        &key,
        json!({}),
    )
    .await;
    assert_eq!(failed.status, 502, "{}", failed.text);
    assert_eq!(failed.body["code"], "delivery_failed");
    drop(server);
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(
        logs.contains("SMS delivery failed"),
        "the failure is logged: {logs}"
    );
    for needle in [
        secret.as_str(),
        code.as_str(),
        key.as_str(),
        &key[key.len() - 20..],
        "+14155552671",
        "4155552671",
        "tw-secret-token",
    ] {
        assert!(!logs.contains(needle), "log leaks {needle:?}");
    }
}

fn sms_countries(dir: &std::path::Path, args: &[&str]) -> String {
    let mut cmd = command(dir, &[]);
    cmd.args(["tenant", "sms-countries", "--tenant", "acme"])
        .args(args);
    output_ok(cmd, &args)
}

#[tokio::test]
async fn tenant_sms_countries_from_the_cli_apply_to_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let key = create_key(dir.path(), "acme");
    let server = start(dir.path(), &dir.path().join("mfad.log"), &[]).await;
    let client = reqwest::Client::new();
    let enroll = |phone: &'static str| {
        post(
            &client,
            format!("{}/auth/factors/enroll", server.url),
            &key,
            json!({"type": "sms", "phone_number": phone}),
        )
    };
    assert_eq!(enroll("+442079460958").await.status, 201);
    // Set while the server runs: its next enrollment sees the rule, no restart.
    let shown = sms_countries(dir.path(), &["--deny", "gb"]);
    assert!(shown.contains("denied: GB"), "{shown}");
    let r = enroll("+442079460958").await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.body["code"], "sms_country_not_allowed");
    assert_eq!(enroll("+14155552671").await.status, 201);
    assert!(sms_countries(dir.path(), &[]).contains("denied: GB"));
    let cleared = sms_countries(dir.path(), &["--clear"]);
    assert!(cleared.contains("denied: (deployment's)"), "{cleared}");
    assert_eq!(enroll("+442079460958").await.status, 201);
    // Unknown tenants and country codes are refused with a message.
    let out = command(dir.path(), &[])
        .args([
            "tenant",
            "sms-countries",
            "--tenant",
            "nope",
            "--deny",
            "GB",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let out = command(dir.path(), &[])
        .args([
            "tenant",
            "sms-countries",
            "--tenant",
            "acme",
            "--allow",
            "USA",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("USA"));
}

/// `mfad webauthn config <args>` for `tenant`; its output, success or not.
fn webauthn_config(dir: &std::path::Path, tenant: &str, args: &[&str]) -> std::process::Output {
    command(dir, &[])
        .args(["webauthn", "config", "--tenant", tenant])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn webauthn_config_from_the_cli_finds_the_tenant_by_name_or_id() {
    let dir = tempfile::tempdir().unwrap();
    // A tenant made by `jwt-key add` has no API key, and is still found.
    let secret = dir.path().join("hs256.secret");
    std::fs::write(&secret, "0123456789abcdef0123456789abcdef\n").unwrap();
    let added = run_cli(
        dir.path(),
        &[
            "jwt-key",
            "add",
            "--tenant",
            "acme",
            "--hs256-secret-file",
            secret.to_str().unwrap(),
        ],
    );
    let tenant_line = added.lines().next().unwrap().to_owned();
    assert!(tenant_line.starts_with("tenant: acme (tenant_"), "{added}");
    let tenant_id = tenant_line
        .trim_start_matches("tenant: acme (")
        .trim_end_matches(')')
        .to_owned();

    let shown = run_cli(dir.path(), &["webauthn", "config", "--tenant", "acme"]);
    assert_eq!(shown, format!("{tenant_line}\nwebauthn: not configured\n"));

    let set = webauthn_config(
        dir.path(),
        &tenant_id,
        &["--rp-id", "localhost", "--origin", "http://localhost:8080"],
    );
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let by_name = run_cli(dir.path(), &["webauthn", "config", "--tenant", "acme"]);
    assert_eq!(String::from_utf8(set.stdout).unwrap(), by_name);
    assert_eq!(
        by_name,
        format!(
            "{tenant_line}\nrp id: localhost\nrp name: localhost\n\
             origins: http://localhost:8080\nattestation: none\ntrust store: none\n"
        )
    );

    let unknown = webauthn_config(dir.path(), "nope", &[]);
    assert!(!unknown.status.success());
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("no tenant named \"nope\""),
        "{}",
        String::from_utf8_lossy(&unknown.stderr)
    );
    let direct = webauthn_config(
        dir.path(),
        "acme",
        &[
            "--rp-id",
            "localhost",
            "--origin",
            "http://localhost:8080",
            "--attestation",
            "direct",
        ],
    );
    assert!(!direct.status.success());
    assert!(String::from_utf8_lossy(&direct.stderr).contains("--trust-store"));
}
