//! SMS delivery adapters for [`mfad_core::sms::SmsSender`]:
//!
//! * [`ConsoleSms`]: development only; logs the message so a developer can read the code.
//! * [`TwilioSms`]: Twilio's Messages API (`POST /2010-04-01/Accounts/{sid}/Messages.json`,
//!   form-encoded `To`, `From`, `Body`, HTTP Basic auth).
//! * [`WebhookSms`]: a JSON `{to, body}` POST signed with HMAC-SHA-256, for any gateway.
//!
//! and email delivery adapters for [`mfad_core::email::EmailSender`] in [`email`]:
//! [`ConsoleEmail`] (development only) and [`SmtpEmail`].

use std::time::Duration;

use async_trait::async_trait;
use hmac::{Hmac, KeyInit, Mac};
use mfad_core::phone::PhoneNumber;
use mfad_core::sms::SmsSender;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use sha2::Sha256;

pub mod email;

pub use email::{ConsoleEmail, SmtpEmail};

/// Header carrying the webhook signature: `t=<unix seconds>,v1=<hex HMAC-SHA256>` over
/// `"<t>.<body>"`, the scheme Stripe popularised, so receivers can reject replays.
pub const WEBHOOK_SIGNATURE_HEADER: &str = "X-Mfad-Signature";

/// Prints messages to the log. Codes are visible: never use in production.
#[derive(Debug, Default)]
pub struct ConsoleSms;

#[async_trait]
impl SmsSender for ConsoleSms {
    fn provider(&self) -> &'static str {
        "console"
    }

    async fn send(&self, to: &PhoneNumber, body: &str) -> Result<(), String> {
        tracing::warn!(
            to = %to.as_str(),
            body = %body,
            "DEVELOPMENT ONLY: console SMS provider; this message was not sent"
        );
        Ok(())
    }
}

