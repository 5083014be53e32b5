//! The storage port. Every guarantee that must hold across processes (replay protection,
//! a challenge verified once, bounded attempts) is one atomic operation here, so an
//! implementation on a shared database keeps it across nodes.

use std::future::Future;
use time::OffsetDateTime;

use crate::error::StoreError;
use crate::ids::{ApiKeyId, ChallengeId, FactorId, TenantId, UserId};
use crate::model::{ApiKey, Challenge, Factor, Tenant};

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
    fn list_api_keys(&self)
    -> impl Future<Output = Result<Vec<(ApiKey, Tenant)>, StoreError>> + Send;

    /// Marks a key revoked; false if no such (unrevoked) key.
    fn revoke_api_key(
        &self,
        id: &ApiKeyId,
        now: OffsetDateTime,
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
    fn insert_challenge(&self, c: &Challenge)
    -> impl Future<Output = Result<(), StoreError>> + Send;

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
}
