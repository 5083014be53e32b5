//! The WorkOS MFA API: factors, challenges and user factors, called as the official WorkOS
//! SDKs call them (`docs/contracts/workos.md` §2 and §4). These are methods of [`Client`].

use std::collections::VecDeque;
use std::fmt;

use futures_core::Stream;
use reqwest::Method;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;

use crate::client::{Call, Client};
use crate::error::Error;
use crate::ids::{ChallengeId, FactorId};

// ---------------------------------------------------------------------------------------
// Types

/// The kind of an authentication factor.
///
/// Types this client does not know yet arrive as [`FactorType::Unknown`], so a server that
/// adds one does not break existing clients.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FactorType {
    /// A time-based one-time password from an authenticator app (RFC 6238).
    Totp,
    /// A code texted to a phone number.
    Sms,
    /// A code the server generates and the caller delivers by any channel.
    GenericOtp,
    /// A WebAuthn credential (appears in WorkOS responses only).
    Webauthn,
    /// A type this version of the client does not know, as the server spelled it.
    Unknown(String),
}

impl FactorType {
    /// The wire name (`totp`, `sms`, `generic_otp`, …).
    pub fn as_str(&self) -> &str {
        match self {
            FactorType::Totp => "totp",
            FactorType::Sms => "sms",
            FactorType::GenericOtp => "generic_otp",
            FactorType::Webauthn => "webauthn",
            FactorType::Unknown(s) => s,
        }
    }
}

impl From<&str> for FactorType {
    fn from(s: &str) -> Self {
        match s {
            "totp" => FactorType::Totp,
            "sms" => FactorType::Sms,
            "generic_otp" => FactorType::GenericOtp,
            "webauthn" => FactorType::Webauthn,
            other => FactorType::Unknown(other.to_owned()),
        }
    }
}

impl fmt::Display for FactorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for FactorType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for FactorType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(FactorType::from(
            String::deserialize(deserializer)?.as_str(),
        ))
    }
}

/// An `authentication_factor`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Factor {
    /// The factor's id.
    pub id: FactorId,
    /// Its type.
    #[serde(rename = "type")]
    pub factor_type: FactorType,
    /// The user it belongs to, for factors enrolled with a user.
    #[serde(default)]
    pub user_id: Option<String>,
    /// TOTP details, for TOTP factors.
    #[serde(default)]
    pub totp: Option<Totp>,
    /// SMS details, for SMS factors.
    #[serde(default)]
    pub sms: Option<Sms>,
    /// When it was enrolled.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// The TOTP part of a factor. `secret`, `qr_code` and `uri` are present only in the
/// enrollment response: the server never returns them again.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Totp {
    /// The issuer shown in authenticator apps.
    pub issuer: String,
    /// The account name shown in authenticator apps.
    pub user: String,
    /// The shared secret, base32 without padding (enrollment only).
    #[serde(default)]
    pub secret: Option<String>,
    /// A `data:image/png;base64,…` QR code of `uri` (enrollment only).
    #[serde(default)]
    pub qr_code: Option<String>,
    /// The `otpauth://totp/…` key URI that authenticator apps read (enrollment only).
    #[serde(default)]
    pub uri: Option<String>,
}

impl fmt::Debug for Totp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |o: &Option<String>| o.as_ref().map(|_| "<redacted>");
        f.debug_struct("Totp")
            .field("issuer", &self.issuer)
            .field("user", &self.user)
            .field("secret", &redacted(&self.secret))
            .field("qr_code", &redacted(&self.qr_code))
            .field("uri", &redacted(&self.uri))
            .finish()
    }
}

/// The SMS part of a factor.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Sms {
    /// The phone number, in E.164 form (`+15005550006`).
    pub phone_number: String,
}

