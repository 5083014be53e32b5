//! [`SqlStore`]: the [`Store`] port on either backend. The SQL lives in one file per
//! aggregate (`keys`, `factors`, `challenges`, `methods`, `codes`, `logins`, `throttle`), written once
//! for both backends; this file only hooks each port method to its function, inside the
//! backend's [`Backend::guard`].

use std::fmt::Debug;
use std::future::Future;

use mfad_core::error::StoreError;
use mfad_core::events::{EventRecord, EventScan};
use mfad_core::idempotency::{ClaimOutcome, IdempotencyClaim};
use mfad_core::ids::{ApiKeyId, ChallengeId, FactorId, JwtKeyId, MethodId, TenantId, UserId};
use mfad_core::jwt_keys::JwtKey;
use mfad_core::model::{
    ApiKey, Challenge, Factor, FailureCount, LoginState, PendingCode, RecoveryCode, Tenant, Trust,
};
use mfad_core::rotation::{SealedCount, SealedKind, SealedRow, SealedValue};
use mfad_core::send_limits::{CountryRules, SendHistory, SendRecord, SendRefusal, SendTicket};
use mfad_core::store::{
    AttemptOutcome, ChallengeJudge, FactorScan, Judgement, Store, SuccessOutcome, Verification,
};
use time::OffsetDateTime;

use crate::lean_pool::{LeanPool, LeanTransaction, PoolStats};
use crate::sql::SqlDb;
use crate::sqlite_writer::SqliteWriter;
use crate::{
    Database, challenges, codes, events, factors, idempotency, jwt_keys, keys, last_used, logins,
    methods, sealed, send_limits, throttle, verify, webauthn, webhooks,
};

/// What a backend supplies: its database, where reads and writes go, and the limits every
/// store operation runs within.
pub(crate) trait Backend: Debug + Send + Sync + 'static {
    /// The sqlx database.
    type DB: SqlDb;

    /// The pool reads go to.
    fn read(&self) -> &LeanPool<Self::DB>;

    /// The pool writes and transactions go to.
    fn write(&self) -> &LeanPool<Self::DB>;

    /// Runs one store operation (PostgreSQL: within its client-side deadline).
    fn guard<T: Send>(
        &self,
        op: impl Future<Output = Result<T, StoreError>> + Send,
    ) -> impl Future<Output = Result<T, StoreError>> + Send;

    /// Applies the backend's embedded migrations.
    fn migrate(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The versions of the backend's embedded migrations.
    fn migration_versions(&self) -> Vec<i64>;

    /// The thread that runs whole verifications on a connection of its own (SQLite on a
    /// file); without one, the store verifies optimistically over the pools.
    fn writer(&self) -> Option<&SqliteWriter> {
        None
    }
}

/// The store on one backend.
#[derive(Debug)]
pub(crate) struct SqlStore<B> {
    backend: B,
}

impl<B: Backend> SqlStore<B> {
    pub(crate) fn new(backend: B) -> Self {
        SqlStore { backend }
    }

    pub(crate) fn read(&self) -> &LeanPool<B::DB> {
        self.backend.read()
    }

    pub(crate) fn write(&self) -> &LeanPool<B::DB> {
        self.backend.write()
    }

    /// Opens a transaction on the write pool.
    pub(crate) async fn begin(&self) -> Result<LeanTransaction<B::DB>, StoreError> {
        self.write().begin().await.map_err(crate::map_err)
    }
}

#[async_trait::async_trait]
impl<B: Backend> Database for SqlStore<B> {
    async fn migrate(&self) -> Result<(), StoreError> {
        self.backend.migrate().await
    }

    async fn close(&self) {
        if let Some(w) = self.backend.writer() {
            w.close().await;
        }
        self.read().close().await;
        self.write().close().await;
    }

    async fn pending_migrations(&self) -> Result<Vec<i64>, StoreError> {
        self.backend
            .guard(crate::migrations::pending(
                self,
                self.backend.migration_versions(),
            ))
            .await
    }

