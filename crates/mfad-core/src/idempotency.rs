//! Idempotent retries: a POST sent with an `Idempotency-Key` runs once per caller and key;
//! a repeat with the same request gets the first answer again, a repeat with another
//! request is refused, and a repeat while the first still runs is told so (the server
//! waits, then answers 409). This module holds the rule; the HTTP layer only carries
//! requests and responses to it.
//!
//! An entry is claimed before the request runs, by an insert that only one request (on any
//! node) can make, and filled in with the response afterwards; an answer not worth keeping
//! (a server error, a rate-limit refusal) releases the claim so a retry can run. A claim
//! whose request never finished (a crashed node) lapses after a lease. Responses can hold
//! secrets (an enrolled TOTP secret and its QR code), so they are stored sealed under the
//! keyring, bound to their entry, and master-key rotation re-seals them.

use mfad_crypto::Zeroizing;
use time::{Duration, OffsetDateTime};

use crate::error::CoreError;
use crate::ids::TenantId;
use crate::service::Service;
use crate::store::Store;

/// How long entries last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdempotencyPolicy {
    /// How long a response is replayed (24 h, as WorkOS documents).
    pub ttl: Duration,
    /// How long a claim stands without a response before another request may take it
    /// over (longer than any request may run).
    pub lease: Duration,
}

impl Default for IdempotencyPolicy {
    fn default() -> Self {
        IdempotencyPolicy {
            ttl: Duration::hours(24),
            lease: Duration::seconds(60),
        }
    }
}

/// Longest `Idempotency-Key` accepted (the SDKs send UUIDs, 36 or 42 characters).
pub const MAX_KEY_LEN: usize = 255;

/// A keyed request, as the HTTP layer saw it.
#[derive(Debug, Clone, Copy)]
pub struct IdempotentRequest<'a> {
    /// The caller's tenant.
    pub tenant: &'a TenantId,
    /// Who in the tenant is calling (the API key's public id): entries are per caller.
    pub caller: &'a str,
    /// The `Idempotency-Key`.
    pub key: &'a str,
    /// The request method.
    pub method: &'a str,
    /// The path and query.
    pub path: &'a str,
    /// The body, as sent.
    pub body: &'a [u8],
}

/// A response to keep or replay.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`, if the response had one.
    pub content_type: Option<String>,
    /// The body.
    pub body: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for StoredResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredResponse")
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl StoredResponse {
    /// Whether this answer is kept for replay: server errors and rate-limit refusals say
    /// "try again", so a retry must run again.
    pub fn worth_keeping(&self) -> bool {
        self.status < 500 && self.status != 429
    }

    fn encode(&self) -> Zeroizing<Vec<u8>> {
        let ct = self.content_type.as_deref().unwrap_or("").as_bytes();
        let len = u16::try_from(ct.len()).unwrap_or(0);
        let mut v = Zeroizing::new(Vec::with_capacity(2 + ct.len() + self.body.len()));
        v.extend_from_slice(&len.to_be_bytes());
        v.extend_from_slice(&ct[..usize::from(len)]);
        v.extend_from_slice(&self.body);
        v
    }

    fn decode(status: u16, bytes: &[u8]) -> Option<StoredResponse> {
        let (len, rest) = bytes.split_first_chunk::<2>()?;
        let (ct, body) = rest.split_at_checked(usize::from(u16::from_be_bytes(*len)))?;
        let ct = std::str::from_utf8(ct).ok()?;
        Some(StoredResponse {
            status,
            content_type: (!ct.is_empty()).then(|| ct.to_owned()),
            body: Zeroizing::new(body.to_vec()),
        })
    }
}

/// A claim to run a keyed request; hand it back with the response.
#[derive(Debug)]
pub struct IdempotencyTicket {
    id: String,
    claim: String,
}

/// What to do with a keyed request.
#[derive(Debug)]
pub enum Begun {
    /// Run it, then [`Service::finish_idempotent`].
    Run(IdempotencyTicket),
    /// It ran before: answer this.
    Replay(StoredResponse),
    /// The key was used for another request.
    Mismatch,
    /// The first request with this key is still running.
    InProgress,
}

/// A claim as the store takes it.
#[derive(Debug, Clone, Copy)]
pub struct IdempotencyClaim<'a> {
    /// The entry id: a digest of tenant, caller and key.
    pub id: &'a str,
    /// The caller's tenant.
    pub tenant: &'a TenantId,
    /// A digest of method, path and body.
    pub request_digest: &'a [u8],
    /// A random token naming this execution.
    pub claim: &'a str,
    /// Now.
    pub now: OffsetDateTime,
    /// Until when the claim stands without a response.
    pub lease_until: OffsetDateTime,
    /// When the entry may be purged.
    pub expires_at: OffsetDateTime,
}

