//! The storage port. Every guarantee that must hold across processes (replay protection,
//! a challenge verified once, bounded attempts) is one atomic operation here, so an
//! implementation on a shared database keeps it across nodes.

use time::OffsetDateTime;

use crate::error::{CoreError, StoreError};
use crate::events::{EventRecord, EventScan};
use crate::idempotency::{ClaimOutcome, IdempotencyClaim};
use crate::ids::{ApiKeyId, ChallengeId, FactorId, JwtKeyId, MethodId, TenantId, UserId};
use crate::jwt_keys::JwtKey;
use crate::model::{
    ApiKey, Challenge, Factor, FailureCount, LoginState, PendingCode, RecoveryCode, Tenant, Trust,
};
use crate::rotation::{SealedCount, SealedKind, SealedRow, SealedValue};
use crate::send_limits::{CountryRules, SendHistory, SendRecord, SendRefusal, SendTicket};

/// Result of counting a wrong code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The attempt was counted; the challenge stays open (or is now exhausted).
    Counted,
    /// The challenge was no longer pending (verified, expired or exhausted meanwhile).
    NotPending,
}

/// Result of accepting a right code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuccessOutcome {
    /// The challenge is now verified.
    Verified,
    /// The challenge was no longer pending: nothing changed.
    NotPending,
}

/// What a judged code proved, as the factor's state records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judgement {
    /// A wrong code: one more consecutive failure.
    Wrong,
    /// A right code: the failures are cleared; for TOTP, the step it was accepted at.
    Right {
        /// The TOTP step to record as used.
        totp_step: Option<i64>,
    },
}

/// What the verification engine decided about one code against a challenge, from the
/// challenge and its factor exactly as the store held them when it asked.
#[derive(Debug)]
pub enum Verdict {
    /// Write nothing: the attempt is refused unjudged (not pending, throttled, locked) or
    /// could not be judged.
    Refuse(CoreError),
    /// Record this outcome.
    Settle(Settlement),
}

/// The writes a judged code makes, all or nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    /// Right or wrong (a right TOTP code names the step it used).
    pub judgement: Judgement,
    /// Whether the factor's row records it (failure count, TOTP step), as
    /// [`Store::settle_factor_attempt`] would, conditional on the failure count the judge
    /// saw; false when there is nothing to record there (throttle off, no step).
    pub on_factor: bool,
    /// The challenge's attempt limit: a wrong code adds one attempt, a right one marks
    /// it verified, each only while it is unverified, unexpired and below this.
    pub max_attempts: u32,
    /// The verification's events, written in the same transaction as the challenge's
    /// outcome (and only if it is written).
    pub events: Box<[EventRecord]>,
}

/// The engine's judge of one verification, called by the store with a challenge and its
/// factor as stored. The store may call it again on fresh rows (a store that judges
/// optimistically, outside a lock, does when a concurrent attempt changed them first), so
/// it must be a pure function of its arguments and what it captured. It is `'static` so
/// a store may run it on a thread of its own (SQLite's writer).
pub type ChallengeJudge = Box<dyn FnMut(&Challenge, &Factor) -> Verdict + Send>;

/// What [`Store::verify_challenge`] did.
#[derive(Debug)]
pub enum Verification {
    /// No such challenge in this tenant.
    Missing,
    /// The judge's last verdict, with the rows it judged; a [`Verdict::Settle`] is
    /// committed.
    Judged {
        /// The challenge as judged (before the settlement; boxed, as the factor).
        challenge: Box<Challenge>,
        /// Its factor as judged (boxed: a factor is large).
        factor: Box<Factor>,
        /// What the judge said, and the store recorded.
        verdict: Verdict,
    },
    /// Concurrent attempts kept changing the rows between reading and writing; nothing
    /// was recorded for this one (optimistic stores only).
    Contended,
}