    fn pool_stats(&self) -> Vec<PoolStats> {
        let (read, write) = (self.read().stats(), self.write().stats());
        if std::ptr::eq(self.read(), self.write()) {
            vec![read]
        } else {
            vec![read, write]
        }
    }
}

#[async_trait::async_trait]
impl<B: Backend> Store for SqlStore<B> {
    async fn ping(&self) -> Result<(), StoreError> {
        self.backend.guard(keys::ping(self)).await
    }
    async fn ensure_tenant(&self, t: &Tenant) -> Result<Tenant, StoreError> {
        self.backend.guard(keys::ensure_tenant(self, t)).await
    }
    async fn insert_api_key(&self, k: &ApiKey, ev: &[EventRecord]) -> Result<(), StoreError> {
        self.backend.guard(keys::insert_api_key(self, k, ev)).await
    }
    async fn get_api_key(&self, id: &ApiKeyId) -> Result<Option<ApiKey>, StoreError> {
        self.backend.guard(keys::get_api_key(self, id)).await
    }
    async fn list_api_keys(&self) -> Result<Vec<(ApiKey, Tenant)>, StoreError> {
        self.backend.guard(keys::list_api_keys(self)).await
    }
    async fn revoke_api_key(
        &self,
        id: &ApiKeyId,
        now: OffsetDateTime,
        ev: &[EventRecord],
    ) -> Result<bool, StoreError> {
        self.backend
            .guard(keys::revoke_api_key(self, id, now, ev))
            .await
    }

    async fn insert_jwt_keys(&self, keys: &[JwtKey], ev: &[EventRecord]) -> Result<(), StoreError> {
        self.backend.guard(jwt_keys::insert(self, keys, ev)).await
    }
    async fn list_jwt_keys(&self) -> Result<Vec<(JwtKey, Tenant)>, StoreError> {
        self.backend.guard(jwt_keys::list(self)).await
    }
    async fn delete_jwt_key(&self, id: &JwtKeyId, ev: &[EventRecord]) -> Result<bool, StoreError> {
        self.backend.guard(jwt_keys::delete(self, id, ev)).await
    }

    async fn insert_factor(
        &self,
        f: &Factor,
        c: Option<&Challenge>,
        ev: &[EventRecord],
    ) -> Result<(), StoreError> {
        self.backend.guard(factors::insert(self, f, c, ev)).await
    }
    async fn get_factor(&self, t: &TenantId, id: &FactorId) -> Result<Option<Factor>, StoreError> {
        self.backend.guard(factors::get(self, t, id)).await
    }
    async fn delete_factor(
        &self,
        t: &TenantId,
        id: &FactorId,
        ev: &[EventRecord],
    ) -> Result<bool, StoreError> {
        self.backend.guard(factors::delete(self, t, id, ev)).await
    }
    async fn scan_user_factors(&self, scan: FactorScan<'_>) -> Result<Vec<Factor>, StoreError> {
        self.backend.guard(factors::scan(self, scan)).await
    }

    async fn insert_challenge(&self, c: &Challenge, ev: &[EventRecord]) -> Result<(), StoreError> {
        self.backend.guard(challenges::insert(self, c, ev)).await
    }
    async fn get_challenge(
        &self,
        t: &TenantId,
        id: &ChallengeId,
    ) -> Result<Option<(Challenge, Factor)>, StoreError> {
        self.backend.guard(challenges::get(self, t, id)).await
    }
    async fn record_failure(
        &self,
        t: &TenantId,
        id: &ChallengeId,
        max: u32,
        now: OffsetDateTime,
        ev: &[EventRecord],
    ) -> Result<AttemptOutcome, StoreError> {
        let op = challenges::record_failure(self, t, id, max, now, ev);
        self.backend.guard(op).await
    }
    async fn record_success(
        &self,
        t: &TenantId,
        id: &ChallengeId,
        max: u32,
        now: OffsetDateTime,
        ev: &[EventRecord],
    ) -> Result<SuccessOutcome, StoreError> {
        let op = challenges::record_success(self, t, id, max, now, ev);
        self.backend.guard(op).await
    }

