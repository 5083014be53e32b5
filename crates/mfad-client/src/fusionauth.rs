//! The FusionAuth Two Factor API (`docs/contracts/fusionauth.md`): the current (1.26+) shapes as the
//! official 1.69 clients send them, and the legacy (≤ 1.25) shapes of the Elixir 0.3.0
//! client. Reached through [`Client::fusionauth`].
//!
//! Differences from the WorkOS surface, all as FusionAuth's own clients behave:
//! the API key goes raw in `Authorization` (no `Bearer`); `X-FusionAuth-TenantId` is sent on
//! every call once [`ClientBuilder::fusionauth_tenant_id`](crate::ClientBuilder::fusionauth_tenant_id)
//! is set; `Content-Type: application/json` only accompanies a body; a wrong code is
//! [`Error::InvalidCode`] (HTTP 421); and POSTs are retried only when the server certainly
//! did not act on them, since sending a code or completing a login must not happen twice.
//!
//! The `*_using_jwt` calls authenticate with the user's JWT alone (`Authorization: Bearer
//! <jwt>`), as the 1.69 clients' `generateTwoFactorSecretUsingJWT` does; the user is the
//! JWT's subject.
//!
//! Besides the errors each call lists, every authenticated call fails with
//! [`Error::Validation`] (HTTP 400, code `[InvalidTenantId]`) when the configured tenant
//! is not the API key's (or the JWT's `tid`), and with [`Error::Unauthorized`] for bad
//! credentials first; the unauthenticated login calls answer [`Error::NotFound`] instead.

use std::fmt;

use reqwest::Method;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::client::{Auth, Call, Client};
use crate::error::Error;

/// The FusionAuth Two Factor calls of a [`Client`], from [`Client::fusionauth`].
#[derive(Debug, Clone, Copy)]
pub struct FusionAuth<'a> {
    client: &'a Client,
}

impl Client {
    /// The FusionAuth-compatible Two Factor API of this server.
    pub fn fusionauth(&self) -> FusionAuth<'_> {
        FusionAuth { client: self }
    }
}

impl<'a> FusionAuth<'a> {
    /// The client these calls go through (for the WebAuthn calls in `crate::webauthn`).
    pub(crate) fn client(&self) -> &'a Client {
        self.client
    }
}

// ---------------------------------------------------------------------------------------
// Types

/// A two-factor method kind (1.26+).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MethodKind {
    /// An authenticator app (TOTP).
    Authenticator,
    /// A code sent by email.
    Email,
    /// A code sent by text message.
    Sms,
    /// A kind this version of the client does not know, as the server spelled it.
    Unknown(String),
}

impl MethodKind {
    /// The wire name.
    pub fn as_str(&self) -> &str {
        match self {
            MethodKind::Authenticator => "authenticator",
            MethodKind::Email => "email",
            MethodKind::Sms => "sms",
            MethodKind::Unknown(s) => s,
        }
    }
}

impl From<&str> for MethodKind {
    fn from(s: &str) -> Self {
        match s {
            "authenticator" => MethodKind::Authenticator,
            "email" => MethodKind::Email,
            "sms" => MethodKind::Sms,
            other => MethodKind::Unknown(other.to_owned()),
        }
    }
}

impl fmt::Display for MethodKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for MethodKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for MethodKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(MethodKind::from(
            String::deserialize(deserializer)?.as_str(),
        ))
    }
}

/// How a legacy (≤ 1.25) user receives codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Delivery {
    /// An authenticator app.
    None,
    /// A text message (the TOTP of the same secret, sent by SMS).
    TextMessage,
}

/// How an SMS code is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MessageType {
    /// A text message.
    #[serde(rename = "SMS")]
    Sms,
    /// A voice call.
    Voice,
}

/// A new shared secret from [`FusionAuth::generate_secret`]: 20 base64 characters (15 bytes)
/// and the same bytes in base32, which is what authenticator apps take.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Secret {
    /// The secret, base64 (FusionAuth's `secret`).
    pub secret: String,
    /// The same secret, base32 without padding.
    pub secret_base32_encoded: String,
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Enables a two-factor method: `POST /api/user/two-factor/{userId}`.
///
/// ```
/// use mfad_client::fusionauth::{Delivery, EnableTwoFactor};
/// let current = EnableTwoFactor::authenticator("435612", "8MJJfCY4ERBtotvenSc3").name("Phone app");
/// let legacy = EnableTwoFactor::legacy("435612", Delivery::None, "8MJJfCY4ERBtotvenSc3");
/// # let _ = (current, legacy);
/// ```
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EnableTwoFactor {
    code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<MethodKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delivery: Option<Delivery>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret_base32_encoded: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mobile_phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    two_factor_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    application_id: Option<String>,
}

