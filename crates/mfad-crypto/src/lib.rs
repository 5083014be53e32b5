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
    /// A key's `ID:` is empty, too long, or not of `[A-Za-z0-9._-]`.
    #[error("a master key id must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' or '-'")]
    BadKeyId,
    /// The same id, or the same key, is listed twice.
    #[error("master key {0} is listed twice (by id or by key)")]
    Duplicate(String),
}

/// Which master key sealed a blob or peppered a digest: 4 bytes derived from the key
/// itself (its fingerprint), so a key can be renamed in configuration, and a wrong key
/// given under a known name is told apart from the right one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; KEY_ID_LEN]);

impl KeyId {
    /// The id as stored (the blob's bytes 1..5, a digest's first 4 bytes).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// From stored bytes; `None` unless exactly 4.
    pub fn from_slice(b: &[u8]) -> Option<KeyId> {
        b.try_into().ok().map(KeyId)
    }

    /// The key id of a blob made by [`Keyring::seal`], if it is one.
    pub fn of_blob(blob: &[u8]) -> Option<KeyId> {
        match blob {
            [BLOB_VERSION, rest @ ..] => rest.get(..KEY_ID_LEN).and_then(KeyId::from_slice),
            _ => None,
        }
    }

    /// The key id of a digest made by [`Keyring::code_digest`], if it is one.
    pub fn of_digest(digest: &[u8]) -> Option<KeyId> {
        (digest.len() == KEY_ID_LEN + 32)
            .then(|| KeyId::from_slice(&digest[..KEY_ID_LEN]))
            .flatten()
    }
}

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&data_encoding::HEXLOWER.encode(&self.0))
    }
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

