//! FusionAuth's WebAuthn (passkey) API, typed: the calls of the official clients'
//! `startWebAuthnRegistration` … `deleteWebAuthnCredentialsForUser`, on
//! [`FusionAuth`](crate::fusionauth::FusionAuth). The WebAuthn options and the browser's
//! `PublicKeyCredential` stay JSON ([`Value`]): they go to and come from the WebAuthn
//! JavaScript API (or an authenticator library) unchanged. See `docs/contracts/webauthn.md`.

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::client::{Auth, Call};
use crate::error::Error;
use crate::fusionauth::{FusionAuth, LoginResponse};

/// What a passkey is for (FusionAuth's `workflow`); sets the user verification asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Workflow {
    /// The user names themselves, then proves it with a passkey (verification required).
    Bootstrap,
    /// No particular use (verification preferred).
    General,
    /// Repeated logins on one device (verification required).
    Reauthentication,
}

/// `POST /api/webauthn/register/start`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StartRegistration {
    /// The user registering.
    pub user_id: String,
    /// What the passkey is for.
    pub workflow: Workflow,
    /// The passkey's display name.
    pub display_name: String,
    /// The account name authenticators show.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The browser's user agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

/// `POST /api/webauthn/start`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StartLogin {
    /// The user.
    pub user_id: String,
    /// The workflow.
    pub workflow: Workflow,
    /// Only this passkey.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential_id: Option<String>,
    /// The application (logins).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub application_id: Option<String>,
    /// Echoed by [`FusionAuth::complete_webauthn_login`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<Value>,
}

/// The browser's answer, for register/complete, assert and login.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CompleteCeremony {
    /// The `PublicKeyCredential` (binary fields base64url).
    pub credential: Value,
    /// The origin the ceremony ran on.
    pub origin: String,
    /// The relying party id.
    pub rp_id: String,
}

/// The options for `navigator.credentials.create()` / `get()`.
#[derive(Debug, Clone, Deserialize)]
pub struct Options {
    /// PublicKeyCredentialCreationOptions or PublicKeyCredentialRequestOptions.
    pub options: Value,
}

/// A registered passkey (FusionAuth's `WebAuthnCredential`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebAuthnCredential {
    /// Its id (a UUID).
    pub id: String,
    /// The owner.
    pub user_id: String,
    /// The tenant, as a UUID.
    pub tenant_id: String,
    /// The authenticator's credential id (base64url).
    pub credential_id: String,
    /// COSE algorithm (-7 ES256, -257 RS256).
    pub algorithm: i64,
    /// Last accepted signature counter.
    pub sign_count: u32,
    /// The relying party.
    pub relying_party_id: String,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// Every other field.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A passkey to import (FusionAuth's `WebAuthnCredential` as
/// `POST /api/webauthn/import` takes it): registered elsewhere, so mfad stores its public
/// key without a ceremony.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportCredential {
    /// The owner.
    pub user_id: String,
    /// The authenticator's credential id (base64url).
    pub credential_id: String,
    /// The public key as a PEM SubjectPublicKeyInfo.
    pub public_key: String,
    /// COSE algorithm (-7 ES256, -35 ES384, -257 RS256).
    pub algorithm: i64,
    /// Last signature counter seen.
    pub sign_count: u32,
    /// Name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Serialize)]
struct Import<'a> {
    credentials: &'a [ImportCredential],
}

#[derive(Deserialize)]
struct One {
    credential: WebAuthnCredential,
}

#[derive(Deserialize)]
struct Many {
    credentials: Vec<WebAuthnCredential>,
}

