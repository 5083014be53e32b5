//! Online master-key rotation: every sealed value re-encrypted under the active key while
//! servers keep serving.
//!
//! A sealed blob names its key (`mfad_crypto::KeyId::of_blob`), and storage exposes that
//! id per row, so the values a key still seals are counted cheaply ([`Service::key_usage`])
//! and found in keyset batches ([`Service::rotate_batch`]). Each value is replaced by one
//! conditional update that matches the exact old blob: a value a request rewrote meanwhile
//! (a re-enrolled factor, regenerated recovery codes) keeps the request's version, and two
//! rotations running at once (on several nodes) replace each value once. Rotation
//! therefore needs no lock and can be interrupted and run again at any point.
//!
//! What is sealed: TOTP secrets, the sealed copies of recovery codes, tenants' HS256 JWT
//! secrets, stored idempotent responses and webhook endpoints' signing secrets. Recovery codes are also *peppered* under the
//! key, and they last for years, so a recovery code's digest is recomputed under the
//! active key together with its seal (the sealed copy is the code). The digests of
//! pending codes (challenges, FusionAuth codes) are not rotated: they live minutes, and
//! verify under any loaded key until they expire (see docs/OPERATIONS.md).

use mfad_crypto::KeyId;

use crate::error::CoreError;
use crate::ids::{FactorId, JwtKeyId, TenantId, UserId, WebhookEndpointId};
use crate::recovery;
use crate::service::Service;
use crate::store::Store;

/// Where a sealed value lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SealedKind {
    /// A TOTP factor's secret.
    TotpSecret,
    /// The sealed copy of a recovery code (and its peppered digest).
    RecoveryCode,
    /// A tenant's HS256 JWT verification secret.
    JwtSecret,
    /// A stored response replayed for an `Idempotency-Key`.
    IdempotentResponse,
    /// A webhook endpoint's signing secret.
    WebhookSecret,
}

impl SealedKind {
    /// Every kind, in the order rotation visits them.
    pub const ALL: [SealedKind; 5] = [
        SealedKind::TotpSecret,
        SealedKind::RecoveryCode,
        SealedKind::JwtSecret,
        SealedKind::IdempotentResponse,
        SealedKind::WebhookSecret,
    ];

    /// A name for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            SealedKind::TotpSecret => "totp_secret",
            SealedKind::RecoveryCode => "recovery_code",
            SealedKind::JwtSecret => "jwt_secret",
            SealedKind::IdempotentResponse => "idempotent_response",
            SealedKind::WebhookSecret => "webhook_secret",
        }
    }
}

/// The row holding a sealed value (also the keyset cursor of a scan).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SealedRow {
    /// `factors`, by factor id.
    Factor(FactorId),
    /// `recovery_codes`, by tenant, user and digest.
    RecoveryCode {
        /// The tenant.
        tenant: TenantId,
        /// The user.
        user: UserId,
        /// The peppered digest (part of the row's key; rotation replaces it too).
        digest: Vec<u8>,
    },
    /// `jwt_keys`, by key id.
    JwtKey(JwtKeyId),
    /// Stored idempotent responses, by entry id.
    Idempotency(String),
    /// `webhook_endpoints`, by endpoint id.
    WebhookEndpoint(WebhookEndpointId),
}

impl SealedRow {
    /// The kind of value this row holds.
    pub fn kind(&self) -> SealedKind {
        match self {
            SealedRow::Factor(_) => SealedKind::TotpSecret,
            SealedRow::RecoveryCode { .. } => SealedKind::RecoveryCode,
            SealedRow::JwtKey(_) => SealedKind::JwtSecret,
            SealedRow::Idempotency(_) => SealedKind::IdempotentResponse,
            SealedRow::WebhookEndpoint(_) => SealedKind::WebhookSecret,
        }
    }
}

/// One sealed value as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedValue {
    /// Where it lives.
    pub row: SealedRow,
    /// The blob.
    pub sealed: Vec<u8>,
}

impl std::fmt::Debug for SealedValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedValue")
            .field("row", &self.row.kind())
            .finish_non_exhaustive()
    }
}

/// How many values of a kind one key seals (storage's count).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedCount {
    /// The kind.
    pub kind: SealedKind,
    /// The key id bytes as stored (4 bytes for well-formed blobs).
    pub key_id: Vec<u8>,
    /// Values.
    pub count: u64,
}

/// What one key seals, for `mfad keys status` and the start-up check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyUsage {
    /// The key's id.
    pub id: KeyId,
    /// Its configured name, when it is loaded.
    pub name: Option<String>,
    /// Whether it is the active key.
    pub active: bool,
    /// Values it seals (all kinds).
    pub count: u64,
}

impl KeyUsage {
    /// The name to show: the configured one, else the id in hex.
    pub fn label(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.id.to_string())
    }
}

/// The outcome of one rotation batch.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Batch {
    /// Values re-sealed under the active key.
    pub rotated: u64,
    /// Values that changed meanwhile (rewritten by a request or by another rotation):
    /// left as they now are.
    pub raced: u64,
    /// Values no loaded key opens (sealed under a key not configured, or damaged).
    pub unreadable: u64,
    /// Where the next batch starts; `None` when the kind is done.
    pub next: Option<SealedRow>,
}

