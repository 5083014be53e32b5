//! The email delivery port. Adapters (console, SMTP) live in `mfad-providers`.

/// Sends a plain-text email. Implementations must not log the body (it holds a code).
#[async_trait::async_trait]
pub trait EmailSender: Send + Sync + std::fmt::Debug {
    /// Delivers a message to `to` (an address already validated by the caller); the error
    /// string is for logs and must not contain the body.
    async fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), String>;
}

/// The sender a service has until one is configured: every message fails, so a missing
/// email provider shows as a delivery error rather than a code silently not sent.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoEmail;

#[async_trait::async_trait]
impl EmailSender for NoEmail {
    async fn send(&self, _to: &str, _subject: &str, _body: &str) -> Result<(), String> {
        Err("no email provider is configured".into())
    }
}
