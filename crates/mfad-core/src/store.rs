//! The storage port. Every guarantee that must hold across processes (replay protection,
//! a challenge verified once, bounded attempts) is one atomic operation here, so an
//! implementation on a shared database keeps it across nodes.

use std::future::Future;
use time::OffsetDateTime;

use crate::error::StoreError;
use crate::ids::{ApiKeyId, ChallengeId, FactorId, JwtKeyId, MethodId, TenantId, UserId};
use crate::jwt_keys::JwtKey;
use crate::model::{
    ApiKey, Challenge, Factor, LoginState, PendingCode, RecoveryCode, Tenant, Trust,
};

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
    /// The challenge is now verified (and the TOTP step recorded).
    Verified,
    /// The TOTP step was already used (a replay, possibly a concurrent one): nothing changed.
    StepAlreadyUsed,
    /// The challenge was no longer pending: nothing changed.
    NotPending,
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
pub trait Store: Send + Sync + 'static {
    /// Cheap liveness check.
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Inserts a tenant unless one with the same name exists; returns the stored one.
    fn ensure_tenant(&self, t: &Tenant) -> impl Future<Output = Result<Tenant, StoreError>> + Send;

    /// Stores a new API key.
    fn insert_api_key(&self, k: &ApiKey) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Looks up a key by its public id.
    fn get_api_key(
        &self,
        id: &ApiKeyId,
    ) -> impl Future<Output = Result<Option<ApiKey>, StoreError>> + Send;

    /// All keys with their tenant, oldest first.
    fn list_api_keys(
        &self,
    ) -> impl Future<Output = Result<Vec<(ApiKey, Tenant)>, StoreError>> + Send;

    /// Marks a key revoked; false if no such (unrevoked) key.
    fn revoke_api_key(
        &self,
        id: &ApiKeyId,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Stores JWT verification keys, all or none (one transaction); `Conflict` if a key's
    /// `kid` is already taken in its tenant.
    fn insert_jwt_keys(
        &self,
        keys: &[JwtKey],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Every JWT verification key with its tenant, oldest first. Servers reread this each
    /// second to pick up changes, so it reads one small table.
    fn list_jwt_keys(
        &self,
    ) -> impl Future<Output = Result<Vec<(JwtKey, Tenant)>, StoreError>> + Send;

    /// Deletes a JWT verification key; false if there was none.
    fn delete_jwt_key(
        &self,
        id: &JwtKeyId,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Stores a factor, and optionally its first challenge in the same transaction.
    fn insert_factor(
        &self,
        f: &Factor,
        first_challenge: Option<&Challenge>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// A factor of this tenant.
    fn get_factor(
        &self,
        tenant: &TenantId,
        id: &FactorId,
    ) -> impl Future<Output = Result<Option<Factor>, StoreError>> + Send;

    /// Deletes a factor and its challenges; false if it did not exist for this tenant.
    fn delete_factor(
        &self,
        tenant: &TenantId,
        id: &FactorId,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// A keyset page of one user's factors.
    fn scan_user_factors(
        &self,
        scan: FactorScan<'_>,
    ) -> impl Future<Output = Result<Vec<Factor>, StoreError>> + Send;

    /// Stores a new challenge.
    fn insert_challenge(
        &self,
        c: &Challenge,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// A challenge of this tenant, with its factor.
    fn get_challenge(
        &self,
        tenant: &TenantId,
        id: &ChallengeId,
    ) -> impl Future<Output = Result<Option<(Challenge, Factor)>, StoreError>> + Send;

    /// Atomically counts one wrong code, only while the challenge is unverified,
    /// unexpired at `now` and below `max_attempts`.
    fn record_failure(
        &self,
        tenant: &TenantId,
        id: &ChallengeId,
        max_attempts: u32,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<AttemptOutcome, StoreError>> + Send;

    /// Atomically marks the challenge verified, only while it is unverified, unexpired at
    /// `now` and below `max_attempts`; for TOTP, in the same transaction, advances the
    /// factor's last used step to `step`, only if `step` is greater than the stored one.
    fn record_success(
        &self,
        tenant: &TenantId,
        id: &ChallengeId,
        max_attempts: u32,
        now: OffsetDateTime,
        totp_step: Option<(&FactorId, i64)>,
    ) -> impl Future<Output = Result<SuccessOutcome, StoreError>> + Send;

    // ---- FusionAuth two-factor ------------------------------------------------------
    // A "method" is a factor of type totp, sms or email filed under a user.

    /// Gives a factor its method id, only if it has none yet; `Conflict` if the user
    /// already has a method with that id. False if the factor is gone or already had one.
    fn set_method_id(
        &self,
        tenant: &TenantId,
        factor: &FactorId,
        method_id: &MethodId,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Renames one of a user's methods; false if there is no such method.
    fn rename_method(
        &self,
        tenant: &TenantId,
        user: &UserId,
        method_id: &MethodId,
        name: Option<&str>,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Whether this API has seen the user, or the user has any factor, in this tenant.
    fn user_known(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The users (at most `limit`) that have a method whose email address is `email`, or
    /// whose phone number is `phone`, or whose user id is `user_id`.
    fn find_users(
        &self,
        tenant: &TenantId,
        email: Option<&str>,
        phone: Option<&str>,
        user_id: Option<&UserId>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<UserId>, StoreError>> + Send;

    /// In one transaction serialised per user: records the user, stores the method (which
    /// must carry its user and method id) and, if the user had no other method, replaces
    /// the user's recovery codes with `recovery`. Returns whether the codes were stored.
    /// `Conflict` if the method id is taken.
    fn insert_method(
        &self,
        method: &Factor,
        recovery: &[RecoveryCode],
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Deletes one method (`only`) or every method of a user, with their challenges; when
    /// no method remains, the recovery codes go too. Returns how many methods went.
    fn delete_methods(
        &self,
        tenant: &TenantId,
        user: &UserId,
        only: Option<&FactorId>,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Advances a TOTP factor's last used step to `step`, only forwards; false if the
    /// step (or a later one) was already used: the code is a replay.
    fn advance_totp_step(
        &self,
        tenant: &TenantId,
        factor: &FactorId,
        step: i64,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Reserves one code check for a user: counts it and answers true, unless `limit`
    /// checks already failed in the current window (which then ends at `window_end`).
    /// Atomic, so a burst of parallel guesses cannot exceed the limit.
    fn reserve_user_attempt(
        &self,
        tenant: &TenantId,
        user: &UserId,
        limit: u32,
        window_end: OffsetDateTime,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Clears a user's failure count after a right code.
    fn reset_user_attempts(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Replaces all of a user's recovery codes.
    fn replace_recovery_codes(
        &self,
        tenant: &TenantId,
        user: &UserId,
        codes: &[RecoveryCode],
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// A user's remaining recovery codes.
    fn recovery_codes(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> impl Future<Output = Result<Vec<RecoveryCode>, StoreError>> + Send;

    /// Uses up one recovery code; false if it was already used (single use, atomically).
    fn consume_recovery_code(
        &self,
        tenant: &TenantId,
        user: &UserId,
        digest: &[u8],
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Stores a one-time code, replacing any earlier one of the same scope.
    fn put_code(&self, code: &PendingCode) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The live code of a scope.
    fn get_code(
        &self,
        tenant: &TenantId,
        scope: &str,
    ) -> impl Future<Output = Result<Option<PendingCode>, StoreError>> + Send;

    /// Uses up the code whose digest is `digest`, only while it is unexpired at `now` and
    /// below `max_attempts` (and not replaced meanwhile); false otherwise.
    fn consume_code(
        &self,
        tenant: &TenantId,
        scope: &str,
        digest: &[u8],
        max_attempts: u32,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Counts one wrong code against the code whose digest is `digest`, under the same
    /// conditions; false if it was no longer open.
    fn fail_code(
        &self,
        tenant: &TenantId,
        scope: &str,
        digest: &[u8],
        max_attempts: u32,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Stores a new login in progress.
    fn insert_login(
        &self,
        login: &LoginState,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// A login in progress, by the digest of its id (any tenant: the id is the credential).
    fn get_login(
        &self,
        id_digest: &str,
    ) -> impl Future<Output = Result<Option<LoginState>, StoreError>> + Send;

    /// Counts one code sent for a login, only while it is open and below `max_sends`.
    fn count_login_send(
        &self,
        id_digest: &str,
        max_sends: u32,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Counts one wrong code against a login; at `max_attempts` the login (and its code) is
    /// deleted. Returns whether the login is still open.
    fn fail_login(
        &self,
        tenant: &TenantId,
        id_digest: &str,
        max_attempts: u32,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Ends a login successfully (deleting it and its code), only while it is open and
    /// below `max_attempts`; false if another request ended it first.
    fn consume_login(
        &self,
        tenant: &TenantId,
        id_digest: &str,
        max_attempts: u32,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Stores a trusted computer.
    fn insert_trust(&self, trust: &Trust) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// A trusted computer, by the digest of its id.
    fn get_trust(
        &self,
        id_digest: &str,
    ) -> impl Future<Output = Result<Option<Trust>, StoreError>> + Send;

    /// Deletes up to `limit` expired logins, codes and trusts of each kind.
    fn purge_expired(
        &self,
        now: OffsetDateTime,
        limit: u32,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}
