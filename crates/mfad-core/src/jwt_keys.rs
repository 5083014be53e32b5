//! Tenant-bound JWT verification keys: a bearer JWT acts only in the tenant whose key
//! verified it. Keys live in the store, HS256 secrets sealed like TOTP secrets (AES-GCM,
//! associated data = the key's id), public keys as the PEM block or JWK they came in.
//! Parsing key files and verifying tokens is the server's business; the domain only
//! checks what it can without a JWT library and keeps the keys.

use crate::events::{EventKind, Subject};
use mfad_crypto::Zeroizing;
use time::OffsetDateTime;

use crate::error::{CoreError, Entity, Field, Reason, StoreError};
use crate::ids::{JwtKeyId, TenantId};
use crate::model::Tenant;
use crate::service::Service;
use crate::store::Store;

/// Shortest HS256 secret accepted: as long as the hash (RFC 7518 §3.2).
pub const MIN_HS256_SECRET_LEN: usize = 32;
/// Longest `kid` accepted.
pub const MAX_KID_LEN: usize = 128;

/// A key as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtKey {
    /// Public id (`jwtkey_…`).
    pub id: JwtKeyId,
    /// The tenant its tokens act in.
    pub tenant_id: TenantId,
    /// The `kid` that selects it, if any.
    pub kid: Option<String>,
    /// The one algorithm it verifies (`HS256`, `RS256`, `ES256`, …).
    pub alg: String,
    /// The key itself.
    pub material: JwtKeyMaterial,
    /// Creation time.
    pub created_at: OffsetDateTime,
}

/// Key material as stored.
#[derive(Clone, PartialEq, Eq)]
pub enum JwtKeyMaterial {
    /// An HMAC secret, sealed with the key id as associated data.
    Hs256 {
        /// The sealed secret.
        sealed: Vec<u8>,
    },
    /// One PEM public key block.
    PublicPem(String),
    /// One public JWK, as JSON.
    Jwk(String),
}

impl std::fmt::Debug for JwtKeyMaterial {
    // Public keys are long and sealed secrets meaningless: only the kind shows.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kind())
    }
}

impl JwtKeyMaterial {
    /// The storage name of the kind.
    pub fn kind(&self) -> &'static str {
        match self {
            JwtKeyMaterial::Hs256 { .. } => "hs256",
            JwtKeyMaterial::PublicPem(_) => "pem",
            JwtKeyMaterial::Jwk(_) => "jwk",
        }
    }

    /// Rebuilds stored material from its kind and bytes.
    pub fn from_stored(kind: &str, bytes: Vec<u8>) -> Result<Self, StoreError> {
        let text = |b: Vec<u8>| {
            String::from_utf8(b).map_err(|_| StoreError::Other("JWT key text is not UTF-8".into()))
        };
        match kind {
            "hs256" => Ok(JwtKeyMaterial::Hs256 { sealed: bytes }),
            "pem" => Ok(JwtKeyMaterial::PublicPem(text(bytes)?)),
            "jwk" => Ok(JwtKeyMaterial::Jwk(text(bytes)?)),
            other => Err(StoreError::Other(format!("unknown JWT key kind {other:?}"))),
        }
    }

    /// The bytes stored for it.
    pub fn stored_bytes(&self) -> &[u8] {
        match self {
            JwtKeyMaterial::Hs256 { sealed } => sealed,
            JwtKeyMaterial::PublicPem(t) | JwtKeyMaterial::Jwk(t) => t.as_bytes(),
        }
    }
}

/// Key material in the clear: what an operator adds, and what a server verifies with.
#[derive(Clone)]
pub enum OpenJwtMaterial {
    /// An HMAC secret.
    Hs256(Zeroizing<Vec<u8>>),
    /// One PEM public key block.
    PublicPem(String),
    /// One public JWK, as JSON.
    Jwk(String),
}

impl std::fmt::Debug for OpenJwtMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OpenJwtMaterial::Hs256(_) => "hs256",
            OpenJwtMaterial::PublicPem(_) => "pem",
            OpenJwtMaterial::Jwk(_) => "jwk",
        })
    }
}

/// A key to add, already parsed by the caller (which named its algorithm).
#[derive(Debug, Clone)]
pub struct NewJwtKey {
    /// The `kid` that selects it, if any.
    pub kid: Option<String>,
    /// The one algorithm it verifies.
    pub alg: String,
    /// The key.
    pub material: OpenJwtMaterial,
}

/// A stored key, opened for verification.
#[derive(Debug, Clone)]
pub struct OpenedJwtKey {
    /// Its id.
    pub id: JwtKeyId,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// Its `kid`.
    pub kid: Option<String>,
    /// Its algorithm.
    pub alg: String,
    /// The key in the clear.
    pub material: OpenJwtMaterial,
}

/// Whether `kid` is acceptable: 1 to [`MAX_KID_LEN`] visible ASCII characters.
fn check_kid(kid: &str) -> Result<(), CoreError> {
    if kid.is_empty() || kid.len() > MAX_KID_LEN || !kid.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(CoreError::invalid(Field::Kid, Reason::Invalid));
    }
    Ok(())
}

