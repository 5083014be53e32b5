//! Passkeys (WebAuthn) on `webauthn-rs`: a tenant's relying-party configuration, the
//! credentials registered under its users, and the ceremonies that create and use them.
//!
//! The rules every entrance inherits from here:
//! * a ceremony (its challenge) is bound to its tenant and user, used once (taken from the
//!   store atomically) and expires on the injected clock;
//! * the origin in the signed client data and the rp id in the authenticator data are
//!   checked by `webauthn-rs` against the tenant's allow-list; an origin or rp id the caller
//!   merely asserts must be on that list too;
//! * a signature counter that does not move forward is refused (a cloned authenticator),
//!   by `webauthn-rs` and again by the store's compare-and-set on the counter;
//! * user verification is required where the workflow asks for it (bootstrap and
//!   reauthentication), preferred otherwise;
//! * failed assertions count against the user under the one throttling policy
//!   ([`crate::verify`]), as wrong codes do.
//!
//! Credentials hold no secret: the public key, the counter and ids.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use webauthn_rs::prelude::{
    AttestationCaList, AttestedPasskeyAuthentication, AttestedPasskeyRegistration,
    CreationChallengeResponse, Credential, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, RequestChallengeResponse, SecurityKey,
    SecurityKeyAuthentication, SecurityKeyRegistration, Url, Uuid, Webauthn, WebauthnBuilder,
    WebauthnError,
};

use crate::error::{CoreError, Entity, Field, Reason, StoreError};
use crate::ids::{TenantId, UserId};
use crate::service::{MAX_LABEL_LEN, Service};
use crate::store::Store;

/// How long a ceremony's challenge may be answered: FusionAuth's default WebAuthn
/// timeout (`"timeout": 180000` in its options).
pub const CEREMONY_TTL: Duration = Duration::minutes(3);
/// Most credentials one user may register.
pub const MAX_CREDENTIALS_PER_USER: usize = 50;
/// Most allowed origins per tenant.
pub const MAX_ORIGINS: usize = 20;

/// FusionAuth's WebAuthn workflows: what the passkey is for, which sets the user
/// verification asked of the authenticator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Workflow {
    /// The user names themselves first, then proves it with a passkey (UV required).
    Bootstrap,
    /// No particular use (UV preferred).
    General,
    /// Repeated logins on the same device (UV required).
    Reauthentication,
}

impl Workflow {
    /// The stored (and FusionAuth) name.
    pub fn as_str(self) -> &'static str {
        match self {
            Workflow::Bootstrap => "bootstrap",
            Workflow::General => "general",
            Workflow::Reauthentication => "reauthentication",
        }
    }

    /// Parses a stored or wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "bootstrap" => Some(Workflow::Bootstrap),
            "general" => Some(Workflow::General),
            "reauthentication" => Some(Workflow::Reauthentication),
            _ => None,
        }
    }

    /// Whether the authenticator must verify the user.
    pub fn requires_user_verification(self) -> bool {
        !matches!(self, Workflow::General)
    }
}

/// Attestation asked of new authenticators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttestationPolicy {
    /// None requested; any authenticator may register (the default).
    None,
    /// Direct attestation, verified against the tenant's trust store: only authenticators
    /// whose attestation chains to one of its CAs may register.
    Direct,
}

impl AttestationPolicy {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AttestationPolicy::None => "none",
            AttestationPolicy::Direct => "direct",
        }
    }

    /// Parses a stored or operator-given name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(AttestationPolicy::None),
            "direct" => Some(AttestationPolicy::Direct),
            _ => None,
        }
    }
}

/// A tenant's relying party.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebAuthnConfig {
    /// The tenant.
    pub tenant_id: TenantId,
    /// The relying party id (a registrable domain, e.g. `example.com`, or `localhost`).
    pub rp_id: String,
    /// The name authenticators show.
    pub rp_name: String,
    /// Origins ceremonies may come from (`https://example.com`, `http://localhost:8080`).
    pub origins: Vec<String>,
    /// Attestation asked of new authenticators.
    pub attestation: AttestationPolicy,
    /// PEM CA certificates trusted for direct attestation (public, not secret).
    pub trust_store_pem: Option<String>,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

/// A credential id as FusionAuth names passkeys: a UUID (lower case, hyphenated).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PasskeyId(String);

impl PasskeyId {
    /// A new random (v4) id.
    pub fn generate() -> Result<Self, CoreError> {
        let bytes: [u8; 16] = mfad_crypto::random_bytes()?;
        Ok(PasskeyId(
            uuid_from_bytes(bytes)
                .as_hyphenated()
                .to_string()
                .to_lowercase(),
        ))
    }

