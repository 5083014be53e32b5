//! The WorkOS wire objects as the OpenAPI document describes them. Documentation only:
//! the handlers read [`crate::extract::JsonObject`] and answer with [`super::wire`]; the
//! schemathesis run in CI checks that the two agree.

use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

/// A WorkOS factor type.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FactorType {
    /// An authenticator app.
    Totp,
    /// A code texted to a phone.
    Sms,
    /// A code the caller delivers (returned by the challenge).
    GenericOtp,
}

/// `POST /auth/factors/enroll`.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnrollFactor {
    /// The factor type.
    #[serde(rename = "type")]
    pub kind: FactorType,
    /// TOTP: the issuer shown by authenticator apps (required for `totp`).
    pub totp_issuer: Option<String>,
    /// TOTP: the account name shown by authenticator apps (required for `totp`).
    pub totp_user: Option<String>,
    /// TOTP: an existing secret to import (base32, 10 to 128 bytes).
    pub totp_secret: Option<String>,
    /// SMS: the phone number (E.164, or national with a country code).
    pub phone_number: Option<String>,
    /// The user the factor belongs to.
    pub user_id: Option<String>,
}

/// `POST /user_management/users/{user_id}/auth_factors`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreateUserAuthFactor {
    /// Only `totp`.
    #[serde(rename = "type")]
    #[schema(value_type = String, pattern = "^totp$")]
    pub kind: String,
    /// The issuer (default `mfad`).
    pub totp_issuer: Option<String>,
    /// The account name (default: the user id).
    pub totp_user: Option<String>,
    /// An existing secret to import (base32, 10 to 128 bytes).
    pub totp_secret: Option<String>,
}

/// `POST /auth/factors/{id}/challenge`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChallengeFactor {
    /// SMS: the message, with `{{code}}` where the code goes.
    pub sms_template: Option<String>,
}

/// `POST /auth/challenges/{id}/verify`.
#[derive(Debug, Serialize, ToSchema)]
pub struct VerifyChallenge {
    /// The code the user typed.
    pub code: String,
}

/// The TOTP details of a factor; the secrets only in the enrollment answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Totp {
    /// Issuer.
    pub issuer: String,
    /// Account name.
    pub user: String,
    /// Enrollment only: a `data:image/png;base64,…` QR code of `uri`.
    #[schema(required = false)]
    pub qr_code: Option<String>,
    /// Enrollment only: the base32 secret.
    #[schema(required = false)]
    pub secret: Option<String>,
    /// Enrollment only: the `otpauth://` URI.
    #[schema(required = false)]
    pub uri: Option<String>,
}

/// The SMS details of a factor.
#[derive(Debug, Serialize, ToSchema)]
pub struct Sms {
    /// E.164.
    pub phone_number: String,
}

/// An `authentication_factor`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuthenticationFactor {
    /// `authentication_factor`.
    #[schema(pattern = "^authentication_factor$")]
    pub object: String,
    /// `auth_factor_…`.
    #[schema(example = "auth_factor_01FVYZ5QM8N98T9ME5BCB2BBMJ")]
    pub id: String,
    /// ISO 8601, milliseconds, `Z`.
    pub created_at: String,
    /// ISO 8601, milliseconds, `Z`.
    pub updated_at: String,
    /// The factor type.
    #[serde(rename = "type")]
    pub kind: FactorType,
    /// For `totp`.
    #[schema(required = false)]
    pub totp: Option<Totp>,
    /// For `sms`.
    #[schema(required = false)]
    pub sms: Option<Sms>,
    /// The owner, when enrolled for a user.
    #[schema(required = false)]
    pub user_id: Option<String>,
}

/// An `authentication_challenge`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuthenticationChallenge {
    /// `authentication_challenge`.
    #[schema(pattern = "^authentication_challenge$")]
    pub object: String,
    /// `auth_challenge_…`.
    pub id: String,
    /// ISO 8601.
    pub created_at: String,
    /// ISO 8601.
    pub updated_at: String,
    /// ISO 8601.
    pub expires_at: String,
    /// Generic OTP only: the code to deliver.
    #[schema(required = false)]
    pub code: Option<String>,
    /// The factor challenged.
    pub authentication_factor_id: String,
}

/// The answer to a verification: a wrong code is `valid: false`, not an error.
#[derive(Debug, Serialize, ToSchema)]
pub struct VerifyResponse {
    /// The challenge.
    pub challenge: AuthenticationChallenge,
    /// Whether the code was right.
    pub valid: bool,
}

/// A factor enrolled together with its first challenge.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserAuthFactorResponse {
    /// The factor, with its secrets.
    pub authentication_factor: AuthenticationFactor,
    /// Its first challenge.
    pub authentication_challenge: AuthenticationChallenge,
}

/// Cursors of a list page.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListMetadata {
    /// The cursor of the previous page.
    pub before: Option<String>,
    /// The cursor of the next page.
    pub after: Option<String>,
}

/// A `list` of factors.
#[derive(Debug, Serialize, ToSchema)]
pub struct FactorList {
    /// `list`.
    #[schema(pattern = "^list$")]
    pub object: String,
    /// The factors of this page.
    pub data: Vec<AuthenticationFactor>,
    /// Cursors.
    pub list_metadata: ListMetadata,
}

/// The order of a list.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ListOrder {
    /// Oldest first.
    Asc,
    /// Newest first (default).
    Desc,
    /// As `asc`.
    Normal,
}

/// The query of `listUserAuthFactors`. Other parameters are refused (422).
#[derive(Debug, Serialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// 1 to 100, default 10.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// A factor id: the page before it.
    pub before: Option<String>,
    /// A factor id: the page after it.
    pub after: Option<String>,
    /// Default `desc`.
    #[param(inline)]
    pub order: Option<ListOrder>,
}

/// WorkOS's error body.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkosError {
    /// Machine-readable (`entity_not_found`, `unauthorized`, …).
    pub code: String,
    /// For humans.
    pub message: String,
    /// The id not found, on 404.
    #[schema(required = false)]
    pub entity_id: Option<String>,
}

/// One invalid field.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkosFieldError {
    /// The field's name.
    pub field: String,
    /// The sentence (WorkOS's older item shape).
    pub code: String,
    /// The sentence.
    pub message: String,
    /// Machine-readable (`required`, `invalid`, …).
    pub reason: String,
}

/// WorkOS's 422: `invalid_request_parameters` with the fields, or a single reason
/// (`invalid_phone_number`, `authentication_challenge_expired`, …).
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkosValidationError {
    /// Machine-readable.
    pub code: String,
    /// For humans.
    pub message: String,
    /// The invalid fields, for `invalid_request_parameters`.
    #[schema(required = false)]
    pub errors: Option<Vec<WorkosFieldError>>,
}
