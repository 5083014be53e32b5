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
