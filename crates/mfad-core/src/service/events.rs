//! Events: building them for the changes the service makes, listing them (the Events
//! API) and purging old ones. Every event is written by the store call that makes its
//! change; only refusals, which change nothing, are written on their own.

use std::sync::Arc;

use time::OffsetDateTime;

use crate::error::CoreError;
use crate::events::{
    Event, EventEncoder, EventIds, EventKind, EventRecord, EventScan, RequestMeta, Subject,
};
use crate::ids::{EventId, TenantId};
use crate::model::{Order, Page};
use crate::pagination;
use crate::service::Service;
use crate::store::Store;

/// Builds event records for one request, owning all it needs.
#[derive(Debug, Clone)]
pub(crate) struct EventMaker {
    ids: Arc<EventIds>,
    encoder: Arc<dyn EventEncoder>,
    enabled: bool,
    request: RequestMeta,
}

impl EventMaker {
    /// The record of one event about `subject` in `tenant` at `now`; none while events
    /// are off.
    pub(crate) fn make(
        &self,
        tenant: &TenantId,
        kind: EventKind,
        subject: Subject,
        now: OffsetDateTime,
    ) -> Result<Vec<EventRecord>, CoreError> {
        if !self.enabled {
            return Ok(Vec::new());
        }
        let event = Event {
            id: self.ids.next(now)?,
            tenant_id: tenant.clone(),
            kind,
            created_at: now,
            subject,
            request: self.request.clone(),
        };
        Ok(vec![EventRecord {
            data: self.encoder.encode(&event),
            id: event.id,
            tenant_id: event.tenant_id,
            name: kind.name().to_owned(),
            created_at: now,
        }])
    }
}

/// A request for a page of events (WorkOS `GET /events`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventListRequest {
    /// Only these kinds (WorkOS requires at least one).
    pub kinds: Vec<EventKind>,
    /// Only events at or after this instant.
    pub range_start: Option<OffsetDateTime>,
    /// Only events before this instant.
    pub range_end: Option<OffsetDateTime>,
    /// Page size, 1 to 100.
    pub limit: u32,
    /// Order by creation.
    pub order: Order,
    /// Items before this id in `order`.
    pub before: Option<EventId>,
    /// Items after this id in `order`.
    pub after: Option<EventId>,
}

impl<S: Store> Service<S> {
    /// Renders events with `encoder` (the server's wire payloads).
    pub fn with_event_encoder(mut self, encoder: Arc<dyn EventEncoder>) -> Self {
        self.event_encoder = encoder;
        self
    }

    /// Records no events at all: only for measuring what recording costs
    /// (`MFAD_EVENTS=off`, docs/BENCHMARKS.md).
    pub fn without_events(mut self) -> Self {
        self.events_enabled = false;
        self
    }

    /// The record of one event about `subject` in `tenant`, now, for the request being
    /// served; none while events are off.
    pub(crate) fn event(
        &self,
        tenant: &TenantId,
        kind: EventKind,
        subject: Subject,
    ) -> Result<Vec<EventRecord>, CoreError> {
        self.event_maker()
            .make(tenant, kind, subject, self.clock.now())
    }

    /// What builds events for the request being served, to hand to code that runs
    /// outside it (a verification judge the store may run on a thread of its own).
    pub(crate) fn event_maker(&self) -> EventMaker {
        EventMaker {
            ids: self.event_ids.clone(),
            encoder: self.event_encoder.clone(),
            enabled: self.events_enabled,
            request: crate::events::current_request(),
        }
    }

    /// Records an event that comes with no change (a refusal). A failure to record it is
    /// returned, so the refusal is not answered without its event.
    pub(crate) async fn record_refusal(
        &self,
        tenant: &TenantId,
        kind: EventKind,
        subject: Subject,
    ) -> Result<(), CoreError> {
        let events = self.event(tenant, kind, subject)?;
        if !events.is_empty() {
            self.store.record_events(&events).await?;
        }
        Ok(())
    }

    /// A page of a tenant's events.
    pub async fn list_events(
        &self,
        tenant: &TenantId,
        req: &EventListRequest,
    ) -> Result<Page<EventRecord>, CoreError> {
        if req.kinds.is_empty() {
            return Ok(Page {
                data: Vec::new(),
                before: None,
                after: None,
            });
        }
        let names: Vec<&'static str> = req.kinds.iter().map(|k| k.name()).collect();
        let plan = pagination::plan(
            req.order,
            req.before.as_ref(),
            req.after.as_ref(),
            req.limit,
        );
        let rows = self
            .store
            .scan_events(EventScan {
                tenant_id: tenant,
                names: &names,
                range_start: req.range_start,
                range_end: req.range_end,
                ascending: plan.ascending,
                start_after: plan.start_after,
                limit: req.limit.saturating_add(1),
            })
            .await?;
        Ok(plan.page(rows, |e| &e.id))
    }

    /// Deletes up to `batch` events older than `retention`; how many went.
    pub async fn purge_events(
        &self,
        retention: time::Duration,
        batch: u32,
    ) -> Result<u64, CoreError> {
        let before = self.clock.now() - retention;
        Ok(self.store.purge_events(before, batch).await?)
    }
}