/// An `authentication_challenge`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Challenge {
    /// The challenge's id.
    pub id: ChallengeId,
    /// The factor it challenges.
    pub authentication_factor_id: FactorId,
    /// When it stops accepting codes.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// The one-time code, for generic OTP factors only: the caller delivers it.
    #[serde(default)]
    pub code: Option<String>,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl fmt::Debug for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Challenge")
            .field("id", &self.id)
            .field("authentication_factor_id", &self.authentication_factor_id)
            .field("expires_at", &self.expires_at)
            .field("code", &self.code.as_ref().map(|_| "<redacted>"))
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

/// The answer to [`Client::verify_challenge`]. A wrong code is `valid: false`, not an error.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Verification {
    /// The challenge, as it was created.
    pub challenge: Challenge,
    /// Whether the code was right.
    pub valid: bool,
}

/// The answer to [`Client::enroll_user_factor`]: the new factor (with its TOTP secrets) and
/// a first challenge for it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct UserFactorEnrollment {
    /// The new factor.
    #[serde(rename = "authentication_factor")]
    pub factor: Factor,
    /// Its first challenge.
    #[serde(rename = "authentication_challenge")]
    pub challenge: Challenge,
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Page<T> {
    /// The items.
    pub data: Vec<T>,
    /// The cursors to the neighbouring pages.
    pub list_metadata: ListMetadata,
}

impl<T> Page<T> {
    /// Whether another page follows (`list_metadata.after` is set).
    pub fn has_more(&self) -> bool {
        self.list_metadata.after.is_some()
    }
}

/// Cursors of a [`Page`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct ListMetadata {
    /// Pass as `before` for the previous page; `None` at the start.
    #[serde(default)]
    pub before: Option<FactorId>,
    /// Pass as `after` for the next page; `None` on the last page.
    #[serde(default)]
    pub after: Option<FactorId>,
}

/// The order of a list, by creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Order {
    /// Oldest first.
    Asc,
    /// Newest first (the default, as in every official SDK).
    #[default]
    Desc,
}

impl Order {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Order::Asc => "asc",
            Order::Desc => "desc",
        }
    }
}

// ---------------------------------------------------------------------------------------
// Requests

/// What [`Client::enroll_factor`] enrolls.
///
/// ```
/// use mfad_client::EnrollFactor;
/// let totp = EnrollFactor::totp("Acme", "alice@example.com").user_id("user_01");
/// let sms = EnrollFactor::sms("+15005550006");
/// let otp = EnrollFactor::generic_otp();
/// # let _ = (totp, sms, otp);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnrollFactor {
    #[serde(rename = "type")]
    factor_type: FactorType,
    #[serde(skip_serializing_if = "Option::is_none")]
    totp_issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    totp_user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    phone_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<String>,
}

impl EnrollFactor {
    /// A TOTP factor; `issuer` and `user` label it in authenticator apps.
    pub fn totp(issuer: impl Into<String>, user: impl Into<String>) -> Self {
        EnrollFactor {
            totp_issuer: Some(issuer.into()),
            totp_user: Some(user.into()),
            ..EnrollFactor::of_type(FactorType::Totp)
        }
    }

    /// An SMS factor for `phone_number` (E.164 recommended, for example `+15005550006`).
    pub fn sms(phone_number: impl Into<String>) -> Self {
        EnrollFactor {
            phone_number: Some(phone_number.into()),
            ..EnrollFactor::of_type(FactorType::Sms)
        }
    }

    /// A generic OTP factor: each challenge returns the code for the caller to deliver.
    pub fn generic_otp() -> Self {
        EnrollFactor::of_type(FactorType::GenericOtp)
    }

    /// A factor of any type, with no type-specific fields (for types this client does not
    /// model; the server refuses types it does not support with [`Error::Validation`]).
    pub fn of_type(factor_type: FactorType) -> Self {
        EnrollFactor {
            factor_type,
            totp_issuer: None,
            totp_user: None,
            phone_number: None,
            user_id: None,
        }
    }

    /// Files the factor under a user, so that [`Client::list_user_factors`] lists it.
    pub fn user_id(mut self, user_id: impl Into<String>) -> Self {
        self.user_id = Some(user_id.into());
        self
    }
}

