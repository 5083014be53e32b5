//! WorkOS Events API: `GET /events`.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use mfad_core::EventId;
use mfad_core::events::EventKind;
use mfad_core::service::events::EventListRequest;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::list::{list_page, parsed, refuse_unknown, set};
use super::{schema, wire};
use crate::error::{WireFieldError, WorkosError, json_response};
use crate::extract::{BearerTenant, Fields};
use crate::openapi::WorkosErrors;
use crate::state::AppState;

/// One event, as the Events API lists it.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct EventObject {
    /// `event`.
    #[schema(pattern = "^event$")]
    pub object: String,
    /// `event_…`.
    pub id: String,
    /// The event type (docs/EVENTS.md).
    pub event: String,
    /// The payload.
    #[schema(value_type = Object)]
    pub data: Value,
    /// ISO 8601.
    pub created_at: String,
}

/// A `list` of events.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct EventList {
    /// `list`.
    #[schema(pattern = "^list$")]
    pub object: String,
    /// The events of this page.
    pub data: Vec<EventObject>,
    /// Cursors.
    pub list_metadata: schema::ListMetadata,
}

/// The query of `listEvents`. Other parameters are refused (422).
#[derive(Debug, serde::Serialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Required: event types, comma-joined or repeated.
    pub events: String,
    /// ISO 8601: only events at or after it.
    pub range_start: Option<String>,
    /// ISO 8601: only events before it.
    pub range_end: Option<String>,
    /// 1 to 100, default 10.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// An event id: the page before it.
    pub before: Option<String>,
    /// An event id: the page after it.
    pub after: Option<String>,
    /// Default `desc`.
    pub order: Option<schema::ListOrder>,
}

/// `GET /events`: WorkOS's `listEvents`, scoped to the key's tenant. `events` (required,
/// as WorkOS requires it) names the event types, as one comma-joined value, as a repeated
/// parameter, or both; `range_start` (inclusive) and `range_end` (exclusive) are ISO 8601;
/// `limit` (1–100, default 10), `before`, `after` and `order` (`desc` default, `asc`,
/// `normal` = `asc`) page as every WorkOS list does. Unknown parameters are refused.
#[utoipa::path(
    get,
    path = "/events",
    tag = "WorkOS",
    operation_id = "listEvents",
    params(EventsQuery),
    responses(
        (status = 200, description = "A page of the tenant's events.", body = EventList),
        WorkosErrors,
    ),
    security(("workos_api_key" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    BearerTenant(tenant): BearerTenant,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, WorkosError> {
    let mut fields = Fields::default();
    let present = |k: &str| {
        set(params
            .iter()
            .rev()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v))
    };
    refuse_unknown(
        params.iter().map(|(k, _)| k),
        &[
            "events",
            "events[]",
            "range_start",
            "range_end",
            "limit",
            "before",
            "after",
            "order",
        ],
        &mut fields,
    );
    let mut kinds = Vec::new();
    let names = params
        .iter()
        .filter(|(k, _)| k == "events" || k == "events[]")
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .filter(|n| !n.is_empty());
    for name in names {
        match EventKind::parse(name) {
            Some(k) if !kinds.contains(&k) => kinds.push(k),
            Some(_) => {}
            None => fields.push(WireFieldError::new(
                "events",
                "invalid",
                format!("{name} is not an event type (see docs/EVENTS.md)"),
            )),
        }
    }
    if kinds.is_empty()
        && !params
            .iter()
            .any(|(k, v)| k.starts_with("events") && !v.is_empty())
    {
        fields.push(WireFieldError::new(
            "events",
            "required",
            "events is required",
        ));
    }
    let paging = list_page(present, EventId::parse, "an event id", &mut fields);
    let parse_instant = |v: &str| {
        OffsetDateTime::parse(v, &Rfc3339).ok().or_else(|| {
            let date =
                time::Date::parse(v, time::macros::format_description!("[year]-[month]-[day]"));
            date.ok().map(|d| d.midnight().assume_utc())
        })
    };
    let mut instant = |k: &str| {
        parsed(
            present,
            k,
            parse_instant,
            "an ISO 8601 date or timestamp",
            &mut fields,
        )
    };
    let range_start = instant("range_start");
    let range_end = instant("range_end");
    fields.finish()?;
    let page = state
        .service
        .list_events(
            &tenant,
            &EventListRequest {
                kinds,
                range_start,
                range_end,
                limit: paging.limit,
                order: paging.order,
                before: paging.before,
                after: paging.after,
            },
        )
        .await?;
    Ok(json_response(
        StatusCode::OK,
        &wire::list(&page, crate::events::event_object),
    ))
}
