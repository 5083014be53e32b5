//! The one path every SMS and email carrying a code takes: the message text and the
//! handling of delivery failures are written here once. Send-limit admission hooks in
//! here too, so no path can send around it.

use mfad_crypto::Zeroizing;

use crate::error::CoreError;
use crate::phone::PhoneNumber;
use crate::service::Service;
use crate::service::challenges::CODE_PLACEHOLDER;
use crate::store::Store;

/// Subject of emails carrying a code.
pub const EMAIL_SUBJECT: &str = "Your verification code";

/// Where a code goes.
#[derive(Debug, Clone, Copy)]
pub enum Destination<'a> {
    /// A text to this phone.
    Sms(&'a PhoneNumber),
    /// An email to this (normalised) address.
    Email(&'a str),
}

/// The text carrying `code`: the caller's template (already validated) or ours.
fn message(code: &str, template: Option<&str>) -> Zeroizing<String> {
    Zeroizing::new(match template {
        Some(t) => t.replace(CODE_PLACEHOLDER, code),
        None => format!("Your verification code is {code}."),
    })
}

impl<S: Store> Service<S> {
    /// Sends `code` to `to`. Failures are logged with the redacted destination and
    /// answered as a delivery error; the body (which holds the code) is never logged.
    pub(crate) async fn deliver(
        &self,
        to: Destination<'_>,
        code: &str,
        template: Option<&str>,
    ) -> Result<(), CoreError> {
        let body = message(code, template);
        match to {
            Destination::Sms(phone) => self.sms.send(phone, &body).await.map_err(|e| {
                tracing::warn!(to = %phone.redacted(), error = %e, "SMS delivery failed");
                CoreError::Delivery(e)
            }),
            Destination::Email(address) => self
                .email
                .send(address, EMAIL_SUBJECT, &body)
                .await
                .map_err(|e| {
                    let domain = address.rsplit_once('@').map_or("", |(_, d)| d);
                    tracing::warn!(to_domain = %domain, error = %e, "email delivery failed");
                    CoreError::Delivery(e)
                }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_carry_the_code_once() {
        assert_eq!(
            *message("123456", None),
            "Your verification code is 123456."
        );
        assert_eq!(*message("123456", Some("Acme: {{code}}")), "Acme: 123456");
    }
}