    /// Parses a UUID in any case; `None` if it is not one.
    pub fn parse(s: &str) -> Option<Self> {
        let u = Uuid::try_parse(s.trim()).ok()?;
        Some(PasskeyId(u.as_hyphenated().to_string().to_lowercase()))
    }

    /// Wraps a value read back from storage.
    pub fn from_trusted(s: String) -> Self {
        PasskeyId(s)
    }

    /// The id as stored and written on the wire.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn uuid_from_bytes(mut b: [u8; 16]) -> Uuid {
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    Uuid::from_bytes(b)
}

/// A registered passkey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyCredential {
    /// mfad's (FusionAuth's) id of it.
    pub id: PasskeyId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Owning user.
    pub user_id: UserId,
    /// The authenticator's credential id, base64url without padding.
    pub credential_id: String,
    /// The user handle the authenticator holds, base64url without padding.
    pub user_handle: String,
    /// Name (FusionAuth: disambiguates passkeys with the same display name).
    pub name: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
    /// The browser's user agent at registration (troubleshooting only).
    pub user_agent: Option<String>,
    /// COSE algorithm of the key (-7 ES256, -257 RS256, …).
    pub algorithm: i64,
    /// Last accepted signature counter.
    pub sign_count: u32,
    /// The relying party it was registered to.
    pub rp_id: String,
    /// Attestation format seen at registration (`none`, `packed`, …).
    pub attestation_type: String,
    /// Whether the authenticator verified the user at registration.
    pub user_verified: bool,
    /// Whether the key may be synced between devices.
    pub backup_eligible: bool,
    /// Transports the authenticator said it supports.
    pub transports: Vec<String>,
    /// The workflow it was registered for.
    pub workflow: Workflow,
    /// The `webauthn-rs` credential as JSON: public key, counter, flags. No secret.
    pub credential: String,
    /// Registration time.
    pub created_at: OffsetDateTime,
    /// Last successful use.
    pub last_used_at: Option<OffsetDateTime>,
}

/// What a ceremony is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CeremonyKind {
    /// Registering a new credential.
    Registration,
    /// Using one (assertion or login).
    Authentication,
}

impl CeremonyKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            CeremonyKind::Registration => "registration",
            CeremonyKind::Authentication => "authentication",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "registration" => Some(CeremonyKind::Registration),
            "authentication" => Some(CeremonyKind::Authentication),
            _ => None,
        }
    }
}

/// A ceremony in progress: the `webauthn-rs` state its finish needs, bound to a tenant
/// and a user, single use, expiring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ceremony {
    /// The challenge, base64url without padding: the ceremony's key.
    pub challenge: String,
    /// Tenant it is bound to.
    pub tenant_id: TenantId,
    /// User it is bound to.
    pub user_id: UserId,
    /// Registration or authentication.
    pub kind: CeremonyKind,
    /// The workflow asked for.
    pub workflow: Workflow,
    /// `webauthn-rs` ceremony state, as JSON.
    pub state: String,
    /// For registrations: the new credential's name, display name and user agent.
    pub name: Option<String>,
    /// See `name`.
    pub display_name: Option<String>,
    /// See `name`.
    pub user_agent: Option<String>,
    /// For logins: the application logged in to.
    pub application_id: Option<String>,
    /// For logins: state echoed back on completion (JSON object text).
    pub login_state: Option<String>,
    /// When it was started.
    pub created_at: OffsetDateTime,
    /// When it stops being answerable.
    pub expires_at: OffsetDateTime,
}

/// Why a ceremony was refused, in the domain's words (the adapters name the wire fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The tenant has no WebAuthn configuration.
    NotConfigured,
    /// The challenge is unknown, already used, expired, or another tenant's.
    UnknownChallenge,
    /// The credential is unknown (deleted, or another tenant's or user's).
    UnknownCredential,
    /// The origin is not on the tenant's allow-list.
    Origin,
    /// The rp id is not the tenant's.
    RpId,
    /// The signature counter did not move forward (a cloned authenticator?).
    CounterRegression,
    /// The authenticator did not verify the user though the workflow requires it.
    UserVerification,
    /// The attestation is not trusted by the tenant's trust store.
    Attestation,
    /// The credential is already registered.
    AlreadyRegistered,
    /// The user has no passkeys to authenticate with.
    NoCredentials,
    /// Anything else in the response is wrong (signature, challenge, malformed data).
    Invalid,
}

/// The serialised `webauthn-rs` registration state, by kind of ceremony.
#[derive(Debug, Serialize, Deserialize)]
enum RegState {
    Passkey(PasskeyRegistration),
    SecurityKey(SecurityKeyRegistration),
    Attested(AttestedPasskeyRegistration),
}

