//! Passkeys: tenants' relying parties, registered credentials and ceremonies in progress.

use const_format::concatcp;
use mfad_core::clock::{from_unix_ms, unix_ms};
use mfad_core::error::StoreError;
use mfad_core::ids::{TenantId, UserId};
use mfad_core::webauthn::{
    AttestationPolicy, Ceremony, CeremonyKind, PasskeyCredential, PasskeyId, WebAuthnConfig,
    Workflow,
};
use time::OffsetDateTime;

use crate::sql::{Sql, sql};
use crate::store::{Backend, SqlStore};

fn corrupt(what: &str) -> StoreError {
    StoreError::Other(format!("unreadable stored WebAuthn {what}"))
}

#[derive(Debug, sqlx::FromRow)]
struct ConfigRow {
    tenant_id: String,
    rp_id: String,
    rp_name: String,
    origins: String,
    attestation: String,
    trust_store_pem: Option<String>,
    updated_at: i64,
}

impl TryFrom<ConfigRow> for WebAuthnConfig {
    type Error = StoreError;

    fn try_from(r: ConfigRow) -> Result<Self, StoreError> {
        Ok(WebAuthnConfig {
            tenant_id: TenantId::from_trusted(r.tenant_id),
            rp_id: r.rp_id,
            rp_name: r.rp_name,
            origins: r
                .origins
                .lines()
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect(),
            attestation: AttestationPolicy::parse(&r.attestation)
                .ok_or_else(|| corrupt("attestation policy"))?,
            trust_store_pem: r.trust_store_pem,
            updated_at: from_unix_ms(r.updated_at),
        })
    }
}

/// See [`mfad_core::store::Store::webauthn_config`].
pub(crate) async fn config<B: Backend>(
    s: &SqlStore<B>,
    tenant: &TenantId,
) -> Result<Option<WebAuthnConfig>, StoreError> {
    let row: Option<ConfigRow> = sql(
        "SELECT tenant_id, rp_id, rp_name, origins, attestation, trust_store_pem, updated_at \
         FROM webauthn_configs WHERE tenant_id = $1",
    )
    .bind(tenant.as_str())
    .fetch_optional(s.read())
    .await?;
    row.map(TryInto::try_into).transpose()
}

/// See [`mfad_core::store::Store::set_webauthn_config`]: one upsert.
pub(crate) async fn set_config<B: Backend>(
    s: &SqlStore<B>,
    c: &WebAuthnConfig,
) -> Result<(), StoreError> {
    let origins = c.origins.join("\n");
    sql("INSERT INTO webauthn_configs \
         (tenant_id, rp_id, rp_name, origins, attestation, trust_store_pem, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (tenant_id) DO UPDATE SET rp_id = excluded.rp_id, \
         rp_name = excluded.rp_name, origins = excluded.origins, \
         attestation = excluded.attestation, trust_store_pem = excluded.trust_store_pem, \
         updated_at = excluded.updated_at")
    .bind(c.tenant_id.as_str())
    .bind(c.rp_id.as_str())
    .bind(c.rp_name.as_str())
    .bind(origins.as_str())
    .bind(c.attestation.as_str())
    .bind(c.trust_store_pem.as_deref())
    .bind(unix_ms(c.updated_at))
    .execute(s.write())
    .await?;
    Ok(())
}

#[derive(Debug, sqlx::FromRow)]
struct CredentialRow {
    id: String,
    tenant_id: String,
    user_id: String,
    credential_id: String,
    user_handle: String,
    name: Option<String>,
    display_name: Option<String>,
    user_agent: Option<String>,
    algorithm: i64,
    sign_count: i64,
    rp_id: String,
    attestation_type: String,
    user_verified: i64,
    backup_eligible: i64,
    transports: String,
    workflow: String,
    credential: String,
    created_at: i64,
    last_used_at: Option<i64>,
}

/// The credential columns, in [`CredentialRow`]'s order.
const CREDENTIAL_COLUMNS: &str = "id, tenant_id, user_id, credential_id, user_handle, name, display_name, user_agent, \
     algorithm, sign_count, rp_id, attestation_type, user_verified, backup_eligible, \
     transports, workflow, credential, created_at, last_used_at";

impl TryFrom<CredentialRow> for PasskeyCredential {
    type Error = StoreError;

    fn try_from(r: CredentialRow) -> Result<Self, StoreError> {
        Ok(PasskeyCredential {
            id: PasskeyId::from_trusted(r.id),
            tenant_id: TenantId::from_trusted(r.tenant_id),
            user_id: UserId::from_trusted(r.user_id),
            credential_id: r.credential_id,
            user_handle: r.user_handle,
            name: r.name,
            display_name: r.display_name,
            user_agent: r.user_agent,
            algorithm: r.algorithm,
            sign_count: u32::try_from(r.sign_count).map_err(|_| corrupt("counter"))?,
            rp_id: r.rp_id,
            attestation_type: r.attestation_type,
            user_verified: r.user_verified != 0,
            backup_eligible: r.backup_eligible != 0,
            transports: r
                .transports
                .split(',')
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect(),
            workflow: Workflow::parse(&r.workflow).ok_or_else(|| corrupt("workflow"))?,
            credential: r.credential,
            created_at: from_unix_ms(r.created_at),
            last_used_at: r.last_used_at.map(from_unix_ms),
        })
    }
}

