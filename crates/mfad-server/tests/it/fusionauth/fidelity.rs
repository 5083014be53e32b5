//! FusionAuth's own types on the wire: tenant ids as UUIDs, `lastUsed` in every method
//! list, a reason phrase on 242. (Every response body is also deserialized into
//! FusionAuth's generated models by the harness's `read`.)

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

/// The raw status line of a GET, as a client that shows the reason phrase sees it.
async fn status_line(app: &TestApp, path: &str) -> String {
    let mut tcp = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: mfad\r\nAuthorization: {}\r\nConnection: close\r\n\r\n",
        app.key
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tcp.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw);
    text.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn status_242_carries_a_reason_phrase() {
    let app = spawn_app().await;
    let user = uuid();
    let path = format!("/api/two-factor/status?userId={user}");
    assert_eq!(status_line(&app, &path).await, "HTTP/1.1 200 OK");
    app.enable_authenticator(&user).await;
    assert_eq!(
        status_line(&app, &path).await,
        "HTTP/1.1 242 Two Factor Required"
    );
}

/// The `lastUsed` flags of a method list, by method kind.
fn last_used(methods: &serde_json::Value) -> Vec<(String, bool)> {
    methods
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let flag = m.get("lastUsed").map(|v| v.as_bool().unwrap());
            assert_ne!(flag, Some(false), "lastUsed is true or absent: {m}");
            (m["method"].as_str().unwrap().to_owned(), flag.is_some())
        })
        .collect()
}

#[tokio::test]
async fn last_used_is_kept_per_user_and_shown_in_every_method_list() {
    // Texts one number several times in a row: not a test of the send limits.
    let app = spawn_relaxed().await;
    let user = uuid();
    let (secret, _) = app.enable_authenticator(&user).await;
    app.enable_sms(&user, PHONE).await.assert_empty(200);
    // Never logged in: no method is marked.
    let started = app.start(&user).await;
    let none = [
        ("authenticator".to_owned(), false),
        ("sms".to_owned(), false),
    ];
    assert_eq!(last_used(&started["methods"]), none);

    // Log in with a texted code: sms is last used, in the login response and from then on.
    let tfid = started["twoFactorId"].as_str().unwrap();
    let sms_id = app.method_id(&user, "sms").await;
    let r = app
        .call_with(
            "POST",
            &format!("/api/two-factor/send/{tfid}"),
            Auth::None,
            Some(serde_json::json!({"methodId": sms_id})),
        )
        .await;
    r.assert_empty(200);
    let done = app.login(tfid, &app.last_sms_code(PHONE)).await;
    let sms_last = [
        ("authenticator".to_owned(), false),
        ("sms".to_owned(), true),
    ];
    assert_eq!(
        last_used(&done.assert_json(200)["user"]["twoFactor"]["methods"]),
        sms_last
    );
    let again = app.start(&user).await;
    assert_eq!(
        last_used(&again["methods"]),
        sms_last,
        "stored, not only on the login"
    );

    // A login with the authenticator moves the mark.
    let tfid = again["twoFactorId"].as_str().unwrap();
    let done = app.login(tfid, &app.totp(&secret)).await;
    let totp_last = [
        ("authenticator".to_owned(), true),
        ("sms".to_owned(), false),
    ];
    assert_eq!(
        last_used(&done.assert_json(200)["user"]["twoFactor"]["methods"]),
        totp_last
    );
    assert_eq!(last_used(&app.start(&user).await["methods"]), totp_last);

    // Another user's list is unaffected.
    let other = uuid();
    app.enable_authenticator(&other).await;
    assert_eq!(
        last_used(&app.start(&other).await["methods"]),
        [("authenticator".to_owned(), false)]
    );
}
