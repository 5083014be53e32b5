//! FusionAuth's WebAuthn API over real HTTP, driven by webauthn-rs's software passkey
//! (`webauthn-authenticator-rs`): registration, assertion, passkey login, listing,
//! deletion, and every refusal in FusionAuth's Errors shape: wrong origin, wrong rp id,
//! a replayed or expired challenge (the injected clock), a counter that goes backwards,
//! another tenant's credential and a deleted one.

use serde_json::{Value, json};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::prelude::{RequestChallengeResponse, Url};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::CreationChallengeResponse;

use crypto_glue::ecdsa_p256::{self, EcdsaP256PrivateKey, EcdsaP256Signature, EcdsaP256SigningKey};
use crypto_glue::s256::Sha256;
use crypto_glue::traits::{Digest, LineEndingPem, Signer, SpkiEncodePublicKey};
use data_encoding::BASE64URL_NOPAD as B64;

use crate::support::{Auth, Resp, TestApp, send_json, spawn_app, uuid};

const RP: &str = "example.com";
const ORIGIN: &str = "https://example.com";
/// The field a used, expired or foreign ceremony is refused on: the signed client data
/// names a challenge mfad no longer holds.
const CLIENT_DATA: &str = "credential.response.clientDataJSON";

/// Sets the tenant's relying party as `mfad webauthn config` does.
async fn configure(app: &TestApp, tenant: &mfad_core::TenantId, origins: &[&str]) {
    app.app_state
        .service
        .set_webauthn_config(
            tenant,
            mfad_core::webauthn::ConfigInput {
                rp_id: RP.into(),
                rp_name: Some("Example".into()),
                origins: origins.iter().map(|o| (*o).to_owned()).collect(),
                attestation: mfad_core::webauthn::AttestationPolicy::None,
                trust_store_pem: None,
            },
        )
        .await
        .unwrap();
}

/// A test app whose `acme` tenant has the relying party set up (origin [`ORIGIN`]).
async fn configured_app() -> TestApp {
    let app = spawn_app().await;
    configure(&app, &app.tenant, &[ORIGIN]).await;
    app
}

/// The passkeys `auth` lists for `user`.
async fn credentials(app: &TestApp, auth: Auth<'_>, user: &str) -> Vec<Value> {
    let list = app
        .call_with("GET", &format!("/api/webauthn?userId={user}"), auth, None)
        .await;
    list.assert_json(200)["credentials"]
        .as_array()
        .unwrap()
        .clone()
}

/// A `PublicKeyCredential` as the FusionAuth clients send it: `id` (no `rawId`),
/// `clientExtensionResults`.
fn fusionauth_shape(credential: impl serde::Serialize) -> Value {
    let mut v = serde_json::to_value(credential).unwrap();
    let o = v.as_object_mut().unwrap();
    o.remove("rawId");
    let ext = o.remove("extensions").unwrap_or(json!({}));
    o.insert("clientExtensionResults".into(), ext);
    v
}

struct Passkeys<'a> {
    app: &'a TestApp,
    key: String,
    authenticator: SoftPasskey,
    origin: Url,
}

impl<'a> Passkeys<'a> {
    fn new(app: &'a TestApp) -> Self {
        Passkeys {
            app,
            key: app.key.clone(),
            authenticator: SoftPasskey::new(true),
            origin: Url::parse(ORIGIN).unwrap(),
        }
    }

    /// A new user with one passkey registered.
    async fn registered(app: &'a TestApp) -> (Self, String) {
        let mut pk = Passkeys::new(app);
        let user = uuid();
        pk.register(&user).await;
        (pk, user)
    }

    async fn register_start(&self, user: &str, workflow: &str) -> Resp {
        self.app
            .call_with(
                "POST",
                "/api/webauthn/register/start",
                Auth::Key(&self.key),
                Some(
                    json!({"userId": user, "workflow": workflow, "displayName": "Richard",
                            "name": "richard@piedpiper.com", "userAgent": "soft"}),
                ),
            )
            .await
    }

    /// Start's creation options.
    async fn creation_options(&self, user: &str, workflow: &str) -> Value {
        let start = self.register_start(user, workflow).await;
        start.assert_json(200)["options"].clone()
    }

