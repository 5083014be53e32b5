//! Webhook endpoints: added by the operator (the signing secret shown once, stored sealed
//! under the master key like TOTP secrets), listed, removed; their deliveries; and the
//! dispatcher that drains the outbox (`crate::webhooks::dispatch`). docs/WEBHOOKS.md.

use std::sync::Arc;

use mfad_crypto::Zeroizing;

use crate::error::{CoreError, Entity, Field, Reason};
use crate::events::EventKind;
use crate::ids::WebhookEndpointId;
use crate::model::Tenant;
use crate::service::Service;
use crate::store::Store;
use crate::webhooks::dispatch::{DispatchPolicy, DispatchPorts, Dispatcher};
use crate::webhooks::outbox::WebhookDelivery;
use crate::webhooks::{WebhookEncoder, WebhookEndpoint, WebhookFormat, policy};

/// An endpoint to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhook<'a> {
    /// The tenant, by name or id; it must exist.
    pub tenant: &'a str,
    /// Where deliveries go (see [`policy::check_url`]).
    pub url: &'a str,
    /// The event names it receives (at least one).
    pub events: &'a [&'a str],
    /// The wire format.
    pub format: WebhookFormat,
    /// Whether `http` and non-public addresses are allowed.
    pub allow_insecure: bool,
}

/// A freshly added endpoint: its signing secret is shown once.
#[derive(Debug)]
pub struct AddedWebhook {
    /// The stored endpoint.
    pub endpoint: WebhookEndpoint,
    /// Its tenant.
    pub tenant: Tenant,
    /// The secret its deliveries are signed with; stored only sealed.
    pub secret: Zeroizing<String>,
}

impl<S: Store> Service<S> {
    /// Renders and signs webhook deliveries with `encoder` (the server's), which also
    /// says which event kinds each format can carry.
    pub fn with_webhook_encoder(mut self, encoder: Arc<dyn WebhookEncoder>) -> Self {
        self.webhook_encoder = Some(encoder);
        self
    }

    /// The event kinds of `names`, each once, in the order given; an endpoint in
    /// `format` must be able to carry each of them.
    pub fn webhook_kinds(
        &self,
        names: &[&str],
        format: WebhookFormat,
    ) -> Result<Vec<EventKind>, CoreError> {
        let mut kinds = Vec::new();
        for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
            let kind = EventKind::parse(name)
                .ok_or_else(|| CoreError::invalid(Field::WebhookEvents, Reason::Invalid))?;
            if !self.carries(format, kind) {
                return Err(CoreError::invalid(
                    Field::WebhookEvents,
                    Reason::NotDeliverable,
                ));
            }
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
        if kinds.is_empty() {
            return Err(CoreError::invalid(Field::WebhookEvents, Reason::Required));
        }
        Ok(kinds)
    }

    /// Whether an endpoint in `format` can receive events of `kind`.
    pub fn carries(&self, format: WebhookFormat, kind: EventKind) -> bool {
        self.webhook_encoder
            .as_ref()
            .is_none_or(|e| e.carries(format, kind))
    }

    /// Adds an endpoint to an existing tenant, with a fresh signing secret. Running
    /// servers deliver to it from their next poll.
    pub async fn add_webhook(&self, req: NewWebhook<'_>) -> Result<AddedWebhook, CoreError> {
        let tenant = self
            .store
            .find_tenant(req.tenant)
            .await?
            .ok_or_else(|| CoreError::not_found(Entity::Tenant, req.tenant))?;
        let url = policy::check_url(req.url, req.allow_insecure)?;
        let events = self.webhook_kinds(req.events, req.format)?;
        let now = self.clock.now();
        let id = WebhookEndpointId::generate(now)?;
        let secret = Zeroizing::new(
            data_encoding::BASE32_NOPAD
                .encode(&mfad_crypto::random_bytes::<32>()?)
                .to_ascii_lowercase(),
        );
        let sealed = self
            .keyring
            .seal(secret.as_bytes(), id.as_str().as_bytes())?;
        let endpoint = WebhookEndpoint {
            id,
            tenant_id: tenant.id.clone(),
            url: url.to_string(),
            format: req.format,
            events,
            allow_insecure: req.allow_insecure,
            created_at: now,
        };
        self.store
            .insert_webhook_endpoint(&endpoint, &sealed)
            .await?;
        Ok(AddedWebhook {
            endpoint,
            tenant,
            secret,
        })
    }

    /// The endpoints of the tenant named (by name or id) `tenant`, or of every tenant.
    pub async fn list_webhooks(
        &self,
        tenant: Option<&str>,
    ) -> Result<Vec<WebhookEndpoint>, CoreError> {
        let tenant = match tenant {
            None => None,
            Some(t) => Some(
                self.store
                    .find_tenant(t)
                    .await?
                    .ok_or_else(|| CoreError::not_found(Entity::Tenant, t))?,
            ),
        };
        Ok(self
            .store
            .list_webhook_endpoints(tenant.as_ref().map(|t| &t.id))
            .await?)
    }

    /// The endpoint `id` (`we_…`), in whichever tenant holds it.
    pub async fn webhook(&self, id: &str) -> Result<WebhookEndpoint, CoreError> {
        let missing = || CoreError::not_found(Entity::WebhookEndpoint, id);
        let parsed = WebhookEndpointId::parse(id.trim()).ok_or_else(missing)?;
        self.store
            .get_webhook_endpoint(&parsed)
            .await?
            .ok_or_else(missing)
    }

    /// Removes an endpoint with its pending and past deliveries; returns what it was.
    pub async fn remove_webhook(&self, id: &str) -> Result<WebhookEndpoint, CoreError> {
        let endpoint = self.webhook(id).await?;
        if !self
            .store
            .delete_webhook_endpoint(&endpoint.tenant_id, &endpoint.id)
            .await?
        {
            return Err(CoreError::not_found(Entity::WebhookEndpoint, id));
        }
        Ok(endpoint)
    }

    /// An endpoint with its most recent `limit` deliveries, newest first.
    pub async fn webhook_deliveries(
        &self,
        id: &str,
        limit: u32,
    ) -> Result<(WebhookEndpoint, Vec<WebhookDelivery>), CoreError> {
        let endpoint = self.webhook(id).await?;
        let deliveries = self
            .store
            .list_webhook_deliveries(&endpoint.id, limit)
            .await?;
        Ok((endpoint, deliveries))
    }

    /// Deletes up to `batch` deliveries settled longer than `retention` ago (events are
    /// kept as long); how many went.
    pub async fn purge_webhook_deliveries(
        &self,
        retention: time::Duration,
        batch: u32,
    ) -> Result<u64, CoreError> {
        let before = self.clock.now() - retention;
        Ok(self.store.purge_webhook_deliveries(before, batch).await?)
    }

    /// The delivery loop over this service's store, keys, clock and metrics, posting
    /// through `transport` with the service's webhook encoder.
    pub fn webhook_dispatcher(
        &self,
        transport: Arc<dyn crate::webhooks::WebhookTransport>,
        policy: DispatchPolicy,
    ) -> Result<Dispatcher<S>, CoreError>
    where
        S: Clone,
    {
        let encoder = self.webhook_encoder.clone().ok_or_else(|| {
            CoreError::Internal("webhook delivery needs the service's webhook encoder".into())
        })?;
        Dispatcher::new(
            self.store.clone(),
            self.keyring.clone(),
            self.clock.clone(),
            self.metrics.clone(),
            DispatchPorts { encoder, transport },
            policy,
        )
    }
}
