//! `mfad webhook add|list|remove|deliveries`: the operator's view of endpoints and their
//! deliveries (docs/WEBHOOKS.md). Running servers read endpoints from the store on every
//! poll, so changes made here reach them without a restart.

use std::sync::Arc;

use clap::Subcommand;
use mfad_core::error::{Entity, Field, Reason};
use mfad_core::events::EventKind;
use mfad_core::service::webhooks::NewWebhook;
use mfad_core::webhooks::{WebhookEndpoint, WebhookFormat};
use mfad_core::{CoreError, Service};
use mfad_store::Database;

use crate::routes::workos::wire::timestamp;

/// The operator's service.
type AdminService = Service<Arc<dyn Database>>;

/// `mfad webhook …`.
#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Add an endpoint to a tenant: prints its id and, as the last line, its signing
    /// secret, shown only this once. Running servers deliver to it within a poll
    /// (MFAD_WEBHOOK_POLL_MS).
    Add {
        /// Tenant name or id (the tenant must exist).
        #[arg(long)]
        tenant: String,
        /// Where deliveries are POSTed: `https://…` (`http` and loopback or private
        /// addresses need --allow-insecure).
        #[arg(long)]
        url: String,
        /// Event types to deliver, comma-separated (e.g.
        /// `authentication.mfa_succeeded,authentication.mfa_failed`; see docs/EVENTS.md).
        #[arg(long, value_delimiter = ',', required = true)]
        events: Vec<String>,
        /// Body and signature shape: `workos` (WorkOS-Signature) or `fusionauth`
        /// (X-FusionAuth-Signature-JWT; only the event types FusionAuth has).
        #[arg(long, default_value = "workos", value_parser = parse_format)]
        format: WebhookFormat,
        /// Allow an `http` URL and loopback, private or link-local addresses (a receiver
        /// on this host or network; the operator's explicit choice).
        #[arg(long)]
        allow_insecure: bool,
    },
    /// List endpoints: id, tenant, format, URL and event types (never the secrets).
    List {
        /// Only this tenant's (name or id).
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Remove an endpoint (`we_…`) with its pending and past deliveries.
    Remove {
        /// The endpoint id.
        id: String,
    },
    /// An endpoint's most recent deliveries, newest first: outbox id, state (pending,
    /// delivered, failed), attempts, last HTTP status, last error, event id and type,
    /// when it was queued, and when it is next due (pending) or was settled.
    Deliveries {
        /// The endpoint id.
        id: String,
        /// How many to show.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        limit: u32,
    },
}

fn parse_format(s: &str) -> Result<WebhookFormat, String> {
    WebhookFormat::parse(s).ok_or_else(|| format!("{s:?} is not a format: workos or fusionauth"))
}

