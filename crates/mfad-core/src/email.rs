//! The email delivery port. Adapters (console, SMTP) live in `mfad-providers`.

/// Sends a plain-text email. Implementations must not log the body (it holds a code).
#[async_trait::async_trait]
pub trait EmailSender: Send + Sync + std::fmt::Debug {
    /// Delivers a message to `to` (an address already validated by the caller); the error
    /// string is for logs and must not contain the body.
    async fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), String>;
}
