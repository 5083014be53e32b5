//! The outbox delivery loop: per-endpoint leases, order, retries with backoff, the attempt cap.
//!
//! A [`Dispatcher`] (one per server process, named by a random owner id) claims endpoints
//! whose oldest pending delivery is due and that no live lease holds; the store makes the
//! claim atomic across nodes. For each endpoint it holds, it sends the pending deliveries
//! oldest first, one at a time: the next only after the previous one settled (delivered,
//! or failed at the attempt cap). A delivery that is not accepted is retried after an
//! exponential backoff with jitter and blocks the endpoint's later ones meanwhile, so an
//! endpoint receives its events in order. Every settlement is conditional on the lease
//! still being this dispatcher's, so a node that lost its lease (it stalled past it) stops
//! instead of racing the one that took over.
//!
//! Delivery is at least once: a node killed between a receiver's answer and the
//! settlement leaves the delivery pending, and whoever next leases the endpoint sends it
//! again. With every node healthy, no event is sent twice (docs/WEBHOOKS.md).

use std::sync::Arc;

use mfad_crypto::{Keyring, Zeroizing};
use time::{Duration, OffsetDateTime};

use crate::clock::Clock;
use crate::error::{CoreError, StoreError};
use crate::ids::WebhookEndpointId;
use crate::metrics::{Metrics, WebhookOutcome};
use crate::store::Store;
use crate::webhooks::outbox::{DeliveryTarget, PendingDelivery, Settlement, WebhookDelivery};
use crate::webhooks::{TransportOutcome, WebhookEncoder, WebhookTransport};

/// How deliveries are retried and leased.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DispatchPolicy {
    /// POSTs per delivery, the first included; after the last one fails, it is marked
    /// failed and the endpoint moves on to its next event.
    pub max_attempts: u32,
    /// The first retry waits between half of this and this; each further one twice as
    /// long, up to [`DispatchPolicy::retry_max`].
    pub retry_base: Duration,
    /// The longest wait between two attempts.
    pub retry_max: Duration,
    /// How long a claim holds an endpoint without being renewed. It must outlast one POST
    /// (the transport's timeout) and its settlement, or a healthy node can lose the
    /// endpoint mid-delivery and the event is sent twice.
    pub lease: Duration,
    /// Most deliveries one claim sends before the endpoint is released for the next
    /// claim (so one busy endpoint does not hold a slot others wait for).
    pub per_claim: u32,
}

impl Default for DispatchPolicy {
    fn default() -> Self {
        DispatchPolicy {
            max_attempts: 12,
            retry_base: Duration::seconds(5),
            retry_max: Duration::hours(1),
            lease: Duration::seconds(15),
            per_claim: 500,
        }
    }
}

impl DispatchPolicy {
    /// The wait before the next attempt after `attempts` failed ones (1 for the first
    /// retry), with `jitter` in `[0, 1)`: between half and all of
    /// `min(retry_max, retry_base · 2^(attempts-1))`. Jitter spreads the retries of many
    /// deliveries that failed together (a receiver back from an outage).
    pub fn retry_delay(&self, attempts: u32, jitter: f64) -> Duration {
        let doublings = attempts.saturating_sub(1).min(30);
        let ceiling = self
            .retry_base
            .checked_mul(1_i32 << doublings)
            .unwrap_or(self.retry_max)
            .min(self.retry_max);
        let jitter = jitter.clamp(0.0, 1.0);
        ceiling / 2 + (ceiling / 2) * jitter
    }
}