/// Totals of a rotation pass over every kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RotationReport {
    /// Values re-sealed.
    pub rotated: u64,
    /// Values that changed meanwhile and were left as they are.
    pub raced: u64,
    /// Values no loaded key opens.
    pub unreadable: u64,
}

impl<S: Store> Service<S> {
    /// One pass over every kind, `batch_size` values at a time, calling `progress` after
    /// each batch. Values written meanwhile by requests are sealed under whatever key
    /// their node has active; run again (or check [`Service::key_usage`]) to catch those.
    pub async fn rotate_all(
        &self,
        batch_size: u32,
        mut progress: impl FnMut(SealedKind, &Batch) + Send,
    ) -> Result<RotationReport, CoreError> {
        let mut report = RotationReport::default();
        for kind in SealedKind::ALL {
            let mut after: Option<SealedRow> = None;
            loop {
                let batch = self.rotate_batch(kind, after.as_ref(), batch_size).await?;
                progress(kind, &batch);
                report.rotated += batch.rotated;
                report.raced += batch.raced;
                report.unreadable += batch.unreadable;
                match batch.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
        }
        Ok(report)
    }

    /// Whether responses to keyed POSTs are kept (a zero TTL turns the header off).
    pub fn idempotency_enabled(&self) -> bool {
        self.idempotency.ttl > time::Duration::ZERO
    }

    /// Every key that seals something or is loaded, with its count: the active key first,
    /// then the other loaded keys in configured order, then keys no longer configured.
    pub async fn key_usage(&self) -> Result<Vec<KeyUsage>, CoreError> {
        let counts = self.store.sealed_key_counts().await?;
        let mut usage: Vec<KeyUsage> = self
            .keyring
            .keys()
            .map(|(name, id)| KeyUsage {
                id,
                name: Some(name.to_owned()),
                active: self.keyring.is_active(Some(id)),
                count: 0,
            })
            .collect();
        for c in counts {
            // A malformed blob's "key id" is reported as such (all zeros never names a key).
            let id = KeyId::from_slice(&c.key_id).unwrap_or(KeyId([0; 4]));
            match usage.iter_mut().find(|u| u.id == id) {
                Some(u) => u.count += c.count,
                None => usage.push(KeyUsage {
                    id,
                    name: None,
                    active: false,
                    count: c.count,
                }),
            }
        }
        Ok(usage)
    }

    /// Keys that still seal values but are not loaded: what is missing before a server
    /// may start.
    pub async fn missing_keys(&self) -> Result<Vec<KeyUsage>, CoreError> {
        Ok(self
            .key_usage()
            .await?
            .into_iter()
            .filter(|u| u.name.is_none() && u.count > 0)
            .collect())
    }

    /// Re-seals up to `limit` values of `kind` not sealed by the active key, starting past
    /// `after` (a previous batch's `next`).
    pub async fn rotate_batch(
        &self,
        kind: SealedKind,
        after: Option<&SealedRow>,
        limit: u32,
    ) -> Result<Batch, CoreError> {
        let active = self.keyring.active_id();
        let values = self
            .store
            .scan_sealed(kind, active.as_bytes(), after, limit)
            .await?;
        let mut batch = Batch {
            next: values.last().map(|v| v.row.clone()),
            ..Batch::default()
        };
        for old in &values {
            let Ok(new) = self.reseal(old) else {
                batch.unreadable += 1;
                continue;
            };
            if self.store.replace_sealed(old, &new).await? {
                batch.rotated += 1;
            } else {
                batch.raced += 1;
            }
        }
        Ok(batch)
    }

    /// The value re-sealed under the active key, bound to the same row.
    fn reseal(&self, old: &SealedValue) -> Result<SealedValue, CoreError> {
        let ring = &self.keyring;
        let aad = |id: &str| id.as_bytes().to_vec();
        let row_aad = match &old.row {
            SealedRow::Factor(id) => aad(id.as_str()),
            SealedRow::JwtKey(id) => aad(id.as_str()),
            SealedRow::Idempotency(id) => aad(id),
            SealedRow::WebhookEndpoint(id) => aad(id.as_str()),
            SealedRow::RecoveryCode {
                tenant,
                user,
                digest,
            } => {
                let code = ring.open(&old.sealed, &recovery::seal_context(tenant, user, digest))?;
                let new_digest =
                    ring.code_digest(&recovery::digest_context(tenant, user), &code)?;
                let sealed =
                    ring.seal(&code, &recovery::seal_context(tenant, user, &new_digest))?;
                return Ok(SealedValue {
                    row: SealedRow::RecoveryCode {
                        tenant: tenant.clone(),
                        user: user.clone(),
                        digest: new_digest,
                    },
                    sealed,
                });
            }
        };
        let plain = ring.open(&old.sealed, &row_aad)?;
        Ok(SealedValue {
            row: old.row.clone(),
            sealed: ring.seal(&plain, &row_aad)?,
        })
    }
}
