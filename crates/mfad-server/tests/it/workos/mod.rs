//! The WorkOS MFA API over real HTTP, and the real `mfad` binary beside it (`binary`).
//! Modules group tests by behaviour.

mod auth;
pub(crate) mod binary;
mod challenges;
mod concurrency;
mod edge;
mod events;
mod every_route;
mod factors;
mod fuzz;
mod input;
mod jwt_keys;
mod pagination;
mod send_limits;
mod throttle;
mod users;
