//! The mfad server: configuration, HTTP adapters for the WorkOS MFA API and the
//! FusionAuth Two Factor API, startup.

pub mod config;
pub mod edge;
pub mod error;
pub mod events;
pub mod extract;
pub mod idempotency;
pub mod jwt;
pub mod metrics;
pub mod openapi;
pub mod rate_limit;
pub mod routes;
pub mod serve;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod webhooks;