impl fmt::Debug for EnableTwoFactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnableTwoFactor")
            .field("method", &self.method)
            .field("delivery", &self.delivery)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl EnableTwoFactor {
    fn new(code: impl Into<String>) -> Self {
        EnableTwoFactor {
            code: code.into(),
            method: None,
            delivery: None,
            secret: None,
            secret_base32_encoded: None,
            mobile_phone: None,
            email: None,
            name: None,
            two_factor_id: None,
            application_id: None,
        }
    }

    /// An authenticator app with the base64 `secret` (from
    /// [`FusionAuth::generate_secret`]); `code` is the app's current code for it.
    pub fn authenticator(code: impl Into<String>, secret: impl Into<String>) -> Self {
        EnableTwoFactor {
            method: Some(MethodKind::Authenticator),
            secret: Some(secret.into()),
            ..EnableTwoFactor::new(code)
        }
    }

    /// An authenticator app with a base32 secret.
    pub fn authenticator_base32(code: impl Into<String>, secret_base32: impl Into<String>) -> Self {
        EnableTwoFactor {
            method: Some(MethodKind::Authenticator),
            secret_base32_encoded: Some(secret_base32.into()),
            ..EnableTwoFactor::new(code)
        }
    }

    /// Text messages to `mobile_phone`; `code` is the one sent by
    /// [`FusionAuth::send_code`] with [`SendTwoFactorCode::sms`].
    pub fn sms(code: impl Into<String>, mobile_phone: impl Into<String>) -> Self {
        EnableTwoFactor {
            method: Some(MethodKind::Sms),
            mobile_phone: Some(mobile_phone.into()),
            ..EnableTwoFactor::new(code)
        }
    }

    /// Email to `email`; `code` is the one sent by [`FusionAuth::send_code`] with
    /// [`SendTwoFactorCode::email`].
    pub fn email(code: impl Into<String>, email: impl Into<String>) -> Self {
        EnableTwoFactor {
            method: Some(MethodKind::Email),
            email: Some(email.into()),
            ..EnableTwoFactor::new(code)
        }
    }

    /// The legacy (≤ 1.25) shape `{code, delivery, secret}`, as the Elixir 0.3.0 client
    /// sends it.
    pub fn legacy(code: impl Into<String>, delivery: Delivery, secret: impl Into<String>) -> Self {
        EnableTwoFactor {
            delivery: Some(delivery),
            secret: Some(secret.into()),
            ..EnableTwoFactor::new(code)
        }
    }

    /// A display name for the method.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The login in progress, so the answer carries a `code` for completing it.
    pub fn two_factor_id(mut self, two_factor_id: impl Into<String>) -> Self {
        self.two_factor_id = Some(two_factor_id.into());
        self
    }

    /// The application, for its MFA policy.
    pub fn application_id(mut self, application_id: impl Into<String>) -> Self {
        self.application_id = Some(application_id.into());
        self
    }
}

/// The answer to enabling a method.
#[derive(Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct EnableResponse {
    /// The user's new recovery codes: present only when the first method was added.
    #[serde(default)]
    pub recovery_codes: Vec<String>,
    /// A code for completing the login named by `twoFactorId`, if one was given.
    #[serde(default)]
    pub code: Option<String>,
}

impl fmt::Debug for EnableResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnableResponse")
            .field(
                "recovery_codes",
                &format_args!("<{} redacted>", self.recovery_codes.len()),
            )
            .field("code", &self.code.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Disables a method, body form (`DELETE /api/user/two-factor/{userId}` with JSON).
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DisableTwoFactor {
    method_id: String,
    code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    application_id: Option<String>,
}

impl fmt::Debug for DisableTwoFactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DisableTwoFactor")
            .field("method_id", &self.method_id)
            .finish_non_exhaustive()
    }
}

impl DisableTwoFactor {
    /// Disables `method_id`, proven by a current `code` of any method or a recovery code
    /// (a recovery code removes every method).
    pub fn new(method_id: impl Into<String>, code: impl Into<String>) -> Self {
        DisableTwoFactor {
            method_id: method_id.into(),
            code: code.into(),
            application_id: None,
        }
    }

    /// The application, for its MFA policy.
    pub fn application_id(mut self, application_id: impl Into<String>) -> Self {
        self.application_id = Some(application_id.into());
        self
    }
}