/// What [`Client::enroll_user_factor`] enrolls: always a TOTP factor.
///
/// ```
/// use mfad_client::EnrollUserFactor;
/// let imported = EnrollUserFactor::totp().issuer("Acme").user("alice").secret("JBSWY3DPEHPK3PXP");
/// # let _ = imported;
/// ```
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct EnrollUserFactor {
    #[serde(rename = "type")]
    factor_type: FactorType,
    #[serde(skip_serializing_if = "Option::is_none")]
    totp_issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    totp_user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    totp_secret: Option<String>,
}

impl fmt::Debug for EnrollUserFactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnrollUserFactor")
            .field("totp_issuer", &self.totp_issuer)
            .field("totp_user", &self.totp_user)
            .field(
                "totp_secret",
                &self.totp_secret.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl EnrollUserFactor {
    /// A TOTP factor with the server's default issuer and account name.
    pub fn totp() -> Self {
        EnrollUserFactor {
            factor_type: FactorType::Totp,
            totp_issuer: None,
            totp_user: None,
            totp_secret: None,
        }
    }

    /// The issuer shown in authenticator apps.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.totp_issuer = Some(issuer.into());
        self
    }

    /// The account name shown in authenticator apps.
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.totp_user = Some(user.into());
        self
    }

    /// Imports an existing base32 secret instead of generating one.
    pub fn secret(mut self, secret: impl Into<String>) -> Self {
        self.totp_secret = Some(secret.into());
        self
    }
}

/// Which page [`Client::list_user_factors`] returns.
///
/// ```
/// use mfad_client::{ListUserFactors, Order};
/// let first_three_oldest = ListUserFactors::new().limit(3).order(Order::Asc);
/// # let _ = first_three_oldest;
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListUserFactors {
    limit: Option<u32>,
    before: Option<FactorId>,
    after: Option<FactorId>,
    order: Order,
}

impl ListUserFactors {
    /// The first page, newest first, of the server's default size (10).
    pub fn new() -> Self {
        ListUserFactors::default()
    }

    /// Items per page (1–100).
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }

    /// The page before this cursor.
    pub fn before(mut self, cursor: FactorId) -> Self {
        self.before = Some(cursor);
        self
    }

    /// The page after this cursor.
    pub fn after(mut self, cursor: FactorId) -> Self {
        self.after = Some(cursor);
        self
    }

    /// The order (default [`Order::Desc`]).
    pub fn order(mut self, order: Order) -> Self {
        self.order = order;
        self
    }
}

#[derive(Serialize)]
struct ChallengeBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    sms_template: Option<&'a str>,
}

#[derive(Serialize)]
struct VerifyBody<'a> {
    code: &'a str,
}

// ---------------------------------------------------------------------------------------
// Calls

impl Client {
    /// Enrolls a factor: `POST /auth/factors/enroll`. For TOTP the answer is the only one
    /// that ever carries the secret, QR code and key URI.
    ///
    /// # Errors
    /// [`Error::InvalidPhoneNumber`] for an SMS factor with a bad number,
    /// [`Error::Validation`] for missing or unsupported fields, and the usual transport and
    /// authentication errors.
    pub async fn enroll_factor(&self, factor: &EnrollFactor) -> Result<Factor, Error> {
        self.send_json(Call::workos(Method::POST, &["auth", "factors", "enroll"]).json(factor)?)
            .await
    }

    /// Starts a challenge of a factor: `POST /auth/factors/{id}/challenge`. SMS factors are
    /// texted a code (`sms_template`, if given, must contain `{{code}}`); generic OTP
    /// challenges carry the code for the caller to deliver; TOTP challenges are answered
    /// from the authenticator app.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown factor.
    pub async fn challenge_factor(
        &self,
        factor_id: &FactorId,
        sms_template: Option<&str>,
    ) -> Result<Challenge, Error> {
        let path = ["auth", "factors", factor_id.as_str(), "challenge"];
        self.send_json(Call::workos(Method::POST, &path).json(&ChallengeBody { sms_template })?)
            .await
    }