    /// Runs the authenticator on start's options; the credential in FusionAuth's shape.
    fn create(&mut self, options: &Value) -> Value {
        let ccr: CreationChallengeResponse =
            serde_json::from_value(json!({"publicKey": options})).unwrap();
        let reg = self
            .authenticator
            .do_registration(self.origin.clone(), ccr)
            .unwrap();
        fusionauth_shape(reg)
    }

    async fn complete(&self, credential: Value, extra: Value) -> Resp {
        let mut body = json!({"credential": credential, "origin": ORIGIN, "rpId": RP});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        self.app
            .call_with(
                "POST",
                "/api/webauthn/register/complete",
                Auth::Key(&self.key),
                Some(body),
            )
            .await
    }

    /// Registers a passkey; the stored credential.
    async fn register(&mut self, user: &str) -> Value {
        let start = self.register_start(user, "bootstrap").await;
        let options = start.assert_json(200)["options"].clone();
        let credential = self.create(&options);
        let done = self.complete(credential, json!({})).await;
        done.assert_json(200)["credential"].clone()
    }

    async fn start(&self, user: &str) -> Value {
        let r = self
            .app
            .call_with(
                "POST",
                "/api/webauthn/start",
                Auth::Key(&self.key),
                Some(json!({"userId": user, "workflow": "reauthentication",
                            "applicationId": uuid(), "state": {"back": "/home"}})),
            )
            .await;
        r.assert_json(200)["options"].clone()
    }

    /// A new assertion ceremony for `user`, answered by the authenticator.
    async fn assertion(&mut self, user: &str) -> Value {
        let options = self.start(user).await;
        self.get(&options)
    }

    fn get(&mut self, options: &Value) -> Value {
        let rcr: RequestChallengeResponse =
            serde_json::from_value(json!({"publicKey": options})).unwrap();
        let auth = self
            .authenticator
            .do_authentication(self.origin.clone(), rcr)
            .unwrap();
        fusionauth_shape(auth)
    }

    /// `/api/webauthn/assert` without a tenant header.
    async fn assert(&self, credential: &Value) -> Resp {
        self.finish("/api/webauthn/assert", credential, None).await
    }

    async fn finish(&self, route: &str, credential: &Value, headers: Option<&str>) -> Resp {
        let mut rb = self.app.request("POST", route, Auth::None);
        if let Some(t) = headers {
            rb = rb.header("X-FusionAuth-TenantId", t);
        }
        let body = json!({"credential": credential, "origin": ORIGIN, "rpId": RP});
        send_json(rb, &body).await
    }
}

fn assert_wire_credential(c: &Value, user: &str, tenant_uuid: &str) {
    assert!(
        crate::support::uuid_shaped(c["id"].as_str().unwrap()),
        "{c}"
    );
    assert_eq!(c["userId"], user);
    assert_eq!(c["tenantId"], tenant_uuid);
    assert_eq!(c["relyingPartyId"], RP);
    assert_eq!(c["displayName"], "Richard");
    assert_eq!(c["name"], "richard@piedpiper.com");
    assert_eq!(c["userAgent"], "soft");
    // ES256 or RS256, as COSE numbers.
    assert!(matches!(c["algorithm"].as_i64(), Some(-7 | -257)), "{c}");
    assert!(c["credentialId"].as_str().is_some_and(|s| s.len() > 10));
    assert!(c["insertInstant"].is_i64());
    assert!(c["signCount"].is_u64());
    // The public key, as FusionAuth shows it: PEM SubjectPublicKeyInfo.
    assert!(
        c["publicKey"]
            .as_str()
            .is_some_and(|k| k.starts_with("-----BEGIN PUBLIC KEY-----")),
        "{c}"
    );
}