/// An entry found instead of claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// This request holds the claim.
    Claimed,
    /// Another request made the entry.
    Existing {
        /// Its request digest.
        request_digest: Vec<u8>,
        /// Its response's status and sealed body, once it has one.
        response: Option<(u16, Vec<u8>)>,
    },
}

impl<S: Store> Service<S> {
    /// Claims `req`'s key, or says why it cannot run now.
    pub async fn begin_idempotent(&self, req: &IdempotentRequest<'_>) -> Result<Begun, CoreError> {
        let id = data_encoding::HEXLOWER.encode(&mfad_crypto::digest_parts(&[
            b"mfad/idempotency/v1",
            req.tenant.as_str().as_bytes(),
            req.caller.as_bytes(),
            req.key.as_bytes(),
        ]));
        let request_digest =
            mfad_crypto::digest_parts(&[req.method.as_bytes(), req.path.as_bytes(), req.body]);
        let claim = data_encoding::HEXLOWER.encode(&mfad_crypto::random_bytes::<16>()?);
        let now = self.clock.now();
        let outcome = self
            .store
            .claim_idempotency(&IdempotencyClaim {
                id: &id,
                tenant: req.tenant,
                request_digest: &request_digest,
                claim: &claim,
                now,
                lease_until: now + self.idempotency.lease,
                expires_at: now + self.idempotency.ttl,
            })
            .await?;
        Ok(match outcome {
            ClaimOutcome::Claimed => Begun::Run(IdempotencyTicket { id, claim }),
            ClaimOutcome::Existing {
                request_digest: d, ..
            } if !mfad_crypto::ct_eq(&d, &request_digest) => Begun::Mismatch,
            ClaimOutcome::Existing { response: None, .. } => Begun::InProgress,
            ClaimOutcome::Existing {
                response: Some((status, sealed)),
                ..
            } => {
                let plain = self.keyring.open(&sealed, id.as_bytes())?;
                let stored = StoredResponse::decode(status, &plain).ok_or_else(|| {
                    CoreError::Store(crate::error::StoreError::Other(
                        "a stored idempotent response is malformed".into(),
                    ))
                })?;
                Begun::Replay(stored)
            }
        })
    }

    /// Keeps the response of a claimed request for replay, or, if it is not worth keeping,
    /// releases the claim so a retry runs again.
    pub async fn finish_idempotent(
        &self,
        ticket: IdempotencyTicket,
        response: &StoredResponse,
    ) -> Result<(), CoreError> {
        if !response.worth_keeping() {
            return self.abandon_idempotent(ticket).await;
        }
        let sealed = self
            .keyring
            .seal(&response.encode(), ticket.id.as_bytes())?;
        let kept = self
            .store
            .complete_idempotency(&ticket.id, &ticket.claim, response.status, &sealed)
            .await?;
        if !kept {
            // Only when the lease lapsed and another request took the entry over.
            tracing::warn!("an idempotent response arrived after its claim lapsed; not kept");
        }
        Ok(())
    }

    /// Deletes a bounded batch of expired rows of every kind (idempotency entries, logins,
    /// trusts, codes); servers call it periodically.
    pub async fn purge_expired(&self) -> Result<(), CoreError> {
        Ok(self.store.purge_expired(self.clock.now(), 500).await?)
    }

    /// Releases a claim without a response (the request failed before answering).
    pub async fn abandon_idempotent(&self, ticket: IdempotencyTicket) -> Result<(), CoreError> {
        Ok(self
            .store
            .release_idempotency(&ticket.id, &ticket.claim)
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_round_trip_and_only_final_answers_are_kept() {
        let r = StoredResponse {
            status: 201,
            content_type: Some("application/json".into()),
            body: Zeroizing::new(b"{\"id\":1}".to_vec()),
        };
        assert_eq!(StoredResponse::decode(201, &r.encode()), Some(r.clone()));
        let empty = StoredResponse {
            status: 200,
            content_type: None,
            body: Zeroizing::new(Vec::new()),
        };
        assert_eq!(StoredResponse::decode(200, &empty.encode()), Some(empty));
        assert_eq!(StoredResponse::decode(200, &[0, 9, b'x']), None);
        for (status, kept) in [
            (200, true),
            (422, true),
            (404, true),
            (429, false),
            (500, false),
            (503, false),
        ] {
            let r = StoredResponse {
                status,
                ..r.clone()
            };
            assert_eq!(r.worth_keeping(), kept, "{status}");
        }
        assert!(!format!("{r:?}").contains("id"));
    }
}