/// A keyset query over one user's factors, ordered by id (= creation time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactorScan<'a> {
    /// Owning tenant.
    pub tenant_id: &'a TenantId,
    /// The user.
    pub user_id: &'a UserId,
    /// Scan direction.
    pub ascending: bool,
    /// Exclusive start: only ids strictly past this one in the scan direction.
    pub start_after: Option<&'a FactorId>,
    /// Most rows to return.
    pub limit: u32,
}

/// Persistence for mfad. Implementations must make each method atomic.
///
/// Declared with `async_trait` so the server can hold either backend as `Arc<dyn …>`
/// (measured against static dispatch in docs/BENCHMARKS.md); `Arc<S>` is a store too.
#[async_trait::async_trait]
#[auto_impl::auto_impl(Arc)]
pub trait Store: Send + Sync + 'static {
    /// Cheap liveness check.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Inserts a tenant unless one with the same name exists; returns the stored one.
    async fn ensure_tenant(&self, t: &Tenant) -> Result<Tenant, StoreError>;

    /// Stores a new API key.
    async fn insert_api_key(&self, k: &ApiKey, events: &[EventRecord]) -> Result<(), StoreError>;

    /// Looks up a key by its public id.
    async fn get_api_key(&self, id: &ApiKeyId) -> Result<Option<ApiKey>, StoreError>;

    /// All keys with their tenant, oldest first.
    async fn list_api_keys(&self) -> Result<Vec<(ApiKey, Tenant)>, StoreError>;

    /// Marks a key revoked; false if no such (unrevoked) key.
    async fn revoke_api_key(
        &self,
        id: &ApiKeyId,
        now: OffsetDateTime,
        events: &[EventRecord],
    ) -> Result<bool, StoreError>;

    /// Stores JWT verification keys, all or none (one transaction); `Conflict` if a key's
    /// `kid` is already taken in its tenant.
    async fn insert_jwt_keys(
        &self,
        keys: &[JwtKey],
        events: &[EventRecord],
    ) -> Result<(), StoreError>;

    /// Every JWT verification key with its tenant, oldest first. Servers reread this each
    /// second to pick up changes, so it reads one small table.
    async fn list_jwt_keys(&self) -> Result<Vec<(JwtKey, Tenant)>, StoreError>;

    /// Deletes a JWT verification key; false if there was none.
    async fn delete_jwt_key(
        &self,
        id: &JwtKeyId,
        events: &[EventRecord],
    ) -> Result<bool, StoreError>;

    /// Stores a factor, and optionally its first challenge in the same transaction.
    async fn insert_factor(
        &self,
        f: &Factor,
        first_challenge: Option<&Challenge>,
        events: &[EventRecord],
    ) -> Result<(), StoreError>;

    /// A factor of this tenant.
    async fn get_factor(
        &self,
        tenant: &TenantId,
        id: &FactorId,
    ) -> Result<Option<Factor>, StoreError>;

    /// Deletes a factor and its challenges; false if it did not exist for this tenant.
    async fn delete_factor(
        &self,
        tenant: &TenantId,
        id: &FactorId,
        events: &[EventRecord],
    ) -> Result<bool, StoreError>;

    /// A keyset page of one user's factors.
    async fn scan_user_factors(&self, scan: FactorScan<'_>) -> Result<Vec<Factor>, StoreError>;

    /// Stores a new challenge.
    async fn insert_challenge(
        &self,
        c: &Challenge,
        events: &[EventRecord],
    ) -> Result<(), StoreError>;

    /// A challenge of this tenant, with its factor.
    async fn get_challenge(
        &self,
        tenant: &TenantId,
        id: &ChallengeId,
    ) -> Result<Option<(Challenge, Factor)>, StoreError>;

    /// Atomically counts one wrong code, only while the challenge is unverified,
    /// unexpired at `now` and below `max_attempts`.
    async fn record_failure(
        &self,
        tenant: &TenantId,
        id: &ChallengeId,
        max_attempts: u32,
        now: OffsetDateTime,
        events: &[EventRecord],
    ) -> Result<AttemptOutcome, StoreError>;

    /// Atomically marks the challenge verified, only while it is unverified, unexpired at
    /// `now` and below `max_attempts`.
    async fn record_success(
        &self,
        tenant: &TenantId,
        id: &ChallengeId,
        max_attempts: u32,
        now: OffsetDateTime,
        events: &[EventRecord],
    ) -> Result<SuccessOutcome, StoreError>;

    // ---- throttling (SQL in mfad-store's `throttle.rs`) -------------------------------

    /// Records a judged code on a factor in one atomic statement, and only while the
    /// factor's failure count is still `seen` (compare-and-set; `None`: unconditionally).
    /// `Wrong` adds one failure at `now`; `Right` clears the count and, with a TOTP step,
    /// advances the factor's last used step to it, only forwards (the replay rule). False
    /// if nothing changed: the count moved, the step was already used, or no such factor.
    async fn settle_factor_attempt(
        &self,
        tenant: &TenantId,
        factor: &FactorId,
        seen: Option<&FailureCount>,
        judgement: Judgement,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// A user's consecutive failures on the FusionAuth routes (none for a user never
    /// counted).
    async fn user_failures(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<FailureCount, StoreError>;

    /// Records a judged code on a user's count, atomically and only while it is still
    /// `seen` (compare-and-set): a wrong code adds one failure at `now`, a right one
    /// clears the count. Records the user if new. False if the count moved.
    async fn settle_user_attempt(
        &self,
        tenant: &TenantId,
        user: &UserId,
        seen: &FailureCount,
        right: bool,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// A factor by id, in whichever tenant holds it (operator commands only).
    async fn find_factor(&self, id: &FactorId) -> Result<Option<Factor>, StoreError>;

    /// A tenant by id or name (operator commands only).
    async fn find_tenant(&self, id_or_name: &str) -> Result<Option<Tenant>, StoreError>;

    /// Clears a factor's failure count (operator unlock), in one statement so every node
    /// sees it at once. False if there is no such factor.
    async fn unlock_factor(
        &self,
        id: &FactorId,
        events: &[EventRecord],
    ) -> Result<bool, StoreError>;

    /// Clears the failure counts of a user and of all the user's factors, in one
    /// transaction. Returns how many counts there were (user row and factors).
    async fn unlock_user(
        &self,
        tenant: &TenantId,
        user: &UserId,
        events: &[EventRecord],
    ) -> Result<u64, StoreError>;

    // ---- FusionAuth two-factor ------------------------------------------------------
    // A "method" is a factor of type totp, sms or email filed under a user.

    /// Records `factor` as the method the user last logged in with (FusionAuth's
    /// `lastUsed`), replacing the previous one in one atomic upsert: the last write wins.
    async fn set_last_used_method(
        &self,
        tenant: &TenantId,
        user: &UserId,
        factor: &FactorId,
        at: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// The factor the user last logged in with, if any (it may since have been deleted).
    async fn last_used_method(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<Option<FactorId>, StoreError>;

    /// Renames one of a user's methods; false if there is no such method.
    async fn rename_method(
        &self,
        tenant: &TenantId,
        user: &UserId,
        method_id: &MethodId,
        name: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Whether this API has seen the user, or the user has any factor, in this tenant.
    async fn user_known(&self, tenant: &TenantId, user: &UserId) -> Result<bool, StoreError>;

    /// The users (at most `limit`) that have a method whose email address is `email`, or
    /// whose phone number is `phone`, or whose user id is `user_id`.
    async fn find_users(
        &self,
        tenant: &TenantId,
        email: Option<&str>,
        phone: Option<&str>,
        user_id: Option<&UserId>,
        limit: u32,
    ) -> Result<Vec<UserId>, StoreError>;

    /// In one transaction serialised per user: records the user, stores the method (which
    /// must carry its user and method id) and, if the user had no other method, replaces
    /// the user's recovery codes with `recovery`. Returns whether the codes were stored.
    /// `Conflict` if the method id is taken.
    async fn insert_method(
        &self,
        method: &Factor,
        recovery: &[RecoveryCode],
        now: OffsetDateTime,
        events: &[EventRecord],
        if_codes_stored: &[EventRecord],
    ) -> Result<bool, StoreError>;

    /// Deletes one method (`only`) or every method of a user, with their challenges; when
    /// no method remains, the recovery codes go too. Returns how many methods went.
    async fn delete_methods(
        &self,
        tenant: &TenantId,
        user: &UserId,
        only: Option<&FactorId>,
        now: OffsetDateTime,
        events: &[EventRecord],
    ) -> Result<u64, StoreError>;

    /// Replaces all of a user's recovery codes.
    async fn replace_recovery_codes(
        &self,
        tenant: &TenantId,
        user: &UserId,
        codes: &[RecoveryCode],
        now: OffsetDateTime,
        events: &[EventRecord],
    ) -> Result<(), StoreError>;

    /// A user's remaining recovery codes.
    async fn recovery_codes(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<Vec<RecoveryCode>, StoreError>;

    /// Uses up one recovery code; false if it was already used (single use, atomically).
    async fn consume_recovery_code(
        &self,
        tenant: &TenantId,
        user: &UserId,
        digest: &[u8],
        events: &[EventRecord],
    ) -> Result<bool, StoreError>;

    /// Stores a one-time code, replacing any earlier one of the same scope.
    async fn put_code(&self, code: &PendingCode) -> Result<(), StoreError>;

    /// The live code of a scope.
    async fn get_code(
        &self,
        tenant: &TenantId,
        scope: &str,
    ) -> Result<Option<PendingCode>, StoreError>;

    /// Uses up the code whose digest is `digest`, only while it is unexpired at `now` and
    /// below `max_attempts` (and not replaced meanwhile); false otherwise.
    async fn consume_code(
        &self,
        tenant: &TenantId,
        scope: &str,
        digest: &[u8],
        max_attempts: u32,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Counts one wrong code against the code whose digest is `digest`, under the same
    /// conditions; false if it was no longer open.
    async fn fail_code(
        &self,
        tenant: &TenantId,
        scope: &str,
        digest: &[u8],
        max_attempts: u32,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Stores a new login in progress.
    async fn insert_login(&self, login: &LoginState) -> Result<(), StoreError>;

    /// A login in progress, by the digest of its id (any tenant: the id is the credential).
    async fn get_login(&self, id_digest: &str) -> Result<Option<LoginState>, StoreError>;

    /// Counts one code sent for a login, only while it is open and below `max_sends`.
    async fn count_login_send(
        &self,
        id_digest: &str,
        max_sends: u32,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Counts one wrong code against a login; at `max_attempts` the login (and its code) is
    /// deleted. Returns whether the login is still open.
    async fn fail_login(
        &self,
        tenant: &TenantId,
        id_digest: &str,
        max_attempts: u32,
        now: OffsetDateTime,
        events: &[EventRecord],
    ) -> Result<bool, StoreError>;

    /// Ends a login successfully (deleting it and its code), only while it is open and
    /// below `max_attempts`; false if another request ended it first.
    async fn consume_login(
        &self,
        tenant: &TenantId,
        id_digest: &str,
        max_attempts: u32,
        now: OffsetDateTime,
        events: &[EventRecord],
    ) -> Result<bool, StoreError>;

    /// Stores a trusted computer.
    async fn insert_trust(&self, trust: &Trust) -> Result<(), StoreError>;

    /// A trusted computer, by the digest of its id.
    async fn get_trust(&self, id_digest: &str) -> Result<Option<Trust>, StoreError>;

    /// Deletes up to `limit` expired logins, codes and trusts of each kind.
    async fn purge_expired(&self, now: OffsetDateTime, limit: u32) -> Result<(), StoreError>;

    // ---- send limits (see `send_limits`) ------------------------------------------------

    /// Admits one send atomically: under a lock on the tenant held until commit (so
    /// concurrent admissions for one tenant, on any node, run one after the other), reads
    /// the [`SendHistory`] of `record` as of `record.at` (sends of the last day) and calls
    /// `decide` on it. Only if `decide` answers `Ok` is `record` stored; the answer is then
    /// its ticket, else `decide`'s refusal. Sends older than a day may be deleted.
    async fn admit_send(
        &self,
        record: &SendRecord,
        decide: &(dyn for<'h> Fn(&'h SendHistory) -> Result<(), SendRefusal> + Send + Sync),
    ) -> Result<Result<SendTicket, SendRefusal>, StoreError>;

    /// Forgets one admitted send (it was not delivered after all).
    async fn release_send(&self, tenant: &TenantId, ticket: SendTicket) -> Result<(), StoreError>;

    /// A tenant's own SMS country rules, if it has any.
    async fn sms_countries(&self, tenant: &TenantId) -> Result<Option<CountryRules>, StoreError>;

    /// Sets a tenant's SMS country rules, or clears them with `None`; the next admission
    /// on any node sees the change.
    async fn set_sms_countries(
        &self,
        tenant: &TenantId,
        rules: Option<&CountryRules>,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;

    // ---- verification in one store visit (perf, issue 8 §4; SQL in mfad-store's
    // `verify.rs`) ------------------------------------------------------------------------

    /// Judges one code against a challenge and records the outcome, as ONE store
    /// operation: reads the challenge with its factor, calls `judge` on them and writes
    /// the [`Settlement`] it returns (factor first, then challenge), conditional on the
    /// rows it judged. If a condition no longer holds (another attempt, on any node,
    /// changed a row first), nothing more is written and `judge` is called again on fresh
    /// rows, a bounded number of times ([`Verification::Contended`] after that). Of
    /// concurrent right codes for one challenge or TOTP step exactly one settles as
    /// right. The answer comes only after the settlement is committed.
    async fn verify_challenge(
        &self,
        tenant: &TenantId,
        id: &ChallengeId,
        now: OffsetDateTime,
        judge: ChallengeJudge,
    ) -> Result<Verification, StoreError>;

    // ---- master-key rotation and idempotent retries (keys; SQL in mfad-store's ----------
    // ---- `sealed.rs` and `idempotency.rs`) ---------------------------------------------

    /// How many sealed values each key id seals, per kind (an index scan per kind).
    async fn sealed_key_counts(&self) -> Result<Vec<SealedCount>, StoreError>;

    /// Up to `limit` values of `kind` sealed under any key but `active`, in row order,
    /// strictly after `after` (a row of the same kind).
    async fn scan_sealed(
        &self,
        kind: SealedKind,
        active: &[u8],
        after: Option<&SealedRow>,
        limit: u32,
    ) -> Result<Vec<SealedValue>, StoreError>;

    /// Replaces `old` with `new` (same kind; a recovery code's digest may change with its
    /// seal) in one statement, only while the row still holds exactly `old`'s blob. False
    /// if it did not (a request or another rotation changed or removed it).
    async fn replace_sealed(
        &self,
        old: &SealedValue,
        new: &SealedValue,
    ) -> Result<bool, StoreError>;

    /// Claims an idempotency entry atomically across nodes: inserts it unless it exists;
    /// an existing one that expired, or whose claim lapsed without a response, is taken
    /// over. Otherwise returns the existing entry.
    async fn claim_idempotency(&self, c: &IdempotencyClaim<'_>)
    -> Result<ClaimOutcome, StoreError>;

    /// Stores the sealed response of the entry `id`, only while `claim` still holds it.
    async fn complete_idempotency(
        &self,
        id: &str,
        claim: &str,
        status: u16,
        sealed: &[u8],
    ) -> Result<bool, StoreError>;

    /// Deletes the entry `id` if `claim` still holds it without a response.
    async fn release_idempotency(&self, id: &str, claim: &str) -> Result<(), StoreError>;
    // ---- passkeys (WebAuthn; SQL in mfad-store's `webauthn.rs`) -------------------------

    /// A tenant's relying-party configuration, if it has one.
    async fn webauthn_config(
        &self,
        tenant: &TenantId,
    ) -> Result<Option<crate::webauthn::WebAuthnConfig>, StoreError>;

    /// Sets (replaces) a tenant's relying-party configuration.
    async fn set_webauthn_config(
        &self,
        config: &crate::webauthn::WebAuthnConfig,
    ) -> Result<(), StoreError>;

    /// Stores a new passkey; `Conflict` if its credential id is already registered in the
    /// tenant, or its id is taken.
    async fn insert_passkey(
        &self,
        credential: &crate::webauthn::PasskeyCredential,
    ) -> Result<(), StoreError>;

    /// Stores imported passkeys, all or none (one transaction); `Conflict` as for
    /// [`Store::insert_passkey`].
    async fn import_passkeys(
        &self,
        credentials: &[crate::webauthn::PasskeyCredential],
    ) -> Result<(), StoreError>;

    /// A passkey of this tenant, by mfad's id.
    async fn get_passkey(
        &self,
        tenant: &TenantId,
        id: &crate::webauthn::PasskeyId,
    ) -> Result<Option<crate::webauthn::PasskeyCredential>, StoreError>;

    /// A passkey of this tenant, by the authenticator's credential id (base64url).
    async fn find_passkey(
        &self,
        tenant: &TenantId,
        credential_id: &str,
    ) -> Result<Option<crate::webauthn::PasskeyCredential>, StoreError>;

    /// One user's passkeys, oldest first.
    async fn list_passkeys(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<Vec<crate::webauthn::PasskeyCredential>, StoreError>;

    /// Deletes the passkey `id`, or every passkey of `user` (at least one must be given);
    /// returns how many went.
    async fn delete_passkeys(
        &self,
        tenant: &TenantId,
        user: Option<&UserId>,
        id: Option<&crate::webauthn::PasskeyId>,
    ) -> Result<u64, StoreError>;

    /// Records a use: writes `updated`'s counter, credential and last use, atomically
    /// and only while the stored counter is still `seen_count` (compare-and-set, so two
    /// uses of one counter value cannot both succeed). False if it moved or is gone.
    async fn record_passkey_use(
        &self,
        updated: &crate::webauthn::PasskeyCredential,
        seen_count: u32,
    ) -> Result<bool, StoreError>;

    /// Stores a ceremony in progress.
    async fn insert_webauthn_ceremony(
        &self,
        ceremony: &crate::webauthn::Ceremony,
    ) -> Result<(), StoreError>;

    /// Takes the ceremony of a challenge: deletes and returns it in one statement, so it
    /// is answered once across all nodes (expired ones too; the caller checks expiry).
    async fn take_webauthn_ceremony(
        &self,
        challenge: &str,
    ) -> Result<Option<crate::webauthn::Ceremony>, StoreError>;

    /// Deletes up to `limit` ceremonies that expired before `now`.
    async fn purge_webauthn_ceremonies(
        &self,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<u64, StoreError>;

    // ---- events (issue 12; SQL in mfad-store's `events.rs`) -------------------------
    // Every mutating method above takes the events of its change and writes them in the
    // same transaction (`events: &[]` when a change makes none).

    /// Records events that come with no other change (a refused attempt or send).
    async fn record_events(&self, events: &[EventRecord]) -> Result<(), StoreError>;

    /// A keyset page of a tenant's events, in id order.
    async fn scan_events(&self, scan: EventScan<'_>) -> Result<Vec<EventRecord>, StoreError>;

    /// Deletes up to `limit` events created before `before`; how many went.
    async fn purge_events(&self, before: OffsetDateTime, limit: u32) -> Result<u64, StoreError>;

    // --- webhooks (issue 12; SQL in mfad-store's `webhooks.rs`) ---------------------------
    // Events enter the outbox in the transaction that writes them: every method above
    // that writes events also writes one delivery per endpoint subscribed to each.

    /// Stores an endpoint with its subscriptions (one per kind in `endpoint.events`) and
    /// its sealed signing secret, in one transaction.
    async fn insert_webhook_endpoint(
        &self,
        endpoint: &crate::webhooks::WebhookEndpoint,
        sealed_secret: &[u8],
    ) -> Result<(), StoreError>;

    /// A tenant's endpoints (every tenant's with `None`), oldest first.
    async fn list_webhook_endpoints(
        &self,
        tenant: Option<&TenantId>,
    ) -> Result<Vec<crate::webhooks::WebhookEndpoint>, StoreError>;

    /// An endpoint by id, in whichever tenant holds it (operator commands only).
    async fn get_webhook_endpoint(
        &self,
        id: &crate::ids::WebhookEndpointId,
    ) -> Result<Option<crate::webhooks::WebhookEndpoint>, StoreError>;

    /// Deletes an endpoint of this tenant with its subscriptions and deliveries; false if
    /// there was none.
    async fn delete_webhook_endpoint(
        &self,
        tenant: &TenantId,
        id: &crate::ids::WebhookEndpointId,
    ) -> Result<bool, StoreError>;

    /// Leases up to `limit` endpoints whose oldest pending delivery is due at `now` and
    /// which no live lease holds, to `owner` until `until`, atomically across nodes (two
    /// claimers never hold one endpoint). Endpoints served longest ago come first.
    async fn claim_webhook_endpoints(
        &self,
        owner: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<crate::webhooks::outbox::DeliveryTarget>, StoreError>;

    /// Extends `owner`'s lease on an endpoint to `until`; false if it is no longer theirs.
    async fn renew_webhook_lease(
        &self,
        id: &crate::ids::WebhookEndpointId,
        owner: &str,
        until: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Ends `owner`'s lease on an endpoint (at `now`), if it is still theirs.
    async fn release_webhook_lease(
        &self,
        id: &crate::ids::WebhookEndpointId,
        owner: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Up to `limit` of an endpoint's pending deliveries with their events, oldest first
    /// (due or not: the oldest one blocks the rest until it settles).
    async fn pending_webhook_deliveries(
        &self,
        endpoint: &crate::ids::WebhookEndpointId,
        limit: u32,
    ) -> Result<Vec<crate::webhooks::outbox::PendingDelivery>, StoreError>;

    /// Records one attempt at the pending delivery `id` (counting it), only while it is
    /// pending and its endpoint's lease is `owner`'s; false otherwise (another dispatcher
    /// took over the endpoint, or settled the delivery first).
    async fn settle_webhook_delivery(
        &self,
        id: i64,
        owner: &str,
        settlement: &crate::webhooks::outbox::Settlement,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// An endpoint's most recent `limit` deliveries, newest first.
    async fn list_webhook_deliveries(
        &self,
        endpoint: &crate::ids::WebhookEndpointId,
        limit: u32,
    ) -> Result<Vec<crate::webhooks::outbox::WebhookDelivery>, StoreError>;

    /// Deletes up to `limit` deliveries settled (delivered or failed) before `before`;
    /// how many went. (Purging an event deletes its remaining deliveries with it.)
    async fn purge_webhook_deliveries(
        &self,
        before: OffsetDateTime,
        limit: u32,
    ) -> Result<u64, StoreError>;
}