/// Sends a code: `POST /api/two-factor/send` (while enabling or disabling a method).
///
/// ```
/// use mfad_client::fusionauth::SendTwoFactorCode;
/// let enable_sms = SendTwoFactorCode::sms("+13035551212").user_id("c075e472-a732-47d6-865a-d385a5fcb525");
/// let disable = SendTwoFactorCode::method("RLRT").user_id("c075e472-a732-47d6-865a-d385a5fcb525");
/// let legacy = SendTwoFactorCode::to_mobile_phone("555-555-5555", "8MJJfCY4ERBtotvenSc3");
/// # let _ = (enable_sms, disable, legacy);
/// ```
#[derive(Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SendTwoFactorCode {
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<MethodKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    method_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mobile_phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message_type: Option<MessageType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    application_id: Option<String>,
}

impl fmt::Debug for SendTwoFactorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendTwoFactorCode")
            .field("user_id", &self.user_id)
            .field("method", &self.method)
            .field("method_id", &self.method_id)
            .field("message_type", &self.message_type)
            .finish_non_exhaustive()
    }
}

impl SendTwoFactorCode {
    /// An empty request, `{}`: with a JWT, the legacy "send to the JWT's user".
    pub fn new() -> Self {
        SendTwoFactorCode::default()
    }

    /// Legacy: a code for a user who already has two-factor enabled by text message,
    /// `{"userId": …}`.
    pub fn to_user(user_id: impl Into<String>) -> Self {
        SendTwoFactorCode::new().user_id(user_id)
    }

    /// Legacy: the TOTP of `secret` texted to `mobile_phone`, used while enabling,
    /// `{"mobilePhone": …, "secret": …}`.
    pub fn to_mobile_phone(mobile_phone: impl Into<String>, secret: impl Into<String>) -> Self {
        SendTwoFactorCode {
            mobile_phone: Some(mobile_phone.into()),
            secret: Some(secret.into()),
            ..Self::default()
        }
    }

    /// A code texted to `mobile_phone`, for enabling the `sms` method.
    pub fn sms(mobile_phone: impl Into<String>) -> Self {
        SendTwoFactorCode {
            method: Some(MethodKind::Sms),
            mobile_phone: Some(mobile_phone.into()),
            ..Self::default()
        }
    }

    /// A code emailed to `email`, for enabling the `email` method.
    pub fn email(email: impl Into<String>) -> Self {
        SendTwoFactorCode {
            method: Some(MethodKind::Email),
            email: Some(email.into()),
            ..Self::default()
        }
    }

    /// A code through the existing method `method_id`, for disabling it.
    pub fn method(method_id: impl Into<String>) -> Self {
        SendTwoFactorCode {
            method_id: Some(method_id.into()),
            ..Self::default()
        }
    }

    /// The user (required with an API key, omitted with a JWT).
    pub fn user_id(mut self, user_id: impl Into<String>) -> Self {
        self.user_id = Some(user_id.into());
        self
    }

    /// Text message or voice call.
    pub fn message_type(mut self, message_type: MessageType) -> Self {
        self.message_type = Some(message_type);
        self
    }

    /// The application, for its message templates.
    pub fn application_id(mut self, application_id: impl Into<String>) -> Self {
        self.application_id = Some(application_id.into());
        self
    }
}

/// Starts a two-factor login (or step-up): `POST /api/two-factor/start`.
#[derive(Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StartTwoFactorLogin {
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    login_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    application_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trust_challenge: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<Value>,
}

impl fmt::Debug for StartTwoFactorLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StartTwoFactorLogin")
            .field("user_id", &self.user_id)
            .field("login_id", &self.login_id)
            .field("application_id", &self.application_id)
            .finish_non_exhaustive()
    }
}

impl StartTwoFactorLogin {
    /// For the user with this id.
    pub fn user(user_id: impl Into<String>) -> Self {
        StartTwoFactorLogin {
            user_id: Some(user_id.into()),
            ..Self::default()
        }
    }

    /// For the user with this login id (email or username).
    pub fn login_id(login_id: impl Into<String>) -> Self {
        StartTwoFactorLogin {
            login_id: Some(login_id.into()),
            ..Self::default()
        }
    }

    /// The application being logged into.
    pub fn application_id(mut self, application_id: impl Into<String>) -> Self {
        self.application_id = Some(application_id.into());
        self
    }

    /// The code to send by email or SMS, instead of one the server generates (do not use
    /// with authenticator-only users).
    pub fn code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    /// A trust challenge to bind the resulting trust token to.
    pub fn trust_challenge(mut self, challenge: impl Into<String>) -> Self {
        self.trust_challenge = Some(challenge.into());
        self
    }

    /// Opaque state returned with the completed login.
    pub fn state(mut self, state: Value) -> Self {
        self.state = Some(state);
        self
    }
}

