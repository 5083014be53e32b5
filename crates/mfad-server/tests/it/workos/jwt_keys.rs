//! Tenant-bound JWT keys through the real binary: `mfad jwt-key add/list/remove` beside a
//! running server, and every combination of key × `tid` × `X-FusionAuth-TenantId` ×
//! tenant on a FusionAuth JWT route that writes (enabling an authenticator).

use std::path::Path;
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mfad_core::TenantId;
use serde_json::{Value, json};

use crate::support::process::{Server, command, run_cli, start};
use crate::support::totp_now;
use crate::support::{Resp, read};

const ENV_SECRET: &str = "deployment-wide-hs256-secret-of-acme!!";

/// A tenant made with `mfad api-key create`: its id and key.
struct Tenant {
    id: TenantId,
    key: String,
}

fn create_tenant(dir: &Path, name: &str) -> Tenant {
    let out = run_cli(dir, &["api-key", "create", "--tenant", name]);
    let id = out
        .lines()
        .next()
        .and_then(|l| l.split('(').nth(1))
        .and_then(|rest| rest.strip_suffix(')'))
        .and_then(TenantId::parse)
        .unwrap_or_else(|| panic!("no tenant id in {out}"));
    let key = out.lines().last().unwrap().trim().to_owned();
    Tenant { id, key }
}

/// A key that signs tokens, and the tenant (index) it belongs to, if the server knows it.
struct Signer {
    name: &'static str,
    alg: Algorithm,
    kid: Option<&'static str>,
    key: EncodingKey,
    tenant: Option<usize>,
}

impl Signer {
    fn sign(&self, user: &str, tid: Option<Value>) -> String {
        let mut header = Header::new(self.alg);
        header.kid = self.kid.map(str::to_owned);
        let now = unix_now();
        let mut claims = json!({"sub": user, "iat": now, "exp": now + 600});
        if let Some(tid) = tid {
            claims["tid"] = tid;
        }
        jsonwebtoken::encode(&header, &claims, &self.key).unwrap()
    }
}

#[expect(
    clippy::disallowed_methods,
    reason = "the spawned server runs on the real clock"
)]
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// How a request names a tenant (in `tid` or in the header), relative to the key's.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Naming {
    Absent,
    Own,
    OwnUuid,
    Other,
    OtherUuid,
    Garbage,
}

const NAMINGS: [Naming; 6] = [
    Naming::Absent,
    Naming::Own,
    Naming::OwnUuid,
    Naming::Other,
    Naming::OtherUuid,
    Naming::Garbage,
];

impl Naming {
    fn text(self, own: &TenantId, other: &TenantId) -> Option<String> {
        match self {
            Naming::Absent => None,
            Naming::Own => Some(own.as_str().to_owned()),
            Naming::OwnUuid => Some(own.as_uuid()),
            Naming::Other => Some(other.as_str().to_owned()),
            Naming::OtherUuid => Some(other.as_uuid()),
            Naming::Garbage => Some("acme".to_owned()),
        }
    }

    fn agrees(self) -> bool {
        matches!(self, Naming::Absent | Naming::Own | Naming::OwnUuid)
    }
}

fn b64url(bytes: &[u8]) -> String {
    data_encoding::BASE64URL_NOPAD.encode(bytes)
}

