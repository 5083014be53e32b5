//! The background task that drains the webhook outbox through `mfad_core::webhooks`.
//!
//! Every `MFAD_WEBHOOK_POLL_MS` (and whenever a drain finishes) it claims endpoints with a
//! due delivery, up to `MFAD_WEBHOOK_CONCURRENCY` at once, and drains each on a task of
//! its own: endpoints are served concurrently, each one in order. It reads the store on
//! every poll, so an endpoint added with `mfad webhook add` while servers run gets its
//! first delivery within a poll. Deliveries never run inside an API request, and a slow
//! receiver holds only its own endpoint's task (and at most one POST per endpoint: the
//! transport's timeout bounds it). Aborting the task aborts its drains: their deliveries
//! stay pending and are sent again once their leases lapse.

use std::sync::Arc;
use std::time::Duration;

use mfad_core::webhooks::dispatch::Dispatcher;
use mfad_store::Database;
use tokio::task::JoinSet;

/// The dispatcher the server runs.
pub type ServerDispatcher = Dispatcher<Arc<dyn Database>>;

/// Runs until aborted.
pub async fn run(dispatcher: Arc<ServerDispatcher>, poll: Duration, concurrency: u32) {
    tracing::info!(owner = dispatcher.owner(), "webhook dispatcher started");
    let mut drains = JoinSet::new();
    let mut tick = tokio::time::interval(poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            Some(finished) = drains.join_next(), if !drains.is_empty() => {
                if let Err(e) = finished {
                    tracing::warn!(error = %e, "a webhook drain task failed");
                }
            }
        }
        let busy = u32::try_from(drains.len()).unwrap_or(u32::MAX);
        let free = concurrency.saturating_sub(busy);
        if free == 0 {
            continue;
        }
        let targets = match dispatcher.claim(free).await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "claiming webhook endpoints failed; retrying");
                continue;
            }
        };
        for target in targets {
            let dispatcher = dispatcher.clone();
            drains.spawn(async move {
                match dispatcher.drain(&target).await {
                    Ok(d) => {
                        if d.lease_lost {
                            tracing::warn!(
                                endpoint = %target.id,
                                "lost a webhook endpoint mid-delivery (another node took it \
                                 over, or it was removed)"
                            );
                        }
                        tracing::debug!(endpoint = %target.id, ?d, "webhook endpoint drained");
                    }
                    Err(e) => {
                        tracing::warn!(endpoint = %target.id, error = %e, "delivering webhooks failed; retrying later");
                    }
                }
            });
        }
    }
}