/// A login in progress, from [`FusionAuth::start_login`].
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct StartedLogin {
    /// The code the server will accept for email and SMS methods (deliver it yourself if
    /// the server does not).
    #[serde(default)]
    pub code: Option<String>,
    /// The user's methods; empty when none are configured.
    #[serde(default)]
    pub methods: Vec<TwoFactorMethod>,
    /// Names the login in [`FusionAuth::send_code_for_login`] and
    /// [`FusionAuth::complete_login`].
    pub two_factor_id: String,
}

impl fmt::Debug for StartedLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StartedLogin")
            .field("code", &self.code.as_ref().map(|_| "<redacted>"))
            .field("methods", &self.methods)
            .field("two_factor_id", &"<redacted>")
            .finish()
    }
}

/// One of a user's two-factor methods.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct TwoFactorMethod {
    /// Its id (4 characters in FusionAuth, for example `BD5R`).
    pub id: String,
    /// Its kind.
    pub method: MethodKind,
    /// Its display name.
    #[serde(default)]
    pub name: Option<String>,
    /// The address, for email methods.
    #[serde(default)]
    pub email: Option<String>,
    /// The phone number, for SMS methods.
    #[serde(default)]
    pub mobile_phone: Option<String>,
    /// Whether it was the last one used.
    #[serde(default)]
    pub last_used: Option<bool>,
    /// TOTP parameters, for authenticator methods.
    #[serde(default)]
    pub authenticator: Option<AuthenticatorConfig>,
}

/// TOTP parameters of an authenticator method.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AuthenticatorConfig {
    /// `HmacSHA1`, `HmacSHA256` or `HmacSHA512`.
    #[serde(default)]
    pub algorithm: Option<String>,
    /// Digits per code.
    #[serde(default)]
    pub code_length: Option<u32>,
    /// Seconds per step.
    #[serde(default)]
    pub time_step: Option<u32>,
}

/// Completes a two-factor login: `POST /api/two-factor/login` (no API key).
#[derive(Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CompleteTwoFactorLogin {
    two_factor_id: String,
    code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    trust_computer: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    application_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip_address: Option<String>,
    /// FusionAuth spells it `noJWT`, which `camelCase` would make `noJwt`.
    #[serde(rename = "noJWT", skip_serializing_if = "Option::is_none")]
    no_jwt: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    meta_data: Option<Value>,
}

impl fmt::Debug for CompleteTwoFactorLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompleteTwoFactorLogin")
            .field("trust_computer", &self.trust_computer)
            .field("application_id", &self.application_id)
            .finish_non_exhaustive()
    }
}

impl CompleteTwoFactorLogin {
    /// Answers the login `two_factor_id` with a code from any of the user's methods, or a
    /// recovery code (single use).
    pub fn new(two_factor_id: impl Into<String>, code: impl Into<String>) -> Self {
        CompleteTwoFactorLogin {
            two_factor_id: two_factor_id.into(),
            code: code.into(),
            trust_computer: None,
            application_id: None,
            user_id: None,
            ip_address: None,
            no_jwt: None,
            meta_data: None,
        }
    }

    /// Ask for a `twoFactorTrustId` so this device can skip two-factor for a while.
    pub fn trust_computer(mut self, trust: bool) -> Self {
        self.trust_computer = Some(trust);
        self
    }

    /// The application being logged into.
    pub fn application_id(mut self, application_id: impl Into<String>) -> Self {
        self.application_id = Some(application_id.into());
        self
    }

    /// The user's id, if known.
    pub fn user_id(mut self, user_id: impl Into<String>) -> Self {
        self.user_id = Some(user_id.into());
        self
    }

    /// The end user's IP address, for auditing.
    pub fn ip_address(mut self, ip: impl Into<String>) -> Self {
        self.ip_address = Some(ip.into());
        self
    }

    /// Do not issue a JWT.
    pub fn no_jwt(mut self, no_jwt: bool) -> Self {
        self.no_jwt = Some(no_jwt);
        self
    }

    /// Device metadata (`metaData`).
    pub fn meta_data(mut self, meta_data: Value) -> Self {
        self.meta_data = Some(meta_data);
        self
    }
}