    /// Checks a code: `POST /auth/challenges/{id}/verify`. A wrong code is
    /// `Ok(Verification { valid: false, .. })`.
    ///
    /// # Errors
    /// [`Error::ChallengePreviouslyVerified`], [`Error::ChallengeExpired`],
    /// [`Error::TooManyAttempts`], [`Error::NotFound`].
    ///
    /// With retries enabled, a verification whose answer was lost in transit is sent again
    /// with the same `Idempotency-Key`; a server that does not replay answers by key reports
    /// the second attempt of a successful verification as
    /// [`Error::ChallengePreviouslyVerified`].
    pub async fn verify_challenge(
        &self,
        challenge_id: &ChallengeId,
        code: &str,
    ) -> Result<Verification, Error> {
        let path = ["auth", "challenges", challenge_id.as_str(), "verify"];
        self.send_json(Call::workos(Method::POST, &path).json(&VerifyBody { code })?)
            .await
    }

    /// Reads a factor, without secrets: `GET /auth/factors/{id}`.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown factor.
    pub async fn get_factor(&self, factor_id: &FactorId) -> Result<Factor, Error> {
        self.send_json(Call::workos(
            Method::GET,
            &["auth", "factors", factor_id.as_str()],
        ))
        .await
    }

    /// Deletes a factor: `DELETE /auth/factors/{id}`.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown factor.
    pub async fn delete_factor(&self, factor_id: &FactorId) -> Result<(), Error> {
        self.send(Call::workos(
            Method::DELETE,
            &["auth", "factors", factor_id.as_str()],
        ))
        .await
        .map(drop)
    }

    /// Enrolls a TOTP factor for a user and starts its first challenge:
    /// `POST /user_management/users/{user_id}/auth_factors`.
    ///
    /// # Errors
    /// [`Error::Validation`] for a bad secret; [`Error::NotFound`] for a user id the
    /// server refuses.
    pub async fn enroll_user_factor(
        &self,
        user_id: &str,
        factor: &EnrollUserFactor,
    ) -> Result<UserFactorEnrollment, Error> {
        let path = ["user_management", "users", user_id, "auth_factors"];
        self.send_json(Call::workos(Method::POST, &path).json(factor)?)
            .await
    }

    /// One page of a user's factors, without secrets:
    /// `GET /user_management/users/{user_id}/auth_factors?limit&before&after&order`.
    ///
    /// # Errors
    /// [`Error::Validation`] for a limit outside 1–100 or a bad cursor.
    pub async fn list_user_factors(
        &self,
        user_id: &str,
        options: &ListUserFactors,
    ) -> Result<Page<Factor>, Error> {
        let path = ["user_management", "users", user_id, "auth_factors"];
        let call = Call::workos(Method::GET, &path)
            .query("limit", options.limit.map(|l| l.to_string()))
            .query("before", options.before.as_ref().map(FactorId::as_str))
            .query("after", options.after.as_ref().map(FactorId::as_str))
            .query("order", Some(options.order.as_str()));
        self.send_json(call).await
    }

