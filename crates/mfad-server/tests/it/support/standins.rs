//! Local stand-ins for the delivery services unreachable here, speaking their real wire
//! format: Twilio's Messages API and an SMTP server. Each records what it receives.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::routing::post;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// The Twilio credentials the harness configures; the stand-in refuses any others.
pub const TWILIO_ACCOUNT_SID: &str = "ACtest";
pub const TWILIO_AUTH_TOKEN: &str = "test-token";

/// What a stand-in has received, in order.
pub type Inbox<T> = Arc<Mutex<Vec<T>>>;

/// One text received by the Twilio stand-in.
#[derive(Debug, Clone)]
pub struct Sms {
    pub account: String,
    pub to: String,
    pub from: String,
    pub body: String,
}

/// One message received by the SMTP sink.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: String,
    pub body: String,
}

/// A minimal Twilio Messages API: checks Basic auth, records the form, answers 201 JSON.
pub async fn twilio_standin() -> (String, Inbox<Sms>) {
    let inbox: Inbox<Sms> = Arc::default();
    let app = axum::Router::new()
        .route(
            "/2010-04-01/Accounts/{sid}/Messages.json",
            post(
                |State(inbox): State<Inbox<Sms>>,
                 Path(sid): Path<String>,
                 headers: axum::http::HeaderMap,
                 axum::Form(form): axum::Form<HashMap<String, String>>| async move {
                    let expected = format!(
                        "Basic {}",
                        data_encoding::BASE64
                            .encode(format!("{sid}:{TWILIO_AUTH_TOKEN}").as_bytes())
                    );
                    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&expected)
                    {
                        return (
                            axum::http::StatusCode::UNAUTHORIZED,
                            axum::Json(
                                json!({"code": 20003, "message": "Authenticate", "status": 401}),
                            ),
                        );
                    }
                    inbox.lock().unwrap().push(Sms {
                        account: sid,
                        to: form["To"].clone(),
                        from: form["From"].clone(),
                        body: form["Body"].clone(),
                    });
                    (
                        axum::http::StatusCode::CREATED,
                        axum::Json(
                            json!({"sid": "SM00000000000000000000000000000000", "status": "queued"}),
                        ),
                    )
                },
            ),
        )
        .with_state(inbox.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), inbox)
}

/// A minimal SMTP server that stores every message (RFC 5321's happy path: EHLO, MAIL,
/// RCPT, DATA, RSET, NOOP, QUIT).
pub async fn smtp_sink() -> (SocketAddr, Inbox<Mail>) {
    let inbox: Inbox<Mail> = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let store = inbox.clone();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let store = store.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                let _ = write.write_all(b"220 sink ESMTP\r\n").await;
                let mut rcpt = String::new();
                while let Ok(Some(line)) = lines.next_line().await {
                    let upper = line.to_ascii_uppercase();
                    let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                        b"250-sink\r\n250 8BITMIME\r\n"
                    } else if upper.starts_with("RCPT TO:") {
                        rcpt = line[8..].trim().trim_matches(['<', '>']).to_owned();
                        b"250 OK\r\n"
                    } else if upper.starts_with("DATA") {
                        let _ = write.write_all(b"354 go ahead\r\n").await;
                        let mut data = String::new();
                        while let Ok(Some(l)) = lines.next_line().await {
                            if l == "." {
                                break;
                            }
                            data.push_str(&l);
                            data.push('\n');
                        }
                        store.lock().unwrap().push(Mail {
                            to: rcpt.clone(),
                            body: data,
                        });
                        b"250 OK queued\r\n"
                    } else if upper.starts_with("QUIT") {
                        let _ = write.write_all(b"221 bye\r\n").await;
                        return;
                    } else {
                        b"250 OK\r\n"
                    };
                    if write.write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, inbox)
}
