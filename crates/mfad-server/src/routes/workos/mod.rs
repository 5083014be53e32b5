//! The WorkOS MFA API, as the official SDKs call it (see `shared/reference/workos-mfa.md`).

mod challenges;
mod factors;
mod users;
pub mod wire;

use axum::Router;
use axum::routing::{get, post};

use crate::state::AppState;

/// The WorkOS routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/factors/enroll", post(factors::enroll))
        .route(
            "/auth/factors/{id}",
            get(factors::get).delete(factors::delete),
        )
        .route("/auth/factors/{id}/challenge", post(challenges::challenge))
        .route("/auth/challenges/{id}/verify", post(challenges::verify))
        .route(
            "/user_management/users/{user_id}/auth_factors",
            get(users::list).post(users::enroll),
        )
}
