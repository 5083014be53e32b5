//! The WorkOS MFA API, as the official SDKs call it (see `docs/contracts/workos.md`).

mod challenges;
pub mod events;
mod factors;
mod users;
pub mod wire;

use axum::routing::{MethodRouter, get, post};

use crate::state::AppState;

/// The WorkOS routes, as `(path, methods)`: the router is built from this list, and tests
/// enumerate it.
pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/auth/factors/enroll", post(factors::enroll)),
        (
            "/auth/factors/{id}",
            get(factors::get).delete(factors::delete),
        ),
        ("/auth/factors/{id}/challenge", post(challenges::challenge)),
        ("/auth/challenges/{id}/verify", post(challenges::verify)),
        (
            "/user_management/users/{user_id}/auth_factors",
            get(users::list).post(users::enroll),
        ),
        ("/events", get(events::list)),
    ]
}