fn http_client(timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(5))
        .user_agent(concat!("mfad/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

/// Twilio's Messages API.
#[derive(Debug)]
pub struct TwilioSms {
    client: reqwest::Client,
    url: String,
    account_sid: String,
    auth_token: SecretString,
    from: String,
}

impl TwilioSms {
    /// Production API host.
    pub const DEFAULT_BASE_URL: &'static str = "https://api.twilio.com";

    /// A sender for one account; `base_url` is normally [`Self::DEFAULT_BASE_URL`].
    pub fn new(
        base_url: &str,
        account_sid: &str,
        auth_token: &str,
        from: &str,
    ) -> Result<Self, String> {
        Ok(TwilioSms {
            client: http_client(Duration::from_secs(10))?,
            url: format!(
                "{}/2010-04-01/Accounts/{}/Messages.json",
                base_url.trim_end_matches('/'),
                account_sid
            ),
            account_sid: account_sid.to_owned(),
            auth_token: SecretString::from(auth_token),
            from: from.to_owned(),
        })
    }
}

#[async_trait]
impl SmsSender for TwilioSms {
    fn provider(&self) -> &'static str {
        "twilio"
    }

    async fn send(&self, to: &PhoneNumber, body: &str) -> Result<(), String> {
        let resp = self
            .client
            .post(&self.url)
            .basic_auth(&self.account_sid, Some(self.auth_token.expose_secret()))
            .form(&[("To", to.as_str()), ("From", &self.from), ("Body", body)])
            .send()
            .await
            .map_err(|e| format!("Twilio request failed: {}", e.without_url()))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        // Twilio errors are JSON {code, message, more_info, status}; keep code and message.
        let detail = resp
            .json::<serde_json::Value>()
            .await
            .ok()
            .map(|v| {
                format!(
                    "code {} ({})",
                    v["code"],
                    v["message"].as_str().unwrap_or("")
                )
            })
            .unwrap_or_default();
        Err(format!("Twilio answered {status} {detail}"))
    }
}

/// A signed JSON webhook.
#[derive(Debug)]
pub struct WebhookSms {
    client: reqwest::Client,
    url: String,
    secret: SecretBox<[u8]>,
    clock: std::sync::Arc<dyn mfad_core::Clock>,
}

impl WebhookSms {
    /// A sender posting to `url`, signing with `secret`.
    pub fn new(
        url: &str,
        secret: &[u8],
        clock: std::sync::Arc<dyn mfad_core::Clock>,
    ) -> Result<Self, String> {
        Ok(WebhookSms {
            client: http_client(Duration::from_secs(10))?,
            url: url.to_owned(),
            secret: SecretBox::from(secret.to_vec()),
            clock,
        })
    }
}

/// The signature header value for a webhook body sent at `unix_secs`.
pub fn webhook_signature(secret: &[u8], unix_secs: i64, body: &[u8]) -> String {
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(unix_secs.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "t={unix_secs},v1={}",
        data_encoding::HEXLOWER.encode(&mac.finalize().into_bytes())
    )
}

#[async_trait]
impl SmsSender for WebhookSms {
    fn provider(&self) -> &'static str {
        "webhook"
    }

    async fn send(&self, to: &PhoneNumber, body: &str) -> Result<(), String> {
        let payload = serde_json::to_vec(&serde_json::json!({ "to": to.as_str(), "body": body }))
            .map_err(|e| format!("webhook body: {e}"))?;
        let signature = webhook_signature(
            self.secret.expose_secret(),
            self.clock.now().unix_timestamp(),
            &payload,
        );
        let resp = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(WEBHOOK_SIGNATURE_HEADER, signature)
            .body(payload)
            .send()
            .await
            .map_err(|e| format!("webhook request failed: {}", e.without_url()))?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(format!("webhook answered {}", resp.status()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::extract::State;
    use axum::http::HeaderMap;
    use axum::routing::post;
    use std::sync::{Arc, Mutex};

    type Seen = Arc<Mutex<Vec<(HeaderMap, String)>>>;

    async fn serve(path: &'static str, status: u16) -> (String, Seen) {
        let seen: Seen = Arc::default();
        let app = axum::Router::new()
            .route(
                path,
                post(move |State(s): State<Seen>, h: HeaderMap, body: String| async move {
                    s.lock().unwrap().push((h, body));
                    (
                        axum::http::StatusCode::from_u16(status).unwrap(),
                        [("content-type", "application/json")],
                        r#"{"code":21211,"message":"The 'To' number is not valid.","status":400}"#,
                    )
                }),
            )
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}"), seen)
    }

    #[tokio::test]
    async fn twilio_wire_format() {
        let (base, seen) = serve("/2010-04-01/Accounts/AC123/Messages.json", 201).await;
        let sms = TwilioSms::new(&base, "AC123", "tok", "+15005550006").unwrap();
        let to = PhoneNumber::parse("+14155552671").unwrap();
        sms.send(&to, "Your code is 123456").await.unwrap();
        let seen = seen.lock().unwrap();
        let (headers, body) = &seen[0];
        assert_eq!(
            headers["authorization"],
            format!("Basic {}", data_encoding::BASE64.encode(b"AC123:tok"))
        );
        assert_eq!(headers["content-type"], "application/x-www-form-urlencoded");
        assert_eq!(
            body,
            "To=%2B14155552671&From=%2B15005550006&Body=Your+code+is+123456"
        );
    }

    #[tokio::test]
    async fn twilio_error_is_reported_without_the_body() {
        let (base, _) = serve("/2010-04-01/Accounts/AC1/Messages.json", 400).await;
        let sms = TwilioSms::new(&base, "AC1", "tok", "+15005550006").unwrap();
        let to = PhoneNumber::parse("+14155552671").unwrap();
        let err = sms.send(&to, "code 654321").await.unwrap_err();
        assert!(err.contains("21211"), "{err}");
        assert!(!err.contains("654321"));
    }

    #[tokio::test]
    async fn webhook_is_signed() {
        let (base, seen) = serve("/hook", 200).await;
        let clock = Arc::new(mfad_core::ManualClock::new(
            time::OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
        ));
        let sms = WebhookSms::new(&format!("{base}/hook"), b"s3cret", clock).unwrap();
        let to = PhoneNumber::parse("+14155552671").unwrap();
        sms.send(&to, "code 111222").await.unwrap();
        let seen = seen.lock().unwrap();
        let (headers, body) = &seen[0];
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"to": "+14155552671", "body": "code 111222"})
        );
        let sig = headers[WEBHOOK_SIGNATURE_HEADER].to_str().unwrap();
        assert_eq!(
            sig,
            webhook_signature(b"s3cret", 1_700_000_000, body.as_bytes())
        );
        assert_ne!(
            sig,
            webhook_signature(b"other", 1_700_000_000, body.as_bytes())
        );
    }
}