fn insert_credential<'a>(c: &'a PasskeyCredential, transports: &'a str) -> Sql<'a> {
    sql(
        "INSERT INTO webauthn_credentials (id, tenant_id, user_id, credential_id, user_handle, \
         name, display_name, user_agent, algorithm, sign_count, rp_id, attestation_type, \
         user_verified, backup_eligible, transports, workflow, credential, created_at, \
         last_used_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
         $18, $19)",
    )
    .bind(c.id.as_str())
    .bind(c.tenant_id.as_str())
    .bind(c.user_id.as_str())
    .bind(c.credential_id.as_str())
    .bind(c.user_handle.as_str())
    .bind(c.name.as_deref())
    .bind(c.display_name.as_deref())
    .bind(c.user_agent.as_deref())
    .bind(c.algorithm)
    .bind(i64::from(c.sign_count))
    .bind(c.rp_id.as_str())
    .bind(c.attestation_type.as_str())
    .bind(i64::from(c.user_verified))
    .bind(i64::from(c.backup_eligible))
    .bind(transports)
    .bind(c.workflow.as_str())
    .bind(c.credential.as_str())
    .bind(unix_ms(c.created_at))
    .bind(c.last_used_at.map(unix_ms))
}

/// See [`mfad_core::store::Store::insert_passkey`].
pub(crate) async fn insert<B: Backend>(
    s: &SqlStore<B>,
    c: &PasskeyCredential,
) -> Result<(), StoreError> {
    let transports = c.transports.join(",");
    insert_credential(c, &transports).execute(s.write()).await?;
    Ok(())
}

/// See [`mfad_core::store::Store::import_passkeys`]: one transaction, all or none.
pub(crate) async fn import<B: Backend>(
    s: &SqlStore<B>,
    creds: &[PasskeyCredential],
) -> Result<(), StoreError> {
    let transports: Vec<String> = creds.iter().map(|c| c.transports.join(",")).collect();
    let mut tx = s.begin().await?;
    for (c, t) in creds.iter().zip(&transports) {
        insert_credential(c, t).execute(&mut tx).await?;
    }
    tx.commit().await
}

/// See [`mfad_core::store::Store::get_passkey`].
pub(crate) async fn get<B: Backend>(
    s: &SqlStore<B>,
    tenant: &TenantId,
    id: &PasskeyId,
) -> Result<Option<PasskeyCredential>, StoreError> {
    const Q: &str = concatcp!(
        "SELECT ",
        CREDENTIAL_COLUMNS,
        " FROM webauthn_credentials WHERE tenant_id = $1 AND id = $2"
    );
    let row: Option<CredentialRow> = sql(Q)
        .bind(tenant.as_str())
        .bind(id.as_str())
        .fetch_optional(s.read())
        .await?;
    row.map(TryInto::try_into).transpose()
}

/// See [`mfad_core::store::Store::find_passkey`].
pub(crate) async fn find<B: Backend>(
    s: &SqlStore<B>,
    tenant: &TenantId,
    credential_id: &str,
) -> Result<Option<PasskeyCredential>, StoreError> {
    const Q: &str = concatcp!(
        "SELECT ",
        CREDENTIAL_COLUMNS,
        " FROM webauthn_credentials WHERE tenant_id = $1 AND credential_id = $2"
    );
    let row: Option<CredentialRow> = sql(Q)
        .bind(tenant.as_str())
        .bind(credential_id)
        .fetch_optional(s.read())
        .await?;
    row.map(TryInto::try_into).transpose()
}

/// See [`mfad_core::store::Store::list_passkeys`].
pub(crate) async fn list<B: Backend>(
    s: &SqlStore<B>,
    tenant: &TenantId,
    user: &UserId,
) -> Result<Vec<PasskeyCredential>, StoreError> {
    const Q: &str = concatcp!(
        "SELECT ",
        CREDENTIAL_COLUMNS,
        " FROM webauthn_credentials WHERE tenant_id = $1 AND user_id = $2 \
         ORDER BY created_at, id"
    );
    let rows: Vec<CredentialRow> = sql(Q)
        .bind(tenant.as_str())
        .bind(user.as_str())
        .fetch_all(s.read())
        .await?;
    rows.into_iter().map(TryInto::try_into).collect()
}