#[tokio::test]
async fn register_assert_login_list_and_delete() {
    let app = configured_app().await;
    let mut pk = Passkeys::new(&app);
    let user = uuid();

    // Start: the creation options mfad offers (ES256 and RS256, UV required for bootstrap).
    let start = pk.register_start(&user, "bootstrap").await;
    let options = start.assert_json(200)["options"].clone();
    assert_eq!(options["rp"]["id"], RP);
    assert_eq!(options["rp"]["name"], "Example");
    let algs: Vec<i64> = options["pubKeyCredParams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["alg"].as_i64().unwrap())
        .collect();
    assert!(algs.contains(&-7) && algs.contains(&-257), "{algs:?}");
    assert_eq!(
        options["authenticatorSelection"]["userVerification"],
        "required"
    );
    assert_eq!(options["attestation"], "none");
    assert_eq!(options["timeout"], 180_000);
    let credential = pk.create(&options);
    let done = pk.complete(credential, json!({"userId": user})).await;
    let stored = done.assert_json(200)["credential"].clone();
    assert_wire_credential(&stored, &user, &app.tenant.as_uuid());
    let id = stored["id"].as_str().unwrap().to_owned();

    // Listing and retrieval.
    let list = credentials(&app, Auth::Key(&app.key), &user).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], id.as_str());
    let one = app
        .key_call("GET", &format!("/api/webauthn/{id}"), None)
        .await;
    assert_eq!(one.assert_json(200)["credential"], stored);

    // Re-authentication assertion: the counter advances.
    let options = pk.start(&user).await;
    assert_eq!(options["rpId"], RP);
    assert_eq!(options["userVerification"], "required");
    assert_eq!(options["allowCredentials"][0]["id"], stored["credentialId"]);
    let assertion = pk.get(&options);
    let asserted = pk.assert(&assertion).await;
    let after = asserted.assert_json(200)["credential"].clone();
    assert_eq!(after["id"], id.as_str());
    assert!(
        after["signCount"].as_u64() > stored["signCount"].as_u64(),
        "{after}"
    );

    // Passkey login: the two-factor login's LoginResponse, with the start's state.
    let assertion = pk.assertion(&user).await;
    let login = pk
        .finish(
            "/api/webauthn/login",
            &assertion,
            Some(&app.tenant.as_uuid()),
        )
        .await;
    let body = login.assert_json(200);
    assert_eq!(body["user"]["id"], user.as_str());
    assert_eq!(body["user"]["tenantId"], app.tenant.as_uuid());
    assert_eq!(body["state"]["back"], "/home");
    assert!(
        body["token"]
            .as_str()
            .is_some_and(|t| t.split('.').count() == 3)
    );

    // Delete one; then all of the user's (none left: still 200).
    app.key_call("DELETE", &format!("/api/webauthn/{id}"), None)
        .await
        .assert_empty(200);
    app.key_call("GET", &format!("/api/webauthn/{id}"), None)
        .await
        .assert_empty(404);
    app.key_call("DELETE", &format!("/api/webauthn/{id}"), None)
        .await
        .assert_empty(404);
    pk.register(&user).await;
    app.key_call("DELETE", &format!("/api/webauthn?userId={user}"), None)
        .await
        .assert_empty(200);
    assert!(
        credentials(&app, Auth::Key(&app.key), &user)
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn bad_requests_are_fusionauth_validation_errors() {
    let app = spawn_app().await;
    let pk = Passkeys::new(&app);
    // Not configured yet.
    pk.register_start(&uuid(), "bootstrap")
        .await
        .assert_general_error("[WebAuthnNotConfigured]");
    configure(&app, &app.tenant, &[ORIGIN]).await;
    let r = app
        .key_call("POST", "/api/webauthn/register/start", Some(json!({})))
        .await;
    r.assert_field_error("userId", "[blank]userId");
    r.assert_field_error("workflow", "[blank]workflow");
    r.assert_field_error("displayName", "[blank]displayName");
    pk.register_start(&uuid(), "sideways")
        .await
        .assert_invalid("workflow");
    // A user without passkeys cannot start an assertion.
    app.key_call(
        "POST",
        "/api/webauthn/start",
        Some(json!({"userId": uuid(), "workflow": "bootstrap"})),
    )
    .await
    .assert_field_error("userId", "[missing]userId");
    // A credential that is no PublicKeyCredential.
    pk.complete(json!({"id": "abc"}), json!({}))
        .await
        .assert_invalid("credential");
    pk.assert(&json!("x")).await.assert_invalid("credential");
    // No key: 401, as for the Two Factor API.
    app.call_with(
        "GET",
        &format!("/api/webauthn?userId={}", uuid()),
        Auth::None,
        None,
    )
    .await
    .assert_empty(401);
}

#[tokio::test]
async fn wrong_origin_and_rp_id_are_refused() {
    let app = configured_app().await;
    let user = uuid();

    // The browser ran on a subdomain not on the allow-list: the signed client data says so.
    let mut pk = Passkeys::new(&app);
    pk.origin = Url::parse("https://login.example.com").unwrap();
    let options = pk.creation_options(&user, "bootstrap").await;
    let credential = pk.create(&options);
    pk.complete(credential, json!({}))
        .await
        .assert_invalid("origin");

    // The authenticator signed for another rp id (its hash in the authenticator data).
    let mut pk = Passkeys::new(&app);
    let mut options = pk.creation_options(&user, "bootstrap").await;
    options["rp"]["id"] = json!("com");
    let credential = pk.create(&options);
    pk.complete(credential, json!({}))
        .await
        .assert_invalid("rpId");

    // What the caller merely asserts must be on the allow-list too.
    let mut pk = Passkeys::new(&app);
    let options = pk.creation_options(&user, "bootstrap").await;
    let credential = pk.create(&options);
    pk.complete(
        credential.clone(),
        json!({"origin": "https://evil.example"}),
    )
    .await
    .assert_invalid("origin");
    let options = pk.creation_options(&user, "bootstrap").await;
    let credential = pk.create(&options);
    pk.complete(credential, json!({"rpId": "evil.example"}))
        .await
        .assert_invalid("rpId");

    // On assertion likewise.
    let mut pk = Passkeys::new(&app);
    pk.register(&user).await;
    let options = pk.start(&user).await;
    pk.origin = Url::parse("https://login.example.com").unwrap();
    let assertion = pk.get(&options);
    pk.assert(&assertion).await.assert_invalid("origin");
}

#[tokio::test]
async fn challenges_are_single_use_and_expire() {
    let app = configured_app().await;
    let (mut pk, user) = Passkeys::registered(&app).await;

    // Replayed: the same signed response twice.
    let assertion = pk.assertion(&user).await;
    pk.assert(&assertion).await.assert_json(200);
    pk.assert(&assertion).await.assert_invalid(CLIENT_DATA);
    pk.finish("/api/webauthn/login", &assertion, None)
        .await
        .assert_invalid(CLIENT_DATA);

    // Expired: answered just after the 180 s timeout, on the injected clock.
    let assertion = pk.assertion(&user).await;
    app.advance(181);
    pk.assert(&assertion).await.assert_invalid(CLIENT_DATA);
    // A registration challenge likewise.
    let options = pk.creation_options(&user, "general").await;
    let credential = pk.create(&options);
    app.advance(181);
    pk.complete(credential, json!({}))
        .await
        .assert_invalid(CLIENT_DATA);
    // Just inside the timeout it still works.
    let assertion = pk.assertion(&user).await;
    app.advance(179);
    pk.assert(&assertion).await.assert_json(200);
}

#[tokio::test]
async fn a_counter_that_goes_backwards_is_refused() {
    let app = configured_app().await;
    let (mut pk, user) = Passkeys::registered(&app).await;
    // Two ceremonies; the authenticator signs the first with counter n, the second n+1.
    let first = pk.start(&user).await;
    let second = pk.start(&user).await;
    let older = pk.get(&first);
    let newer = pk.get(&second);
    pk.assert(&newer).await.assert_json(200);
    // The older signature arriving now is what a cloned authenticator looks like.
    pk.assert(&older)
        .await
        .assert_invalid("credential.response.authenticatorData");
}

#[tokio::test]
async fn other_tenants_and_deleted_credentials_are_refused() {
    let app = configured_app().await;
    configure(&app, &app.other_tenant, &[ORIGIN]).await;
    let user = uuid();
    let mut pk = Passkeys::new(&app);
    let stored = pk.register(&user).await;
    let id = stored["id"].as_str().unwrap();

    // Another tenant's key sees nothing of it.
    let other = Auth::Key(&app.other_key);
    app.call_with("GET", &format!("/api/webauthn/{id}"), other.clone(), None)
        .await
        .assert_empty(404);
    app.call_with(
        "DELETE",
        &format!("/api/webauthn/{id}"),
        other.clone(),
        None,
    )
    .await
    .assert_empty(404);
    assert!(credentials(&app, other.clone(), &user).await.is_empty());
    app.call_with(
        "POST",
        "/api/webauthn/start",
        other,
        Some(json!({"userId": user, "workflow": "bootstrap"})),
    )
    .await
    .assert_field_error("userId", "[missing]userId");
    // This tenant's ceremony, answered under the other tenant's header: no such ceremony
    // there (and the ceremony is used up).
    let assertion = pk.assertion(&user).await;
    pk.finish(
        "/api/webauthn/assert",
        &assertion,
        Some(&app.other_tenant.as_uuid()),
    )
    .await
    .assert_invalid(CLIENT_DATA);

    // Deleted between start and finish.
    let assertion = pk.assertion(&user).await;
    app.key_call("DELETE", &format!("/api/webauthn/{id}"), None)
        .await
        .assert_empty(200);
    pk.assert(&assertion).await.assert_invalid("credential.id");
}

#[tokio::test]
async fn failed_assertions_are_throttled_like_codes() {
    let app = configured_app().await;
    let (mut pk, user) = Passkeys::registered(&app).await;
    // Five failures (a claimed origin off the allow-list) are judged and counted...
    for _ in 0..5 {
        let assertion = pk.assertion(&user).await;
        let r = app
            .call_with(
                "POST",
                "/api/webauthn/assert",
                Auth::None,
                Some(json!({"credential": assertion, "origin": "https://evil.example"})),
            )
            .await;
        r.assert_invalid("origin");
    }
    // ...then even a good assertion waits out the delay, as a right code would.
    let assertion = pk.assertion(&user).await;
    pk.assert(&assertion)
        .await
        .assert_throttled("[TooManyFailedAttempts]", "30");
    app.advance(31);
    let assertion = pk.assertion(&user).await;
    pk.assert(&assertion).await.assert_json(200);
}

/// A passkey made outside mfad: a P-256 key pair of the test's own and a credential id.
struct ForeignKey {
    key: EcdsaP256PrivateKey,
    credential_id: String,
}

impl ForeignKey {
    fn new() -> Self {
        ForeignKey {
            key: ecdsa_p256::new_key(),
            credential_id: B64.encode(uuid().as_bytes()),
        }
    }

    fn pem(&self) -> String {
        self.key
            .public_key()
            .to_public_key_pem(LineEndingPem::LF)
            .unwrap()
    }

    /// What an authenticator holding the key answers to `options` (user present and
    /// verified, counter `counter`), in FusionAuth's shape.
    fn assert(&self, options: &Value, counter: u32) -> Value {
        let client_data = json!({
            "type": "webauthn.get",
            "challenge": options["challenge"],
            "origin": ORIGIN,
            "crossOrigin": false,
        })
        .to_string();
        let mut auth_data = Sha256::digest(RP.as_bytes()).to_vec();
        auth_data.push(0x05);
        auth_data.extend_from_slice(&counter.to_be_bytes());
        let mut signed = auth_data.clone();
        signed.extend_from_slice(&Sha256::digest(client_data.as_bytes()));
        let signature: EcdsaP256Signature = EcdsaP256SigningKey::from(&self.key).sign(&signed);
        json!({
            "id": self.credential_id,
            "type": "public-key",
            "response": {
                "authenticatorData": B64.encode(&auth_data),
                "clientDataJSON": B64.encode(client_data.as_bytes()),
                "signature": B64.encode(&signature.to_der().to_bytes()),
                "userHandle": null,
            },
            "clientExtensionResults": {},
        })
    }

    fn wire(&self, user: &str, sign_count: u32) -> Value {
        json!({
            "algorithm": -7,
            "credentialId": self.credential_id,
            "publicKey": self.pem(),
            "signCount": sign_count,
            "userId": user,
            "name": "imported@piedpiper.com",
            "displayName": "Imported",
            "authenticatorSupportsUserVerification": true,
        })
    }
}

#[tokio::test]
async fn an_imported_credential_asserts_and_shows_its_key() {
    let app = configured_app().await;
    configure(&app, &app.other_tenant, &[ORIGIN]).await;
    let user = uuid();
    let foreign = ForeignKey::new();
    let r = app
        .key_call(
            "POST",
            "/api/webauthn/import",
            Some(json!({"credentials": [foreign.wire(&user, 5)], "validateDbConstraints": true})),
        )
        .await;
    r.assert_empty(200);

    // Listed with the key it was imported with, converted back from the stored COSE key.
    let creds = credentials(&app, Auth::Key(&app.key), &user).await;
    assert_eq!(creds.len(), 1, "{creds:?}");
    let c = &creds[0];
    assert_eq!(c["publicKey"], foreign.pem());
    assert_eq!(c["algorithm"], -7);
    assert_eq!(c["credentialId"], foreign.credential_id);
    assert_eq!(c["signCount"], 5);
    assert_eq!(c["name"], "imported@piedpiper.com");
    assert_eq!(c["relyingPartyId"], RP);
    let id = c["id"].as_str().unwrap();
    let one = app
        .key_call("GET", &format!("/api/webauthn/{id}"), None)
        .await;
    assert_eq!(
        one.assert_json(200)["credential"]["publicKey"],
        foreign.pem()
    );

    // An assertion signed with the key completes through the API; the counter moves on.
    let pk = Passkeys::new(&app);
    let options = pk.start(&user).await;
    let done = pk
        .finish("/api/webauthn/assert", &foreign.assert(&options, 6), None)
        .await;
    assert_eq!(done.assert_json(200)["credential"]["signCount"], 6);
    // A signature by another key is refused.
    let options = pk.start(&user).await;
    let impostor = ForeignKey {
        key: ecdsa_p256::new_key(),
        credential_id: foreign.credential_id.clone(),
    };
    let refused = pk
        .finish("/api/webauthn/assert", &impostor.assert(&options, 7), None)
        .await;
    assert_eq!(refused.status, 400, "{}", refused.text);

    // Another tenant sees nothing of it.
    let other = Auth::Key(&app.other_key);
    app.call_with("GET", &format!("/api/webauthn/{id}"), other.clone(), None)
        .await
        .assert_empty(404);
    assert!(credentials(&app, other, &user).await.is_empty());

    // Importing the same credential again conflicts, and nothing of the batch is kept.
    let again = ForeignKey::new();
    let r = app
        .key_call(
            "POST",
            "/api/webauthn/import",
            Some(json!({"credentials": [again.wire(&user, 0), foreign.wire(&user, 0)]})),
        )
        .await;
    r.assert_field_error("credential.id", "[duplicate]credential.id");
    let list = credentials(&app, Auth::Key(&app.key), &user).await;
    assert_eq!(list.len(), 1);
}

#[tokio::test]
async fn a_registered_key_shown_as_pem_imports_into_another_tenant() {
    // The PEM mfad shows for a soft passkey's credential is that authenticator's key: imported
    // elsewhere, the same authenticator asserts there.
    let app = configured_app().await;
    configure(&app, &app.other_tenant, &[ORIGIN]).await;
    let user = uuid();
    let mut pk = Passkeys::new(&app);
    let stored = pk.register(&user).await;
    let mut wire = stored.clone();
    wire.as_object_mut().unwrap().remove("id");
    let r = app
        .call_with(
            "POST",
            "/api/webauthn/import",
            Auth::Key(&app.other_key),
            Some(json!({"credentials": [wire]})),
        )
        .await;
    r.assert_empty(200);
    pk.key = app.other_key.clone();
    let options = pk.start(&user).await;
    let credential = pk.get(&options);
    pk.finish(
        "/api/webauthn/assert",
        &credential,
        Some(app.other_tenant.as_uuid().as_str()),
    )
    .await
    .assert_json(200);
}

#[tokio::test]
async fn bad_imports_are_fusionauth_validation_errors() {
    let app = configured_app().await;
    let import = |body: Value| app.key_call("POST", "/api/webauthn/import", Some(body));
    import(json!({}))
        .await
        .assert_field_error("credentials", "[blank]credentials");
    let user = uuid();
    let foreign = ForeignKey::new();
    let mut bad = foreign.wire(&user, 0);
    bad["publicKey"] =
        json!("-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n");
    let r = import(json!({"credentials": [foreign.wire(&user, 0), bad]})).await;
    r.assert_invalid("credentials[1].publicKey");
    // A P-256 key claimed as RS256 is no RS256 key.
    let mut wrong_alg = foreign.wire(&user, 0);
    wrong_alg["algorithm"] = json!(-257);
    import(json!({"credentials": [wrong_alg]}))
        .await
        .assert_invalid("credentials[0].publicKey");
    let r = import(json!({"credentials": [{"credentialId": "%%"}]})).await;
    r.assert_invalid("credentials[0].userId");
    r.assert_invalid("credentials[0].credentialId");
    r.assert_field_error(
        "credentials[0].algorithm",
        "[blank]credentials[0].algorithm",
    );
    // Nothing of a refused batch was kept.
    assert!(
        credentials(&app, Auth::Key(&app.key), &user)
            .await
            .is_empty()
    );
}
