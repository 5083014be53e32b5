//! An async Rust client for mfad, the self-hosted MFA service,
//! and for any server speaking the same APIs:
//!
//! - the **WorkOS MFA API** (factors, challenges, user factors), as methods of [`Client`];
//! - the **FusionAuth Two Factor API** (secrets, methods, codes, two-factor login, status,
//!   recovery codes), through [`Client::fusionauth`].
//!
//! Requests are sent exactly as the official WorkOS and FusionAuth SDKs send them, so the
//! client works against those services too. It runs on tokio, uses rustls (no OpenSSL),
//! retries what is safe to retry, and turns every failure into one [`Error`] enum.
//!
//! # Enroll, challenge, verify
//!
//! A TOTP factor, the way an application adds an authenticator app to a user's account:
//!
//! ```no_run
//! use mfad_client::{Client, EnrollFactor, Error};
//!
//! # async fn run(code_from_the_user: &str) -> Result<(), Error> {
//! // MFAD_URL=http://127.0.0.1:8080 MFAD_API_KEY=sk_…
//! let client = Client::from_env()?;
//!
//! // 1. Enroll. Show `qr_code` (a PNG data URI) or `secret` to the user once: the server
//! //    never returns them again.
//! let factor = client
//!     .enroll_factor(&EnrollFactor::totp("Acme", "alice@example.com").user_id("user_01"))
//!     .await?;
//! if let Some(qr_code) = factor.totp.as_ref().and_then(|t| t.qr_code.as_deref()) {
//!     println!("show this QR code: {qr_code}");
//! }
//!
//! // 2. Challenge. For SMS factors this texts a code; for generic OTP the challenge carries
//! //    the code for you to deliver; for TOTP the code comes from the user's app.
//! let challenge = client.challenge_factor(&factor.id, None).await?;
//!
//! // 3. Verify. A wrong code is `valid: false`, not an error.
//! match client.verify_challenge(&challenge.id, code_from_the_user).await {
//!     Ok(v) if v.valid => println!("verified"),
//!     Ok(_) => println!("wrong code, try again"),
//!     Err(Error::ChallengeExpired(_)) => println!("too late: start a new challenge"),
//!     Err(Error::TooManyAttempts(_)) => println!("locked: start a new challenge"),
//!     Err(Error::ChallengePreviouslyVerified(_)) => println!("already used"),
//!     Err(e) => return Err(e),
//! }
//! # Ok(()) }
//! ```
//!
//! Listing a user's factors, one page or all of them:
//!
//! ```no_run
//! # async fn run(client: mfad_client::Client) -> Result<(), mfad_client::Error> {
//! use futures_util::StreamExt;
//! use mfad_client::ListUserFactors;
//!
//! let page = client.list_user_factors("user_01", &ListUserFactors::new().limit(10)).await?;
//! println!("{} factors on the first page, more: {}", page.data.len(), page.has_more());
//!
//! let mut all = std::pin::pin!(client.list_user_factors_stream("user_01", ListUserFactors::new()));
//! while let Some(factor) = all.next().await {
//!     println!("{}", factor?.id);
//! }
//! # Ok(()) }
//! ```
//!
//! # FusionAuth
//!
//! The Two Factor API, current (1.26+) and legacy (≤ 1.25) shapes, with an API key or a
//! user's JWT (the `*_using_jwt` calls). A wrong code is [`Error::InvalidCode`] (HTTP 421);
//! the status call's 242 is a value, [`two_factor_required`], not an error.
//!
//! [`two_factor_required`]: fusionauth::TwoFactorStatus::two_factor_required
//!
//! ```no_run
//! # async fn run(client: mfad_client::Client, user_id: &str, code: &str, login_code: &str) -> Result<(), mfad_client::Error> {
//! use mfad_client::fusionauth::{CompleteTwoFactorLogin, EnableTwoFactor, StartTwoFactorLogin};
//!
//! let fa = client.fusionauth();
//! let secret = fa.generate_secret().await?;
//! // The user adds `secret.secret_base32_encoded` to an authenticator app and types a code.
//! let enabled = fa.enable(user_id, &EnableTwoFactor::authenticator(code, &secret.secret)).await?;
//! println!("store these recovery codes: {:?}", enabled.recovery_codes);
//!
//! // At the next login (with a new code: each TOTP code is accepted once):
//! let status = fa.status(user_id, None, None).await?;
//! if status.two_factor_required {
//!     let login = fa.start_login(&StartTwoFactorLogin::user(user_id)).await?;
//!     let done = fa
//!         .complete_login(&CompleteTwoFactorLogin::new(&login.two_factor_id, login_code))
//!         .await?;
//!     println!("logged in as {:?}", done.user.map(|u| u.id));
//! }
//! # Ok(()) }
//! ```
//!
//! # Examples
//!
//! The crate's `examples/` run against a local mfad (`mfad api-key create --tenant demo`,
//! then `mfad serve`), with `MFAD_URL` and `MFAD_API_KEY` set:
//!
//! - `generic_otp`: the whole WorkOS flow, no phone or app needed;
//! - `totp`: enroll a TOTP factor, then type a code from your authenticator app;
//! - `fusionauth`: the FusionAuth flow (secret, enable, recovery codes, 242 status,
//!   two-factor login with a trusted computer, disable with a recovery code), with a TOTP
//!   computation standing in for the app.
//!
//! ```text
//! cargo run -p mfad-client --example fusionauth
//! ```
//!
//! # Configuration
//!
//! [`Client::new`] takes a base URL and an API key; [`Client::from_env`] reads `MFAD_URL` and
//! `MFAD_API_KEY` (or `WORKOS_API_KEY`); [`Client::builder`] sets the timeout, retries and
//! backoff, user agent, FusionAuth tenant, or a custom `reqwest::Client`.
//!
//! Failed calls are retried (3 times by default) on connection errors and on 408, 429,
//! 500, 502, 503 and 504, with exponential backoff and jitter, honouring `Retry-After`
//! (seconds or an HTTP date, at most 60 s). WorkOS POSTs carry an `Idempotency-Key` that
//! stays the same across attempts. FusionAuth POSTs are retried only when the server
//! certainly did not act on them.

#![deny(missing_docs)]

mod client;
mod error;
pub mod fusionauth;
mod ids;
mod retry;
pub mod webauthn;
mod workos;

pub use client::{Client, ClientBuilder, DEFAULT_USER_AGENT};
pub use error::{Error, ErrorResponse, FieldError};
pub use ids::{ChallengeId, FactorId, IdError};
pub use retry::MAX_RETRY_AFTER;
pub use workos::{
    Challenge, EnrollFactor, EnrollUserFactor, Factor, FactorType, ListMetadata, ListUserFactors,
    Order, Page, Sms, Totp, UserFactorEnrollment, Verification,
};