/// The serialised `webauthn-rs` authentication state.
#[derive(Debug, Serialize, Deserialize)]
enum AuthState {
    Passkey(PasskeyAuthentication),
    SecurityKey(SecurityKeyAuthentication),
    Attested(AttestedPasskeyAuthentication),
}

/// The operator's `mfad webauthn config`.
#[derive(Debug, Clone)]
pub struct ConfigInput {
    /// Relying party id.
    pub rp_id: String,
    /// Relying party name (defaults to the rp id).
    pub rp_name: Option<String>,
    /// Allowed origins (at least one).
    pub origins: Vec<String>,
    /// Attestation policy.
    pub attestation: AttestationPolicy,
    /// Trust store for direct attestation (PEM CA certificates).
    pub trust_store_pem: Option<String>,
}

/// Starting a registration.
#[derive(Debug, Clone)]
pub struct RegistrationStart {
    /// The user registering.
    pub user: UserId,
    /// The workflow the passkey is for.
    pub workflow: Workflow,
    /// Credential name (shown by authenticators as the account).
    pub name: Option<String>,
    /// Display name.
    pub display_name: String,
    /// The browser's user agent.
    pub user_agent: Option<String>,
}

/// Starting an assertion or login.
#[derive(Debug, Clone)]
pub struct AuthenticationStart {
    /// The user authenticating.
    pub user: UserId,
    /// Only this credential, if given.
    pub credential: Option<PasskeyId>,
    /// The workflow.
    pub workflow: Workflow,
    /// For logins: the application.
    pub application_id: Option<String>,
    /// For logins: state echoed at completion.
    pub login_state: Option<String>,
}

/// What the caller asserts alongside a response (FusionAuth's `origin` and `rpId`):
/// checked against the tenant's allow-list, never trusted instead of it.
#[derive(Debug, Clone, Default)]
pub struct Claimed {
    /// The origin the caller says the ceremony ran on.
    pub origin: Option<String>,
    /// The rp id the caller says it used.
    pub rp_id: Option<String>,
}

/// A successful assertion.
#[derive(Debug, Clone)]
pub struct Asserted {
    /// The credential used, with its counter advanced.
    pub credential: PasskeyCredential,
    /// The ceremony's application (logins).
    pub application_id: Option<String>,
    /// The ceremony's echoed state (logins).
    pub login_state: Option<String>,
}

/// A credential imported from another system.
#[derive(Debug, Clone)]
pub struct ImportedPasskey {
    /// Id to keep, if any.
    pub id: Option<PasskeyId>,
    /// Owning user.
    pub user: UserId,
    /// The `webauthn-rs` credential.
    pub credential: Credential,
    /// Name.
    pub name: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
    /// Relying party it belongs to (defaults to the tenant's).
    pub rp_id: Option<String>,
}

fn refused(r: Refusal) -> CoreError {
    CoreError::WebAuthn(r)
}

fn b64url(bytes: &[u8]) -> String {
    data_encoding::BASE64URL_NOPAD.encode(bytes)
}

fn to_json<T: Serialize>(v: &T) -> Result<String, CoreError> {
    serde_json::to_string(v)
        .map_err(|e| CoreError::Internal(format!("serialising WebAuthn state: {e}")))
}

fn from_json<T: for<'de> Deserialize<'de>>(s: &str) -> Result<T, CoreError> {
    serde_json::from_str(s).map_err(|e| CoreError::Internal(format!("stored WebAuthn state: {e}")))
}

/// Maps a `webauthn-rs` verification failure to the rule it broke.
fn refusal_of(e: &WebauthnError) -> Refusal {
    match e {
        WebauthnError::InvalidRPOrigin => Refusal::Origin,
        WebauthnError::InvalidRPIDHash => Refusal::RpId,
        WebauthnError::CredentialPossibleCompromise => Refusal::CounterRegression,
        WebauthnError::UserNotVerified => Refusal::UserVerification,
        WebauthnError::AttestationNotVerifiable
        | WebauthnError::AttestationUntrustedAaguid
        | WebauthnError::AttestationCertificateRequirementsNotMet
        | WebauthnError::AttestationTrustFailure
        | WebauthnError::AttestationCertificateTrustStoreEmpty
        | WebauthnError::MissingAttestationCaList => Refusal::Attestation,
        WebauthnError::MismatchedChallenge => Refusal::UnknownChallenge,
        WebauthnError::CredentialAlreadyExists => Refusal::AlreadyRegistered,
        WebauthnError::CredentialAlteredAlgFromRequest
        | WebauthnError::CredentialNotFound
        | WebauthnError::CredentialExcludedFromRequest => Refusal::UnknownCredential,
        _ => Refusal::Invalid,
    }
}