/// SHA-256 over length-prefixed parts (so `("ab","c")` and `("a","bc")` differ): a
/// fingerprint of a request, or a row id derived from several names.
pub fn digest_parts(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    h.finalize().into()
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
    /// The operator's name for it (`ID:` in configuration), or its fingerprint in hex.
    name: String,
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
    /// Builds a keyring from raw 32-byte master keys, the first being active, each named
    /// by its fingerprint.
    pub fn from_master_keys(masters: &[[u8; 32]]) -> Result<Self, CryptoError> {
        let named: Vec<(Option<String>, [u8; 32])> = masters.iter().map(|m| (None, *m)).collect();
        Keyring::from_named_keys(&named)
    }

    /// Builds a keyring from named 32-byte master keys (`None`: named by fingerprint), the
    /// first being active. Names and keys must be unique.
    pub fn from_named_keys(masters: &[(Option<String>, [u8; 32])]) -> Result<Self, CryptoError> {
        if masters.is_empty() {
            return Err(CryptoError::NoKey);
        }
        let keys: Vec<KeyEntry> = masters
            .iter()
            .map(|(name, m)| {
                // Separate keys per purpose, derived from the one master key.
                let mut enc = hmac256(m, &[b"mfad/aead/v1"]);
                let aead = Aes256Gcm::new(&Key::<Aes256Gcm>::from(enc));
                enc.zeroize();
                let id_full = hmac256(m, &[b"mfad/key-id/v1"]);
                let mut id = [0u8; KEY_ID_LEN];
                id.copy_from_slice(&id_full[..KEY_ID_LEN]);
                KeyEntry {
                    name: name.clone().unwrap_or_else(|| KeyId(id).to_string()),
                    id,
                    aead,
                    pepper: Zeroizing::new(hmac256(m, &[b"mfad/pepper/v1"])),
                }
            })
            .collect();
        for (i, k) in keys.iter().enumerate() {
            if keys[..i].iter().any(|o| o.id == k.id || o.name == k.name) {
                return Err(CryptoError::Duplicate(k.name.clone()));
            }
        }
        Ok(Keyring { keys })
    }

    /// Parses master keys from text: entries separated by commas, whitespace or lines,
    /// each `ID:KEY` or a bare `KEY` (named by its fingerprint), where KEY is 64 hex
    /// characters or standard base64 of 32 bytes; `#` starts a comment to the end of its
    /// line. The first is active.
    pub fn parse(text: &str) -> Result<Self, CryptoError> {
        let mut masters: Vec<(Option<String>, [u8; 32])> = Vec::new();
        let entries = text
            .lines()
            .map(|l| l.split('#').next().unwrap_or(""))
            .flat_map(|l| l.split(|c: char| c == ',' || c.is_whitespace()))
            .filter(|p| !p.is_empty());
        let result = entries.into_iter().try_for_each(|part| {
            let (name, key_text) = match part.split_once(':') {
                Some((name, key)) => (Some(check_key_name(name)?), key),
                None => (None, part),
            };
            let decoded = Zeroizing::new(
                data_encoding::HEXLOWER_PERMISSIVE
                    .decode(key_text.as_bytes())
                    .or_else(|_| data_encoding::BASE64.decode(key_text.as_bytes()))
                    .map_err(|_| CryptoError::BadMasterKey)?,
            );
            let key: [u8; 32] = decoded
                .as_slice()
                .try_into()
                .map_err(|_| CryptoError::BadMasterKey)?;
            masters.push((name, key));
            Ok(())
        });
        let ring = result.and_then(|()| Keyring::from_named_keys(&masters));
        masters.iter_mut().for_each(|(_, k)| k.zeroize());
        ring
    }

    /// The id of the key that seals and peppers.
    pub fn active_id(&self) -> KeyId {
        self.keys
            .first()
            .map_or(KeyId([0; KEY_ID_LEN]), |k| KeyId(k.id))
    }

    /// Whether the key with this id is loaded (so what it sealed opens).
    pub fn contains(&self, id: KeyId) -> bool {
        self.by_id(&id.0).is_some()
    }

    /// Every loaded key as `(name, id)`, the active one first.
    pub fn keys(&self) -> impl Iterator<Item = (&str, KeyId)> {
        self.keys.iter().map(|k| (k.name.as_str(), KeyId(k.id)))
    }

    /// The configured name of a loaded key.
    pub fn name_of(&self, id: KeyId) -> Option<&str> {
        self.by_id(&id.0).map(|k| k.name.as_str())
    }

    /// Whether `blob` was sealed, or `digest` peppered, by the active key.
    pub fn is_active(&self, id: Option<KeyId>) -> bool {
        id == Some(self.active_id())
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

fn check_key_name(name: &str) -> Result<String, CryptoError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    ok.then(|| name.to_owned()).ok_or(CryptoError::BadKeyId)
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
    fn named_keys_first_active_all_open_ids_from_the_key() {
        let (a, b) = ("11".repeat(32), "22".repeat(32));
        let old = Keyring::parse(&a).unwrap();
        let old_id = old.active_id();
        assert_eq!(old.keys().next().unwrap().0, old_id.to_string());
        let blob = old.seal(b"s", b"row").unwrap();
        assert_eq!(KeyId::of_blob(&blob), Some(old_id));
        let text = format!("# rotation in progress\nnew:{b}\n old:{a} # retire after\n");
        let both = Keyring::parse(&text).unwrap();
        assert_ne!(both.active_id(), old_id);
        assert!(both.contains(old_id));
        assert_eq!(both.name_of(old_id), Some("old"));
        assert_eq!(both.open(&blob, b"row").unwrap().as_slice(), b"s");
        let sealed = both.seal(b"s", b"row").unwrap();
        assert!(both.is_active(KeyId::of_blob(&sealed)));
        let d = both.code_digest(b"c", b"1").unwrap();
        assert_eq!(KeyId::of_digest(&d), Some(both.active_id()));
        assert_eq!(
            Keyring::parse(&format!("x:{a},y:{b}")).unwrap().active_id(),
            old_id,
            "the id follows the key, not its name"
        );
        for bad in [
            format!("x:{a},x:{b}"),
            format!("x:{a},y:{a}"),
            format!(":{a}"),
            format!("a b:{a}"),
            format!("{}:{a}", "n".repeat(65)),
        ] {
            assert!(Keyring::parse(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_does_not_print_keys() {
        let s = format!("{:?}", ring(5));
        assert!(s.contains("Keyring") && !s.contains("05"));
    }
}
