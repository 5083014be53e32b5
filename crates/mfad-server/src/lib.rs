//! The mfad server: configuration, HTTP adapters for the WorkOS MFA API, startup.

pub mod config;
pub mod error;
pub mod extract;
pub mod routes;
pub mod startup;
pub mod state;
pub mod telemetry;