/// A completed two-factor login.
#[derive(Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct LoginResponse {
    /// The HTTP status: 200, or one of FusionAuth's login statuses (202, 203, 212, 213).
    #[serde(skip)]
    pub status: u16,
    /// The user who logged in.
    #[serde(default)]
    pub user: Option<LoginUser>,
    /// A signed JWT, if the server issues them.
    #[serde(default)]
    pub token: Option<String>,
    /// A refresh token, if issued.
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// With `trustComputer`, the trust id to present to [`FusionAuth::status`] later.
    #[serde(default)]
    pub two_factor_trust_id: Option<String>,
    /// Every other field of the answer.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl fmt::Debug for LoginResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |o: &Option<String>| o.as_ref().map(|_| "<redacted>");
        f.debug_struct("LoginResponse")
            .field("status", &self.status)
            .field("user", &self.user)
            .field("token", &redacted(&self.token))
            .field("refresh_token", &redacted(&self.refresh_token))
            .field("two_factor_trust_id", &redacted(&self.two_factor_trust_id))
            .field("extra", &self.extra.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The user of a [`LoginResponse`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct LoginUser {
    /// The user's id.
    pub id: String,
    /// Every other field of the user.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Whether a user must pass a two-factor challenge, from [`FusionAuth::status`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct TwoFactorStatus {
    /// `true` when the server answered 242 (two-factor is enabled or required, and no valid
    /// trust covers it); `false` on 200.
    #[serde(skip)]
    pub two_factor_required: bool,
    /// The trusts this device holds.
    #[serde(default)]
    pub trusts: Vec<Trust>,
    /// The trust id the status was checked against.
    #[serde(default)]
    pub two_factor_trust_id: Option<String>,
}

/// A device trust ("remember this computer").
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Trust {
    /// The application it was granted for.
    #[serde(default)]
    pub application_id: Option<String>,
    /// When it was granted.
    #[serde(default, with = "time::serde::timestamp::milliseconds_i64::option")]
    pub start_instant: Option<OffsetDateTime>,
    /// When it ends.
    #[serde(default, with = "time::serde::timestamp::milliseconds_i64::option")]
    pub expiration: Option<OffsetDateTime>,
    /// Whether it has ended.
    #[serde(default)]
    pub expired: Option<bool>,
}

/// The action a status check is for (`POST /api/two-factor/status`, 1.62+).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum StatusAction {
    /// A login.
    #[serde(rename = "login")]
    Login,
    /// A step-up before a sensitive operation.
    #[serde(rename = "stepUp")]
    StepUp,
    /// A password change.
    #[serde(rename = "changePassword")]
    ChangePassword,
}

/// The body form of a status check.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusRequest {
    user_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    application_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    two_factor_trust_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    action: Option<StatusAction>,
    #[serde(skip_serializing_if = "Option::is_none")]
    access_token: Option<String>,
}

impl fmt::Debug for StatusRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StatusRequest")
            .field("user_id", &self.user_id)
            .field("application_id", &self.application_id)
            .field("action", &self.action)
            .finish_non_exhaustive()
    }
}

impl StatusRequest {
    /// The status of `user_id`.
    pub fn new(user_id: impl Into<String>) -> Self {
        StatusRequest {
            user_id: user_id.into(),
            application_id: None,
            two_factor_trust_id: None,
            action: None,
            access_token: None,
        }
    }

    /// The application being accessed.
    pub fn application_id(mut self, application_id: impl Into<String>) -> Self {
        self.application_id = Some(application_id.into());
        self
    }

    /// A trust id from an earlier login with `trustComputer`.
    pub fn two_factor_trust_id(mut self, trust_id: impl Into<String>) -> Self {
        self.two_factor_trust_id = Some(trust_id.into());
        self
    }

    /// What the check is for.
    pub fn action(mut self, action: StatusAction) -> Self {
        self.action = Some(action);
        self
    }

