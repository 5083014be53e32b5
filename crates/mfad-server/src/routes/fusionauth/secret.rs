//! `GET /api/two-factor/secret`, and FusionAuth's secret formats: how a secret is made and
//! how a caller's `secret` / `secretBase32Encoded` is read.

use data_encoding::{BASE32_NOPAD, BASE64, BASE64_NOPAD};
use mfad_core::CoreError;
use mfad_core::enrollment;
use mfad_crypto::Zeroizing;
use serde_json::json;

use super::auth::Caller;
use super::schema;
use super::wire::json_ok;
use crate::error::{FusionAuthError, WireFieldError};
use crate::openapi::FusionAuthErrors;
use axum::response::Response;

/// A TOTP secret as FusionAuth hands it out: `secret` is 20 characters of standard
/// base64 (15 bytes); `secret_base32_encoded` is the unpadded base32 of the same bytes,
/// which is what authenticator apps take.
#[derive(Debug)]
pub struct FusionSecret {
    /// Base64, 20 characters.
    pub secret: Zeroizing<String>,
    /// Base32, 24 characters, no padding.
    pub secret_base32_encoded: Zeroizing<String>,
}

/// A fresh secret made exactly as FusionAuth's `TwoFactor.generateBase64EncodedSecret`
/// does: base64 of 20 random bytes, characters 1 to 20. Those 20 characters decode to
/// 15 bytes (120 bits), the HMAC key.
pub fn generate_secret() -> Result<FusionSecret, CoreError> {
    let raw = Zeroizing::new(mfad_crypto::random_bytes::<20>()?);
    let b64 = Zeroizing::new(BASE64.encode(raw.as_slice()));
    let secret = Zeroizing::new(b64.get(1..21).unwrap_or_default().to_owned());
    let key = Zeroizing::new(
        BASE64_NOPAD
            .decode(secret.as_bytes())
            .map_err(|_| CoreError::Internal("generated secret is not base64".into()))?,
    );
    Ok(FusionSecret {
        secret,
        secret_base32_encoded: Zeroizing::new(BASE32_NOPAD.encode(&key)),
    })
}

/// Reads a caller's secret: `secret` (standard base64, padding optional) wins over
/// `secretBase32Encoded`. The key must be 10 to 128 bytes.
pub fn decode_secret(
    base64: Option<&str>,
    base32: Option<&str>,
) -> Result<Zeroizing<Vec<u8>>, WireFieldError> {
    let range = enrollment::MIN_IMPORTED_SECRET_BYTES..=enrollment::MAX_IMPORTED_SECRET_BYTES;
    match (base64, base32) {
        (Some(text), _) => {
            let trimmed = text.trim().trim_end_matches('=');
            BASE64_NOPAD
                .decode(trimmed.as_bytes())
                .ok()
                .map(Zeroizing::new)
                .filter(|k| range.contains(&k.len()))
                .ok_or_else(|| {
                    WireFieldError::new(
                        "secret",
                        "invalid",
                        "secret must be base64 of 10 to 128 bytes",
                    )
                })
        }
        (None, Some(text)) => enrollment::parse_base32_secret(text).ok_or_else(|| {
            WireFieldError::new(
                "secretBase32Encoded",
                "invalid",
                "secretBase32Encoded must be base32 of 10 to 128 bytes",
            )
        }),
        (None, None) => Err(WireFieldError::new(
            "secret",
            "blank",
            "secret or secretBase32Encoded is required for the authenticator method",
        )),
    }
}

/// `GET /api/two-factor/secret`: FusionAuth's `generateTwoFactorSecret` (API key) and
/// `generateTwoFactorSecretUsingJWT` (Bearer JWT, no key), and Elixir's `generate_secret`
/// / `generate_secret_for_jwt` (both headers). Answers `{"secret", "secretBase32Encoded"}`
/// made exactly as FusionAuth makes them (20 base64 characters = 15 bytes, and the base32
/// of those bytes). Nothing is stored: the secret comes back with the enable request.
#[utoipa::path(
    get,
    path = "/api/two-factor/secret",
    tag = "FusionAuth",
    operation_id = "generateTwoFactorSecret",
    params(("X-FusionAuth-TenantId" = Option<String>, Header, description = "The tenant, as `tenant_…` or its UUID; must be the credentials' tenant.")),
    responses(
        (status = 200, description = "A fresh secret; nothing is stored.", body = schema::SecretResponse),
        FusionAuthErrors,
    ),
    security(("fusionauth_api_key" = []), ("jwt" = []))
)]
pub async fn generate(_caller: Caller) -> Result<Response, FusionAuthError> {
    let s = generate_secret()?;
    Ok(json_ok(&json!({
        "secret": s.secret.as_str(),
        "secretBase32Encoded": s.secret_base32_encoded.as_str(),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_match_fusionauths_format() {
        for _ in 0..50 {
            let s = generate_secret().unwrap();
            assert_eq!(s.secret.len(), 20);
            assert_eq!(s.secret_base32_encoded.len(), 24);
            let key = BASE64_NOPAD.decode(s.secret.as_bytes()).unwrap();
            assert_eq!(key.len(), 15);
            assert_eq!(BASE32_NOPAD.encode(&key), *s.secret_base32_encoded);
        }
    }

    #[test]
    fn reference_secret_pairs_decode_to_the_same_key() {
        // Real FusionAuth secret responses (quoted in the Elixir client's documentation):
        // base32(base64decode(secret)), `docs/contracts/fusionauth.md` §5.
        for (b64, b32) in [
            ("SP2m6K2Dg/x2JN9DyQvZ", "JD62N2FNQOB7Y5RE35B4SC6Z"),
            ("D90sYs5aPN51Z+ubdQt7", "B7OSYYWOLI6N45LH5ONXKC33"),
            ("EgLthMnIgHaQot7sgloI", "CIBO3BGJZCAHNEFC33WIEWQI"),
            ("ZlaRg5hfQ5/cF25tYHKU", "MZLJDA4YL5BZ7XAXNZWWA4UU"),
        ] {
            let a = decode_secret(Some(b64), None).unwrap();
            let b = decode_secret(None, Some(b32)).unwrap();
            assert_eq!(*a, *b, "{b64}");
            assert_eq!(a.len(), 15);
        }
        assert!(decode_secret(Some("not base64!"), None).is_err());
        assert!(decode_secret(None, None).is_err());
    }

    #[test]
    fn reference_totp_vectors() {
        // Computed with a plain RFC 4226 HOTP: key = base64decode("SP2m6K2Dg/x2JN9DyQvZ"),
        // codes at t-1, t, t+1.
        let key = decode_secret(Some("SP2m6K2Dg/x2JN9DyQvZ"), None).unwrap();
        let t = mfad_otp::Totp::default();
        assert_eq!(t.code_at(&key, 1_700_000_000 - 30), "844552");
        assert_eq!(t.code_at(&key, 1_700_000_000), "983894");
        assert_eq!(t.code_at(&key, 1_700_000_030), "428153");
        assert_eq!(t.code_at(&key, 1_700_000_060), "604508");
    }
}
