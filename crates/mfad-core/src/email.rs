//! The email delivery port. Adapters (console, SMTP) live in `mfad-providers`.

/// Sends a plain-text email. Implementations must not log the body (it holds a code).
#[async_trait::async_trait]
pub trait EmailSender: Send + Sync + std::fmt::Debug {
    /// Delivers a message to `to` (an address already validated by the caller); the error
    /// string is for logs and must not contain the body.
    async fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), String>;

    /// The provider's name, a metrics label (`smtp`, `console`, …).
    fn provider(&self) -> &'static str {
        "custom"
    }
}

/// The sender a service has until one is configured: every message fails, so a missing
/// email provider shows as a delivery error rather than a code silently not sent.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoEmail;

#[async_trait::async_trait]
impl EmailSender for NoEmail {
    fn provider(&self) -> &'static str {
        "none"
    }

    async fn send(&self, _to: &str, _subject: &str, _body: &str) -> Result<(), String> {
        Err("no email provider is configured".into())
    }
}

/// Longest email address (RFC 5321 path limit).
pub const MAX_EMAIL_LEN: usize = 254;

/// Normalises an email address (trimmed, lower-cased) after a conservative syntax check
/// that also keeps header-breaking characters out of the SMTP layer.
pub fn normalize_email(input: &str) -> Option<String> {
    let s = input.trim().to_ascii_lowercase();
    let (local, domain) = s.rsplit_once('@')?;
    let ok = s.len() <= MAX_EMAIL_LEN
        && !local.is_empty()
        && local.len() <= 64
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && s.chars().all(|c| {
            c.is_ascii_graphic()
                && !matches!(
                    c,
                    '<' | '>' | ',' | ';' | '"' | '(' | ')' | '[' | ']' | '\\'
                )
        })
        && !domain.contains('@');
    ok.then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(
            normalize_email(" Richard@PiedPiper.com ").as_deref(),
            Some("richard@piedpiper.com")
        );
        for bad in [
            "",
            "a",
            "a@b",
            "@b.com",
            "a@.com",
            "a b@c.com",
            "a@b.com>",
            "a@b.com\r\nBcc: x@y.z",
        ] {
            assert!(normalize_email(bad).is_none(), "{bad:?}");
        }
    }
}