impl<S: Store> Service<S> {
    /// Adds JWT verification keys to the tenant named `tenant_name` (created if new), all
    /// or none. HS256 secrets are sealed; a `kid` already used in the tenant is refused.
    pub async fn add_jwt_keys(
        &self,
        tenant_name: &str,
        keys: Vec<NewJwtKey>,
    ) -> Result<(Tenant, Vec<JwtKey>), CoreError> {
        if keys.is_empty() {
            return Err(CoreError::invalid(Field::JwtKey, Reason::Required));
        }
        for k in &keys {
            if let Some(kid) = &k.kid {
                check_kid(kid)?;
            }
            if let OpenJwtMaterial::Hs256(secret) = &k.material
                && secret.len() < MIN_HS256_SECRET_LEN
            {
                return Err(CoreError::invalid(
                    Field::JwtSecret,
                    Reason::TooShort {
                        min: MIN_HS256_SECRET_LEN,
                    },
                ));
            }
        }
        let tenant = self.tenant_by_name(tenant_name).await?;
        let now = self.clock.now();
        let mut stored = Vec::with_capacity(keys.len());
        for k in keys {
            let id = JwtKeyId::generate(now)?;
            let material = match k.material {
                OpenJwtMaterial::Hs256(secret) => JwtKeyMaterial::Hs256 {
                    sealed: self.keyring.seal(&secret, id.as_str().as_bytes())?,
                },
                OpenJwtMaterial::PublicPem(pem) => JwtKeyMaterial::PublicPem(pem),
                OpenJwtMaterial::Jwk(jwk) => JwtKeyMaterial::Jwk(jwk),
            };
            stored.push(JwtKey {
                id,
                tenant_id: tenant.id.clone(),
                kid: k.kid,
                alg: k.alg,
                material,
                created_at: now,
            });
        }
        let mut events = Vec::with_capacity(stored.len());
        for k in &stored {
            events.extend(self.event(&tenant.id, EventKind::JwtKeyAdded, jwt_key_subject(k))?);
        }
        match self.store.insert_jwt_keys(&stored, &events).await {
            Ok(()) => Ok((tenant, stored)),
            Err(StoreError::Conflict(_)) => Err(CoreError::invalid(Field::Kid, Reason::Duplicate)),
            Err(e) => Err(e.into()),
        }
    }

    /// Every JWT verification key with its tenant, oldest first (never the secrets).
    pub async fn list_jwt_keys(&self) -> Result<Vec<(JwtKey, Tenant)>, CoreError> {
        Ok(self.store.list_jwt_keys().await?)
    }

    /// Removes a key by id; tokens it verified stop working when servers next reload.
    pub async fn remove_jwt_key(&self, id: &str) -> Result<(), CoreError> {
        let not_found = || CoreError::not_found(Entity::JwtKey, id);
        let key_id = JwtKeyId::parse(id).ok_or_else(not_found)?;
        let keys = self.store.list_jwt_keys().await?;
        let (key, _) = keys
            .iter()
            .find(|(k, _)| k.id == key_id)
            .ok_or_else(not_found)?;
        let events = self.event(
            &key.tenant_id,
            EventKind::JwtKeyRemoved,
            jwt_key_subject(key),
        )?;
        if self.store.delete_jwt_key(&key_id, &events).await? {
            Ok(())
        } else {
            Err(not_found())
        }
    }

    /// Every stored key, opened for verification. A secret that does not open (a lost
    /// master key, a tampered row) fails the whole load, so a server never runs on a
    /// silently partial key set.
    pub async fn open_jwt_keys(&self) -> Result<Vec<OpenedJwtKey>, CoreError> {
        let mut out = Vec::new();
        for (key, _) in self.store.list_jwt_keys().await? {
            let material = match key.material {
                JwtKeyMaterial::Hs256 { sealed } => {
                    OpenJwtMaterial::Hs256(self.keyring.open(&sealed, key.id.as_str().as_bytes())?)
                }
                JwtKeyMaterial::PublicPem(pem) => OpenJwtMaterial::PublicPem(pem),
                JwtKeyMaterial::Jwk(jwk) => OpenJwtMaterial::Jwk(jwk),
            };
            out.push(OpenedJwtKey {
                id: key.id,
                tenant_id: key.tenant_id,
                kid: key.kid,
                alg: key.alg,
                material,
            });
        }
        Ok(out)
    }
}

/// What a JWT key's events show of it: never its material.
fn jwt_key_subject(k: &JwtKey) -> Subject {
    Subject::JwtKey {
        id: k.id.clone(),
        kid: k.kid.clone(),
        alg: k.alg.clone(),
        created_at: k.created_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kids_are_visible_ascii_and_bounded() {
        assert!(check_kid("2026-01").is_ok());
        for bad in ["", "a b", "ключ", "a\u{0}", &"k".repeat(MAX_KID_LEN + 1)] {
            assert!(check_kid(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn stored_material_round_trips_and_debug_shows_only_the_kind() {
        for m in [
            JwtKeyMaterial::Hs256 {
                sealed: vec![1, 2, 3],
            },
            JwtKeyMaterial::PublicPem("-----BEGIN PUBLIC KEY-----".into()),
            JwtKeyMaterial::Jwk("{}".into()),
        ] {
            let back = JwtKeyMaterial::from_stored(m.kind(), m.stored_bytes().to_vec()).unwrap();
            assert_eq!(back, m);
            assert_eq!(format!("{m:?}"), m.kind());
        }
        assert!(JwtKeyMaterial::from_stored("rot13", vec![]).is_err());
        let open = OpenJwtMaterial::Hs256(Zeroizing::new(b"super-secret".to_vec()));
        assert!(!format!("{open:?}").contains("super"));
    }
}