impl FusionAuth<'_> {
    /// Starts registering a passkey: `POST /api/webauthn/register/start`.
    ///
    /// # Errors
    /// [`Error::Validation`] for missing fields or a tenant without `mfad webauthn config`.
    pub async fn start_webauthn_registration(
        &self,
        request: &StartRegistration,
    ) -> Result<Options, Error> {
        let path = ["api", "webauthn", "register", "start"];
        self.client()
            .send_json(Call::fusionauth(Method::POST, &path).json(request)?)
            .await
    }

    /// Completes a registration: `POST /api/webauthn/register/complete`.
    ///
    /// # Errors
    /// [`Error::Validation`] naming the part that failed (challenge, origin, rp id, …).
    pub async fn complete_webauthn_registration(
        &self,
        request: &CompleteCeremony,
    ) -> Result<WebAuthnCredential, Error> {
        let path = ["api", "webauthn", "register", "complete"];
        let one: One = self
            .client()
            .send_json(Call::fusionauth(Method::POST, &path).json(request)?)
            .await?;
        Ok(one.credential)
    }

    /// Starts an assertion or a passkey login: `POST /api/webauthn/start`.
    ///
    /// # Errors
    /// [`Error::Validation`] (e.g. a user without passkeys), [`Error::NotFound`].
    pub async fn start_webauthn_login(&self, request: &StartLogin) -> Result<Options, Error> {
        let path = ["api", "webauthn", "start"];
        self.client()
            .send_json(Call::fusionauth(Method::POST, &path).json(request)?)
            .await
    }

    /// Checks an assertion without logging in: `POST /api/webauthn/assert` (no API key).
    ///
    /// # Errors
    /// [`Error::Validation`] naming the part that failed; throttled after repeated failures.
    pub async fn complete_webauthn_assertion(
        &self,
        request: &CompleteCeremony,
    ) -> Result<WebAuthnCredential, Error> {
        let path = ["api", "webauthn", "assert"];
        let call = Call::fusionauth(Method::POST, &path)
            .auth(Auth::None)
            .json(request)?;
        let one: One = self.client().send_json(call).await?;
        Ok(one.credential)
    }

    /// Logs in with a passkey: `POST /api/webauthn/login` (no API key); the two-factor
    /// login's response.
    ///
    /// # Errors
    /// As [`FusionAuth::complete_webauthn_assertion`].
    pub async fn complete_webauthn_login(
        &self,
        request: &CompleteCeremony,
    ) -> Result<LoginResponse, Error> {
        let path = ["api", "webauthn", "login"];
        let call = Call::fusionauth(Method::POST, &path)
            .auth(Auth::None)
            .json(request)?;
        let reply = self.client().send(call).await?;
        let mut login: LoginResponse = reply.json()?;
        login.status = reply.status.as_u16();
        Ok(login)
    }

    /// A user's passkeys: `GET /api/webauthn?userId=…`.
    ///
    /// # Errors
    /// [`Error::Validation`] for a malformed user id.
    pub async fn webauthn_credentials_for_user(
        &self,
        user_id: &str,
    ) -> Result<Vec<WebAuthnCredential>, Error> {
        let call =
            Call::fusionauth(Method::GET, &["api", "webauthn"]).query("userId", Some(user_id));
        let many: Many = self.client().send_json(call).await?;
        Ok(many.credentials)
    }

    /// One passkey: `GET /api/webauthn/{id}`.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an id of no passkey of the tenant.
    pub async fn webauthn_credential(&self, id: &str) -> Result<WebAuthnCredential, Error> {
        let path = ["api", "webauthn", id];
        let one: One = self
            .client()
            .send_json(Call::fusionauth(Method::GET, &path))
            .await?;
        Ok(one.credential)
    }

    /// Imports passkeys, all or none: `POST /api/webauthn/import`.
    ///
    /// # Errors
    /// [`Error::Validation`] naming the entry and field (e.g. a bad `publicKey`), or a
    /// credential id already registered in the tenant.
    pub async fn import_webauthn_credentials(
        &self,
        credentials: &[ImportCredential],
    ) -> Result<(), Error> {
        let call = Call::fusionauth(Method::POST, &["api", "webauthn", "import"])
            .json(&Import { credentials })?;
        self.client().send(call).await.map(drop)
    }

    /// Deletes a passkey: `DELETE /api/webauthn/{id}`.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an id of no passkey of the tenant.
    pub async fn delete_webauthn_credential(&self, id: &str) -> Result<(), Error> {
        let path = ["api", "webauthn", id];
        self.client()
            .send(Call::fusionauth(Method::DELETE, &path))
            .await
            .map(drop)
    }

    /// Deletes all of a user's passkeys: `DELETE /api/webauthn?userId=…`.
    ///
    /// # Errors
    /// [`Error::Validation`] for a malformed user id.
    pub async fn delete_webauthn_credentials_for_user(&self, user_id: &str) -> Result<(), Error> {
        let call =
            Call::fusionauth(Method::DELETE, &["api", "webauthn"]).query("userId", Some(user_id));
        self.client().send(call).await.map(drop)
    }
}