async fn get(client: &reqwest::Client, url: String, key: &str) -> Resp {
    read(
        client
            .get(url)
            .header("Authorization", key)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// Enables an authenticator for `user` with `token`, naming `header` as the tenant.
async fn enable(
    client: &reqwest::Client,
    server: &Server,
    secret_of: &Tenant,
    token: &str,
    header: Option<String>,
) -> Resp {
    let secret = get(
        client,
        format!("{}/api/two-factor/secret", server.url),
        &secret_of.key,
    )
    .await
    .body;
    let body = json!({
        "method": "authenticator",
        "secret": secret["secret"],
        "code": totp_now(secret["secretBase32Encoded"].as_str().unwrap()),
    });
    let mut rb = client
        .post(format!("{}/api/user/two-factor", server.url))
        .bearer_auth(token)
        .json(&body);
    if let Some(h) = header {
        rb = rb.header("X-FusionAuth-TenantId", h);
    }
    read(rb.send().await.unwrap()).await
}

/// FusionAuth's status answer for `user` in `tenant`: 242 once it has a method, else 200.
async fn status(client: &reqwest::Client, server: &Server, tenant: &Tenant, user: &str) -> u16 {
    get(
        client,
        format!("{}/api/two-factor/status?userId={user}", server.url),
        &tenant.key,
    )
    .await
    .status
}

/// Polls `probe` until it answers `want`, within 2 s of the CLI change (`since`).
async fn within_two_seconds(
    since: tokio::time::Instant,
    want: u16,
    mut probe: impl AsyncFnMut() -> u16,
) {
    loop {
        let got = probe().await;
        if got == want {
            return;
        }
        assert!(
            since.elapsed() < Duration::from_secs(2),
            "still {got} (want {want}) 2 s after the change"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn jwt_keys_act_only_in_their_tenant_and_reload_while_serving() {
    let dir = tempfile::tempdir().unwrap();
    let tenants = [
        create_tenant(dir.path(), "acme"),
        create_tenant(dir.path(), "globex"),
    ];

    // acme: the deployment-wide secret (MFAD_JWT_DEFAULT_TENANT) and a P-256 PEM key;
    // globex: an HS256 secret and an Ed25519 key from a JWKS.
    let ec = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let ed = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let globex_secret = [7u8; 40];
    let files = dir.path();
    std::fs::write(files.join("ec.pem"), ec.public_key_pem()).unwrap();
    std::fs::write(files.join("globex.secret"), globex_secret).unwrap();
    let jwks = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "g-ed", "use": "sig",
        "x": b64url(ed.public_key_raw())}]});
    std::fs::write(files.join("globex.jwks"), jwks.to_string()).unwrap();
    let path = |f: &str| files.join(f).display().to_string();
    run_cli(
        dir.path(),
        &[
            "jwt-key",
            "add",
            "--tenant",
            "acme",
            "--public-key-file",
            &path("ec.pem"),
            "--kid",
            "a-ec",
        ],
    );
    let added = run_cli(
        dir.path(),
        &[
            "jwt-key",
            "add",
            "--tenant",
            "globex",
            "--hs256-secret-file",
            &path("globex.secret"),
            "--kid",
            "g-hs",
        ],
    );
    let g_hs_id = added
        .lines()
        .find_map(|l| l.strip_prefix("added "))
        .and_then(|l| l.split('\t').next())
        .unwrap()
        .to_owned();
    run_cli(
        dir.path(),
        &[
            "jwt-key",
            "add",
            "--tenant",
            "globex",
            "--jwks-file",
            &path("globex.jwks"),
        ],
    );

    let log = dir.path().join("serve.log");
    let server = start(
        dir.path(),
        &log,
        &[
            ("MFAD_JWT_HS256_SECRET", ENV_SECRET),
            ("MFAD_JWT_DEFAULT_TENANT", "acme"),
        ],
    )
    .await;
    let client = reqwest::Client::new();

    let signers = [
        Signer {
            name: "acme env HS256",
            alg: Algorithm::HS256,
            kid: None,
            key: EncodingKey::from_secret(ENV_SECRET.as_bytes()),
            tenant: Some(0),
        },
        Signer {
            name: "acme ES256 (PEM)",
            alg: Algorithm::ES256,
            kid: Some("a-ec"),
            key: EncodingKey::from_ec_pem(ec.serialize_pem().as_bytes()).unwrap(),
            tenant: Some(0),
        },
        Signer {
            name: "globex HS256",
            alg: Algorithm::HS256,
            kid: Some("g-hs"),
            key: EncodingKey::from_secret(&globex_secret),
            tenant: Some(1),
        },
        Signer {
            name: "globex EdDSA (JWKS)",
            alg: Algorithm::EdDSA,
            kid: Some("g-ed"),
            key: EncodingKey::from_ed_pem(ed.serialize_pem().as_bytes()).unwrap(),
            tenant: Some(1),
        },
        Signer {
            name: "unknown HS256",
            alg: Algorithm::HS256,
            kid: None,
            key: EncodingKey::from_secret(b"a-secret-that-no-tenant-has-at-all!!"),
            tenant: None,
        },
    ];

    let mut n = 0;
    for signer in &signers {
        // An unknown key is tried as if it claimed acme.
        let own = signer.tenant.unwrap_or(0);
        let (own_id, other_id) = (&tenants[own].id, &tenants[1 - own].id);
        for tid in NAMINGS {
            for header in NAMINGS {
                n += 1;
                let user = format!("user-{n}");
                let tid_claim = tid.text(own_id, other_id).map(Value::from);
                let token = signer.sign(&user, tid_claim);
                let header_text = header.text(own_id, other_id);
                let r = enable(&client, &server, &tenants[own], &token, header_text).await;
                let case = format!("{} × tid {tid:?} × header {header:?}", signer.name);
                let expected_home = match signer.tenant {
                    None => {
                        assert_eq!(r.status, 401, "{case}: {}", r.text);
                        assert_eq!(r.text, "", "{case}");
                        None
                    }
                    Some(_) if !(tid.agrees() && header.agrees()) => {
                        assert_eq!(r.status, 400, "{case}: {}", r.text);
                        assert_eq!(
                            r.body["generalErrors"][0]["code"], "[InvalidTenantId]",
                            "{case}"
                        );
                        None
                    }
                    Some(t) => {
                        assert_eq!(r.status, 200, "{case}: {}", r.text);
                        Some(t)
                    }
                };
                // The method landed in the key's tenant only, or nowhere.
                for (i, tenant) in tenants.iter().enumerate() {
                    let want = if expected_home == Some(i) { 242 } else { 200 };
                    assert_eq!(
                        status(&client, &server, tenant, &user).await,
                        want,
                        "{case}: tenant {i}"
                    );
                }
            }
        }
    }

    // The listing names tenants, kids and algorithms, never the secret.
    let listing = run_cli(dir.path(), &["jwt-key", "list"]);
    assert_eq!(listing.lines().count(), 3, "{listing}");
    for want in [
        "acme\ta-ec\tES256",
        "globex\tg-hs\tHS256",
        "globex\tg-ed\tEdDSA",
    ] {
        assert!(listing.contains(want), "{want} not in {listing}");
    }

    // Rotation while serving: a new globex key works within 2 s, beside the old one.
    let new_secret = [9u8; 32];
    std::fs::write(files.join("globex2.secret"), new_secret).unwrap();
    run_cli(
        dir.path(),
        &[
            "jwt-key",
            "add",
            "--tenant",
            "globex",
            "--hs256-secret-file",
            &path("globex2.secret"),
            "--kid",
            "g-hs2",
        ],
    );
    let added_at = tokio::time::Instant::now();
    let rotated = Signer {
        name: "globex HS256 (rotated)",
        alg: Algorithm::HS256,
        kid: Some("g-hs2"),
        key: EncodingKey::from_secret(&new_secret),
        tenant: Some(1),
    };
    let secret_url = format!("{}/api/two-factor/secret", server.url);
    let probe = |s: &Signer| {
        let token = s.sign("rotation", None);
        let (client, url) = (client.clone(), secret_url.clone());
        async move {
            client
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    within_two_seconds(added_at, 200, async || probe(&rotated).await).await;
    assert_eq!(probe(&signers[2]).await, 200, "the old key still works");

    // Removing the old key stops it within 2 s; the new one keeps working.
    run_cli(dir.path(), &["jwt-key", "remove", &g_hs_id]);
    let removed_at = tokio::time::Instant::now();
    within_two_seconds(removed_at, 401, async || probe(&signers[2]).await).await;
    assert_eq!(probe(&rotated).await, 200);
    let listing = run_cli(dir.path(), &["jwt-key", "list"]);
    assert!(
        !listing.contains(&g_hs_id) && listing.contains("g-hs2"),
        "{listing}"
    );

    // Removing an unknown key is an error naming it.
    let out = command(dir.path(), &[])
        .args(["jwt-key", "remove", &g_hs_id])
        .output()
        .unwrap();
    assert!(!out.status.success());
    drop(server);
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(!logs.contains(ENV_SECRET), "no secret in the logs");
}

#[tokio::test]
async fn jwt_key_add_refuses_bad_input_and_configured_keys_need_their_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path();
    std::fs::write(files.join("short"), "too-short").unwrap();
    let ec = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    std::fs::write(files.join("private.pem"), ec.serialize_pem()).unwrap();
    std::fs::write(
        files.join("two.pem"),
        format!("{}{}", ec.public_key_pem(), ec.public_key_pem()),
    )
    .unwrap();
    std::fs::write(
        files.join("oct.jwks"),
        r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#,
    )
    .unwrap();
    let path = |f: &str| files.join(f).display().to_string();
    for (args, says) in [
        (
            vec!["--hs256-secret-file", &path("short")],
            "at least 32 bytes",
        ),
        (
            vec!["--public-key-file", &path("private.pem")],
            "never a private key",
        ),
        (
            vec!["--public-key-file", &path("two.pem"), "--kid", "k"],
            "--kid names one key",
        ),
        (vec!["--jwks-file", &path("oct.jwks")], "symmetric keys"),
        (vec!["--jwks-file", &path("missing")], "reading"),
    ] {
        let mut all = vec!["jwt-key", "add", "--tenant", "acme"];
        all.extend(args.iter().copied());
        let out = command(dir.path(), &[]).args(&all).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{all:?}");
        assert!(stderr.contains(says), "{all:?}: {stderr}");
    }
    assert_eq!(
        run_cli(dir.path(), &["jwt-key", "list"]),
        "",
        "nothing was added"
    );
    // The deployment-wide variables without a tenant do not start.
    let out = command(dir.path(), &[("MFAD_JWT_HS256_SECRET", ENV_SECRET)])
        .arg("serve")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("MFAD_JWT_DEFAULT_TENANT"));
}
