//! `GET /api/two-factor/secret`.

use axum::response::Response;
use serde_json::json;

use super::auth::Caller;
use super::wire::json_ok;
use crate::error::FusionAuthError;

/// `GET /api/two-factor/secret`: FusionAuth's `generateTwoFactorSecret` (API key) and
/// `generateTwoFactorSecretUsingJWT` (Bearer JWT, no key), and Elixir's `generate_secret`
/// / `generate_secret_for_jwt` (both headers). Answers `{"secret", "secretBase32Encoded"}`
/// made exactly as FusionAuth makes them (20 base64 characters = 15 bytes, and the base32
/// of those bytes). Nothing is stored: the secret comes back with the enable request.
pub async fn generate(_caller: Caller) -> Result<Response, FusionAuthError> {
    let s = mfad_core::two_factor::generate_secret()?;
    Ok(json_ok(&json!({
        "secret": s.secret.as_str(),
        "secretBase32Encoded": s.secret_base32_encoded.as_str(),
    })))
}
