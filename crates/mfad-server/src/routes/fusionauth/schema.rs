//! FusionAuth's wire objects as the OpenAPI document describes them. Documentation only:
//! the handlers read [`super::body::FaBody`] / [`super::body::FaQuery`] and answer with
//! [`super::wire`]; the schemathesis run in CI checks that the two agree.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

/// One error of FusionAuth's Errors object.
#[derive(Debug, Serialize, ToSchema)]
pub struct FusionAuthError {
    /// `[reason]field` for a field, `[Reason]` for a general error.
    pub code: String,
    /// For humans.
    pub message: String,
}

/// FusionAuth's Errors object, the body of every 400 (and of 409).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FusionAuthErrors {
    /// Errors by field name.
    pub field_errors: BTreeMap<String, Vec<FusionAuthError>>,
    /// Errors about the request as a whole.
    pub general_errors: Vec<FusionAuthError>,
}

/// `GET /api/two-factor/secret`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretResponse {
    /// 20 characters of standard base64 (15 bytes).
    pub secret: String,
    /// The unpadded base32 of the same bytes.
    pub secret_base32_encoded: String,
}

/// The TOTP settings of an authenticator method.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Authenticator {
    /// `HmacSHA1`, `HmacSHA256` or `HmacSHA512`.
    pub algorithm: String,
    /// Digits per code.
    pub code_length: u32,
    /// Seconds per step.
    pub time_step: u32,
}

/// A `TwoFactorMethod`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TwoFactorMethod {
    /// The method id.
    #[schema(required = false)]
    pub id: Option<String>,
    /// `authenticator`, `sms` or `email`.
    #[schema(required = false)]
    pub method: Option<String>,
    /// A display name.
    #[schema(required = false)]
    pub name: Option<String>,
    /// For `authenticator`.
    #[schema(required = false)]
    pub authenticator: Option<Authenticator>,
    /// For `sms`.
    #[schema(required = false)]
    pub mobile_phone: Option<String>,
    /// For `email`.
    #[schema(required = false)]
    pub email: Option<String>,
    /// On the method the user last logged in with.
    #[schema(required = false)]
    pub last_used: Option<bool>,
}

/// `POST /api/user/two-factor[/{userId}]`: the current shape (`method` and its details)
/// or the legacy one (`delivery`, `secret`). Scalars may be strings, numbers or booleans.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnableRequest {
    /// A code of the new method (from its authenticator, or sent by `/api/two-factor/send`).
    pub code: Option<String>,
    /// `authenticator`, `sms` or `email`.
    pub method: Option<String>,
    /// Authenticator: the secret, standard base64.
    pub secret: Option<String>,
    /// Authenticator: the secret, base32.
    pub secret_base32_encoded: Option<String>,
    /// SMS: the phone number.
    pub mobile_phone: Option<String>,
    /// Email: the address.
    pub email: Option<String>,
    /// A display name.
    pub name: Option<String>,
    /// A login in progress to complete with this enable.
    pub two_factor_id: Option<String>,
    /// Legacy: `None` or `TextMessage`.
    pub delivery: Option<String>,
}

/// The first method's recovery codes (and `code` when `twoFactorId` was given).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryCodes {
    /// Recovery codes.
    pub recovery_codes: Vec<String>,
    /// A code to complete the login named by `twoFactorId`.
    #[schema(required = false)]
    pub code: Option<String>,
}

/// `DELETE /api/user/two-factor[/{userId}]` with a body (`disableTwoFactorWithRequest`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DisableRequest {
    /// The method to remove (absent: two-factor off altogether).
    pub method_id: Option<String>,
    /// A code of that method, or a recovery code.
    pub code: Option<String>,
}

/// The query of disable.
#[derive(Debug, Serialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct DisableQuery {
    /// The method to remove.
    pub method_id: Option<String>,
    /// A code of that method, or a recovery code.
    pub code: Option<String>,
    /// The user, for an API key without a path user (FusionAuth ≤ 1.26).
    pub user_id: Option<String>,
}

/// The query of the JWT forms of enable and update.
#[derive(Debug, Serialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct UserQuery {
    /// The user, for an API key (FusionAuth ≤ 1.26).
    pub user_id: Option<String>,
}

/// `PUT /api/user/two-factor[/{userId}]`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateRequest {
    /// The method to rename.
    pub method_id: Option<String>,
    /// The new name; blank clears it.
    pub name: Option<String>,
}

