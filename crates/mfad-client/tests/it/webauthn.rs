//! The typed WebAuthn calls against the real `mfad` binary, with webauthn-rs's software
//! passkey: `mfad webauthn config` run beside the running server (it takes effect on the
//! next request), then registration, assertion, passkey login, listing and deletion.

use mfad_client::Error;
use mfad_client::webauthn::{
    CompleteCeremony, ImportCredential, StartLogin, StartRegistration, Workflow,
};
use serde_json::{Value, json};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::prelude::{
    CreationChallengeResponse, RequestChallengeResponse, Url,
};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

use crate::support::Mfad;

const ORIGIN: &str = "https://example.com";

fn complete(credential: impl serde::Serialize) -> CompleteCeremony {
    let mut v = serde_json::to_value(credential).unwrap();
    let o = v.as_object_mut().unwrap();
    o.remove("rawId");
    let ext = o.remove("extensions").unwrap_or(json!({}));
    o.insert("clientExtensionResults".into(), ext);
    CompleteCeremony {
        credential: v,
        origin: ORIGIN.into(),
        rp_id: "example.com".into(),
    }
}

#[tokio::test]
async fn passkeys_through_the_typed_calls() {
    let mfad = Mfad::start().await;
    let client = mfad.client();
    let fa = client.fusionauth();
    let user = "3f0b8f5e-6a53-4d2e-9a1f-0c6a4a1d7e10";
    let register = StartRegistration {
        user_id: user.into(),
        workflow: Workflow::Bootstrap,
        display_name: "Richard".into(),
        name: None,
        user_agent: None,
    };
    // Not configured yet: a validation error.
    assert!(matches!(
        fa.start_webauthn_registration(&register).await,
        Err(Error::Validation { .. })
    ));
    let out = mfad.cli(&[
        "webauthn",
        "config",
        "--tenant",
        "t1",
        "--rp-id",
        "example.com",
        "--origin",
        ORIGIN,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("origins: https://example.com"));

    let mut pk = SoftPasskey::new(true);
    let origin = Url::parse(ORIGIN).unwrap();
    let options = fa
        .start_webauthn_registration(&register)
        .await
        .unwrap()
        .options;
    let ccr: CreationChallengeResponse =
        serde_json::from_value(json!({"publicKey": options})).unwrap();
    let reg = pk.do_registration(origin.clone(), ccr).unwrap();
    let cred = fa
        .complete_webauthn_registration(&complete(reg))
        .await
        .unwrap();
    assert_eq!(cred.user_id, user);
    assert_eq!(cred.tenant_id, mfad.tenant_uuid());

    let login = StartLogin {
        user_id: user.into(),
        workflow: Workflow::Reauthentication,
        credential_id: Some(cred.id.clone()),
        application_id: None,
        state: Some(json!({"k": "v"})),
    };
    let get = |options: Value, pk: &mut SoftPasskey| {
        let rcr: RequestChallengeResponse =
            serde_json::from_value(json!({"publicKey": options})).unwrap();
        complete(pk.do_authentication(origin.clone(), rcr).unwrap())
    };
    let options = fa.start_webauthn_login(&login).await.unwrap().options;
    let asserted = fa
        .complete_webauthn_assertion(&get(options, &mut pk))
        .await
        .unwrap();
    assert!(asserted.sign_count > cred.sign_count);
    let options = fa.start_webauthn_login(&login).await.unwrap().options;
    let answer = get(options, &mut pk);
    let logged_in = fa.complete_webauthn_login(&answer).await.unwrap();
    assert_eq!(logged_in.status, 200);
    assert_eq!(logged_in.user.as_ref().map(|u| u.id.as_str()), Some(user));
    // The same answer again: the challenge is used up.
    assert!(matches!(
        fa.complete_webauthn_login(&answer).await,
        Err(Error::Validation { .. })
    ));

    let listed = fa.webauthn_credentials_for_user(user).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(fa.webauthn_credential(&cred.id).await.unwrap().id, cred.id);
    fa.delete_webauthn_credential(&cred.id).await.unwrap();
    assert!(matches!(
        fa.webauthn_credential(&cred.id).await,
        Err(Error::NotFound(_))
    ));

    // Imported back from what the listing showed (its PEM public key), the same
    // authenticator asserts again; a bad key is a validation error and stores nothing.
    let shown = &listed[0];
    let pem = shown.extra["publicKey"].as_str().unwrap().to_owned();
    let import = ImportCredential {
        user_id: user.into(),
        credential_id: shown.credential_id.clone(),
        public_key: pem,
        algorithm: shown.algorithm,
        sign_count: asserted.sign_count,
        name: Some("imported".into()),
    };
    let bad = ImportCredential {
        public_key: "not a key".into(),
        ..import.clone()
    };
    assert!(matches!(
        fa.import_webauthn_credentials(&[bad]).await,
        Err(Error::Validation { .. })
    ));
    assert!(
        fa.webauthn_credentials_for_user(user)
            .await
            .unwrap()
            .is_empty()
    );
    fa.import_webauthn_credentials(&[import]).await.unwrap();
    let imported = fa.webauthn_credentials_for_user(user).await.unwrap();
    assert_eq!(imported.len(), 1);
    assert_eq!(imported[0].credential_id, shown.credential_id);
    let login = StartLogin {
        credential_id: Some(imported[0].id.clone()),
        ..login
    };
    let options = fa.start_webauthn_login(&login).await.unwrap().options;
    let again = fa
        .complete_webauthn_assertion(&get(options, &mut pk))
        .await
        .unwrap();
    assert_eq!(again.credential_id, shown.credential_id);
    fa.delete_webauthn_credentials_for_user(user).await.unwrap();
    assert!(
        fa.webauthn_credentials_for_user(user)
            .await
            .unwrap()
            .is_empty()
    );
}
