//! Secrets at rest for mfad.
//!
//! * [`Keyring`]: AES-256-GCM sealing of TOTP secrets, each ciphertext bound to its row
//!   by associated data, so a blob copied to another row fails to open. Blob format:
//!   `0x01 ‖ key id (4) ‖ nonce (12) ‖ ciphertext+tag`. Several master keys may be loaded;
//!   the first seals, all open, which is how keys rotate.
//! * Peppered digests of short codes (SMS/email codes, recovery codes): HMAC-SHA-256 under
//!   a key derived from the master key, so a database leak alone cannot brute-force a
//!   6-digit code. Digests carry the key id, so rotation does not strand them.
//! * [`api_key_digest`]: API keys are 256-bit random tokens, so a plain SHA-256 suffices.
//!
//! Nothing here logs, and no key material is `Debug`-printable.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;
pub use zeroize::Zeroizing;

const BLOB_VERSION: u8 = 1;
const KEY_ID_LEN: usize = 4;
const NONCE_LEN: usize = 12;

/// Everything that can go wrong with keys and sealed data. Messages never include key
/// material or plaintext.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The master key text is not 32 bytes of hex or base64.
    #[error("master key must be 32 bytes, written as 64 hex characters or 44 base64 characters")]
    BadMasterKey,
    /// No master key was given.
    #[error("no master key configured")]
    NoKey,
    /// The blob is not one this keyring made, was tampered with, or belongs to another row.
    #[error("sealed data could not be opened (wrong key, wrong row, or tampered)")]
    Open,
    /// Sealing failed (not expected with AES-GCM and sane lengths).
    #[error("sealing failed")]
    Seal,
    /// The operating system's random number generator failed.
    #[error("operating system randomness unavailable")]
    Random,
}

/// Fills `N` bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], CryptoError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|_| CryptoError::Random)?;
    Ok(buf)
}

/// A fresh 256-bit master key, as 64 lowercase hex characters.
pub fn generate_master_key_text() -> Result<Zeroizing<String>, CryptoError> {
    let key = Zeroizing::new(random_bytes::<32>()?);
    Ok(Zeroizing::new(
        data_encoding::HEXLOWER.encode(key.as_slice()),
    ))
}

/// SHA-256 of an API key's secret part. Tokens carry 256 bits of entropy, so no slow
/// hash is needed; compare the result with [`ct_eq`].
pub fn api_key_digest(secret: &[u8]) -> [u8; 32] {
    Sha256::digest(secret).into()
}

/// Constant-time equality of two byte strings (length is not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

fn hmac256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC takes keys of any length; the error arm is unreachable.
    let Ok(mut mac) = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(key) else {
        return [0u8; 32];
    };
    for p in parts {
        // Length-prefix each part so ("ab","c") and ("a","bc") differ.
        mac.update(&(p.len() as u64).to_be_bytes());
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

struct KeyEntry {
    id: [u8; KEY_ID_LEN],
    aead: Aes256Gcm,
    pepper: Zeroizing<[u8; 32]>,
}

/// The loaded master keys. The first seals and peppers; all of them open and verify.
pub struct Keyring {
    keys: Vec<KeyEntry>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

impl Keyring {
    /// Builds a keyring from raw 32-byte master keys, the first being active.
    pub fn from_master_keys(masters: &[[u8; 32]]) -> Result<Self, CryptoError> {
        if masters.is_empty() {
            return Err(CryptoError::NoKey);
        }
        let keys = masters
            .iter()
            .map(|m| {
                // Separate keys per purpose, derived from the one master key.
                let mut enc = hmac256(m, &[b"mfad/aead/v1"]);
                let aead = Aes256Gcm::new(&Key::<Aes256Gcm>::from(enc));
                enc.zeroize();
                let id_full = hmac256(m, &[b"mfad/key-id/v1"]);
                let mut id = [0u8; KEY_ID_LEN];
                id.copy_from_slice(&id_full[..KEY_ID_LEN]);
                KeyEntry {
                    id,
                    aead,
                    pepper: Zeroizing::new(hmac256(m, &[b"mfad/pepper/v1"])),
                }
            })
            .collect();
        Ok(Keyring { keys })
    }

    /// Parses master keys from text: one or more keys separated by commas or whitespace,
    /// each 64 hex characters or standard base64 of 32 bytes. The first is active.
    pub fn parse(text: &str) -> Result<Self, CryptoError> {
        let mut masters = Vec::new();
        for part in text
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|p| !p.is_empty())
        {
            let decoded = Zeroizing::new(
                data_encoding::HEXLOWER_PERMISSIVE
                    .decode(part.as_bytes())
                    .or_else(|_| data_encoding::BASE64.decode(part.as_bytes()))
                    .map_err(|_| CryptoError::BadMasterKey)?,
            );
            let key: [u8; 32] = decoded
                .as_slice()
                .try_into()
                .map_err(|_| CryptoError::BadMasterKey)?;
            masters.push(key);
        }
        let ring = Keyring::from_master_keys(&masters);
        masters.iter_mut().for_each(Zeroize::zeroize);
        ring
    }

    fn active(&self) -> Result<&KeyEntry, CryptoError> {
        self.keys.first().ok_or(CryptoError::NoKey)
    }

    fn by_id(&self, id: &[u8]) -> Option<&KeyEntry> {
        self.keys.iter().find(|k| k.id == id)
    }

    /// Encrypts `plaintext` under the active key, bound to `aad` (the row's identity).
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let key = self.active()?;
        let nonce_bytes = random_bytes::<NONCE_LEN>()?;
        let nonce = Nonce::from(nonce_bytes);
        let bound = bind(&key.id, aad);
        let ct = key
            .aead
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: &bound,
                },
            )
            .map_err(|_| CryptoError::Seal)?;
        let mut blob = Vec::with_capacity(1 + KEY_ID_LEN + NONCE_LEN + ct.len());
        blob.push(BLOB_VERSION);
        blob.extend_from_slice(&key.id);
        blob.extend_from_slice(&nonce_bytes);
        blob.extend_from_slice(&ct);
        Ok(blob)
    }

    /// Decrypts a blob made by [`Keyring::seal`] with the same `aad`.
    pub fn open(&self, blob: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let (version, rest) = blob.split_first().ok_or(CryptoError::Open)?;
        if *version != BLOB_VERSION || rest.len() < KEY_ID_LEN + NONCE_LEN + 16 {
            return Err(CryptoError::Open);
        }
        let (id, rest) = rest.split_at(KEY_ID_LEN);
        let (nonce, ct) = rest.split_at(NONCE_LEN);
        let key = self.by_id(id).ok_or(CryptoError::Open)?;
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| CryptoError::Open)?;
        let bound = bind(id, aad);
        key.aead
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ct,
                    aad: &bound,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::Open)
    }

    /// A peppered digest of a short code, bound to `context` (e.g. the challenge id),
    /// tagged with the active key id.
    pub fn code_digest(&self, context: &[u8], code: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let key = self.active()?;
        let mut out = Vec::with_capacity(KEY_ID_LEN + 32);
        out.extend_from_slice(&key.id);
        out.extend_from_slice(&hmac256(key.pepper.as_slice(), &[context, code]));
        Ok(out)
    }

    /// Whether `code` matches a digest made by [`Keyring::code_digest`], in constant time.
    pub fn code_matches(&self, stored: &[u8], context: &[u8], code: &[u8]) -> bool {
        if stored.len() != KEY_ID_LEN + 32 {
            return false;
        }
        let (id, mac) = stored.split_at(KEY_ID_LEN);
        match self.by_id(id) {
            Some(key) => ct_eq(mac, &hmac256(key.pepper.as_slice(), &[context, code])),
            None => false,
        }
    }
}