/// `POST /api/two-factor/send`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SendRequest {
    /// Enabling: `sms` or `email`.
    pub method: Option<String>,
    /// Enabling by SMS: the phone number.
    pub mobile_phone: Option<String>,
    /// Enabling by email: the address.
    pub email: Option<String>,
    /// Disabling: the method to send to.
    pub method_id: Option<String>,
    /// The user (with an API key).
    pub user_id: Option<String>,
    /// Legacy `TextMessage` enable: the TOTP secret whose current code is texted.
    pub secret: Option<String>,
    /// `TextMessage` or `Voice` (sent as text).
    pub message_type: Option<String>,
}

/// `POST /api/two-factor/send/{twoFactorId}`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SendForLoginRequest {
    /// The method to send to (default: the first SMS, else email method).
    pub method_id: Option<String>,
}

/// `POST /api/two-factor/start`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StartRequest {
    /// The user (wins over `loginId`).
    pub user_id: Option<String>,
    /// An email address, phone number or user id of the tenant's users.
    pub login_id: Option<String>,
    /// The application.
    pub application_id: Option<String>,
    /// A code of the caller's choosing (else one is generated).
    pub code: Option<String>,
    /// Echoed by the login.
    #[schema(value_type = Option<Object>)]
    pub state: Option<serde_json::Value>,
}

/// The answer to `start`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StartResponse {
    /// The login's code.
    pub code: String,
    /// The user's methods (absent when none).
    #[schema(required = false)]
    pub methods: Option<Vec<TwoFactorMethod>>,
    /// The login in progress.
    pub two_factor_id: String,
}

/// `POST /api/two-factor/login`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoginRequest {
    /// The login in progress.
    pub two_factor_id: String,
    /// A code: from `start` or the last send, a TOTP code, or a recovery code.
    pub code: String,
    /// Trust this computer (`twoFactorTrustId` and the `fusionauth.trust` cookie).
    pub trust_computer: Option<bool>,
    /// The application.
    pub application_id: Option<String>,
    /// No JWT in the answer.
    #[serde(rename = "noJWT")]
    pub no_jwt: Option<bool>,
}

/// The user of a login response.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoginUser {
    /// The user id.
    pub id: String,
    /// The tenant, as a UUID.
    pub tenant_id: String,
    /// The user's methods.
    pub two_factor: LoginUserTwoFactor,
}

/// The methods of a login response's user.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginUserTwoFactor {
    /// The methods.
    pub methods: Vec<TwoFactorMethod>,
}

/// FusionAuth's LoginResponse, plus what completed the login.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoginResponse {
    /// The user.
    pub user: LoginUser,
    /// mfad: `authenticator`, `sms`, `email`, `recoveryCode` or `code`.
    pub method: String,
    /// mfad: the method used, when a method was.
    #[schema(required = false)]
    pub method_id: Option<String>,
    /// The `state` given to `start`.
    #[schema(required = false, value_type = Option<Object>)]
    pub state: Option<serde_json::Value>,
    /// A JWT, when a signing secret is configured and `noJWT` is not set.
    #[schema(required = false)]
    pub token: Option<String>,
    /// When `token` expires (ms since the epoch).
    #[schema(required = false)]
    pub token_expiration_instant: Option<i64>,
    /// With `trustComputer`.
    #[schema(required = false)]
    pub two_factor_trust_id: Option<String>,
}

/// The query of the status routes.
#[derive(Debug, Serialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct StatusQuery {
    /// The user.
    pub user_id: String,
    /// The application.
    pub application_id: Option<String>,
    /// A trust to check.
    pub two_factor_trust_id: Option<String>,
}

/// `POST /api/two-factor/status`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusRequest {
    /// The user.
    pub user_id: Option<String>,
    /// A JWT naming the user instead.
    pub access_token: Option<String>,
    /// The application.
    pub application_id: Option<String>,
    /// A trust to check.
    pub two_factor_trust_id: Option<String>,
    /// Accepted and ignored.
    #[schema(value_type = Option<Object>)]
    pub action: Option<serde_json::Value>,
}

/// A trusted computer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Trust {
    /// The application trusted.
    pub application_id: Option<String>,
    /// Expiry, ms since the epoch.
    pub expiration: i64,
    /// Start, ms since the epoch.
    pub start_instant: i64,
    /// Always `false` (expired trusts are not listed).
    pub expired: bool,
}

/// The status body (200 and 242).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusResponse {
    /// The valid trust, if any.
    pub trusts: Vec<Trust>,
    /// The trust given, while valid.
    #[schema(required = false)]
    pub two_factor_trust_id: Option<String>,
}