    async fn settle_factor_attempt(
        &self,
        t: &TenantId,
        f: &FactorId,
        seen: Option<&FailureCount>,
        j: Judgement,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let op = throttle::settle_factor_attempt(self, t, f, seen, j, now);
        self.backend.guard(op).await
    }
    async fn user_failures(&self, t: &TenantId, u: &UserId) -> Result<FailureCount, StoreError> {
        self.backend
            .guard(throttle::user_failures(self, t, u))
            .await
    }
    async fn settle_user_attempt(
        &self,
        t: &TenantId,
        u: &UserId,
        seen: &FailureCount,
        right: bool,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let op = throttle::settle_user_attempt(self, t, u, seen, right, now);
        self.backend.guard(op).await
    }
    async fn find_factor(&self, id: &FactorId) -> Result<Option<Factor>, StoreError> {
        self.backend.guard(throttle::find_factor(self, id)).await
    }
    async fn find_tenant(&self, id_or_name: &str) -> Result<Option<Tenant>, StoreError> {
        self.backend
            .guard(throttle::find_tenant(self, id_or_name))
            .await
    }
    async fn unlock_factor(&self, id: &FactorId, ev: &[EventRecord]) -> Result<bool, StoreError> {
        self.backend
            .guard(throttle::unlock_factor(self, id, ev))
            .await
    }
    async fn unlock_user(
        &self,
        t: &TenantId,
        u: &UserId,
        ev: &[EventRecord],
    ) -> Result<u64, StoreError> {
        self.backend
            .guard(throttle::unlock_user(self, t, u, ev))
            .await
    }

    async fn set_last_used_method(
        &self,
        t: &TenantId,
        u: &UserId,
        f: &FactorId,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.backend.guard(last_used::set(self, t, u, f, at)).await
    }
    async fn last_used_method(
        &self,
        t: &TenantId,
        u: &UserId,
    ) -> Result<Option<FactorId>, StoreError> {
        self.backend.guard(last_used::get(self, t, u)).await
    }
    async fn rename_method(
        &self,
        t: &TenantId,
        u: &UserId,
        m: &MethodId,
        name: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let op = methods::rename(self, t, u, m, name, now);
        self.backend.guard(op).await
    }
    async fn user_known(&self, t: &TenantId, u: &UserId) -> Result<bool, StoreError> {
        self.backend.guard(methods::user_known(self, t, u)).await
    }
    async fn find_users(
        &self,
        t: &TenantId,
        email: Option<&str>,
        phone: Option<&str>,
        user: Option<&UserId>,
        limit: u32,
    ) -> Result<Vec<UserId>, StoreError> {
        let op = methods::find_users(self, t, email, phone, user, limit);
        self.backend.guard(op).await
    }
    async fn insert_method(
        &self,
        f: &Factor,
        codes: &[RecoveryCode],
        now: OffsetDateTime,
        ev: &[EventRecord],
        if_codes: &[EventRecord],
    ) -> Result<bool, StoreError> {
        self.backend
            .guard(methods::insert(self, f, codes, now, ev, if_codes))
            .await
    }
    async fn delete_methods(
        &self,
        t: &TenantId,
        u: &UserId,
        only: Option<&FactorId>,
        now: OffsetDateTime,
        ev: &[EventRecord],
    ) -> Result<u64, StoreError> {
        self.backend
            .guard(methods::delete(self, t, u, only, now, ev))
            .await
    }
    async fn replace_recovery_codes(
        &self,
        t: &TenantId,
        u: &UserId,
        codes: &[RecoveryCode],
        now: OffsetDateTime,
        ev: &[EventRecord],
    ) -> Result<(), StoreError> {
        let op = methods::replace_recovery_codes(self, t, u, codes, now, ev);
        self.backend.guard(op).await
    }
    async fn recovery_codes(
        &self,
        t: &TenantId,
        u: &UserId,
    ) -> Result<Vec<RecoveryCode>, StoreError> {
        self.backend
            .guard(methods::recovery_codes(self, t, u))
            .await
    }
    async fn consume_recovery_code(
        &self,
        t: &TenantId,
        u: &UserId,
        digest: &[u8],
        ev: &[EventRecord],
    ) -> Result<bool, StoreError> {
        let op = methods::consume_recovery_code(self, t, u, digest, ev);
        self.backend.guard(op).await
    }

