//! Recovery codes, as FusionAuth issues them: ten per user, made with the user's first
//! method, written `QJD73-L6GR5` (two groups of five symbols of Crockford's base32, 50
//! bits each), single use, replaced all at once by "generate".
//!
//! Storage keeps, per code, a peppered digest (what a code is checked against, in
//! constant time) and the code sealed under the keyring, bound to its tenant, user and
//! digest. The sealed copy exists only for FusionAuth's deprecated "retrieve recovery
//! codes" (`GET /api/user/two-factor/recovery-code/{userId}`), which returns the remaining
//! codes: a database leak alone reveals no code, exactly as for TOTP secrets. Codes are
//! checked by [`crate::verify`]; the service operations are in [`crate::service::recovery`].

use mfad_crypto::{Keyring, Zeroizing};
use time::OffsetDateTime;

use crate::error::CoreError;
use crate::ids::{TenantId, UserId};
use crate::model::RecoveryCode;

/// Codes in a set.
pub const CODES_PER_SET: usize = 10;
/// Symbols in a code (without the dash).
pub const CODE_SYMBOLS: usize = 10;
/// Crockford's base32 alphabet: no I, L, O or U, so codes read back unambiguously.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A new set: the records to store and the codes to show once.
#[derive(Debug)]
pub(crate) struct NewSet {
    pub records: Vec<RecoveryCode>,
    pub plain: Vec<Zeroizing<String>>,
}

pub(crate) fn digest_context(tenant: &TenantId, user: &UserId) -> Vec<u8> {
    let mut v = b"recovery\0".to_vec();
    v.extend_from_slice(tenant.as_str().as_bytes());
    v.push(0);
    v.extend_from_slice(user.as_str().as_bytes());
    v
}

pub(crate) fn seal_context(tenant: &TenantId, user: &UserId, digest: &[u8]) -> Vec<u8> {
    let mut v = digest_context(tenant, user);
    v.push(0);
    v.extend_from_slice(digest);
    v
}

/// A random code in canonical form (ten symbols, no dash).
fn random_canonical() -> Result<Zeroizing<String>, CoreError> {
    let bytes = Zeroizing::new(mfad_crypto::random_bytes::<CODE_SYMBOLS>()?);
    // 256 is a multiple of 32, so the low five bits of each byte are uniform.
    Ok(Zeroizing::new(
        bytes
            .iter()
            .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
            .collect(),
    ))
}

/// The display form, `XXXXX-XXXXX`.
pub fn display(canonical: &str) -> Zeroizing<String> {
    let (a, b) = canonical.split_at(canonical.len().min(CODE_SYMBOLS / 2));
    Zeroizing::new(format!("{a}-{b}"))
}

/// Reads what a user typed: case, dashes and spaces do not matter, and the letters
/// Crockford's alphabet leaves out are read as the digits they look like (O → 0,
/// I and L → 1). `None` unless it is ten symbols.
pub fn canonical(input: &str) -> Option<Zeroizing<String>> {
    let mut out = Zeroizing::new(String::with_capacity(CODE_SYMBOLS));
    for c in input.chars() {
        let c = match c.to_ascii_uppercase() {
            '-' | ' ' => continue,
            'O' => '0',
            'I' | 'L' => '1',
            other => other,
        };
        if !c.is_ascii() || !ALPHABET.contains(&(c as u8)) || out.len() >= CODE_SYMBOLS {
            return None;
        }
        out.push(c);
    }
    (out.len() == CODE_SYMBOLS).then_some(out)
}

/// Makes a fresh set for a user.
pub(crate) fn new_set(
    keyring: &Keyring,
    tenant: &TenantId,
    user: &UserId,
    now: OffsetDateTime,
) -> Result<NewSet, CoreError> {
    let mut records = Vec::with_capacity(CODES_PER_SET);
    let mut plain = Vec::with_capacity(CODES_PER_SET);
    let context = digest_context(tenant, user);
    while records.len() < CODES_PER_SET {
        let code = random_canonical()?;
        let digest = keyring.code_digest(&context, code.as_bytes())?;
        if records.iter().any(|r: &RecoveryCode| r.digest == digest) {
            continue;
        }
        let sealed = keyring.seal(code.as_bytes(), &seal_context(tenant, user, &digest))?;
        records.push(RecoveryCode {
            digest,
            sealed,
            created_at: now,
        });
        plain.push(display(&code));
    }
    Ok(NewSet { records, plain })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_look_like_fusionauths_and_read_back() {
        let ring = Keyring::from_master_keys(&[[3u8; 32]]).unwrap();
        let tenant = TenantId::from_trusted("tenant_01HZZZZZZZZZZZZZZZZZZZZZZZ".into());
        let user = UserId::parse("u1").unwrap();
        let set = new_set(&ring, &tenant, &user, OffsetDateTime::UNIX_EPOCH).unwrap();
        assert_eq!(set.plain.len(), 10);
        assert_eq!(set.records.len(), 10);
        for (code, record) in set.plain.iter().zip(&set.records) {
            assert_eq!(code.len(), 11);
            assert_eq!(code.as_bytes()[5], b'-');
            let c = canonical(code).unwrap();
            assert!(ring.code_matches(
                &record.digest,
                &digest_context(&tenant, &user),
                c.as_bytes()
            ));
            let lower = canonical(&code.to_ascii_lowercase()).unwrap();
            assert_eq!(*lower, *c);
            let opened = ring
                .open(
                    &record.sealed,
                    &seal_context(&tenant, &user, &record.digest),
                )
                .unwrap();
            assert_eq!(opened.as_slice(), c.as_bytes());
            // Bound to the user: another user's context does not open it.
            let other = UserId::parse("u2").unwrap();
            assert!(
                ring.open(
                    &record.sealed,
                    &seal_context(&tenant, &other, &record.digest)
                )
                .is_err()
            );
        }
    }

    #[test]
    fn canonical_forms() {
        assert_eq!(
            canonical("qjd73-l6gr5").as_deref().map(String::as_str),
            Some("QJD7316GR5")
        );
        assert_eq!(
            canonical("O0O0O 0O0O0").as_deref().map(String::as_str),
            Some("0000000000")
        );
        assert!(canonical("QJD73-L6GR").is_none());
        assert!(canonical("QJD73-L6GR5X").is_none());
        assert!(
            canonical("QJD73-L6GU5").is_none(),
            "U is not in the alphabet"
        );
        assert!(canonical("123456").is_none());
    }
}