fn bind(key_id: &[u8], aad: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(key_id.len() + aad.len());
    v.extend_from_slice(key_id);
    v.extend_from_slice(aad);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(byte: u8) -> Keyring {
        Keyring::from_master_keys(&[[byte; 32]]).unwrap()
    }

    #[test]
    fn seal_open_round_trip_and_row_binding() {
        let k = ring(7);
        let blob = k.seal(b"totp secret", b"auth_factor_A").unwrap();
        assert!(!blob.windows(11).any(|w| w == b"totp secret"));
        assert_eq!(
            k.open(&blob, b"auth_factor_A").unwrap().as_slice(),
            b"totp secret"
        );
        assert!(matches!(
            k.open(&blob, b"auth_factor_B"),
            Err(CryptoError::Open)
        ));
    }

    #[test]
    fn tampering_and_wrong_key_are_refused() {
        let k = ring(7);
        let mut blob = k.seal(b"s", b"row").unwrap();
        let last = blob.len() - 1;
        blob[last] ^= 1;
        assert!(k.open(&blob, b"row").is_err());
        let blob = k.seal(b"s", b"row").unwrap();
        assert!(ring(8).open(&blob, b"row").is_err());
        assert!(k.open(&[], b"row").is_err());
        assert!(k.open(&[1, 2, 3], b"row").is_err());
    }

    #[test]
    fn rotation_keeps_old_blobs_and_digests_readable() {
        let old = ring(1);
        let blob = old.seal(b"s", b"row").unwrap();
        let digest = old.code_digest(b"ch", b"123456").unwrap();
        let rotated = Keyring::from_master_keys(&[[2; 32], [1; 32]]).unwrap();
        assert_eq!(rotated.open(&blob, b"row").unwrap().as_slice(), b"s");
        assert!(rotated.code_matches(&digest, b"ch", b"123456"));
        let new_blob = rotated.seal(b"s", b"row").unwrap();
        assert!(old.open(&new_blob, b"row").is_err());
    }

    #[test]
    fn code_digests_depend_on_code_context_and_key() {
        let k = ring(3);
        let d = k.code_digest(b"challenge1", b"123456").unwrap();
        assert!(k.code_matches(&d, b"challenge1", b"123456"));
        assert!(!k.code_matches(&d, b"challenge1", b"123457"));
        assert!(!k.code_matches(&d, b"challenge2", b"123456"));
        assert!(!ring(4).code_matches(&d, b"challenge1", b"123456"));
        assert!(!k.code_matches(&d[..10], b"challenge1", b"123456"));
    }

    #[test]
    fn master_key_text_parsing() {
        let text = generate_master_key_text().unwrap();
        assert_eq!(text.len(), 64);
        assert!(Keyring::parse(&text).is_ok());
        let b64 = data_encoding::BASE64.encode(&[9u8; 32]);
        assert!(Keyring::parse(&b64).is_ok());
        assert!(Keyring::parse(&format!("{} , {}", *text, b64)).is_ok());
        for bad in ["", "abcd", "zz", &"a".repeat(63)] {
            assert!(matches!(
                Keyring::parse(bad),
                Err(CryptoError::BadMasterKey | CryptoError::NoKey)
            ));
        }
    }

    #[test]
    fn debug_does_not_print_keys() {
        let s = format!("{:?}", ring(5));
        assert!(s.contains("Keyring") && !s.contains("05"));
    }
}