    async fn put_code(&self, c: &PendingCode) -> Result<(), StoreError> {
        self.backend.guard(codes::put(self, c)).await
    }
    async fn get_code(&self, t: &TenantId, scope: &str) -> Result<Option<PendingCode>, StoreError> {
        self.backend.guard(codes::get(self, t, scope)).await
    }
    async fn consume_code(
        &self,
        t: &TenantId,
        scope: &str,
        digest: &[u8],
        max: u32,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let op = codes::settle(self, codes::Outcome::Used, t, scope, digest, max, now);
        self.backend.guard(op).await
    }
    async fn fail_code(
        &self,
        t: &TenantId,
        scope: &str,
        digest: &[u8],
        max: u32,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let op = codes::settle(self, codes::Outcome::Failed, t, scope, digest, max, now);
        self.backend.guard(op).await
    }

    async fn insert_login(&self, l: &LoginState) -> Result<(), StoreError> {
        self.backend.guard(logins::insert(self, l)).await
    }
    async fn get_login(&self, id: &str) -> Result<Option<LoginState>, StoreError> {
        self.backend.guard(logins::get(self, id)).await
    }
    async fn count_login_send(
        &self,
        id: &str,
        max: u32,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.backend
            .guard(logins::count_send(self, id, max, now))
            .await
    }
    async fn fail_login(
        &self,
        t: &TenantId,
        id: &str,
        max: u32,
        now: OffsetDateTime,
        ev: &[EventRecord],
    ) -> Result<bool, StoreError> {
        self.backend
            .guard(logins::fail(self, t, id, max, now, ev))
            .await
    }
    async fn consume_login(
        &self,
        t: &TenantId,
        id: &str,
        max: u32,
        now: OffsetDateTime,
        ev: &[EventRecord],
    ) -> Result<bool, StoreError> {
        self.backend
            .guard(logins::consume(self, t, id, max, now, ev))
            .await
    }
    async fn insert_trust(&self, tr: &Trust) -> Result<(), StoreError> {
        self.backend.guard(logins::insert_trust(self, tr)).await
    }
    async fn get_trust(&self, id: &str) -> Result<Option<Trust>, StoreError> {
        self.backend.guard(logins::get_trust(self, id)).await
    }
    async fn purge_expired(&self, now: OffsetDateTime, limit: u32) -> Result<(), StoreError> {
        self.backend
            .guard(async {
                logins::purge_expired(self, now, limit).await?;
                idempotency::purge(self, now, limit).await
            })
            .await
    }

