//! The SMS delivery port. Adapters (console, Twilio, webhook) live in `mfad-providers`.

use crate::phone::PhoneNumber;

/// Sends a text message. Implementations must not log the body (it holds a code).
#[async_trait::async_trait]
pub trait SmsSender: Send + Sync + std::fmt::Debug {
    /// Delivers `body` to `to`; the error string is for logs and must not contain the body.
    async fn send(&self, to: &PhoneNumber, body: &str) -> Result<(), String>;

    /// The provider's name, a metrics label (`twilio`, `webhook`, `console`, …).
    fn provider(&self) -> &'static str {
        "custom"
    }
}
