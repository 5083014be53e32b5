//! Authentication: API keys, JWTs (HS256, RS256, ES256; forged, expired, not yet valid,
//! `none`, algorithm confusion), tenants, and the 401s that change nothing.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use crate::support::*;

fn sign(alg: Algorithm, key: &EncodingKey, claims: &serde_json::Value) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, key).unwrap()
}

/// A token with `{"alg": "none"}` and no signature.
fn unsigned(claims: &serde_json::Value) -> String {
    let enc =
        |v: &serde_json::Value| data_encoding::BASE64URL_NOPAD.encode(v.to_string().as_bytes());
    format!(
        "{}.{}.",
        enc(&json!({"alg": "none", "typ": "JWT"})),
        enc(claims)
    )
}

#[tokio::test]
async fn rs256_es256_and_hs256_tokens_from_configured_keys_are_accepted() {
    let app = spawn_app().await;
    let claims = app.claims(&uuid());
    for token in [
        app.hs_jwt(claims.clone()),
        sign(Algorithm::RS256, &app.keys.rsa, &claims),
        sign(Algorithm::ES256, &app.keys.ec, &claims),
    ] {
        let r = app
            .call_with("GET", "/api/two-factor/secret", Auth::Jwt(&token), None)
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
}

#[tokio::test]
async fn bad_tokens_are_401_with_an_empty_body() {
    let app = spawn_app().await;
    let user = uuid();
    let claims = app.claims(&user);
    let now = app.now_unix() as i64;
    let mut expired = claims.clone();
    expired["exp"] = json!(now);
    let mut early = claims.clone();
    early["nbf"] = json!(now + 60);
    let mut no_sub = claims.clone();
    no_sub.as_object_mut().unwrap().remove("sub");
    let mut no_exp = claims.clone();
    no_exp.as_object_mut().unwrap().remove("exp");
    let hs = |c: &serde_json::Value| app.hs_jwt(c.clone());
    let mut tampered = hs(&claims);
    tampered.push('x');
    let cases = [
        (
            "wrong HMAC secret",
            sign(
                Algorithm::HS256,
                &EncodingKey::from_secret(b"another-secret-of-at-least-32-bytes!!"),
                &claims,
            ),
        ),
        (
            "unknown RSA key",
            sign(Algorithm::RS256, &app.keys.stranger_rsa, &claims),
        ),
        ("expired", hs(&expired)),
        ("not yet valid", hs(&early)),
        ("no sub", hs(&no_sub)),
        ("no exp", hs(&no_exp)),
        ("alg none", unsigned(&claims)),
        // HS/RS confusion: an HMAC made with the RSA public key (which an attacker has) as
        // the secret. That key is pinned to RS256 and never used as an HMAC secret.
        (
            "HS256 keyed with the public RSA PEM",
            sign(
                Algorithm::HS256,
                &EncodingKey::from_secret(app.keys.rsa_public_pem.as_bytes()),
                &claims,
            ),
        ),
        (
            "HS384 with the right secret (alg not pinned)",
            sign(
                Algorithm::HS384,
                &EncodingKey::from_secret(HS_SECRET.as_bytes()),
                &claims,
            ),
        ),
        ("RS256 header on an ES256 key's signature", {
            let es = sign(Algorithm::ES256, &app.keys.ec, &claims);
            let parts: Vec<&str> = es.split('.').collect();
            let header = data_encoding::BASE64URL_NOPAD
                .encode(json!({"alg": "RS256", "typ": "JWT"}).to_string().as_bytes());
            format!("{header}.{}.{}", parts[1], parts[2])
        }),
        ("tampered", tampered),
        ("garbage", "not.a.jwt".to_owned()),
    ];
    for (what, token) in cases {
        let r = app
            .call_with("GET", "/api/two-factor/secret", Auth::Jwt(&token), None)
            .await;
        assert_eq!(r.status, 401, "{what}: {}", r.text);
        assert_eq!(r.text, "", "{what}");
    }
    // Just before exp is fine; at exp it is not.
    let mut short = claims.clone();
    short["exp"] = json!(now + 10);
    let token = hs(&short);
    assert_eq!(
        app.call_with("GET", "/api/two-factor/secret", Auth::Jwt(&token), None)
            .await
            .status,
        200
    );
    app.advance(10);
    assert_eq!(
        app.call_with("GET", "/api/two-factor/secret", Auth::Jwt(&token), None)
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn a_forged_jwt_changes_nothing() {
    let app = spawn_app().await;
    let user = uuid();
    let (secret, _) = app.enable_authenticator(&user).await;
    let forged = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(b"an-attackers-secret-of-32-bytes!!!"),
        &app.claims(&user),
    );
    let r = app
        .call_with(
            "DELETE",
            &format!("/api/user/two-factor?code={}", app.totp(&secret)),
            Auth::Jwt(&forged),
            None,
        )
        .await;
    r.assert_empty(401);
    // An invalid JWT next to a valid key is still refused: the JWT names the user.
    let r = app
        .call_with(
            "DELETE",
            &format!("/api/user/two-factor?code={}", app.totp(&secret)),
            Auth::Elixir(&forged, &app.key),
            None,
        )
        .await;
    r.assert_empty(401);
    assert_eq!(app.status(&user).await, 242);
    // The real token works with the same code.
    let token = app.hs_jwt(app.claims(&user));
    let r = app
        .call_with(
            "DELETE",
            &format!("/api/user/two-factor?code={}", app.totp(&secret)),
            Auth::Jwt(&token),
            None,
        )
        .await;
    r.assert_empty(200);
}

#[tokio::test]
async fn api_key_failures_are_empty_401s() {
    let app = spawn_app().await;
    for auth in [
        Auth::None,
        Auth::Key("sk_01hzzzzzzzzzzzzzzzzzzzzzzz_wrong"),
        Auth::Key("not-a-key"),
        Auth::Key(&app.key[..app.key.len() - 1]),
    ] {
        let r = app
            .call_with(
                "POST",
                "/api/two-factor/start",
                auth.clone(),
                Some(json!({"userId": uuid()})),
            )
            .await;
        r.assert_empty(401);
    }
    // `Bearer sk_…` is the key too.
    let r = app
        .call_with("GET", "/api/two-factor/secret", Auth::Jwt(&app.key), None)
        .await;
    assert_eq!(r.status, 200);
    // Two keys is one too many.
    let r = app
        .call_with(
            "GET",
            "/api/two-factor/secret",
            Auth::Elixir(&app.other_key, &app.key),
            None,
        )
        .await;
    r.assert_empty(401);
}

/// Headers that do not name the `acme` key's tenant: another tenant in both forms, a
/// well-formed UUID of no tenant, a name, and bytes that are not text.
fn foreign_tenant_headers(app: &TestApp) -> Vec<reqwest::header::HeaderValue> {
    let text = |s: &str| reqwest::header::HeaderValue::from_str(s).unwrap();
    vec![
        text(app.other_tenant.as_str()),
        text(&app.other_tenant.as_uuid()),
        text(&uuid()),
        text("acme"),
        reqwest::header::HeaderValue::from_bytes(b"tenant_\xff").unwrap(),
    ]
}

#[tokio::test]
async fn a_tenant_header_that_is_not_the_keys_is_400_invalid_tenant_id() {
    let app = spawn_app().await;
    let user = uuid();
    let secret = app.secret().await;
    let token = app.hs_jwt(app.claims(&user));
    for header in foreign_tenant_headers(&app) {
        let send = |method: &str, path: &str, auth: Auth<'_>, body: Option<serde_json::Value>| {
            let mut rb = app
                .request(method, path, auth)
                .header("X-FusionAuth-TenantId", header.clone());
            if let Some(b) = body {
                rb = rb
                    .header("Content-Type", "application/json")
                    .body(b.to_string());
            }
            async move { read(rb.send().await.unwrap()).await }
        };
        // A key alone, on a route that also takes a JWT and on key-only routes.
        send("GET", "/api/two-factor/secret", Auth::Key(&app.key), None)
            .await
            .assert_general_error("[InvalidTenantId]");
        send(
            "POST",
            "/api/two-factor/start",
            Auth::Key(&app.key),
            Some(json!({"userId": user})),
        )
        .await
        .assert_general_error("[InvalidTenantId]");
        send(
            "POST",
            &format!("/api/user/two-factor/{user}"),
            Auth::Key(&app.key),
            Some(json!({"method": "authenticator", "secret": secret, "code": app.totp(&secret)})),
        )
        .await
        .assert_general_error("[InvalidTenantId]");
        // Elixir's JWT + key: the key names the tenant, and the header must agree.
        send(
            "POST",
            "/api/user/two-factor",
            Auth::Elixir(&token, &app.key),
            Some(json!({"code": app.totp(&secret), "delivery": "None", "secret": secret})),
        )
        .await
        .assert_general_error("[InvalidTenantId]");

        // Credentials come first: a bad key or JWT is still an empty 401.
        send(
            "GET",
            "/api/two-factor/secret",
            Auth::Key("sk_01hzzzzzzzzzzzzzzzzzzzzzzz_wrong"),
            None,
        )
        .await
        .assert_empty(401);
        send(
            "POST",
            "/api/two-factor/start",
            Auth::Key(&app.key[..app.key.len() - 1]),
            Some(json!({"userId": user})),
        )
        .await
        .assert_empty(401);
        send(
            "GET",
            "/api/two-factor/secret",
            Auth::Jwt("not.a.jwt"),
            None,
        )
        .await
        .assert_empty(401);
        send("GET", "/api/two-factor/secret", Auth::None, None)
            .await
            .assert_empty(401);
    }
    // None of it enabled anything.
    assert_eq!(app.status(&user).await, 200);
    // Blank, `undefined` and `null` are what clients send for no tenant: absent.
    for header in ["", "undefined", "null"] {
        let r = read(
            app.request("GET", "/api/two-factor/secret", Auth::Key(&app.key))
                .header("X-FusionAuth-TenantId", header)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, 200, "{header:?}: {}", r.text);
    }
}

#[tokio::test]
async fn jwt_calls_act_only_in_the_tenant_of_their_key() {
    let app = spawn_app().await;
    let user = uuid();
    let secret = app.secret().await;
    let enable = |code: String| json!({"method": "authenticator", "secret": secret, "code": code});

    // The repro: a token without tid, pointed at another tenant by the header, is
    // refused, and globex's user gets nothing.
    let mut bare = app.claims(&user);
    bare.as_object_mut().unwrap().remove("tid");
    let token = app.hs_jwt(bare.clone());
    for header in [
        app.other_tenant.as_str().to_owned(),
        app.other_tenant.as_uuid(),
    ] {
        let r = read(
            app.request("POST", "/api/user/two-factor", Auth::Jwt(&token))
                .header("X-FusionAuth-TenantId", header)
                .header("Content-Type", "application/json")
                .body(enable(app.totp(&secret)).to_string())
                .send()
                .await
                .unwrap(),
        )
        .await;
        r.assert_general_error("[InvalidTenantId]");
    }
    let r = read(
        app.request(
            "GET",
            &format!("/api/two-factor/status?userId={user}"),
            Auth::Key(&app.other_key),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200, "globex's {user} has no method: {}", r.text);

    // Without tid or header, the key's tenant (acme) is the one.
    let r = app
        .call_with(
            "POST",
            "/api/user/two-factor",
            Auth::Jwt(&token),
            Some(enable(app.totp(&secret))),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(app.status(&user).await, 242);
    app.advance(30);

    // A tid naming another tenant, or nothing mfad knows, is refused, header or not.
    for tid in [
        json!(app.other_tenant.as_str()),
        json!(app.other_tenant.as_uuid()),
        json!("acme"),
        json!(42),
    ] {
        let mut claims = app.claims(&user);
        claims["tid"] = tid.clone();
        let t = app.hs_jwt(claims);
        app.call_with("GET", "/api/two-factor/secret", Auth::Jwt(&t), None)
            .await
            .assert_general_error("[InvalidTenantId]");
    }
    // A header that names no tenant is refused on a JWT call too, with or without a tid.
    let token_tid = app.hs_jwt(app.claims(&user));
    for t in [&token, &token_tid] {
        let r = read(
            app.request("GET", "/api/two-factor/secret", Auth::Jwt(t))
                .header("X-FusionAuth-TenantId", "acme")
                .send()
                .await
                .unwrap(),
        )
        .await;
        r.assert_general_error("[InvalidTenantId]");
    }
    // Elixir's JWT + key: a key of another tenant than the JWT's is refused.
    app.call_with(
        "GET",
        "/api/two-factor/secret",
        Auth::Elixir(&token_tid, &app.other_key),
        None,
    )
    .await
    .assert_general_error("[InvalidTenantId]");
    // A tid that agrees, in either form, with a header that agrees, in either form.
    for (tid, header) in [
        (app.tenant.as_uuid(), app.tenant.as_str().to_owned()),
        (app.tenant.as_str().to_owned(), app.tenant.as_uuid()),
    ] {
        let mut claims = app.claims(&user);
        claims["tid"] = json!(tid);
        let r = read(
            app.request(
                "GET",
                "/api/two-factor/secret",
                Auth::Jwt(&app.hs_jwt(claims)),
            )
            .header("X-FusionAuth-TenantId", header)
            .send()
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }

    // The token mfad itself issues at login works for the JWT routes.
    let started = app.start(&user).await;
    let r = app
        .login(started["twoFactorId"].as_str().unwrap(), &app.totp(&secret))
        .await;
    let issued = r.assert_json(200)["token"].as_str().unwrap().to_owned();
    app.advance(30);
    let r = app
        .call_with(
            "DELETE",
            &format!("/api/user/two-factor?code={}", app.totp(&secret)),
            Auth::Jwt(&issued),
            None,
        )
        .await;
    r.assert_empty(200);
    assert_eq!(app.status(&user).await, 200);
}

#[tokio::test]
async fn jwks_files_pin_each_key_to_its_algorithm() {
    // The same keys, published as a JWKS document instead of PEM.
    let dir = tempfile::tempdir().unwrap();
    let rsa_jwk = rsa_jwk_from_pem(&test_keys().rsa_public_pem);
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, json!({"keys": [rsa_jwk]}).to_string()).unwrap();
    let app = spawn_with(Options {
        vars: vec![("MFAD_JWT_PUBLIC_KEYS_FILE", path.display().to_string())],
        ..Options::default()
    })
    .await;
    let claims = app.claims(&uuid());
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("rsa-1".into());
    let token = jsonwebtoken::encode(&header, &claims, &app.keys.rsa).unwrap();
    assert_eq!(
        app.call_with("GET", "/api/two-factor/secret", Auth::Jwt(&token), None)
            .await
            .status,
        200
    );
    // The EC key is not in this JWKS.
    let token = sign(Algorithm::ES256, &app.keys.ec, &claims);
    assert_eq!(
        app.call_with("GET", "/api/two-factor/secret", Auth::Jwt(&token), None)
            .await
            .status,
        401
    );
    // The JWK says RS256: PS256 with the same key is refused.
    let token = sign(Algorithm::PS256, &app.keys.rsa, &claims);
    assert_eq!(
        app.call_with("GET", "/api/two-factor/secret", Auth::Jwt(&token), None)
            .await
            .status,
        401
    );
}

/// `{kty: RSA, n, e, alg: RS256, kid}` from a SubjectPublicKeyInfo PEM (2048-bit, e = 65537).
fn rsa_jwk_from_pem(pem: &str) -> serde_json::Value {
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = data_encoding::BASE64.decode(b64.as_bytes()).unwrap();
    // The modulus is the 257-byte INTEGER (leading 0x00) after `02 82 01 01`.
    let at = der
        .windows(4)
        .position(|w| w == [0x02, 0x82, 0x01, 0x01])
        .unwrap()
        + 4;
    let n = &der[at + 1..at + 257];
    json!({
        "kty": "RSA",
        "alg": "RS256",
        "kid": "rsa-1",
        "use": "sig",
        "n": data_encoding::BASE64URL_NOPAD.encode(n),
        "e": "AQAB",
    })
}