    async fn admit_send(
        &self,
        record: &SendRecord,
        decide: &(dyn for<'h> Fn(&'h SendHistory) -> Result<(), SendRefusal> + Send + Sync),
    ) -> Result<Result<SendTicket, SendRefusal>, StoreError> {
        self.backend
            .guard(send_limits::admit(self, record, decide))
            .await
    }
    async fn release_send(&self, t: &TenantId, ticket: SendTicket) -> Result<(), StoreError> {
        self.backend
            .guard(send_limits::release(self, t, ticket))
            .await
    }
    async fn sms_countries(&self, t: &TenantId) -> Result<Option<CountryRules>, StoreError> {
        self.backend.guard(send_limits::countries(self, t)).await
    }
    async fn set_sms_countries(
        &self,
        t: &TenantId,
        rules: Option<&CountryRules>,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.backend
            .guard(send_limits::set_countries(self, t, rules, now))
            .await
    }

    // ---- verification in one store visit (perf, issue 8 §4) ----------------------------
    async fn verify_challenge(
        &self,
        t: &TenantId,
        id: &ChallengeId,
        now: OffsetDateTime,
        judge: ChallengeJudge,
    ) -> Result<Verification, StoreError> {
        match self.backend.writer() {
            Some(w) => w.verify(t, id, now, judge).await,
            None => {
                let op = verify::verify_challenge(self, t, id, now, judge);
                self.backend.guard(op).await
            }
        }
    }

    // ---- master-key rotation and idempotent retries (keys) -----------------------------
    async fn sealed_key_counts(&self) -> Result<Vec<SealedCount>, StoreError> {
        self.backend.guard(sealed::counts(self)).await
    }
    async fn scan_sealed(
        &self,
        kind: SealedKind,
        active: &[u8],
        after: Option<&SealedRow>,
        limit: u32,
    ) -> Result<Vec<SealedValue>, StoreError> {
        let op = sealed::scan(self, kind, active, after, limit);
        self.backend.guard(op).await
    }
    async fn replace_sealed(
        &self,
        old: &SealedValue,
        new: &SealedValue,
    ) -> Result<bool, StoreError> {
        self.backend.guard(sealed::replace(self, old, new)).await
    }
    async fn claim_idempotency(
        &self,
        c: &IdempotencyClaim<'_>,
    ) -> Result<ClaimOutcome, StoreError> {
        self.backend.guard(idempotency::claim(self, c)).await
    }
    async fn complete_idempotency(
        &self,
        id: &str,
        claim: &str,
        status: u16,
        sealed: &[u8],
    ) -> Result<bool, StoreError> {
        let op = idempotency::complete(self, id, claim, status, sealed);
        self.backend.guard(op).await
    }
    async fn release_idempotency(&self, id: &str, claim: &str) -> Result<(), StoreError> {
        self.backend
            .guard(idempotency::release(self, id, claim))
            .await
    }

    // ---- passkeys (`webauthn.rs`) ---------------------------------------------------
    async fn webauthn_config(
        &self,
        tenant: &TenantId,
    ) -> Result<Option<mfad_core::webauthn::WebAuthnConfig>, StoreError> {
        self.backend.guard(webauthn::config(self, tenant)).await
    }
    async fn set_webauthn_config(
        &self,
        config: &mfad_core::webauthn::WebAuthnConfig,
    ) -> Result<(), StoreError> {
        self.backend.guard(webauthn::set_config(self, config)).await
    }
    async fn insert_passkey(
        &self,
        c: &mfad_core::webauthn::PasskeyCredential,
    ) -> Result<(), StoreError> {
        self.backend.guard(webauthn::insert(self, c)).await
    }
    async fn import_passkeys(
        &self,
        cs: &[mfad_core::webauthn::PasskeyCredential],
    ) -> Result<(), StoreError> {
        self.backend.guard(webauthn::import(self, cs)).await
    }
    async fn get_passkey(
        &self,
        tenant: &TenantId,
        id: &mfad_core::webauthn::PasskeyId,
    ) -> Result<Option<mfad_core::webauthn::PasskeyCredential>, StoreError> {
        self.backend.guard(webauthn::get(self, tenant, id)).await
    }
    async fn find_passkey(
        &self,
        tenant: &TenantId,
        credential_id: &str,
    ) -> Result<Option<mfad_core::webauthn::PasskeyCredential>, StoreError> {
        self.backend
            .guard(webauthn::find(self, tenant, credential_id))
            .await
    }
    async fn list_passkeys(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<Vec<mfad_core::webauthn::PasskeyCredential>, StoreError> {
        self.backend.guard(webauthn::list(self, tenant, user)).await
    }
    async fn delete_passkeys(
        &self,
        tenant: &TenantId,
        user: Option<&UserId>,
        id: Option<&mfad_core::webauthn::PasskeyId>,
    ) -> Result<u64, StoreError> {
        self.backend
            .guard(webauthn::delete(self, tenant, user, id))
            .await
    }
    async fn record_passkey_use(
        &self,
        updated: &mfad_core::webauthn::PasskeyCredential,
        seen_count: u32,
    ) -> Result<bool, StoreError> {
        self.backend
            .guard(webauthn::record_use(self, updated, seen_count))
            .await
    }
    async fn insert_webauthn_ceremony(
        &self,
        c: &mfad_core::webauthn::Ceremony,
    ) -> Result<(), StoreError> {
        self.backend.guard(webauthn::insert_ceremony(self, c)).await
    }
    async fn take_webauthn_ceremony(
        &self,
        challenge: &str,
    ) -> Result<Option<mfad_core::webauthn::Ceremony>, StoreError> {
        self.backend
            .guard(webauthn::take_ceremony(self, challenge))
            .await
    }
    async fn purge_webauthn_ceremonies(
        &self,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<u64, StoreError> {
        self.backend
            .guard(webauthn::purge_ceremonies(self, now, limit))
            .await
    }

    // ---- events (issue 12) -------------------------------------------------------------
    async fn record_events(&self, ev: &[EventRecord]) -> Result<(), StoreError> {
        self.backend.guard(events::record(self, ev)).await
    }
    async fn scan_events(&self, scan: EventScan<'_>) -> Result<Vec<EventRecord>, StoreError> {
        self.backend.guard(events::scan(self, scan)).await
    }
    async fn purge_events(&self, before: OffsetDateTime, limit: u32) -> Result<u64, StoreError> {
        self.backend.guard(events::purge(self, before, limit)).await
    }

    // --- webhooks (issue 12; `webhooks.rs`) ---------------------------------------------
    async fn insert_webhook_endpoint(
        &self,
        e: &mfad_core::webhooks::WebhookEndpoint,
        sealed_secret: &[u8],
    ) -> Result<(), StoreError> {
        self.backend
            .guard(webhooks::insert_endpoint(self, e, sealed_secret))
            .await
    }
    async fn list_webhook_endpoints(
        &self,
        t: Option<&TenantId>,
    ) -> Result<Vec<mfad_core::webhooks::WebhookEndpoint>, StoreError> {
        self.backend.guard(webhooks::list_endpoints(self, t)).await
    }
    async fn get_webhook_endpoint(
        &self,
        id: &mfad_core::ids::WebhookEndpointId,
    ) -> Result<Option<mfad_core::webhooks::WebhookEndpoint>, StoreError> {
        self.backend.guard(webhooks::get_endpoint(self, id)).await
    }
    async fn delete_webhook_endpoint(
        &self,
        t: &TenantId,
        id: &mfad_core::ids::WebhookEndpointId,
    ) -> Result<bool, StoreError> {
        self.backend
            .guard(webhooks::delete_endpoint(self, t, id))
            .await
    }
    async fn claim_webhook_endpoints(
        &self,
        owner: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<mfad_core::webhooks::outbox::DeliveryTarget>, StoreError> {
        self.backend
            .guard(webhooks::claim(self, owner, now, until, limit))
            .await
    }
    async fn renew_webhook_lease(
        &self,
        id: &mfad_core::ids::WebhookEndpointId,
        owner: &str,
        until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.backend
            .guard(webhooks::renew(self, id, owner, until))
            .await
    }
    async fn release_webhook_lease(
        &self,
        id: &mfad_core::ids::WebhookEndpointId,
        owner: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.backend
            .guard(webhooks::release(self, id, owner, now))
            .await
    }
    async fn pending_webhook_deliveries(
        &self,
        endpoint: &mfad_core::ids::WebhookEndpointId,
        limit: u32,
    ) -> Result<Vec<mfad_core::webhooks::outbox::PendingDelivery>, StoreError> {
        self.backend
            .guard(webhooks::pending(self, endpoint, limit))
            .await
    }
    async fn settle_webhook_delivery(
        &self,
        id: i64,
        owner: &str,
        settlement: &mfad_core::webhooks::outbox::Settlement,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.backend
            .guard(webhooks::settle(self, id, owner, settlement, now))
            .await
    }
    async fn list_webhook_deliveries(
        &self,
        endpoint: &mfad_core::ids::WebhookEndpointId,
        limit: u32,
    ) -> Result<Vec<mfad_core::webhooks::outbox::WebhookDelivery>, StoreError> {
        self.backend
            .guard(webhooks::list_deliveries(self, endpoint, limit))
            .await
    }
    async fn purge_webhook_deliveries(
        &self,
        before: OffsetDateTime,
        limit: u32,
    ) -> Result<u64, StoreError> {
        self.backend
            .guard(webhooks::purge(self, before, limit))
            .await
    }
}