/// The challenge a response answers, read from its client data to find the ceremony
/// (`webauthn-rs` then checks it against the stored state).
fn challenge_of(client_data_json: &[u8]) -> Result<String, CoreError> {
    #[derive(Deserialize)]
    struct ClientData {
        challenge: String,
    }
    let cd: ClientData =
        serde_json::from_slice(client_data_json).map_err(|_| refused(Refusal::Invalid))?;
    // Normalise: browsers send base64url without padding, but accept padding.
    let raw = data_encoding::BASE64URL_NOPAD
        .decode(cd.challenge.trim_end_matches('=').as_bytes())
        .map_err(|_| refused(Refusal::Invalid))?;
    Ok(b64url(&raw))
}

/// A stable user handle: the user id's own bytes when it is a UUID (FusionAuth user ids
/// are), else derived from the tenant and user ids.
fn user_handle(tenant: &TenantId, user: &UserId) -> Uuid {
    if let Ok(u) = Uuid::try_parse(user.as_str()) {
        return u;
    }
    let d = mfad_crypto::api_key_digest(
        format!("mfad webauthn user {} {}", tenant.as_str(), user.as_str()).as_bytes(),
    );
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    uuid_from_bytes(b)
}

fn parse_origin(s: &str) -> Result<Url, CoreError> {
    let url =
        Url::parse(s.trim()).map_err(|_| CoreError::invalid(Field::Origin, Reason::Invalid))?;
    let local = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    if !(url.scheme() == "https" || (url.scheme() == "http" && local)) || url.host_str().is_none() {
        return Err(CoreError::invalid(Field::Origin, Reason::Invalid));
    }
    Ok(url)
}

/// Origins compared as the browser serialises them (`scheme://host[:port]`).
fn same_origin(a: &Url, b: &Url) -> bool {
    a.origin() == b.origin()
}

fn trust_store(pem: &str) -> Result<AttestationCaList, CoreError> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    let mut list = AttestationCaList::default();
    for block in pem.split(BEGIN).skip(1) {
        let one = format!("{BEGIN}{block}");
        let ca = AttestationCaList::try_from(one.as_bytes())
            .map_err(|_| CoreError::invalid(Field::TrustStore, Reason::Invalid))?;
        list.union(&ca);
    }
    if list.is_empty() {
        return Err(CoreError::invalid(Field::TrustStore, Reason::Invalid));
    }
    Ok(list)
}

impl WebAuthnConfig {
    /// The `webauthn-rs` relying party for this configuration.
    fn relying_party(&self) -> Result<Webauthn, CoreError> {
        let mut origins = self.origins.iter().map(|o| parse_origin(o));
        let first = origins
            .next()
            .ok_or_else(|| CoreError::invalid(Field::Origin, Reason::Required))??;
        let mut b = WebauthnBuilder::new(&self.rp_id, &first)
            .map_err(|_| CoreError::invalid(Field::RpId, Reason::Invalid))?
            .rp_name(&self.rp_name)
            .timeout(std::time::Duration::from_secs(
                u64::try_from(CEREMONY_TTL.whole_seconds()).unwrap_or(300),
            ));
        for o in origins {
            b = b.append_allowed_origin(&o?);
        }
        b.build()
            .map_err(|_| CoreError::invalid(Field::RpId, Reason::Invalid))
    }

    /// Checks what the caller asserted against the allow-list.
    fn check_claimed(&self, claimed: &Claimed) -> Result<(), CoreError> {
        if let Some(rp) = claimed.rp_id.as_deref().filter(|s| !s.is_empty())
            && rp != self.rp_id
        {
            return Err(refused(Refusal::RpId));
        }
        if let Some(o) = claimed.origin.as_deref().filter(|s| !s.is_empty()) {
            let o = Url::parse(o).map_err(|_| refused(Refusal::Origin))?;
            let allowed = self
                .origins
                .iter()
                .filter_map(|a| Url::parse(a).ok())
                .any(|a| same_origin(&a, &o));
            if !allowed {
                return Err(refused(Refusal::Origin));
            }
        }
        Ok(())
    }
}

fn check_label(field: Field, s: Option<&str>) -> Result<(), CoreError> {
    if s.is_some_and(|s| s.chars().count() > MAX_LABEL_LEN) {
        return Err(CoreError::invalid(
            field,
            Reason::TooLong { max: MAX_LABEL_LEN },
        ));
    }
    Ok(())
}

