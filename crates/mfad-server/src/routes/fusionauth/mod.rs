//! FusionAuth's Two Factor API, legacy (≤ 1.25, as the Elixir `fusion_auth` 0.3.0
//! client calls it) and current (1.26+, as the 1.69 Python and TypeScript clients call
//! it), on the same factors as the WorkOS API. See
//! `docs/contracts/fusionauth.md` for the contract.
//!
//! Status codes as FusionAuth answers: 200 (JSON or an empty body without a JSON content
//! type), 242 from status when a second factor is required, 400 with an Errors object,
//! and empty 401, 404 and 421 (wrong code); errors are rendered in one place,
//! [`crate::error::FusionAuthError`].

mod auth;
mod body;
mod login;
mod recovery;
pub mod schema;
mod secret;
mod send;
mod status;
mod user_two_factor;
mod webauthn;
mod webauthn_key;
pub mod webauthn_schema;
pub mod wire;

use utoipa_axum::router::UtoipaMethodRouter;
use utoipa_axum::routes;

use crate::state::AppState;

/// The FusionAuth routes, one entry per path: the router and the OpenAPI document are
/// built from this list (paths and methods come from each handler's `#[utoipa::path]`),
/// and tests enumerate it.
pub fn routes() -> Vec<UtoipaMethodRouter<AppState>> {
    vec![
        routes!(secret::generate),
        routes!(
            user_two_factor::enable_self,
            user_two_factor::disable_self,
            user_two_factor::update_self
        ),
        routes!(
            user_two_factor::enable_for_user,
            user_two_factor::disable_for_user,
            user_two_factor::update_for_user
        ),
        routes!(recovery::generate, recovery::retrieve),
        routes!(send::send),
        routes!(send::send_for_login),
        routes!(login::start),
        routes!(login::login),
        routes!(status::get, status::post),
        routes!(status::get_with_trust),
        // WebAuthn (passkeys): `webauthn.rs`.
        routes!(webauthn::list, webauthn::delete_for_user),
        routes!(webauthn::get, webauthn::delete),
        routes!(webauthn::register_start),
        routes!(webauthn::register_complete),
        routes!(webauthn::start),
        routes!(webauthn::assert),
        routes!(webauthn::login),
        routes!(webauthn::import),
    ]
}