/// See [`mfad_core::store::Store::delete_passkeys`].
pub(crate) async fn delete<B: Backend>(
    s: &SqlStore<B>,
    tenant: &TenantId,
    user: Option<&UserId>,
    id: Option<&PasskeyId>,
) -> Result<u64, StoreError> {
    let q = match (user, id) {
        (None, None) => return Ok(0),
        (Some(u), None) => {
            sql("DELETE FROM webauthn_credentials WHERE tenant_id = $1 AND user_id = $2")
                .bind(tenant.as_str())
                .bind(u.as_str())
        }
        (None, Some(i)) => sql("DELETE FROM webauthn_credentials WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_str())
            .bind(i.as_str()),
        (Some(u), Some(i)) => sql(
            "DELETE FROM webauthn_credentials WHERE tenant_id = $1 AND user_id = $2 AND id = $3",
        )
        .bind(tenant.as_str())
        .bind(u.as_str())
        .bind(i.as_str()),
    };
    q.execute(s.write()).await
}

/// See [`mfad_core::store::Store::record_passkey_use`]: one conditional UPDATE.
pub(crate) async fn record_use<B: Backend>(
    s: &SqlStore<B>,
    c: &PasskeyCredential,
    seen: u32,
) -> Result<bool, StoreError> {
    let n = sql(
        "UPDATE webauthn_credentials SET sign_count = $1, credential = $2, last_used_at = $3 \
         WHERE tenant_id = $4 AND id = $5 AND sign_count = $6",
    )
    .bind(i64::from(c.sign_count))
    .bind(c.credential.as_str())
    .bind(c.last_used_at.map(unix_ms))
    .bind(c.tenant_id.as_str())
    .bind(c.id.as_str())
    .bind(i64::from(seen))
    .execute(s.write())
    .await?;
    Ok(n == 1)
}

#[derive(Debug, sqlx::FromRow)]
struct CeremonyRow {
    challenge: String,
    tenant_id: String,
    user_id: String,
    kind: String,
    workflow: String,
    state: String,
    name: Option<String>,
    display_name: Option<String>,
    user_agent: Option<String>,
    application_id: Option<String>,
    login_state: Option<String>,
    created_at: i64,
    expires_at: i64,
}

impl TryFrom<CeremonyRow> for Ceremony {
    type Error = StoreError;

    fn try_from(r: CeremonyRow) -> Result<Self, StoreError> {
        Ok(Ceremony {
            challenge: r.challenge,
            tenant_id: TenantId::from_trusted(r.tenant_id),
            user_id: UserId::from_trusted(r.user_id),
            kind: CeremonyKind::parse(&r.kind).ok_or_else(|| corrupt("ceremony kind"))?,
            workflow: Workflow::parse(&r.workflow).ok_or_else(|| corrupt("workflow"))?,
            state: r.state,
            name: r.name,
            display_name: r.display_name,
            user_agent: r.user_agent,
            application_id: r.application_id,
            login_state: r.login_state,
            created_at: from_unix_ms(r.created_at),
            expires_at: from_unix_ms(r.expires_at),
        })
    }
}

/// See [`mfad_core::store::Store::insert_webauthn_ceremony`].
pub(crate) async fn insert_ceremony<B: Backend>(
    s: &SqlStore<B>,
    c: &Ceremony,
) -> Result<(), StoreError> {
    sql(
        "INSERT INTO webauthn_ceremonies (challenge, tenant_id, user_id, kind, workflow, state, \
         name, display_name, user_agent, application_id, login_state, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(c.challenge.as_str())
    .bind(c.tenant_id.as_str())
    .bind(c.user_id.as_str())
    .bind(c.kind.as_str())
    .bind(c.workflow.as_str())
    .bind(c.state.as_str())
    .bind(c.name.as_deref())
    .bind(c.display_name.as_deref())
    .bind(c.user_agent.as_deref())
    .bind(c.application_id.as_deref())
    .bind(c.login_state.as_deref())
    .bind(unix_ms(c.created_at))
    .bind(unix_ms(c.expires_at))
    .execute(s.write())
    .await?;
    Ok(())
}

/// See [`mfad_core::store::Store::take_webauthn_ceremony`]: `DELETE … RETURNING`, so of
/// two requests answering one challenge (on any node) exactly one gets it.
pub(crate) async fn take_ceremony<B: Backend>(
    s: &SqlStore<B>,
    challenge: &str,
) -> Result<Option<Ceremony>, StoreError> {
    let row: Option<CeremonyRow> = sql("DELETE FROM webauthn_ceremonies WHERE challenge = $1 \
         RETURNING challenge, tenant_id, user_id, kind, workflow, state, name, display_name, \
         user_agent, application_id, login_state, created_at, expires_at")
    .bind(challenge)
    .fetch_optional(s.write())
    .await?;
    row.map(TryInto::try_into).transpose()
}

/// See [`mfad_core::store::Store::purge_webauthn_ceremonies`].
pub(crate) async fn purge_ceremonies<B: Backend>(
    s: &SqlStore<B>,
    now: OffsetDateTime,
    limit: u32,
) -> Result<u64, StoreError> {
    sql("DELETE FROM webauthn_ceremonies WHERE challenge IN \
         (SELECT challenge FROM webauthn_ceremonies WHERE expires_at <= $1 LIMIT $2)")
    .bind(unix_ms(now))
    .bind(i64::from(limit))
    .execute(s.write())
    .await
}
