//! The WorkOS MFA API, as the official SDKs call it (see `docs/contracts/workos.md`).

mod challenges;
pub mod events;
mod factors;
mod list;
pub mod schema;
mod users;
pub mod wire;

use utoipa_axum::router::UtoipaMethodRouter;
use utoipa_axum::routes;

use crate::state::AppState;

/// The WorkOS routes, one entry per path: the router and the OpenAPI document are built
/// from this list (paths and methods come from each handler's `#[utoipa::path]`), and
/// tests enumerate it.
pub fn routes() -> Vec<UtoipaMethodRouter<AppState>> {
    vec![
        routes!(factors::enroll),
        routes!(factors::get, factors::delete),
        routes!(challenges::challenge),
        routes!(challenges::verify),
        routes!(users::list, users::enroll),
        routes!(events::list),
    ]
}