/// What the delivery loop needs of storage: the outbox part of [`Store`] (every store
/// is one). A port of its own so the loop's tests run on an in-memory outbox.
#[async_trait::async_trait]
pub trait Outbox: Send + Sync {
    /// See [`Store::claim_webhook_endpoints`].
    async fn claim(
        &self,
        owner: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<DeliveryTarget>, StoreError>;

    /// See [`Store::renew_webhook_lease`].
    async fn renew(
        &self,
        id: &WebhookEndpointId,
        owner: &str,
        until: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// See [`Store::release_webhook_lease`].
    async fn release(
        &self,
        id: &WebhookEndpointId,
        owner: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// See [`Store::pending_webhook_deliveries`].
    async fn pending(
        &self,
        id: &WebhookEndpointId,
        limit: u32,
    ) -> Result<Vec<PendingDelivery>, StoreError>;

    /// See [`Store::settle_webhook_delivery`].
    async fn settle(
        &self,
        delivery: i64,
        owner: &str,
        settlement: &Settlement,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;
}

#[async_trait::async_trait]
impl<S: Store> Outbox for S {
    async fn claim(
        &self,
        owner: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<DeliveryTarget>, StoreError> {
        self.claim_webhook_endpoints(owner, now, until, limit).await
    }
    async fn renew(
        &self,
        id: &WebhookEndpointId,
        owner: &str,
        until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.renew_webhook_lease(id, owner, until).await
    }
    async fn release(
        &self,
        id: &WebhookEndpointId,
        owner: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.release_webhook_lease(id, owner, now).await
    }
    async fn pending(
        &self,
        id: &WebhookEndpointId,
        limit: u32,
    ) -> Result<Vec<PendingDelivery>, StoreError> {
        self.pending_webhook_deliveries(id, limit).await
    }
    async fn settle(
        &self,
        delivery: i64,
        owner: &str,
        settlement: &Settlement,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.settle_webhook_delivery(delivery, owner, settlement, now)
            .await
    }
}

/// What one [`Dispatcher::drain`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Drained {
    /// Deliveries the receiver accepted.
    pub delivered: u32,
    /// Attempts that failed and will be retried.
    pub retried: u32,
    /// Deliveries given up at the attempt cap.
    pub failed: u32,
    /// Whether another dispatcher took the endpoint over (this one stopped at once).
    pub lease_lost: bool,
    /// Whether the endpoint may have more due now (the claim's quota ran out).
    pub more: bool,
}

impl Drained {
    fn add(&mut self, other: Drained) {
        self.delivered += other.delivered;
        self.retried += other.retried;
        self.failed += other.failed;
        self.lease_lost |= other.lease_lost;
        self.more |= other.more;
    }
}

/// Deliveries read per store visit.
const PAGE: u32 = 50;

/// Longest error text kept with a delivery.
const MAX_ERROR_LEN: usize = 300;

/// The delivery loop of one process.
#[derive(Debug)]
pub struct Dispatcher<O> {
    outbox: O,
    keyring: Arc<Keyring>,
    clock: Arc<dyn Clock>,
    encoder: Arc<dyn WebhookEncoder>,
    transport: Arc<dyn WebhookTransport>,
    metrics: Arc<dyn Metrics>,
    policy: DispatchPolicy,
    owner: String,
}

/// The ports a [`Dispatcher`] sends through.
#[derive(Debug, Clone)]
pub struct DispatchPorts {
    /// Renders and signs each delivery.
    pub encoder: Arc<dyn WebhookEncoder>,
    /// Posts it.
    pub transport: Arc<dyn WebhookTransport>,
}

impl<O: Outbox> Dispatcher<O> {
    /// A dispatcher over `outbox`, under a fresh random owner id (one per process: a
    /// restarted process does not inherit its predecessor's leases, which lapse).
    pub fn new(
        outbox: O,
        keyring: Arc<Keyring>,
        clock: Arc<dyn Clock>,
        metrics: Arc<dyn Metrics>,
        ports: DispatchPorts,
        policy: DispatchPolicy,
    ) -> Result<Self, CoreError> {
        let owner = format!(
            "dispatcher_{}",
            data_encoding::HEXLOWER.encode(&mfad_crypto::random_bytes::<8>()?)
        );
        Ok(Dispatcher {
            outbox,
            keyring,
            clock,
            encoder: ports.encoder,
            transport: ports.transport,
            metrics,
            policy,
            owner,
        })
    }

    /// This dispatcher's owner id, as its leases name it.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The policy in force.
    pub fn policy(&self) -> &DispatchPolicy {
        &self.policy
    }

    /// Leases up to `limit` endpoints with a due delivery.
    pub async fn claim(&self, limit: u32) -> Result<Vec<DeliveryTarget>, CoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let now = self.clock.now();
        Ok(self
            .outbox
            .claim(&self.owner, now, now + self.policy.lease, limit)
            .await?)
    }

    /// Claims what is due and drains each endpoint in turn (the server drains the
    /// endpoints it claims concurrently, with [`Dispatcher::drain`]).
    pub async fn run_once(&self, limit: u32) -> Result<Drained, CoreError> {
        let mut total = Drained::default();
        for target in self.claim(limit).await? {
            total.add(self.drain(&target).await?);
        }
        Ok(total)
    }

    /// Sends the due deliveries of an endpoint this dispatcher claimed, oldest first,
    /// until one is to be retried later, none is pending, the claim's quota is used or
    /// the lease is lost; then releases the endpoint (unless it was lost).
    pub async fn drain(&self, target: &DeliveryTarget) -> Result<Drained, CoreError> {
        let result = self.drain_held(target).await;
        let lost = matches!(&result, Ok(d) if d.lease_lost);
        if !lost {
            let released = self
                .outbox
                .release(&target.id, &self.owner, self.clock.now())
                .await;
            // A failed release only delays the endpoint until its lease lapses.
            if let Err(e) = released {
                tracing::warn!(endpoint = %target.id, error = %e, "releasing a webhook lease failed");
            }
        }
        result
    }

    async fn drain_held(&self, target: &DeliveryTarget) -> Result<Drained, CoreError> {
        let secret = Zeroizing::new(
            String::from_utf8(
                self.keyring
                    .open(&target.sealed_secret, target.id.as_str().as_bytes())?
                    .to_vec(),
            )
            .map_err(|_| CoreError::Internal("a webhook secret is not text".into()))?,
        );
        // The claim set the lease to (about) now + lease.
        let mut held_until = self.clock.now() + self.policy.lease;
        let mut done = Drained::default();
        let mut sent = 0u32;
        loop {
            let page = self.outbox.pending(&target.id, PAGE).await?;
            if page.is_empty() {
                return Ok(done);
            }
            for p in page {
                if sent >= self.policy.per_claim {
                    done.more = true;
                    return Ok(done);
                }
                let now = self.clock.now();
                if p.delivery.next_attempt_at > now {
                    // The oldest waits for its retry; the later ones wait behind it.
                    return Ok(done);
                }
                if held_until - now < self.policy.lease / 2 {
                    held_until = now + self.policy.lease;
                    if !self
                        .outbox
                        .renew(&target.id, &self.owner, held_until)
                        .await?
                    {
                        done.lease_lost = true;
                        return Ok(done);
                    }
                }
                let outcome = self.attempt(target, &secret, &p, now).await;
                let settlement = self.settlement(&p.delivery, outcome);
                let settled_at = self.clock.now();
                if !self
                    .outbox
                    .settle(p.delivery.id, &self.owner, &settlement, settled_at)
                    .await?
                {
                    done.lease_lost = true;
                    return Ok(done);
                }
                sent += 1;
                match settlement {
                    Settlement::Delivered { .. } => {
                        done.delivered += 1;
                        self.metrics.webhook_delivery(WebhookOutcome::Delivered);
                    }
                    Settlement::Failed { .. } => {
                        done.failed += 1;
                        self.metrics.webhook_delivery(WebhookOutcome::Failed);
                        tracing::warn!(
                            endpoint = %target.id,
                            event = %p.event.id,
                            attempts = p.delivery.attempts + 1,
                            "webhook delivery failed for good after its last attempt"
                        );
                    }
                    Settlement::Retry { .. } => {
                        done.retried += 1;
                        self.metrics.webhook_delivery(WebhookOutcome::Retried);
                        return Ok(done);
                    }
                }
            }
        }
    }

    /// One POST of `p`, rendered and signed at `now`. A delivery that cannot be rendered
    /// counts as a failed attempt (with the cap, it cannot block the endpoint forever).
    async fn attempt(
        &self,
        target: &DeliveryTarget,
        secret: &str,
        p: &PendingDelivery,
        now: OffsetDateTime,
    ) -> TransportOutcome {
        match self.encoder.encode(target.format, &p.event, secret, now) {
            Ok(request) => {
                self.transport
                    .post(&target.url, target.allow_insecure, &request)
                    .await
            }
            Err(e) => TransportOutcome::Unreachable {
                reason: format!("cannot render the delivery: {e}"),
            },
        }
    }

    /// What the store records for an attempt that came to `outcome`.
    fn settlement(&self, d: &WebhookDelivery, outcome: TransportOutcome) -> Settlement {
        let (status, error) = match outcome {
            TransportOutcome::Delivered { status } => return Settlement::Delivered { status },
            TransportOutcome::Rejected { status } => {
                (Some(status), format!("the receiver answered HTTP {status}"))
            }
            TransportOutcome::Unreachable { reason } => (None, reason),
            TransportOutcome::Refused { reason } => (None, format!("refused: {reason}")),
        };
        let error: String = error.chars().take(MAX_ERROR_LEN).collect();
        let attempts = d.attempts.saturating_add(1);
        if attempts >= self.policy.max_attempts {
            return Settlement::Failed { status, error };
        }
        let delay = self.policy.retry_delay(attempts, jitter());
        Settlement::Retry {
            status,
            error,
            next_attempt_at: self.clock.now() + delay,
        }
    }
}

/// A uniform value in `[0, 1)` from the operating system's randomness (0 if it fails:
/// the retry then waits the shortest time its backoff allows).
fn jitter() -> f64 {
    mfad_crypto::random_bytes::<4>()
        .map(|b| f64::from(u32::from_be_bytes(b)) / (f64::from(u32::MAX) + 1.0))
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests;