impl<S: Store> Service<S> {
    /// Sets a tenant's relying party (operator command). Every server reads it at the
    /// start of each ceremony, so the change holds on every node at once.
    pub async fn set_webauthn_config(
        &self,
        tenant: &TenantId,
        input: ConfigInput,
    ) -> Result<WebAuthnConfig, CoreError> {
        let rp_id = input.rp_id.trim().to_ascii_lowercase();
        if rp_id.is_empty() {
            return Err(CoreError::invalid(Field::RpId, Reason::Required));
        }
        if input.origins.len() > MAX_ORIGINS {
            return Err(CoreError::invalid(
                Field::Origin,
                Reason::TooMany { max: MAX_ORIGINS },
            ));
        }
        let mut origins = Vec::new();
        for o in &input.origins {
            let url = parse_origin(o)?;
            origins.push(url.origin().ascii_serialization());
        }
        if input.attestation == AttestationPolicy::Direct
            && let Some(pem) = &input.trust_store_pem
        {
            trust_store(pem)?;
        }
        let rp_name = input
            .rp_name
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| rp_id.clone());
        check_label(Field::Name, Some(&rp_name))?;
        let config = WebAuthnConfig {
            tenant_id: tenant.clone(),
            rp_id,
            rp_name,
            origins,
            attestation: input.attestation,
            trust_store_pem: input.trust_store_pem,
            updated_at: self.now(),
        };
        // webauthn-rs refuses an rp id that is not the origins' registrable suffix.
        config.relying_party()?;
        self.store.set_webauthn_config(&config).await?;
        Ok(config)
    }

    /// A tenant's relying party, if configured.
    pub async fn webauthn_config(
        &self,
        tenant: &TenantId,
    ) -> Result<Option<WebAuthnConfig>, CoreError> {
        Ok(self.store.webauthn_config(tenant).await?)
    }

    async fn relying_party(
        &self,
        tenant: &TenantId,
    ) -> Result<(WebAuthnConfig, Webauthn), CoreError> {
        let config = self
            .store
            .webauthn_config(tenant)
            .await?
            .ok_or_else(|| refused(Refusal::NotConfigured))?;
        let rp = config.relying_party()?;
        Ok((config, rp))
    }

    /// Starts registering a passkey for a user: the options for
    /// `navigator.credentials.create()`. The ceremony is stored bound to the tenant and
    /// user, expiring after [`CEREMONY_TTL`].
    pub async fn passkey_registration_start(
        &self,
        tenant: &TenantId,
        req: RegistrationStart,
    ) -> Result<CreationChallengeResponse, CoreError> {
        check_label(Field::Name, req.name.as_deref())?;
        check_label(Field::DisplayName, Some(&req.display_name))?;
        check_label(Field::UserAgent, req.user_agent.as_deref())?;
        let (config, rp) = self.relying_party(tenant).await?;
        let existing = self.store.list_passkeys(tenant, &req.user).await?;
        if existing.len() >= MAX_CREDENTIALS_PER_USER {
            return Err(CoreError::invalid(
                Field::Methods,
                Reason::TooMany {
                    max: MAX_CREDENTIALS_PER_USER,
                },
            ));
        }
        let exclude = existing
            .iter()
            .filter_map(|c| {
                data_encoding::BASE64URL_NOPAD
                    .decode(c.credential_id.as_bytes())
                    .ok()
            })
            .collect::<Vec<_>>();
        let exclude = (!exclude.is_empty()).then_some(exclude);
        let handle = user_handle(tenant, &req.user);
        let account = req
            .name
            .clone()
            .unwrap_or_else(|| req.user.as_str().to_owned());
        let (options, state) = match (config.attestation, req.workflow) {
            (AttestationPolicy::Direct, _) => {
                let cas = trust_store(config.trust_store_pem.as_deref().unwrap_or_default())
                    .map_err(|_| refused(Refusal::Attestation))?;
                let (ccr, s) = rp
                    .start_attested_passkey_registration(
                        handle,
                        &account,
                        &req.display_name,
                        exclude,
                        cas,
                        None,
                    )
                    .map_err(|e| refused(refusal_of(&e)))?;
                (ccr, RegState::Attested(s))
            }
            (AttestationPolicy::None, Workflow::General) => {
                let (ccr, s) = rp
                    .start_securitykey_registration(
                        handle,
                        &account,
                        &req.display_name,
                        exclude,
                        None,
                        None,
                    )
                    .map_err(|e| refused(refusal_of(&e)))?;
                (ccr, RegState::SecurityKey(s))
            }
            (AttestationPolicy::None, _) => {
                let (ccr, s) = rp
                    .start_passkey_registration(handle, &account, &req.display_name, exclude)
                    .map_err(|e| refused(refusal_of(&e)))?;
                (ccr, RegState::Passkey(s))
            }
        };
        let now = self.now();
        let ceremony = Ceremony {
            challenge: b64url(&options.public_key.challenge),
            tenant_id: tenant.clone(),
            user_id: req.user,
            kind: CeremonyKind::Registration,
            workflow: req.workflow,
            state: to_json(&state)?,
            name: req.name,
            display_name: Some(req.display_name),
            user_agent: req.user_agent,
            application_id: None,
            login_state: None,
            created_at: now,
            expires_at: now + CEREMONY_TTL,
        };
        self.store.insert_webauthn_ceremony(&ceremony).await?;
        Ok(options)
    }

    /// Takes (uses up) the ceremony a response answers, refusing one of another tenant,
    /// kind or user, or one past its expiry.
    async fn take_ceremony(
        &self,
        tenant: Option<&TenantId>,
        client_data_json: &[u8],
        kind: CeremonyKind,
        user: Option<&UserId>,
    ) -> Result<Ceremony, CoreError> {
        let challenge = challenge_of(client_data_json)?;
        let now = self.now();
        let c = self
            .store
            .take_webauthn_ceremony(&challenge)
            .await?
            .ok_or_else(|| refused(Refusal::UnknownChallenge))?;
        let belongs = tenant.is_none_or(|t| *t == c.tenant_id)
            && user.is_none_or(|u| *u == c.user_id)
            && c.kind == kind;
        if !belongs || c.expires_at <= now {
            return Err(refused(Refusal::UnknownChallenge));
        }
        Ok(c)
    }

    /// Completes a registration: `webauthn-rs` checks the response against the stored
    /// ceremony and the tenant's relying party; the credential is stored under the
    /// ceremony's user.
    /// `tenant` is the caller's, if it named one (the challenge identifies the ceremony).
    pub async fn passkey_registration_finish(
        &self,
        tenant: Option<&TenantId>,
        user: Option<&UserId>,
        claimed: &Claimed,
        response: &RegisterPublicKeyCredential,
    ) -> Result<PasskeyCredential, CoreError> {
        let c = self
            .take_ceremony(
                tenant,
                &response.response.client_data_json,
                CeremonyKind::Registration,
                user,
            )
            .await?;
        let tenant = &c.tenant_id;
        let (config, rp) = self.relying_party(tenant).await?;
        config.check_claimed(claimed)?;
        let credential: Credential = match from_json::<RegState>(&c.state)? {
            RegState::Passkey(s) => rp.finish_passkey_registration(response, &s).map(Into::into),
            RegState::SecurityKey(s) => rp
                .finish_securitykey_registration(response, &s)
                .map(Into::into),
            RegState::Attested(s) => rp
                .finish_attested_passkey_registration(response, &s)
                .map(Into::into),
        }
        .map_err(|e| refused(refusal_of(&e)))?;
        let now = self.now();
        let stored = PasskeyCredential {
            id: PasskeyId::generate()?,
            tenant_id: tenant.clone(),
            user_id: c.user_id.clone(),
            credential_id: b64url(credential.cred_id.as_ref()),
            user_handle: b64url(user_handle(tenant, &c.user_id).as_bytes()),
            name: c.name,
            display_name: c.display_name,
            user_agent: c.user_agent,
            algorithm: i64::from(credential.cred.type_ as i32),
            sign_count: credential.counter,
            rp_id: config.rp_id.clone(),
            attestation_type: attestation_type(&credential),
            user_verified: credential.user_verified,
            backup_eligible: credential.backup_eligible,
            transports: transports(&credential),
            workflow: c.workflow,
            credential: to_json(&credential)?,
            created_at: now,
            last_used_at: None,
        };
        match self.store.insert_passkey(&stored).await {
            Ok(()) => Ok(stored),
            Err(StoreError::Conflict(_)) => Err(refused(Refusal::AlreadyRegistered)),
            Err(e) => Err(e.into()),
        }
    }

    /// Starts an assertion or login: the options for `navigator.credentials.get()`,
    /// allowing the user's passkeys (or the one named).
    pub async fn passkey_authentication_start(
        &self,
        tenant: &TenantId,
        req: AuthenticationStart,
    ) -> Result<RequestChallengeResponse, CoreError> {
        let (_, rp) = self.relying_party(tenant).await?;
        let mut creds = self.store.list_passkeys(tenant, &req.user).await?;
        if let Some(id) = &req.credential {
            creds.retain(|c| c.id == *id);
            if creds.is_empty() {
                return Err(CoreError::not_found(Entity::Passkey, id.as_str()));
            }
        }
        if creds.is_empty() {
            return Err(refused(Refusal::NoCredentials));
        }
        let creds = creds
            .iter()
            .map(|c| from_json::<Credential>(&c.credential))
            .collect::<Result<Vec<_>, _>>()?;
        let (options, state) = match req.workflow {
            Workflow::General => {
                let keys: Vec<SecurityKey> = creds.into_iter().map(Into::into).collect();
                let (rcr, s) = rp
                    .start_securitykey_authentication(&keys)
                    .map_err(|e| refused(refusal_of(&e)))?;
                (rcr, AuthState::SecurityKey(s))
            }
            _ => {
                let keys: Vec<Passkey> = creds.into_iter().map(Into::into).collect();
                let (rcr, s) = rp
                    .start_passkey_authentication(&keys)
                    .map_err(|e| refused(refusal_of(&e)))?;
                (rcr, AuthState::Passkey(s))
            }
        };
        let now = self.now();
        let ceremony = Ceremony {
            challenge: b64url(&options.public_key.challenge),
            tenant_id: tenant.clone(),
            user_id: req.user,
            kind: CeremonyKind::Authentication,
            workflow: req.workflow,
            state: to_json(&state)?,
            name: None,
            display_name: None,
            user_agent: None,
            application_id: req.application_id,
            login_state: req.login_state,
            created_at: now,
            expires_at: now + CEREMONY_TTL,
        };
        self.store.insert_webauthn_ceremony(&ceremony).await?;
        Ok(options)
    }

    /// Completes an assertion (or a login): the ceremony is used up, the response
    /// checked by `webauthn-rs` against it and the tenant's relying party, and the
    /// counter advanced only forwards. A failed check counts as a wrong code against the
    /// user, under the one throttling policy. `tenant` is the caller's tenant if it named
    /// one (the challenge identifies the ceremony otherwise).
    pub async fn passkey_assert(
        &self,
        tenant: Option<&TenantId>,
        claimed: &Claimed,
        response: &PublicKeyCredential,
    ) -> Result<Asserted, CoreError> {
        let c = self
            .take_ceremony(
                tenant,
                &response.response.client_data_json,
                CeremonyKind::Authentication,
                None,
            )
            .await?;
        let tenant = c.tenant_id.clone();
        let user = c.user_id.clone();
        self.judge_passkey(&tenant, &user, async {
            let (config, rp) = self.relying_party(&tenant).await?;
            config.check_claimed(claimed)?;
            let stored = self
                .store
                .find_passkey(&tenant, &b64url(&response.raw_id))
                .await?
                .filter(|p| p.user_id == user)
                .ok_or_else(|| refused(Refusal::UnknownCredential))?;
            let result = match from_json::<AuthState>(&c.state)? {
                AuthState::Passkey(s) => rp.finish_passkey_authentication(response, &s),
                AuthState::SecurityKey(s) => rp.finish_securitykey_authentication(response, &s),
                AuthState::Attested(s) => rp.finish_attested_passkey_authentication(response, &s),
            }
            .map_err(|e| refused(refusal_of(&e)))?;
            let mut credential: Credential = from_json(&stored.credential)?;
            let counter = result.counter();
            if (counter > 0 || stored.sign_count > 0) && counter <= stored.sign_count {
                return Err(refused(Refusal::CounterRegression));
            }
            let mut passkey: Passkey = credential.clone().into();
            passkey.update_credential(&result);
            credential = passkey.into();
            let now = self.now();
            let updated = PasskeyCredential {
                sign_count: counter,
                credential: to_json(&credential)?,
                last_used_at: Some(now),
                ..stored.clone()
            };
            // Compare-and-set on the counter: of two uses racing with one counter value
            // (on any node), one wins.
            if !self
                .store
                .record_passkey_use(&updated, stored.sign_count)
                .await?
            {
                return Err(refused(Refusal::CounterRegression));
            }
            Ok(updated)
        })
        .await
        .map(|credential| Asserted {
            credential,
            application_id: c.application_id,
            login_state: c.login_state,
        })
    }

    /// One user's passkeys, oldest first.
    pub async fn list_passkeys(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<Vec<PasskeyCredential>, CoreError> {
        Ok(self.store.list_passkeys(tenant, user).await?)
    }

    /// A passkey of this tenant.
    pub async fn get_passkey(
        &self,
        tenant: &TenantId,
        id: &PasskeyId,
    ) -> Result<PasskeyCredential, CoreError> {
        self.store
            .get_passkey(tenant, id)
            .await?
            .ok_or_else(|| CoreError::not_found(Entity::Passkey, id.as_str()))
    }

    /// Deletes one passkey (404 if not this tenant's).
    pub async fn delete_passkey(&self, tenant: &TenantId, id: &PasskeyId) -> Result<(), CoreError> {
        match self.store.delete_passkeys(tenant, None, Some(id)).await? {
            0 => Err(CoreError::not_found(Entity::Passkey, id.as_str())),
            _ => Ok(()),
        }
    }

    /// Deletes all of a user's passkeys; returns how many went.
    pub async fn delete_user_passkeys(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<u64, CoreError> {
        Ok(self.store.delete_passkeys(tenant, Some(user), None).await?)
    }

    /// Imports passkeys registered elsewhere (all or none).
    pub async fn import_passkeys(
        &self,
        tenant: &TenantId,
        imports: Vec<ImportedPasskey>,
    ) -> Result<usize, CoreError> {
        let (config, _) = self.relying_party(tenant).await?;
        let now = self.now();
        let mut out = Vec::with_capacity(imports.len());
        for i in imports {
            check_label(Field::Name, i.name.as_deref())?;
            check_label(Field::DisplayName, i.display_name.as_deref())?;
            out.push(PasskeyCredential {
                id: match i.id {
                    Some(id) => id,
                    None => PasskeyId::generate()?,
                },
                tenant_id: tenant.clone(),
                credential_id: b64url(i.credential.cred_id.as_ref()),
                user_handle: b64url(user_handle(tenant, &i.user).as_bytes()),
                user_id: i.user,
                name: i.name,
                display_name: i.display_name,
                user_agent: None,
                algorithm: i64::from(i.credential.cred.type_ as i32),
                sign_count: i.credential.counter,
                rp_id: i.rp_id.unwrap_or_else(|| config.rp_id.clone()),
                attestation_type: attestation_type(&i.credential),
                user_verified: i.credential.user_verified,
                backup_eligible: i.credential.backup_eligible,
                transports: transports(&i.credential),
                workflow: Workflow::General,
                credential: to_json(&i.credential)?,
                created_at: now,
                last_used_at: None,
            });
        }
        match self.store.import_passkeys(&out).await {
            Ok(()) => Ok(out.len()),
            Err(StoreError::Conflict(_)) => Err(refused(Refusal::AlreadyRegistered)),
            Err(e) => Err(e.into()),
        }
    }
}

fn attestation_type(c: &Credential) -> String {
    serde_json::to_value(&c.attestation_format)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "none".into())
}

