//! The one path every SMS and email carrying a code takes: send-limit admission
//! (`crate::send_limits`), storing the code, the message text and the handling of delivery
//! failures are written here once, so no path can send around the limits.

use std::future::Future;

use mfad_crypto::Zeroizing;

use crate::error::CoreError;
use crate::metrics::{Channel, Event, Outcome, SendOutcome};
pub use crate::send_limits::Destination;
use crate::send_limits::SendRequest;
use crate::service::Service;
use crate::service::challenges::CODE_PLACEHOLDER;
use crate::store::Store;

/// Subject of emails carrying a code.
pub const EMAIL_SUBJECT: &str = "Your verification code";

/// The text carrying `code`: the caller's template (already validated) or ours.
fn message(code: &str, template: Option<&str>) -> Zeroizing<String> {
    Zeroizing::new(match template {
        Some(t) => t.replace(CODE_PLACEHOLDER, code),
        None => format!("Your verification code is {code}."),
    })
}

impl<S: Store> Service<S> {
    /// Sends a code to `req.to`: admits the send against the send limits first (a refusal
    /// stores and sends nothing), then runs `issue`, which stores the code (a challenge or
    /// a pending code) and returns it with its result, then delivers the message. If
    /// `issue` or the delivery fails, the admission is released, so nothing is charged
    /// twice.
    pub(crate) async fn deliver<T>(
        &self,
        req: SendRequest<'_>,
        template: Option<&str>,
        issue: impl Future<Output = Result<(T, Zeroizing<String>), CoreError>>,
    ) -> Result<T, CoreError> {
        let (channel, provider) = match req.to {
            Destination::Sms(_) => (Channel::Sms, self.sms.provider()),
            Destination::Email(_) => (Channel::Email, self.email.provider()),
        };
        let send = |outcome| Event::Send {
            channel,
            provider,
            outcome,
        };
        let ticket = match self.admit_send(req).await {
            Ok(t) => t,
            Err(e) => {
                if Outcome::of_error(&e) == Outcome::Refused {
                    self.observe(send(SendOutcome::Refused));
                }
                return Err(e);
            }
        };
        let sent = async {
            let (issued, code) = issue.await?;
            let delivered = self.transmit(req.to, &code, template).await;
            self.observe(send(match delivered {
                Ok(()) => SendOutcome::Sent,
                Err(_) => SendOutcome::Failed,
            }));
            delivered?;
            Ok(issued)
        }
        .await;
        if sent.is_err()
            && let Err(e) = self.store.release_send(req.tenant, ticket).await
        {
            tracing::warn!(error = %e, "could not release an undelivered send");
        }
        sent
    }

    /// Hands the message to the provider. Failures are logged with the redacted
    /// destination and answered as a delivery error; the body (which holds the code) is
    /// never logged.
    async fn transmit(
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
