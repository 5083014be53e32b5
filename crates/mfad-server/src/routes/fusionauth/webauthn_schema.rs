//! FusionAuth's WebAuthn wire objects as the OpenAPI document describes them.
//! Documentation only: the handlers in [`super::webauthn`] read
//! [`super::body::FaBody`] and build JSON directly.

use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

/// `POST /api/webauthn/register/start`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegisterStartRequest {
    /// The user registering.
    pub user_id: String,
    /// `bootstrap`, `general` or `reauthentication`.
    pub workflow: String,
    /// The passkey's display name.
    pub display_name: String,
    /// The account name authenticators show (default: the user id).
    #[schema(required = false)]
    pub name: Option<String>,
    /// The browser's user agent.
    #[schema(required = false)]
    pub user_agent: Option<String>,
}

/// The options for `navigator.credentials.create()` / `get()` (binary fields base64url).
#[derive(Debug, Serialize, ToSchema)]
pub struct OptionsResponse {
    /// PublicKeyCredentialCreationOptions or PublicKeyCredentialRequestOptions.
    #[schema(value_type = Object)]
    pub options: serde_json::Value,
}

/// `POST /api/webauthn/register/complete`, `/assert` and `/login`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompleteRequest {
    /// The PublicKeyCredential from the WebAuthn JavaScript API.
    #[schema(value_type = Object)]
    pub credential: serde_json::Value,
    /// The origin the ceremony ran on; must be on the tenant's allow-list.
    #[schema(required = false)]
    pub origin: Option<String>,
    /// The relying party id; must be the tenant's.
    #[schema(required = false)]
    pub rp_id: Option<String>,
    /// Registration: the user (must be the ceremony's).
    #[schema(required = false)]
    pub user_id: Option<String>,
    /// Login: no token when true.
    #[serde(rename = "noJWT")]
    #[schema(required = false)]
    pub no_jwt: Option<bool>,
}

/// `POST /api/webauthn/start`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StartRequest {
    /// The user (or `loginId`, read as the user id).
    #[schema(required = false)]
    pub user_id: Option<String>,
    /// Read as the user id when `userId` is absent.
    #[schema(required = false)]
    pub login_id: Option<String>,
    /// `bootstrap` or `reauthentication` (`general` accepted).
    pub workflow: String,
    /// Only this passkey.
    #[schema(required = false)]
    pub credential_id: Option<String>,
    /// The application (login).
    #[schema(required = false)]
    pub application_id: Option<String>,
    /// Echoed by `/api/webauthn/login`.
    #[schema(required = false, value_type = Option<Object>)]
    pub state: Option<serde_json::Value>,
}

/// A `WebAuthnCredential`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebAuthnCredential {
    /// mfad's id (a UUID).
    pub id: String,
    /// COSE algorithm (-7 ES256, -257 RS256, …).
    pub algorithm: i64,
    /// `none` or `basic`.
    pub attestation_type: String,
    /// Whether the authenticator verified the user at registration.
    pub authenticator_supports_user_verification: bool,
    /// The authenticator's credential id, base64url.
    pub credential_id: String,
    /// Always `{}`.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    /// Whether the key may be synced between devices.
    pub discoverable: bool,
    /// Display name.
    #[schema(required = false)]
    pub display_name: Option<String>,
    /// Registration time (ms since the epoch).
    pub insert_instant: i64,
    /// Last use (ms since the epoch).
    pub last_use_instant: i64,
    /// Name.
    #[schema(required = false)]
    pub name: Option<String>,
    /// The relying party.
    pub relying_party_id: String,
    /// Last accepted signature counter.
    pub sign_count: u32,
    /// The public key, PEM SubjectPublicKeyInfo.
    #[schema(required = false)]
    pub public_key: Option<String>,
    /// The tenant, as a UUID.
    pub tenant_id: String,
    /// Transports.
    pub transports: Vec<String>,
    /// User agent at registration.
    #[schema(required = false)]
    pub user_agent: Option<String>,
    /// The user.
    pub user_id: String,
}

/// `POST /api/webauthn/import`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportRequest {
    /// The passkeys, all imported or none: each needs `userId`, `credentialId`
    /// (base64url), `algorithm` (-7, -35 or -257) and `publicKey` (PEM SPKI); `id`,
    /// `signCount`, `name`, `displayName`, `relyingPartyId`, `transports`, `discoverable`
    /// and `authenticatorSupportsUserVerification` are kept when given.
    pub credentials: Vec<WebAuthnCredential>,
    /// Accepted; mfad always enforces uniqueness.
    #[schema(required = false)]
    pub validate_db_constraints: Option<bool>,
}

/// One passkey.
#[derive(Debug, Serialize, ToSchema)]
pub struct CredentialResponse {
    /// The passkey.
    pub credential: WebAuthnCredential,
}

/// A user's passkeys.
#[derive(Debug, Serialize, ToSchema)]
pub struct CredentialsResponse {
    /// Oldest first.
    pub credentials: Vec<WebAuthnCredential>,
}

/// `POST /api/webauthn/login`: the two-factor login's LoginResponse.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoginResponse {
    /// The user.
    pub user: super::schema::LoginUser,
    /// mfad: `webauthn`.
    pub method: String,
    /// mfad: the passkey used.
    pub credential_id: String,
    /// The `state` given to start.
    #[schema(required = false, value_type = Option<Object>)]
    pub state: Option<serde_json::Value>,
    /// A JWT, when a signing key is configured and `noJWT` is not set.
    #[schema(required = false)]
    pub token: Option<String>,
    /// When `token` expires (ms since the epoch).
    #[schema(required = false)]
    pub token_expiration_instant: Option<i64>,
}

/// `?userId=` of the list and delete-all routes.
#[derive(Debug, Serialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct UserQuery {
    /// The user.
    pub user_id: String,
}
