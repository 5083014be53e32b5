//! A short-lived in-process cache of API keys, so the hot paths do not read the key row
//! on every request. It holds only what the database holds (the key's digest and tenant),
//! every request still compares its secret against the digest in constant time, and an
//! entry lives at most the configured TTL: a key revoked on another node (or by the CLI)
//! stops working within that TTL everywhere, and at once on the node that revoked it.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use time::{Duration, OffsetDateTime};

use crate::ids::{ApiKeyId, TenantId};

/// Most keys cached at once; beyond this the cache starts over (keys are few in practice).
const MAX_ENTRIES: usize = 10_000;

#[derive(Debug, Clone)]
struct Entry {
    tenant: TenantId,
    digest: Vec<u8>,
    until: OffsetDateTime,
}

/// See the module documentation.
#[derive(Debug)]
pub struct KeyCache {
    ttl: Duration,
    entries: Mutex<HashMap<ApiKeyId, Entry>>,
}

impl KeyCache {
    /// A cache whose entries live `ttl`; a zero TTL caches nothing.
    pub fn new(ttl: Duration) -> Self {
        KeyCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The cached tenant and digest of an unrevoked key, if fresh at `now`.
    pub fn get(&self, id: &ApiKeyId, now: OffsetDateTime) -> Option<(TenantId, Vec<u8>)> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(id)
            .filter(|e| now < e.until)
            .map(|e| (e.tenant.clone(), e.digest.clone()))
    }

    /// Remembers an unrevoked key read from the store.
    pub fn put(&self, id: &ApiKeyId, tenant: &TenantId, digest: &[u8], now: OffsetDateTime) {
        if self.ttl <= Duration::ZERO {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(
            id.clone(),
            Entry {
                tenant: tenant.clone(),
                digest: digest.to_vec(),
                until: now + self.ttl,
            },
        );
    }

    /// Forgets a key (on revocation).
    pub fn remove(&self, id: &ApiKeyId) {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_can_be_removed() {
        let t0 = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let id = ApiKeyId::generate(t0).unwrap();
        let tenant = TenantId::generate(t0).unwrap();
        let cache = KeyCache::new(Duration::seconds(2));
        assert!(cache.get(&id, t0).is_none());
        cache.put(&id, &tenant, b"digest", t0);
        assert_eq!(
            cache.get(&id, t0 + Duration::seconds(1)),
            Some((tenant.clone(), b"digest".to_vec()))
        );
        assert!(cache.get(&id, t0 + Duration::seconds(2)).is_none());
        cache.put(&id, &tenant, b"digest", t0);
        cache.remove(&id);
        assert!(cache.get(&id, t0).is_none());
        let off = KeyCache::new(Duration::ZERO);
        off.put(&id, &tenant, b"digest", t0);
        assert!(off.get(&id, t0).is_none());
    }
}
