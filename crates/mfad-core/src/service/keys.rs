//! API keys: created by the operator, shown once, stored as digests, revocable at once.

use mfad_crypto::Zeroizing;

use crate::error::{CoreError, Entity, Field, Reason};
use crate::events::{EventKind, Subject};
use crate::ids::{ApiKeyId, TenantId};
use crate::model::{ApiKey, Tenant};
use crate::service::{MAX_LABEL_LEN, Service};
use crate::store::Store;

/// A freshly created API key: the token is shown once.
#[derive(Debug)]
pub struct CreatedKey {
    /// The stored key.
    pub key: ApiKey,
    /// Its tenant.
    pub tenant: Tenant,
    /// The bearer token (`sk_…`), never stored.
    pub token: Zeroizing<String>,
}

impl<S: Store> Service<S> {
    /// A tenant by id or name, never created (operator commands).
    pub async fn find_tenant(&self, id_or_name: &str) -> Result<Option<Tenant>, CoreError> {
        Ok(self.store.find_tenant(id_or_name).await?)
    }

    /// The tenant named `tenant_name`, created if new.
    pub async fn tenant_by_name(&self, tenant_name: &str) -> Result<Tenant, CoreError> {
        let valid_name = !tenant_name.is_empty()
            && tenant_name.len() <= 64
            && tenant_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !valid_name {
            return Err(CoreError::invalid(Field::TenantName, Reason::Invalid));
        }
        let now = self.clock.now();
        Ok(self
            .store
            .ensure_tenant(&Tenant {
                id: TenantId::generate(now)?,
                name: tenant_name.to_owned(),
                created_at: now,
            })
            .await?)
    }

    /// Creates an API key for the tenant named `tenant_name`, creating the tenant if needed.
    pub async fn create_api_key(
        &self,
        tenant_name: &str,
        label: Option<&str>,
    ) -> Result<CreatedKey, CoreError> {
        let tenant = self.tenant_by_name(tenant_name).await?;
        let now = self.clock.now();
        let id = ApiKeyId::generate(now)?;
        let secret =
            Zeroizing::new(data_encoding::BASE32_NOPAD.encode(&mfad_crypto::random_bytes::<32>()?));
        let secret = Zeroizing::new(secret.to_ascii_lowercase());
        let ulid_part = id
            .as_str()
            .trim_start_matches(ApiKeyId::PREFIX)
            .to_ascii_lowercase();
        let token = Zeroizing::new(format!("sk_{ulid_part}_{}", *secret));
        let key = ApiKey {
            id,
            tenant_id: tenant.id.clone(),
            name: label
                .unwrap_or("default")
                .chars()
                .take(MAX_LABEL_LEN)
                .collect(),
            digest: mfad_crypto::api_key_digest(secret.as_bytes()).to_vec(),
            created_at: now,
            revoked_at: None,
        };
        let events = self.event(&tenant.id, EventKind::ApiKeyCreated, api_key_subject(&key))?;
        self.store.insert_api_key(&key, &events).await?;
        Ok(CreatedKey { key, tenant, token })
    }

    /// All API keys with their tenants.
    pub async fn list_api_keys(&self) -> Result<Vec<(ApiKey, Tenant)>, CoreError> {
        Ok(self.store.list_api_keys().await?)
    }

    /// Revokes a key by id; it stops authenticating at once.
    pub async fn revoke_api_key(&self, id: &str) -> Result<(), CoreError> {
        let key_id = ApiKeyId::parse(id).ok_or_else(|| CoreError::not_found(Entity::ApiKey, id))?;
        let key = self
            .store
            .get_api_key(&key_id)
            .await?
            .ok_or_else(|| CoreError::not_found(Entity::ApiKey, id))?;
        let events = self.event(
            &key.tenant_id,
            EventKind::ApiKeyRevoked,
            api_key_subject(&key),
        )?;
        if self
            .store
            .revoke_api_key(&key_id, self.clock.now(), &events)
            .await?
        {
            self.keys.remove(&key_id);
            Ok(())
        } else {
            Err(CoreError::not_found(Entity::ApiKey, id))
        }
    }

    /// Resolves a bearer token to its tenant. Every failure is the same `Unauthorized`.
    pub async fn authenticate(&self, token: &str) -> Result<TenantId, CoreError> {
        let rest = token.strip_prefix("sk_").ok_or(CoreError::Unauthorized)?;
        let (ulid_part, secret) = rest.split_once('_').ok_or(CoreError::Unauthorized)?;
        let id = ApiKeyId::parse(&format!(
            "{}{}",
            ApiKeyId::PREFIX,
            ulid_part.to_ascii_uppercase()
        ))
        .ok_or(CoreError::Unauthorized)?;
        let now = self.clock.now();
        let (tenant, stored) = match self.keys.get(&id, now) {
            Some(hit) => hit,
            None => {
                let key = self
                    .store
                    .get_api_key(&id)
                    .await?
                    .ok_or(CoreError::Unauthorized)?;
                if key.revoked_at.is_some() {
                    return Err(CoreError::Unauthorized);
                }
                self.keys.put(&id, &key.tenant_id, &key.digest, now);
                (key.tenant_id, key.digest)
            }
        };
        // Every request proves its secret, cached key or not.
        let digest = mfad_crypto::api_key_digest(secret.as_bytes());
        if mfad_crypto::ct_eq(&stored, &digest) {
            Ok(tenant)
        } else {
            Err(CoreError::Unauthorized)
        }
    }
}

/// What an API key's events show of it: never its digest.
fn api_key_subject(key: &ApiKey) -> Subject {
    Subject::ApiKey {
        id: key.id.clone(),
        name: key.name.clone(),
        created_at: key.created_at,
    }
}
