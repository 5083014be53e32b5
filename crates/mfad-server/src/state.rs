//! Shared request state: the service and readiness, passed explicitly (no globals).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use mfad_core::Service;
use mfad_store::Database;

use crate::jwt::JwtKeys;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The MFA service over the configured database (either backend, behind the port).
    pub service: Arc<Service<Arc<dyn Database>>>,
    /// Whether the database answered the last probe (see `startup::probe_database`).
    pub ready: Arc<AtomicBool>,
    /// JWT keys of the FusionAuth API.
    pub jwt: Arc<JwtKeys>,
    /// Body and handler deadlines.
    pub limits: crate::edge::RequestLimits,
    /// This node's request rate buckets.
    pub rates: Arc<crate::rate_limit::RateLimits>,
    /// This server's metrics (also the service's outcome port).
    pub metrics: Arc<crate::metrics::Metrics>,
}
