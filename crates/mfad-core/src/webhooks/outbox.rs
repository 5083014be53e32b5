//! The outbox as the store keeps it: one delivery per (endpoint, event), the endpoint as a
//! dispatcher holding its lease sees it, and how a delivery attempt is settled.
//! The rules (order, retries, the attempt cap) are [`super::dispatch`]'s.

use std::fmt;

use time::OffsetDateTime;

use crate::events::EventRecord;
use crate::ids::{EventId, TenantId, WebhookEndpointId};
use crate::webhooks::WebhookFormat;

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryState {
    /// Waiting for its (next) attempt.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Given up after the attempt cap.
    Failed,
}

impl DeliveryState {
    /// The name the store and the CLI use.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }

    /// The state named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        [
            DeliveryState::Pending,
            DeliveryState::Delivered,
            DeliveryState::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }
}

/// One row of the outbox: an event for an endpoint, and how its attempts went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookDelivery {
    /// Position in the outbox; increases with insertion, the delivery order per endpoint.
    pub id: i64,
    /// The endpoint.
    pub endpoint_id: WebhookEndpointId,
    /// The event.
    pub event_id: EventId,
    /// The event's name.
    pub event_name: String,
    /// Where it stands.
    pub state: DeliveryState,
    /// POSTs made so far.
    pub attempts: u32,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: OffsetDateTime,
    /// The receiver's last HTTP status, if it answered.
    pub last_status: Option<u16>,
    /// Why the last attempt got no (2xx) answer.
    pub last_error: Option<String>,
    /// When it entered the outbox (with its event).
    pub created_at: OffsetDateTime,
    /// When it was delivered or given up.
    pub settled_at: Option<OffsetDateTime>,
}

/// A pending delivery with its event, as the dispatcher sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingDelivery {
    /// The outbox row.
    pub delivery: WebhookDelivery,
    /// The event it delivers.
    pub event: EventRecord,
}

/// An endpoint as the dispatcher that leased it needs it: where to post, in which shape,
/// and the sealed signing secret (opened with the master key, bound to the endpoint id).
#[derive(Clone, PartialEq, Eq)]
pub struct DeliveryTarget {
    /// The endpoint.
    pub id: WebhookEndpointId,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// Where deliveries are posted.
    pub url: String,
    /// Body and signature shape.
    pub format: WebhookFormat,
    /// Whether `http` and non-public addresses are allowed.
    pub allow_insecure: bool,
    /// The signing secret, sealed.
    pub sealed_secret: Vec<u8>,
}

impl fmt::Debug for DeliveryTarget {
    // The URL may carry credentials in its query; the secret is sealed but still nothing
    // a log needs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeliveryTarget")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

/// How one attempt ends, as the store records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    /// Delivered: the row leaves `pending`.
    Delivered {
        /// The 2xx status.
        status: u16,
    },
    /// Not delivered; try again at `next_attempt_at`.
    Retry {
        /// The receiver's status, if it answered.
        status: Option<u16>,
        /// Why it was not delivered.
        error: String,
        /// When the next attempt is due.
        next_attempt_at: OffsetDateTime,
    },
    /// Not delivered, and that was the last attempt: the row leaves `pending` as failed.
    Failed {
        /// The receiver's status, if it answered.
        status: Option<u16>,
        /// Why it was not delivered.
        error: String,
    },
}