    /// The user's access token.
    pub fn access_token(mut self, token: impl Into<String>) -> Self {
        self.access_token = Some(token.into());
        self
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RecoveryCodes {
    #[serde(default)]
    recovery_codes: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MethodIdBody<'a> {
    method_id: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RenameBody<'a> {
    method_id: &'a str,
    name: &'a str,
}

#[derive(Serialize)]
struct EmptyBody {}

// ---------------------------------------------------------------------------------------
// Calls

const USER_TWO_FACTOR: [&str; 3] = ["api", "user", "two-factor"];

impl FusionAuth<'_> {
    /// A new shared secret: `GET /api/two-factor/secret`.
    ///
    /// # Errors
    /// [`Error::Unauthorized`] for a bad API key.
    pub async fn generate_secret(&self) -> Result<Secret, Error> {
        self.client
            .send_json(Call::fusionauth(
                Method::GET,
                &["api", "two-factor", "secret"],
            ))
            .await
    }

    /// A new shared secret, authenticated by a user's JWT: `GET /api/two-factor/secret`
    /// with `Authorization: Bearer <jwt>`.
    ///
    /// # Errors
    /// [`Error::Unauthorized`] for a bad or expired JWT.
    pub async fn generate_secret_using_jwt(&self, jwt: &str) -> Result<Secret, Error> {
        let call =
            Call::fusionauth(Method::GET, &["api", "two-factor", "secret"]).auth(Auth::Jwt(jwt));
        self.client.send_json(call).await
    }

    /// Enables a method for a user: `POST /api/user/two-factor/{userId}`. The first method
    /// comes with 10 recovery codes; later ones with none. mfad does not own users, so any
    /// user id is accepted (FusionAuth answers 404 for a user it does not have).
    ///
    /// # Errors
    /// [`Error::InvalidCode`] (421) if the code does not match, [`Error::Validation`] for
    /// missing or invalid fields, [`Error::NotFound`] for an unknown user on FusionAuth.
    pub async fn enable(
        &self,
        user_id: &str,
        request: &EnableTwoFactor,
    ) -> Result<EnableResponse, Error> {
        let path = ["api", "user", "two-factor", user_id];
        self.client
            .send(Call::fusionauth(Method::POST, &path).json(request)?)
            .await?
            .json_or_default()
    }

    /// Enables a method for the JWT's user: `POST /api/user/two-factor`.
    ///
    /// # Errors
    /// As [`enable`](Self::enable), plus [`Error::Unauthorized`] for a bad JWT.
    pub async fn enable_using_jwt(
        &self,
        jwt: &str,
        request: &EnableTwoFactor,
    ) -> Result<EnableResponse, Error> {
        let call = Call::fusionauth(Method::POST, &USER_TWO_FACTOR)
            .auth(Auth::Jwt(jwt))
            .json(request)?;
        self.client.send(call).await?.json_or_default()
    }

    /// Disables a method: `DELETE /api/user/two-factor/{userId}?methodId=…&code=…`. Without
    /// a `method_id` this is the legacy `?code=…` form, which turns two-factor off.
    ///
    /// # Errors
    /// [`Error::InvalidCode`] (421) if the code does not match, [`Error::NotFound`] for an
    /// unknown user, [`Error::Validation`] (`[invalid]methodId`) for a method id the user
    /// does not have.
    pub async fn disable(
        &self,
        user_id: &str,
        method_id: Option<&str>,
        code: &str,
    ) -> Result<(), Error> {
        let path = ["api", "user", "two-factor", user_id];
        let call = Call::fusionauth(Method::DELETE, &path)
            .query("methodId", method_id)
            .query("code", Some(code));
        self.client.send(call).await.map(drop)
    }

    /// Disables a method, with the request in a JSON body:
    /// `DELETE /api/user/two-factor/{userId}`.
    ///
    /// # Errors
    /// As [`disable`](Self::disable).
    pub async fn disable_with_request(
        &self,
        user_id: &str,
        request: &DisableTwoFactor,
    ) -> Result<(), Error> {
        let path = ["api", "user", "two-factor", user_id];
        self.client
            .send(Call::fusionauth(Method::DELETE, &path).json(request)?)
            .await
            .map(drop)
    }

    /// Disables a method of the JWT's user: `DELETE /api/user/two-factor?methodId=…&code=…`
    /// (legacy `?code=…` without a method id).
    ///
    /// # Errors
    /// As [`disable`](Self::disable), plus [`Error::Unauthorized`] for a bad JWT.
    pub async fn disable_using_jwt(
        &self,
        jwt: &str,
        method_id: Option<&str>,
        code: &str,
    ) -> Result<(), Error> {
        let call = Call::fusionauth(Method::DELETE, &USER_TWO_FACTOR)
            .auth(Auth::Jwt(jwt))
            .query("methodId", method_id)
            .query("code", Some(code));
        self.client.send(call).await.map(drop)
    }

    /// Renames a method: `PUT /api/user/two-factor/{userId}` with `{methodId, name}`.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown user, [`Error::Validation`]
    /// (`[invalid]methodId`) for a method id the user does not have.
    pub async fn rename_method(
        &self,
        user_id: &str,
        method_id: &str,
        name: &str,
    ) -> Result<(), Error> {
        let path = ["api", "user", "two-factor", user_id];
        let call = Call::fusionauth(Method::PUT, &path).json(&RenameBody { method_id, name })?;
        self.client.send(call).await.map(drop)
    }

    /// Sends a code while enabling or disabling a method (or, in the legacy shapes, to a
    /// user or a phone): `POST /api/two-factor/send`.
    ///
    /// # Errors
    /// [`Error::Validation`] for an incomplete request (with an API key, the request must
    /// name the user) or an invalid phone number, [`Error::NotFound`] for an unknown user
    /// when sending to an existing method.
    pub async fn send_code(&self, request: &SendTwoFactorCode) -> Result<(), Error> {
        let call = Call::fusionauth(Method::POST, &["api", "two-factor", "send"]).json(request)?;
        self.client.send(call).await.map(drop)
    }

    /// Sends a code to the JWT's user: `POST /api/two-factor/send` with
    /// `Authorization: Bearer <jwt>` (leave the request's user id unset).
    ///
    /// # Errors
    /// As [`send_code`](Self::send_code), plus [`Error::Unauthorized`] for a bad or expired
    /// JWT, and [`Error::Validation`] (`[InvalidTenantId]`) when
    /// [`ClientBuilder::fusionauth_tenant_id`](crate::ClientBuilder::fusionauth_tenant_id)
    /// or the token's `tid` claim names another tenant than the one whose key verified it.
    pub async fn send_code_using_jwt(
        &self,
        jwt: &str,
        request: &SendTwoFactorCode,
    ) -> Result<(), Error> {
        let call = Call::fusionauth(Method::POST, &["api", "two-factor", "send"])
            .auth(Auth::Jwt(jwt))
            .json(request)?;
        self.client.send(call).await.map(drop)
    }

    /// Sends a code for a login in progress through `method_id`:
    /// `POST /api/two-factor/send/{twoFactorId}` with `{"methodId": …}`, unauthenticated.
    /// Without a method id the body is the legacy `{}`. A new code invalidates earlier ones.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown or expired `two_factor_id` (or one of another
    /// tenant than the configured one); [`Error::RateLimited`] once a login has had its
    /// share of codes (on mfad, `MFAD_CHALLENGE_MAX_ATTEMPTS` sends).
    pub async fn send_code_for_login(
        &self,
        two_factor_id: &str,
        method_id: Option<&str>,
    ) -> Result<(), Error> {
        let path = ["api", "two-factor", "send", two_factor_id];
        let call = Call::fusionauth(Method::POST, &path).auth(Auth::None);
        let call = match method_id {
            Some(method_id) => call.json(&MethodIdBody { method_id })?,
            None => call.json(&EmptyBody {})?,
        };
        self.client.send(call).await.map(drop)
    }

    /// Starts a two-factor login or step-up: `POST /api/two-factor/start`.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown user, [`Error::Validation`] without a user id or
    /// login id.
    pub async fn start_login(&self, request: &StartTwoFactorLogin) -> Result<StartedLogin, Error> {
        let call = Call::fusionauth(Method::POST, &["api", "two-factor", "start"]).json(request)?;
        self.client.send_json(call).await
    }

    /// Completes a two-factor login: `POST /api/two-factor/login`, unauthenticated.
    ///
    /// # Errors
    /// [`Error::InvalidCode`] (421) for a wrong code, [`Error::NotFound`] for an unknown,
    /// expired or already used `twoFactorId`.
    pub async fn complete_login(
        &self,
        request: &CompleteTwoFactorLogin,
    ) -> Result<LoginResponse, Error> {
        let call = Call::fusionauth(Method::POST, &["api", "two-factor", "login"])
            .auth(Auth::None)
            .json(request)?;
        let answer = self.client.send(call).await?;
        let mut login: LoginResponse = answer.json_or_default()?;
        login.status = answer.status.as_u16();
        Ok(login)
    }

    /// Whether `user_id` must pass two-factor: `GET /api/two-factor/status[/{trustId}]
    /// ?userId=…&applicationId=…`. A 242 answer is [`TwoFactorStatus::two_factor_required`],
    /// not an error.
    ///
    /// mfad answers 200 for a user it has never seen: such a user has no method.
    ///
    /// # Errors
    /// [`Error::Unauthorized`] for a bad API key, [`Error::Validation`] for a missing or
    /// malformed user id.
    pub async fn status(
        &self,
        user_id: &str,
        application_id: Option<&str>,
        two_factor_trust_id: Option<&str>,
    ) -> Result<TwoFactorStatus, Error> {
        let mut path = vec!["api", "two-factor", "status"];
        path.extend(two_factor_trust_id);
        let call = Call::fusionauth(Method::GET, &path)
            .query("userId", Some(user_id))
            .query("applicationId", application_id);
        self.status_of(call).await
    }

    /// The body form of [`status`](Self::status): `POST /api/two-factor/status` (1.62+).
    ///
    /// # Errors
    /// As [`status`](Self::status), plus [`Error::Unauthorized`] for a bad `accessToken`.
    pub async fn status_with_request(
        &self,
        request: &StatusRequest,
    ) -> Result<TwoFactorStatus, Error> {
        let call =
            Call::fusionauth(Method::POST, &["api", "two-factor", "status"]).json(request)?;
        self.status_of(call).await
    }

    async fn status_of(&self, call: Call<'_>) -> Result<TwoFactorStatus, Error> {
        let answer = self.client.send(call).await?;
        let mut status: TwoFactorStatus = answer.json_or_default()?;
        status.two_factor_required = match answer.status.as_u16() {
            242 => true,
            200..=299 => false,
            other => {
                return Err(answer.unexpected(format!(
                    "unexpected status {other} from the status endpoint"
                )));
            }
        };
        Ok(status)
    }

    /// Replaces a user's recovery codes with 10 new ones:
    /// `POST /api/user/two-factor/recovery-code/{userId}`.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown user, [`Error::Validation`]
    /// (`[TwoFactorNotEnabled]`) for a user without a method.
    pub async fn generate_recovery_codes(&self, user_id: &str) -> Result<Vec<String>, Error> {
        let path = ["api", "user", "two-factor", "recovery-code", user_id];
        let codes: RecoveryCodes = self
            .client
            .send_json(Call::fusionauth(Method::POST, &path))
            .await?;
        Ok(codes.recovery_codes)
    }

    /// A user's unused recovery codes: `GET /api/user/two-factor/recovery-code/{userId}`
    /// (deprecated by FusionAuth in 1.64, still served).
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown user.
    pub async fn retrieve_recovery_codes(&self, user_id: &str) -> Result<Vec<String>, Error> {
        let path = ["api", "user", "two-factor", "recovery-code", user_id];
        let codes: RecoveryCodes = self
            .client
            .send_json(Call::fusionauth(Method::GET, &path))
            .await?;
        Ok(codes.recovery_codes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_bodies_match_the_documented_shapes() {
        let v = serde_json::to_value(
            EnableTwoFactor::authenticator("435612", "8MJJfCY4ERBtotvenSc3")
                .name("Work authenticator app")
                .two_factor_id("a6y"),
        )
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"code":"435612","method":"authenticator","name":"Work authenticator app","secret":"8MJJfCY4ERBtotvenSc3","twoFactorId":"a6y"})
        );
        let v = serde_json::to_value(EnableTwoFactor::legacy(
            "819169",
            Delivery::TextMessage,
            "SP2m6K2Dg/x2JN9DyQvZ",
        ))
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"code":"819169","delivery":"TextMessage","secret":"SP2m6K2Dg/x2JN9DyQvZ"})
        );
        let v = serde_json::to_value(
            SendTwoFactorCode::sms("+13035551212")
                .user_id("u")
                .message_type(MessageType::Voice),
        )
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"userId":"u","method":"sms","mobilePhone":"+13035551212","messageType":"Voice"})
        );
        assert_eq!(
            serde_json::to_value(SendTwoFactorCode::new()).unwrap(),
            serde_json::json!({})
        );
        // TwoFactorLoginRequest + BaseLoginRequest (`docs/contracts/fusionauth.md` §4).
        let v = serde_json::to_value(
            CompleteTwoFactorLogin::new("tfid", "915187")
                .trust_computer(true)
                .application_id("app")
                .user_id("u")
                .ip_address("192.0.2.1")
                .no_jwt(true)
                .meta_data(serde_json::json!({"device": {"name": "x"}})),
        )
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"twoFactorId":"tfid","code":"915187","trustComputer":true,"applicationId":"app","userId":"u","ipAddress":"192.0.2.1","noJWT":true,"metaData":{"device":{"name":"x"}}})
        );
    }

    #[test]
    fn documented_responses_parse() {
        let s: StartedLogin = serde_json::from_str(
            r#"{"code":"123456","methods":[{"id":"BD5R","method":"authenticator","name":"Bitwarden Authenticator","authenticator":{"algorithm":"HmacSHA1","codeLength":6,"timeStep":30}},{"id":"KLRT","method":"email","name":"Work email","email":"richard@piedpiper.com","lastUsed":true},{"id":"87KW","method":"sms","name":"Mobile","mobilePhone":"+13035551212"}],"twoFactorId":"DvnAUMCHLxCCAWyHXOVWPQd8ZY0a6U0e3YpYkT0MNxs"}"#,
        )
        .unwrap();
        assert_eq!(s.methods.len(), 3);
        assert_eq!(
            s.methods[0].authenticator.as_ref().unwrap().time_step,
            Some(30)
        );
        assert_eq!(s.methods[1].method, MethodKind::Email);
        let t: TwoFactorStatus = serde_json::from_str(
            r#"{"trusts":[{"applicationId":"a","expiration":1700000000000,"startInstant":1699000000000,"expired":false}],"twoFactorTrustId":"t"}"#,
        )
        .unwrap();
        assert_eq!(
            t.trusts[0].expiration.unwrap().unix_timestamp(),
            1_700_000_000
        );
    }
}
