//! `mfad keys rotate` while a server verifies TOTP codes: nothing fails during rotation,
//! an interrupted rotation resumes, two rotations at once replace each value once, and
//! afterwards every factor, recovery code, JWT secret and stored idempotent response opens
//! under the new key alone; without a key it still needs, the server refuses to start.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use serde_json::{Value, json};

use super::{Site, post, totp_step};

const WORKOS_FACTORS: usize = 120;
const KEYED_ENROLLS: usize = 5;
const FA_USERS: [&str; 2] = [
    "5a4c6d1e-8d0b-4a7e-9f4c-1b2a3c4d5e6f",
    "0f9e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f",
];

fn b32(v: &Value) -> Vec<u8> {
    data_encoding::BASE32_NOPAD
        .decode(v["totp"]["secret"].as_str().unwrap().as_bytes())
        .unwrap()
}

fn key_id(master: &str) -> String {
    mfad_crypto::Keyring::parse(master)
        .unwrap()
        .active_id()
        .to_string()
}

/// `ID COUNT` lines as pairs.
fn status(site: &Site, env: &[(&str, &str)]) -> Vec<(String, u64)> {
    site.cli_ok(env, &["keys", "status"])
        .lines()
        .map(|l| {
            let (id, n) = l.split_once(' ').unwrap();
            (id.to_owned(), n.parse().unwrap())
        })
        .collect()
}

