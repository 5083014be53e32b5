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
mod secret;
mod send;
mod status;
mod user_two_factor;
mod webauthn;
pub mod wire;

use axum::routing::{MethodRouter, get, post};

use crate::state::AppState;

/// The FusionAuth routes, as `(path, methods)`: the router is built from this list, and
/// tests enumerate it.
pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/api/two-factor/secret", get(secret::generate)),
        (
            "/api/user/two-factor",
            post(user_two_factor::enable_self)
                .delete(user_two_factor::disable_self)
                .put(user_two_factor::update_self),
        ),
        (
            "/api/user/two-factor/{user_id}",
            post(user_two_factor::enable_for_user)
                .delete(user_two_factor::disable_for_user)
                .put(user_two_factor::update_for_user),
        ),
        (
            "/api/user/two-factor/recovery-code/{user_id}",
            post(recovery::generate).get(recovery::retrieve),
        ),
        ("/api/two-factor/send", post(send::send)),
        (
            "/api/two-factor/send/{two_factor_id}",
            post(send::send_for_login),
        ),
        ("/api/two-factor/start", post(login::start)),
        ("/api/two-factor/login", post(login::login)),
        (
            "/api/two-factor/status",
            get(status::get).post(status::post),
        ),
        (
            "/api/two-factor/status/{trust_id}",
            get(status::get_with_trust),
        ),
        // WebAuthn (passkeys): `webauthn.rs`.
        (
            "/api/webauthn",
            get(webauthn::list).delete(webauthn::delete_for_user),
        ),
        (
            "/api/webauthn/{id}",
            get(webauthn::get).delete(webauthn::delete),
        ),
        (
            "/api/webauthn/register/start",
            post(webauthn::register_start),
        ),
        (
            "/api/webauthn/register/complete",
            post(webauthn::register_complete),
        ),
        ("/api/webauthn/start", post(webauthn::start)),
        ("/api/webauthn/assert", post(webauthn::assert)),
        ("/api/webauthn/login", post(webauthn::login)),
    ]
}