fn transports(c: &Credential) -> Vec<String> {
    c.transports
        .iter()
        .flatten()
        .filter_map(|t| serde_json::to_value(t).ok())
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflows_round_trip() {
        for w in [
            Workflow::Bootstrap,
            Workflow::General,
            Workflow::Reauthentication,
        ] {
            assert_eq!(Workflow::parse(w.as_str()), Some(w));
        }
        assert_eq!(Workflow::parse("other"), None);
        assert!(!Workflow::General.requires_user_verification());
        assert!(Workflow::Bootstrap.requires_user_verification());
    }

    #[test]
    fn passkey_ids_are_uuids() {
        let id = PasskeyId::generate().unwrap();
        assert_eq!(
            PasskeyId::parse(&id.as_str().to_uppercase()),
            Some(id.clone())
        );
        assert_eq!(PasskeyId::parse("not-a-uuid"), None);
    }

    #[test]
    fn user_handles_are_stable_and_uuid_users_keep_theirs() {
        let t = TenantId::from_trusted("tenant_01HZX0000000000000000000AA".into());
        let u = UserId::parse("user_123").unwrap();
        assert_eq!(user_handle(&t, &u), user_handle(&t, &u));
        let uuid = UserId::parse("fffc8648-bab2-4bdd-b2eb-a48e853d9217").unwrap();
        assert_eq!(
            user_handle(&t, &uuid).to_string(),
            "fffc8648-bab2-4bdd-b2eb-a48e853d9217"
        );
    }

    #[test]
    fn origins_must_be_secure_or_localhost() {
        assert!(parse_origin("https://example.com").is_ok());
        assert!(parse_origin("http://localhost:8080").is_ok());
        assert!(parse_origin("http://example.com").is_err());
        assert!(parse_origin("nonsense").is_err());
    }

    #[test]
    fn claimed_values_must_be_on_the_allow_list() {
        let config = WebAuthnConfig {
            tenant_id: TenantId::from_trusted("tenant_01HZX0000000000000000000AA".into()),
            rp_id: "example.com".into(),
            rp_name: "Example".into(),
            origins: vec!["https://example.com".into()],
            attestation: AttestationPolicy::None,
            trust_store_pem: None,
            updated_at: OffsetDateTime::UNIX_EPOCH,
        };
        assert!(config.check_claimed(&Claimed::default()).is_ok());
        let ok = Claimed {
            origin: Some("https://example.com".into()),
            rp_id: Some("example.com".into()),
        };
        assert!(config.check_claimed(&ok).is_ok());
        let bad_origin = Claimed {
            origin: Some("https://evil.example".into()),
            rp_id: None,
        };
        assert!(matches!(
            config.check_claimed(&bad_origin),
            Err(CoreError::WebAuthn(Refusal::Origin))
        ));
        let bad_rp = Claimed {
            origin: None,
            rp_id: Some("evil.example".into()),
        };
        assert!(matches!(
            config.check_claimed(&bad_rp),
            Err(CoreError::WebAuthn(Refusal::RpId))
        ));
    }
}