/// Runs one `mfad webhook` command.
pub async fn run(service: &AdminService, cmd: WebhookCommand) -> anyhow::Result<()> {
    match cmd {
        WebhookCommand::Add {
            tenant,
            url,
            events,
            format,
            allow_insecure,
        } => {
            // The secret is sealed under the active key: every key must be present.
            crate::startup::require_master_keys(service).await?;
            let names: Vec<&str> = events.iter().map(String::as_str).collect();
            let added = service
                .add_webhook(NewWebhook {
                    tenant: &tenant,
                    url: &url,
                    events: &names,
                    format,
                    allow_insecure,
                })
                .await
                .map_err(|e| explain(service, e, &names, format))?;
            let e = &added.endpoint;
            println!("tenant: {} ({})", added.tenant.name, added.tenant.id);
            println!("endpoint id: {}", e.id);
            println!("url: {}", e.url);
            println!("format: {}", e.format.name());
            println!("events: {}", event_names(e));
            println!("{}", added.secret.as_str());
            eprintln!("Store this signing secret now: it cannot be shown again.");
        }
        WebhookCommand::List { tenant } => {
            let endpoints = service
                .list_webhooks(tenant.as_deref())
                .await
                .map_err(|e| explain(service, e, &[], WebhookFormat::WorkOs))?;
            for e in endpoints {
                let insecure = if e.allow_insecure {
                    "\tallow-insecure"
                } else {
                    ""
                };
                println!(
                    "{}\t{}\t{}\t{}\t{}{insecure}",
                    e.id,
                    e.tenant_id,
                    e.format.name(),
                    e.url,
                    event_names(&e)
                );
            }
        }
        WebhookCommand::Remove { id } => {
            let e = service
                .remove_webhook(&id)
                .await
                .map_err(|e| explain(service, e, &[], WebhookFormat::WorkOs))?;
            println!("removed {} ({})", e.id, e.url);
        }
        WebhookCommand::Deliveries { id, limit } => {
            let (e, deliveries) = service
                .webhook_deliveries(&id, limit)
                .await
                .map_err(|e| explain(service, e, &[], WebhookFormat::WorkOs))?;
            println!("endpoint: {} ({})", e.id, e.url);
            println!(
                "id\tstate\tattempts\tlast_status\tlast_error\tevent_id\tevent\tqueued_at\tnext_or_settled_at"
            );
            for d in deliveries {
                let when = d.settled_at.unwrap_or(d.next_attempt_at);
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    d.id,
                    d.state.as_str(),
                    d.attempts,
                    d.last_status
                        .map_or_else(|| "-".to_owned(), |s| s.to_string()),
                    d.last_error
                        .as_deref()
                        .unwrap_or("-")
                        .replace(['\t', '\n'], " "),
                    d.event_id,
                    d.event_name,
                    timestamp(d.created_at),
                    timestamp(when),
                );
            }
        }
    }
    Ok(())
}

fn event_names(e: &WebhookEndpoint) -> String {
    e.events
        .iter()
        .map(|k| k.name())
        .collect::<Vec<_>>()
        .join(",")
}

/// The operator's sentence for a failed webhook command.
fn explain(
    service: &AdminService,
    e: CoreError,
    names: &[&str],
    format: WebhookFormat,
) -> anyhow::Error {
    let catalogue = |keep: &dyn Fn(EventKind) -> bool| {
        EventKind::ALL
            .into_iter()
            .filter(|k| keep(*k))
            .map(EventKind::name)
            .collect::<Vec<_>>()
            .join(", ")
    };
    match e {
        CoreError::NotFound {
            entity: Entity::Tenant,
            id,
        } => anyhow::anyhow!("no tenant named {id:?}"),
        CoreError::NotFound {
            entity: Entity::WebhookEndpoint,
            id,
        } => anyhow::anyhow!("no webhook endpoint {id:?}"),
        CoreError::Validation(fields) => {
            let sentences: Vec<String> = fields
                .iter()
                .map(|f| match (f.field, f.reason) {
                    (Field::WebhookEvents, Reason::Required) => format!(
                        "--events needs at least one event type: {}",
                        catalogue(&|_| true)
                    ),
                    (Field::WebhookEvents, Reason::Invalid) => {
                        let unknown: Vec<&str> = names
                            .iter()
                            .map(|n| n.trim())
                            .filter(|n| !n.is_empty() && EventKind::parse(n).is_none())
                            .collect();
                        format!(
                            "unknown event type {}; the types are: {}",
                            unknown.join(", "),
                            catalogue(&|_| true)
                        )
                    }
                    (Field::WebhookEvents, Reason::NotDeliverable) => {
                        let refused: Vec<&str> = names
                            .iter()
                            .filter_map(|n| EventKind::parse(n.trim()))
                            .filter(|k| !service.carries(format, *k))
                            .map(EventKind::name)
                            .collect();
                        format!(
                            "{} has no {} webhook event; a {} endpoint takes: {} (use --format \
                             workos for the others)",
                            refused.join(", "),
                            format.name(),
                            format.name(),
                            catalogue(&|k| service.carries(format, k))
                        )
                    }
                    (Field::WebhookUrl, Reason::InsecureScheme | Reason::ForbiddenAddress) => {
                        format!(
                            "{} (--allow-insecure allows it)",
                            crate::error::workos_field_error(f).message
                        )
                    }
                    _ => crate::error::workos_field_error(f).message,
                })
                .collect();
            anyhow::anyhow!("{}", sentences.join("; "))
        }
        other => anyhow::Error::new(other),
    }
}