    /// Every factor of a user, page after page: starts from `options` and follows
    /// `list_metadata.after` until it is null, as the official SDKs' auto-pagination does
    /// (a `before` cursor applies to the first page only). An error ends the stream.
    ///
    /// ```no_run
    /// # async fn run(client: mfad_client::Client) -> Result<(), mfad_client::Error> {
    /// use futures_util::TryStreamExt;
    /// use mfad_client::ListUserFactors;
    /// let all: Vec<_> = client
    ///     .list_user_factors_stream("user_01", ListUserFactors::new().limit(100))
    ///     .try_collect()
    ///     .await?;
    /// # let _ = all; Ok(()) }
    /// ```
    pub fn list_user_factors_stream(
        &self,
        user_id: impl Into<String>,
        options: ListUserFactors,
    ) -> impl Stream<Item = Result<Factor, Error>> + Send + 'static {
        let pager = Pager {
            client: self.clone(),
            user_id: user_id.into(),
            next: Some(options),
            buffer: VecDeque::new(),
        };
        futures_util::stream::unfold(Some(pager), |state| async move {
            let mut pager = state?;
            loop {
                if let Some(factor) = pager.buffer.pop_front() {
                    return Some((Ok(factor), Some(pager)));
                }
                let request = pager.next.take()?;
                match pager
                    .client
                    .list_user_factors(&pager.user_id, &request)
                    .await
                {
                    Ok(page) => {
                        if let Some(after) = page.list_metadata.after {
                            if page.data.is_empty() || request.after.as_ref() == Some(&after) {
                                let message =
                                    format!("the list cursor did not advance past {after}");
                                let response = Box::new(crate::error::ErrorResponse {
                                    status: 200,
                                    ..Default::default()
                                });
                                return Some((
                                    Err(Error::UnexpectedResponse { message, response }),
                                    None,
                                ));
                            }
                            pager.next = Some(ListUserFactors {
                                before: None,
                                after: Some(after),
                                ..request
                            });
                        }
                        pager.buffer.extend(page.data);
                    }
                    Err(e) => return Some((Err(e), None)),
                }
            }
        })
    }
}

struct Pager {
    client: Client,
    user_id: String,
    next: Option<ListUserFactors>,
    buffer: VecDeque<Factor>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enroll_bodies_omit_absent_fields() {
        let v = serde_json::to_value(EnrollFactor::totp("Acme", "a@b.c")).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type": "totp", "totp_issuer": "Acme", "totp_user": "a@b.c"})
        );
        let v = serde_json::to_value(EnrollFactor::generic_otp()).unwrap();
        assert_eq!(v, serde_json::json!({"type": "generic_otp"}));
        let v = serde_json::to_value(EnrollUserFactor::totp().secret("JBSWY3DPEHPK3PXP")).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type": "totp", "totp_secret": "JBSWY3DPEHPK3PXP"})
        );
        let debug = format!("{:?}", EnrollUserFactor::totp().secret("JBSWY3DPEHPK3PXP"));
        assert!(!debug.contains("JBSWY3DPEHPK3PXP"), "{debug}");
    }

    #[test]
    fn recorded_workos_objects_parse() {
        let f: Factor = serde_json::from_str(
            r#"{"object":"authentication_factor","id":"auth_factor_01FZ4WMXXA09XF6NK1XMKNWB3M","created_at":"2022-03-27T05:12:43.689Z","updated_at":"2022-03-27T05:12:43.689Z","type":"generic_otp"}"#,
        )
        .unwrap();
        assert_eq!(f.factor_type, FactorType::GenericOtp);
        assert_eq!(
            f.created_at.unix_timestamp_nanos(),
            1_648_357_963_689_000_000
        );
        let f: Factor = serde_json::from_str(
            r#"{"object":"authentication_factor","id":"auth_factor_01FVYZ5QM8N98T9ME5BCB2BBMJ","type":"fido","user_id":"user_01","created_at":"2026-01-15T12:00:00.000Z","updated_at":"2026-01-15T12:00:00.000Z"}"#,
        )
        .unwrap();
        assert_eq!(f.factor_type, FactorType::Unknown("fido".into()));
        let c: Challenge = serde_json::from_str(
            r#"{"object":"authentication_challenge","id":"auth_challenge_01FZ4WSWV2SCEDX3GKY1NA9YTN","created_at":"2022-03-27T05:15:26.432Z","updated_at":"2022-03-27T05:15:26.432Z","expires_at":"2022-03-27T05:25:26.434Z","code":null,"authentication_factor_id":"auth_factor_01FZ4WMXXA09XF6NK1XMKNWB3M"}"#,
        )
        .unwrap();
        assert_eq!(c.code, None);
        assert!(c.expires_at.is_some());
        assert!(!format!("{c:?}").contains("541295"));
    }
}