/// Challenges a WorkOS factor and verifies `code`; whether it was valid (panics on any
/// non-2xx answer).
async fn verify(http: &reqwest::Client, url: &str, auth: &str, factor: &str, code: &str) -> bool {
    let ch = post(
        http,
        &format!("{url}/auth/factors/{factor}/challenge"),
        auth,
        None,
        &json!({}),
    )
    .await;
    assert_eq!(ch.status, 201, "{ch:?}");
    let path = format!(
        "{url}/auth/challenges/{}/verify",
        ch.body["id"].as_str().unwrap()
    );
    let v = post(http, &path, auth, None, &json!({"code": code})).await;
    assert!((200..300).contains(&v.status), "{v:?}");
    v.body["valid"] == json!(true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotation_runs_online_resumes_and_the_old_key_retires() {
    let site = Site::new().await;
    let k1 = mfad_crypto::generate_master_key_text().unwrap().to_string();
    let k2 = mfad_crypto::generate_master_key_text().unwrap().to_string();
    let (old_id, new_id) = (key_id(&k1), key_id(&k2));
    let both = format!("new:{k2},old:{k1}");
    // Data sealed under the legacy single key, whose id is derived from the key.
    let legacy = [("MFAD_MASTER_KEY", k1.as_str())];
    let rotating = [("MFAD_MASTER_KEYS", both.as_str())];
    let new_only_text = format!("new:{k2}\n");
    let keys_file = site.dir.path().join("master.keys");
    std::fs::write(&keys_file, &new_only_text).unwrap();
    let keys_file = keys_file.to_str().unwrap().to_owned();
    let new_only = [("MFAD_MASTER_KEYS_FILE", keys_file.as_str())];

    let api_key = site.api_key(&legacy);
    let bearer = format!("Bearer {api_key}");
    let secret_file = site.dir.path().join("hs256");
    std::fs::write(&secret_file, "a".repeat(40)).unwrap();
    site.cli_ok(
        &legacy,
        &[
            "jwt-key",
            "add",
            "--tenant",
            "t",
            "--hs256-secret-file",
            secret_file.to_str().unwrap(),
        ],
    );

    let http = reqwest::Client::new();
    let node = site.serve("legacy", &legacy).await;
    let mut factors: Vec<(String, Vec<u8>)> = Vec::new();
    let mut keyed = Vec::new();
    for i in 0..WORKOS_FACTORS {
        let body = json!({"type": "totp", "totp_issuer": "Acme", "totp_user": format!("u{i}@x")});
        let idem = (i < KEYED_ENROLLS).then(|| format!("enroll-{i}"));
        let r = post(
            &http,
            &format!("{}/auth/factors/enroll", node.url),
            &bearer,
            idem.as_deref(),
            &body,
        )
        .await;
        assert_eq!(r.status, 201, "{r:?}");
        factors.push((r.body["id"].as_str().unwrap().to_owned(), b32(&r.body)));
        if let Some(k) = idem {
            keyed.push((k, body, r.body));
        }
    }
    let mut recovery = Vec::new();
    for user in FA_USERS {
        let s = reqwest::Client::new()
            .get(format!("{}/api/two-factor/secret", node.url))
            .header("Authorization", &api_key)
            .send()
            .await
            .unwrap();
        let s: Value = s.json().await.unwrap();
        let secret = data_encoding::BASE64
            .decode(s["secret"].as_str().unwrap().as_bytes())
            .unwrap();
        let r = post(
            &http,
            &format!("{}/api/user/two-factor/{user}", node.url),
            &api_key,
            None,
            &json!({"method": "authenticator", "secret": s["secret"], "code": totp_step(&secret, 0)}),
        )
        .await;
        assert_eq!(r.status, 200, "{r:?}");
        recovery.push((
            user,
            r.body["recoveryCodes"][0].as_str().unwrap().to_owned(),
        ));
    }
    // Sealed: the WorkOS secrets, the FusionAuth secrets and 10 recovery codes per user,
    // the JWT secret and the stored responses of the keyed enrolls.
    let sealed = (WORKOS_FACTORS + FA_USERS.len() * 11 + 1 + KEYED_ENROLLS) as u64;
    assert_eq!(status(&site, &legacy), vec![(old_id.clone(), sealed)]);

    // Without the key that seals all this, neither the server nor the CLI starts, and
    // both name the key.
    let out = site
        .command("refused", &new_only)
        .arg("serve")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains(&old_id), "{err}");
    let out = site.cli(&new_only, &["api-key", "list"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains(&old_id), "{err}");
    assert_eq!(
        status(&site, &new_only),
        vec![("new".to_owned(), 0), (old_id.clone(), sealed)],
        "status still works, naming the missing key by its id"
    );

    // Every node gets both keys, the new one active; the legacy node goes.
    let node_b = site.serve("rotating", &rotating).await;
    drop(node);

    // Load: each pre-existing factor verified once, then enroll-and-verify until the
    // rotation is over, recording when each verification succeeded.
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (http, url, bearer, stop) = (
            http.clone(),
            node_b.url.clone(),
            bearer.clone(),
            stop.clone(),
        );
        let factors = factors.clone();
        tokio::spawn(async move {
            let mut ok_at = Vec::new();
            let mut enrolled = Vec::new();
            for (id, secret) in &factors {
                assert!(
                    verify(&http, &url, &bearer, id, &totp_step(secret, 0)).await,
                    "{id}"
                );
                ok_at.push(Instant::now());
            }
            while !stop.load(Ordering::Relaxed) {
                let r = post(
                    &http,
                    &format!("{url}/auth/factors/enroll"),
                    &bearer,
                    None,
                    &json!({"type": "totp", "totp_issuer": "Acme", "totp_user": "load@x"}),
                )
                .await;
                assert_eq!(r.status, 201, "{r:?}");
                let (id, secret) = (r.body["id"].as_str().unwrap().to_owned(), b32(&r.body));
                assert!(verify(&http, &url, &bearer, &id, &totp_step(&secret, 0)).await);
                ok_at.push(Instant::now());
                enrolled.push((id, secret));
            }
            (ok_at, enrolled)
        })
    };

    // A rotation interrupted after its first batch...
    let started = Instant::now();
    let mut first = site
        .command("rotate0", &rotating)
        .args(["keys", "rotate", "--batch-size", "1"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // Its first progress line (after any start-up warnings) means one batch is done.
    let mut lines = BufReader::new(first.stderr.take().unwrap()).lines();
    let line = lines
        .find(|l| l.as_ref().is_ok_and(|l| l.contains("rotated")))
        .unwrap()
        .unwrap();
    assert!(line.starts_with("totp_secret: 1 rotated"), "{line}");
    first.kill().unwrap();
    first.wait().unwrap();
    let partway = status(&site, &rotating);
    assert!(
        partway.iter().any(|(id, n)| id == "old" && *n > 0),
        "{partway:?}"
    );
    // ...resumed by two rotations at once (two nodes).
    let runs: Vec<_> = (0..2)
        .map(|i| {
            site.command(&format!("rotate{}", i + 1), &rotating)
                .args(["keys", "rotate", "--batch-size", "3"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<_> = tokio::task::spawn_blocking(move || {
        runs.into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    let finished = Instant::now();
    for out in &outputs {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    stop.store(true, Ordering::Relaxed);
    let (ok_at, enrolled) = load.await.unwrap();
    let during = ok_at
        .iter()
        .filter(|t| **t > started && **t < finished)
        .count();
    assert!(during > 0, "no verification ran while rotating");
    let after = status(&site, &rotating);
    let total = sealed + enrolled.len() as u64;
    assert_eq!(
        after,
        vec![("new".to_owned(), total), ("old".to_owned(), 0)]
    );
    // Both runs end by printing `ID COUNT` lines: the old key seals nothing (the load
    // may still have enrolled factors after they printed).
    for out in &outputs {
        let text = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        let new: u64 = lines[0].strip_prefix("new ").unwrap().parse().unwrap();
        assert!((sealed..=total).contains(&new), "{text}");
        assert_eq!(lines[1], "old 0");
    }

    // The old key retires: the server starts on the new key alone, and everything opens.
    drop(node_b);
    let node_c = site.serve("retired", &new_only).await;
    assert_eq!(status(&site, &new_only), vec![("new".to_owned(), total)]);
    assert_eq!(key_id(&k2), new_id);
    for (id, secret) in factors.iter().chain(&enrolled) {
        assert!(
            verify(&http, &node_c.url, &bearer, id, &totp_step(secret, 1)).await,
            "{id} no longer verifies"
        );
    }
    for (user, code) in &recovery {
        let started = post(
            &http,
            &format!("{}/api/two-factor/start", node_c.url),
            &api_key,
            None,
            &json!({"userId": user}),
        )
        .await;
        let login = post(
            &http,
            &format!("{}/api/two-factor/login", node_c.url),
            "",
            None,
            &json!({"twoFactorId": started.body["twoFactorId"], "code": code}),
        )
        .await;
        assert_eq!(login.status, 200, "{login:?}");
        assert_eq!(login.body["method"], "recoveryCode");
        let listed = reqwest::Client::new()
            .get(format!(
                "{}/api/user/two-factor/recovery-code/{user}",
                node_c.url
            ))
            .header("Authorization", &api_key)
            .send()
            .await
            .unwrap();
        let listed: Value = listed.json().await.unwrap();
        assert_eq!(listed["recoveryCodes"].as_array().unwrap().len(), 9);
    }
    // Stored responses were re-sealed too: a retried enroll replays the same factor.
    for (k, body, first) in &keyed {
        let r = post(
            &http,
            &format!("{}/auth/factors/enroll", node_c.url),
            &bearer,
            Some(k),
            body,
        )
        .await;
        assert_eq!((r.status, &r.body), (201, first));
        assert!(r.replayed);
    }
}
