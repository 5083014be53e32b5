//! Webhooks: endpoints a tenant's operator registers, the durable outbox their deliveries
//! wait in, and the ports the delivery loop sends through.
//!
//! Events enter the outbox in the transaction that records them (the store fans each event
//! out to the endpoints subscribed to its kind), so a delivery is never lost once its
//! change is committed. Delivery runs outside every API request, from the outbox.
//! The server supplies the wire shapes ([`WebhookEncoder`]: WorkOS or FusionAuth bodies and
//! signatures) and the HTTP client ([`WebhookTransport`]); the domain owns which endpoint
//! gets what, in which order, and when a failed delivery is retried or given up.
//! Formats and signatures are documented in `docs/EVENTS.md`.

pub mod dispatch;
pub mod outbox;
pub mod policy;

use std::fmt;

use time::OffsetDateTime;

use crate::error::CoreError;
use crate::events::{EventKind, EventRecord};
use crate::ids::{TenantId, WebhookEndpointId};

/// The wire format an endpoint receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WebhookFormat {
    /// WorkOS's: the event as the Events API shows it, signed in `WorkOS-Signature`.
    WorkOs,
    /// FusionAuth's event envelope, signed in `X-FusionAuth-Signature-JWT`.
    FusionAuth,
}

impl WebhookFormat {
    /// The name the CLI and the store use.
    pub fn name(self) -> &'static str {
        match self {
            WebhookFormat::WorkOs => "workos",
            WebhookFormat::FusionAuth => "fusionauth",
        }
    }

    /// The format named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        [WebhookFormat::WorkOs, WebhookFormat::FusionAuth]
            .into_iter()
            .find(|f| f.name() == name)
    }
}

/// A registered endpoint (never its signing secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEndpoint {
    /// Public id.
    pub id: WebhookEndpointId,
    /// The tenant whose events it receives.
    pub tenant_id: TenantId,
    /// Where deliveries are posted.
    pub url: String,
    /// The body and signature shape.
    pub format: WebhookFormat,
    /// The kinds it subscribed to.
    pub events: Vec<EventKind>,
    /// Whether `http` and loopback, private or link-local addresses are allowed (operator's
    /// explicit choice, e.g. a receiver on the same host).
    pub allow_insecure: bool,
    /// When it was added.
    pub created_at: OffsetDateTime,
}

/// One delivery as the encoder renders it: the exact body bytes and the headers that sign
/// them.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookRequest {
    /// The body, sent as `application/json`.
    pub body: String,
    /// Extra headers (the signature among them).
    pub headers: Vec<(String, String)>,
}

impl fmt::Debug for WebhookRequest {
    // The headers carry signatures: not secret, but nothing a log needs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookRequest")
            .field("body_len", &self.body.len())
            .field("headers", &self.headers.len())
            .finish()
    }
}

/// Renders and signs deliveries: the server's, which knows both vendors' wire shapes.
pub trait WebhookEncoder: Send + Sync + fmt::Debug {
    /// The request delivering `event` to an endpoint of `format`, signed with the
    /// endpoint's `secret` (as shown to the operator once) at `now`.
    fn encode(
        &self,
        format: WebhookFormat,
        event: &EventRecord,
        secret: &str,
        now: OffsetDateTime,
    ) -> Result<WebhookRequest, CoreError>;

    /// Whether `format` has a wire event for `kind` (an endpoint of that format may only
    /// subscribe to kinds it carries). Every kind, unless the encoder says otherwise.
    fn carries(&self, format: WebhookFormat, kind: EventKind) -> bool {
        let _ = (format, kind);
        true
    }
}

/// What one POST to an endpoint came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportOutcome {
    /// A 2xx answer: delivered.
    Delivered {
        /// The status.
        status: u16,
    },
    /// Any other answer: retried later.
    Rejected {
        /// The status.
        status: u16,
    },
    /// No answer (connection refused, timeout, TLS): retried later.
    Unreachable {
        /// Why, without secrets.
        reason: String,
    },
    /// The address policy refused the destination (it resolved to a private, loopback or
    /// link-local address the endpoint does not allow): retried later, in case DNS moves.
    Refused {
        /// Why.
        reason: String,
    },
}

/// Posts deliveries: the server's HTTP client, which enforces the address policy on every
/// address it connects to (not only on the URL as registered).
#[async_trait::async_trait]
pub trait WebhookTransport: Send + Sync + fmt::Debug {
    /// POSTs `request` to `url`. Never follows redirects; gives up after its timeout.
    async fn post(
        &self,
        url: &str,
        allow_insecure: bool,
        request: &WebhookRequest,
    ) -> TransportOutcome;
}
