//! JWTs on the FusionAuth API: verifying `Authorization: Bearer <jwt>` (the user is the
//! `sub`) and signing the `token` of a completed two-factor login.
//!
//! Every key belongs to one tenant, and a token acts only in the tenant whose key
//! verified it (the caller then checks that a `tid` claim and `X-FusionAuth-TenantId`
//! agree). Keys come from the database (`mfad jwt-key add`), reloaded every second by
//! the server, and from the deployment-wide `MFAD_JWT_HS256_SECRET` /
//! `MFAD_JWT_PUBLIC_KEYS_FILE`, which are the keys of `MFAD_JWT_DEFAULT_TENANT`. Several
//! keys per tenant rotate by `kid`: a token naming a `kid` is tried against the keys with
//! that `kid` (or, if none has it, the keys without one).
//!
//! Every key is pinned to one algorithm when it is loaded: an HS256 secret to HS256, an
//! RSA key to RS256 (or the `alg` its JWK names), a P-256 key to ES256, and so on. A
//! token is tried only against keys pinned to the algorithm its header names, so `none`
//! never verifies and an RS256 public key is never used as an HMAC secret (the classic
//! HS/RS confusion). `exp` is required and `nbf` honoured, both against the injected
//! clock rather than the system's, so tests move time the same way for every check.

use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, RwLock};

use anyhow::Context;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use mfad_core::jwt_keys::{NewJwtKey, OpenJwtMaterial, OpenedJwtKey};
use mfad_core::{JwtKeyId, TenantId, UserId};
use mfad_crypto::Zeroizing;
use secrecy::ExposeSecret;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::config::JwtConfig;

/// A verification key and the one algorithm it accepts.
struct PublicKey {
    kid: Option<String>,
    alg: Algorithm,
    key: DecodingKey,
}

/// A key of one tenant, pinned to one algorithm; HS256 keys also sign.
struct TenantKey {
    tenant: TenantId,
    kid: Option<String>,
    alg: Algorithm,
    verify: DecodingKey,
    sign: Option<EncodingKey>,
}

impl TenantKey {
    fn hs256(tenant: TenantId, kid: Option<String>, secret: &[u8]) -> Self {
        TenantKey {
            tenant,
            kid,
            alg: Algorithm::HS256,
            verify: DecodingKey::from_secret(secret),
            sign: Some(EncodingKey::from_secret(secret)),
        }
    }

    fn public(tenant: TenantId, k: PublicKey) -> Self {
        TenantKey {
            tenant,
            kid: k.kid,
            alg: k.alg,
            verify: k.key,
            sign: None,
        }
    }
}

/// The keys stored in the database, as last loaded.
#[derive(Default)]
struct StoredKeys {
    /// The ids loaded, to skip rebuilding when nothing changed.
    ids: Vec<JwtKeyId>,
    keys: Vec<TenantKey>,
}

/// The JWT keys of every tenant.
pub struct JwtKeys {
    /// `MFAD_JWT_*` keys, all of the default tenant.
    configured: Vec<TenantKey>,
    /// `mfad jwt-key` keys, swapped whole on reload.
    stored: RwLock<Arc<StoredKeys>>,
    issuer: Option<String>,
    audience: Option<String>,
    ttl: time::Duration,
}

impl std::fmt::Debug for JwtKeys {
    // Keys stay out of logs; only their number and algorithms show.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let stored = self.stored_keys();
        let algs = |keys: &[TenantKey]| keys.iter().map(|k| k.alg).collect::<Vec<_>>();
        f.debug_struct("JwtKeys")
            .field("configured", &algs(&self.configured))
            .field("stored", &algs(&stored.keys))
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

/// A verified token.
#[derive(Debug, Clone)]
pub struct VerifiedJwt {
    /// The `sub` claim: the user.
    pub user: UserId,
    /// The tenant of the key that verified it: the only tenant it may act in.
    pub tenant: TenantId,
    /// The `tid` claim (FusionAuth's tenant id claim), when present, as written.
    pub tid: Option<String>,
}

impl VerifiedJwt {
    /// Whether the `tid` claim, if any, names the key's tenant (in either id form).
    pub fn tid_agrees(&self) -> bool {
        self.tid
            .as_deref()
            .is_none_or(|tid| TenantId::parse_any(tid).as_ref() == Some(&self.tenant))
    }
}

/// A token issued for a completed login.
#[derive(Debug)]
pub struct IssuedToken {
    /// The compact JWT.
    pub token: String,
    /// Its `exp`.
    pub expires_at: OffsetDateTime,
}

impl JwtKeys {
    /// No keys: every bearer token is refused and no token is issued.
    pub fn none() -> Self {
        JwtKeys {
            configured: Vec::new(),
            stored: RwLock::default(),
            issuer: None,
            audience: None,
            ttl: time::Duration::hours(1),
        }
    }

    /// Loads the `MFAD_JWT_*` keys as keys of `default_tenant` (the tenant
    /// `MFAD_JWT_DEFAULT_TENANT` names, which configuration requires when they are set); a
    /// key file that cannot be read or holds no usable key stops the start.
    pub fn load(config: &JwtConfig, default_tenant: Option<&TenantId>) -> anyhow::Result<Self> {
        let mut keys = JwtKeys::none();
        keys.issuer = config.issuer.clone();
        keys.audience = config.audience.clone();
        keys.ttl = time::Duration::try_from(config.ttl).unwrap_or(time::Duration::hours(1));
        let has_keys = config.hs256_secret.is_some() || config.public_keys_file.is_some();
        let Some(tenant) = default_tenant.filter(|_| has_keys) else {
            anyhow::ensure!(
                !has_keys,
                "MFAD_JWT_DEFAULT_TENANT is required with JWT keys"
            );
            return Ok(keys);
        };
        if let Some(secret) = &config.hs256_secret {
            keys.configured.push(TenantKey::hs256(
                tenant.clone(),
                None,
                secret.expose_secret().as_bytes(),
            ));
        }
        if let Some(path) = &config.public_keys_file {
            let public = load_public_keys(path)
                .with_context(|| format!("MFAD_JWT_PUBLIC_KEYS_FILE {}", path.display()))?;
            keys.configured.extend(
                public
                    .into_iter()
                    .map(|k| TenantKey::public(tenant.clone(), k)),
            );
        }
        Ok(keys)
    }

    fn stored_keys(&self) -> Arc<StoredKeys> {
        match self.stored.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the stored keys with `opened` (what the database holds now), unless the
    /// same keys are loaded already. A stored key that no longer parses is left out and
    /// logged; it was checked when added. Returns whether anything changed.
    pub fn reload(&self, opened: Vec<OpenedJwtKey>) -> bool {
        let ids: Vec<JwtKeyId> = opened.iter().map(|k| k.id.clone()).collect();
        if self.stored_keys().ids == ids {
            return false;
        }
        let mut keys = Vec::with_capacity(opened.len());
        for k in opened {
            match tenant_key(&k) {
                Ok(key) => keys.push(key),
                Err(e) => {
                    tracing::error!(key = %k.id, error = %e, "stored JWT key unusable; skipped")
                }
            }
        }
        let fresh = Arc::new(StoredKeys { ids, keys });
        match self.stored.write() {
            Ok(mut g) => *g = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
        true
    }

    /// Verifies a compact JWT at `now`. Every failure is the same `None` (a 401); the
    /// reason is logged at debug level, never the token.
    pub fn verify(&self, token: &str, now: OffsetDateTime) -> Option<VerifiedJwt> {
        let header = match jsonwebtoken::decode_header(token) {
            Ok(h) => h,
            Err(e) => {
                tracing::debug!(error = %e, "JWT refused: unreadable header");
                return None;
            }
        };
        let (tenant, claims) = self.verify_signature(token, &header)?;
        let number = |k: &str| claims.get(k).and_then(Value::as_f64);
        let now_s = now.unix_timestamp() as f64;
        // exp is required; a token is valid strictly before it (RFC 7519 §4.1.4).
        if number("exp").is_none_or(|exp| now_s >= exp) {
            tracing::debug!("JWT refused: expired or without exp");
            return None;
        }
        if claims.contains_key("nbf") && number("nbf").is_none_or(|nbf| now_s < nbf) {
            tracing::debug!("JWT refused: not yet valid");
            return None;
        }
        let user = claims
            .get("sub")
            .and_then(Value::as_str)
            .and_then(UserId::parse);
        let Some(user) = user else {
            tracing::debug!("JWT refused: no usable sub");
            return None;
        };
        let tid = claims.get("tid").map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
        Some(VerifiedJwt { user, tenant, tid })
    }

    fn verify_signature(
        &self,
        token: &str,
        header: &Header,
    ) -> Option<(TenantId, Map<String, Value>)> {
        let stored = self.stored_keys();
        let pinned: Vec<&TenantKey> = self
            .configured
            .iter()
            .chain(stored.keys.iter())
            .filter(|k| k.alg == header.alg)
            .collect();
        let chosen: Vec<&TenantKey> = match &header.kid {
            Some(kid) if pinned.iter().any(|k| k.kid.as_deref() == Some(kid)) => pinned
                .into_iter()
                .filter(|k| k.kid.as_deref() == Some(kid))
                .collect(),
            Some(_) => pinned.into_iter().filter(|k| k.kid.is_none()).collect(),
            None => pinned,
        };
        if chosen.is_empty() {
            tracing::debug!(alg = ?header.alg, "JWT refused: no key for its algorithm and kid");
            return None;
        }
        for k in chosen {
            let mut v = Validation::new(k.alg);
            // Time is checked by the caller against the injected clock.
            v.validate_exp = false;
            v.validate_nbf = false;
            v.leeway = 0;
            v.set_required_spec_claims(&["exp", "sub"]);
            v.validate_aud = self.audience.is_some();
            if let Some(aud) = &self.audience {
                v.set_audience(&[aud]);
            }
            if let Some(iss) = &self.issuer {
                v.set_issuer(&[iss]);
            }
            match jsonwebtoken::decode::<Map<String, Value>>(token, &k.verify, &v) {
                Ok(data) => return Some((k.tenant.clone(), data.claims)),
                Err(e) => tracing::debug!(error = %e, "JWT refused by one key"),
            }
        }
        None
    }

    /// The key that signs `tenant`'s tokens: its newest stored HS256 key, else the
    /// configured secret if it is the default tenant.
    fn signing_key(&self, tenant: &TenantId) -> Option<(Option<String>, EncodingKey)> {
        let stored = self.stored_keys();
        stored
            .keys
            .iter()
            .rev()
            .chain(self.configured.iter())
            .filter(|k| &k.tenant == tenant)
            .find_map(|k| k.sign.clone().map(|s| (k.kid.clone(), s)))
    }

    /// Signs the token of a completed two-factor login with the tenant's HS256 key (its
    /// newest; the default tenant's may be `MFAD_JWT_HS256_SECRET`), when it has one (and
    /// the caller did not ask for none). Claims as FusionAuth fills them where mfad can
    /// honestly: `tid` as the tenant's UUID, a fresh `jti`, `authenticationType`
    /// `ONE_TIME_PASSWORD` (mfad checked a one-time code, never a password), `iss` as
    /// configured, `applicationId` (and `aud`) when given. No `sid`: mfad keeps no
    /// sessions. docs/FUSIONAUTH.md lists what is absent and why.
    pub fn issue(
        &self,
        tenant: &TenantId,
        user: &UserId,
        application_id: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Option<IssuedToken>, jsonwebtoken::errors::Error> {
        let Some((kid, key)) = self.signing_key(tenant) else {
            return Ok(None);
        };
        let expires_at = now + self.ttl;
        let mut claims = json!({
            "sub": user.as_str(),
            "tid": tenant.as_uuid(),
            "jti": uuid::Uuid::new_v4().to_string(),
            "authenticationType": "ONE_TIME_PASSWORD",
            "iat": now.unix_timestamp(),
            "exp": expires_at.unix_timestamp(),
            "auth_time": now.unix_timestamp(),
            "iss": self.issuer.as_deref().unwrap_or("mfad"),
            "amr": ["mfa"],
        });
        if let (Some(app), Some(obj)) = (application_id, claims.as_object_mut()) {
            obj.insert("aud".into(), app.into());
            obj.insert("applicationId".into(), app.into());
        }
        let mut header = Header::new(Algorithm::HS256);
        header.kid = kid;
        let token = jsonwebtoken::encode(&header, &claims, &key)?;
        Ok(Some(IssuedToken { token, expires_at }))
    }
}

/// Builds the verification key of a stored key.
fn tenant_key(k: &OpenedJwtKey) -> anyhow::Result<TenantKey> {
    let tenant = k.tenant_id.clone();
    let mut key = match &k.material {
        OpenJwtMaterial::Hs256(secret) => TenantKey::hs256(tenant, None, secret),
        OpenJwtMaterial::PublicPem(pem) => {
            let block = pem_blocks(pem)?
                .into_iter()
                .next()
                .context("no PEM block")?;
            TenantKey::public(tenant, pem_key(block)?)
        }
        OpenJwtMaterial::Jwk(text) => {
            let jwk: Jwk = serde_json::from_str(text).context("not a JWK")?;
            TenantKey::public(tenant, jwk_key(&jwk)?.context("an encryption key")?)
        }
    };
    key.kid.clone_from(&k.kid);
    anyhow::ensure!(
        Algorithm::from_str(&k.alg).ok() == Some(key.alg),
        "stored alg {} does not match the key",
        k.alg
    );
    Ok(key)
}

/// What a key file given to `mfad jwt-key add` holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFile {
    /// `--hs256-secret-file`: the secret's bytes (one final line break dropped).
    Hs256Secret,
    /// `--public-key-file`: PEM public keys.
    PublicPem,
    /// `--jwks-file`: a JWKS document.
    Jwks,
}

/// Reads a key file for `mfad jwt-key add` into keys to store, checking each one parses
/// and pinning its algorithm. `kid` names the key (a PEM file must then hold one key); for
/// a JWKS, only the key with that `kid` is taken, and without it every key keeps its own.
pub fn read_key_file(
    kind: KeyFile,
    path: &Path,
    kid: Option<&str>,
) -> anyhow::Result<Vec<NewJwtKey>> {
    let bytes =
        Zeroizing::new(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?);
    let kid = kid.map(str::to_owned);
    let text = || std::str::from_utf8(&bytes).context("the file is not UTF-8 text");
    let keys = match kind {
        KeyFile::Hs256Secret => {
            let secret = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
            let secret = secret.strip_suffix(b"\r").unwrap_or(secret);
            vec![NewJwtKey {
                kid,
                alg: "HS256".into(),
                material: OpenJwtMaterial::Hs256(Zeroizing::new(secret.to_vec())),
            }]
        }
        KeyFile::PublicPem => {
            let blocks = pem_blocks(text()?)?;
            anyhow::ensure!(
                kid.is_none() || blocks.len() == 1,
                "--kid names one key, but the file holds {}",
                blocks.len()
            );
            blocks
                .into_iter()
                .map(|block| {
                    Ok(NewJwtKey {
                        kid: kid.clone(),
                        alg: alg_name(pem_key(block)?.alg),
                        material: OpenJwtMaterial::PublicPem(block.to_owned()),
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?
        }
        KeyFile::Jwks => {
            let set: JwkSet = serde_json::from_str(text()?).context("not a JWKS document")?;
            let mut keys = Vec::new();
            for jwk in &set.keys {
                if kid.is_some() && jwk.common.key_id != kid {
                    continue;
                }
                let Some(k) = jwk_key(jwk)? else { continue };
                keys.push(NewJwtKey {
                    kid: k.kid,
                    alg: alg_name(k.alg),
                    material: OpenJwtMaterial::Jwk(serde_json::to_string(jwk)?),
                });
            }
            keys
        }
    };
    anyhow::ensure!(!keys.is_empty(), "no usable key found");
    Ok(keys)
}

fn alg_name(alg: Algorithm) -> String {
    format!("{alg:?}")
}

/// Reads a PEM bundle of public keys or a JWKS document.
fn load_public_keys(path: &Path) -> anyhow::Result<Vec<PublicKey>> {
    let text = std::fs::read_to_string(path).context("reading the file")?;
    let keys = if text.trim_start().starts_with('{') {
        jwks_keys(&text)?
    } else {
        pem_keys(&text)?
    };
    anyhow::ensure!(!keys.is_empty(), "no public key found");
    Ok(keys)
}

fn jwks_keys(text: &str) -> anyhow::Result<Vec<PublicKey>> {
    let set: JwkSet = serde_json::from_str(text).context("not a JWKS document")?;
    let mut out = Vec::new();
    for jwk in &set.keys {
        out.extend(jwk_key(jwk)?);
    }
    Ok(out)
}

/// One JWK, pinned to its algorithm; `None` for an encryption key, which never verifies.
fn jwk_key(jwk: &Jwk) -> anyhow::Result<Option<PublicKey>> {
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return Ok(None);
    }
    let named = jwk
        .common
        .key_algorithm
        .map(|a| {
            let name = serde_json::to_value(a)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned));
            name.and_then(|n| Algorithm::from_str(&n).ok())
                .ok_or_else(|| anyhow::anyhow!("key {:?}: unsupported alg", jwk.common.key_id))
        })
        .transpose()?;
    let alg = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => named.unwrap_or(Algorithm::RS256),
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => Algorithm::ES256,
            EllipticCurve::P384 => Algorithm::ES384,
            _ => anyhow::bail!("key {:?}: unsupported curve", jwk.common.key_id),
        },
        AlgorithmParameters::OctetKeyPair(_) => Algorithm::EdDSA,
        AlgorithmParameters::OctetKey(_) => {
            anyhow::bail!(
                "key {:?}: symmetric keys do not belong in a public key file (use an HS256 secret)",
                jwk.common.key_id
            )
        }
        _ => anyhow::bail!("key {:?}: unsupported key type", jwk.common.key_id),
    };
    // A JWK that names an algorithm of another family is refused, not reinterpreted.
    let family_ok = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => matches!(
            alg,
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512
        ),
        _ => named.is_none_or(|n| n == alg),
    };
    anyhow::ensure!(
        family_ok,
        "key {:?}: alg does not match the key type",
        jwk.common.key_id
    );
    let key = DecodingKey::from_jwk(jwk).with_context(|| format!("key {:?}", jwk.common.key_id))?;
    Ok(Some(PublicKey {
        kid: jwk.common.key_id.clone(),
        alg,
        key,
    }))
}

/// DER of the named curves, as they appear in an EC SubjectPublicKeyInfo.
const OID_P256: &[u8] = &[0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22];

fn pem_keys(text: &str) -> anyhow::Result<Vec<PublicKey>> {
    pem_blocks(text)?.into_iter().map(pem_key).collect()
}

/// The PEM blocks of a bundle, each from `-----BEGIN` to its closing `-----`.
fn pem_blocks(text: &str) -> anyhow::Result<Vec<&str>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let block_and_after = &rest[start..];
        let end_marker = block_and_after
            .find("-----END ")
            .ok_or_else(|| anyhow::anyhow!("unterminated PEM block"))?;
        let after_end = &block_and_after[end_marker + 9..];
        let close = after_end
            .find("-----")
            .ok_or_else(|| anyhow::anyhow!("unterminated PEM block"))?;
        out.push(&block_and_after[..end_marker + 9 + close + 5]);
        rest = &after_end[close + 5..];
    }
    Ok(out)
}

/// One PEM public key, pinned to the algorithm of its type.
fn pem_key(block: &str) -> anyhow::Result<PublicKey> {
    let label = block["-----BEGIN ".len()..]
        .split("-----")
        .next()
        .unwrap_or_default();
    anyhow::ensure!(
        matches!(label, "PUBLIC KEY" | "RSA PUBLIC KEY"),
        "PEM block {label:?}: expected PUBLIC KEY (never a private key)"
    );
    let pem = block.as_bytes();
    let (alg, key) = if let Ok(k) = DecodingKey::from_rsa_pem(pem) {
        (Algorithm::RS256, k)
    } else if let Ok(k) = DecodingKey::from_ec_pem(pem) {
        let der = pem_body(block)?;
        let alg = if contains(&der, OID_P256) {
            Algorithm::ES256
        } else if contains(&der, OID_P384) {
            Algorithm::ES384
        } else {
            anyhow::bail!("EC key on an unsupported curve");
        };
        (alg, k)
    } else if let Ok(k) = DecodingKey::from_ed_pem(pem) {
        (Algorithm::EdDSA, k)
    } else {
        anyhow::bail!("PEM block is not an RSA, EC or Ed25519 public key");
    };
    Ok(PublicKey {
        kid: None,
        alg,
        key,
    })
}

fn pem_body(block: &str) -> anyhow::Result<Vec<u8>> {
    let b64: String = block
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .flat_map(|l| l.trim().chars())
        .collect();
    data_encoding::BASE64
        .decode(b64.as_bytes())
        .context("PEM body is not base64")
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ec_pair() -> rcgen::KeyPair {
        rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap()
    }

    #[test]
    fn pem_keys_are_pinned_by_type_and_private_keys_are_refused() {
        let pair = ec_pair();
        let keys = pem_keys(&pair.public_key_pem()).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].alg, Algorithm::ES256);
        let p384 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        assert_eq!(
            pem_keys(&p384.public_key_pem()).unwrap()[0].alg,
            Algorithm::ES384
        );
        assert!(
            pem_keys(&pair.serialize_pem()).is_err(),
            "a private key is not a public key"
        );
        assert!(pem_keys("-----BEGIN PUBLIC KEY-----\nAAAA\n").is_err());
    }

    #[test]
    fn jwks_refuses_symmetric_keys_and_mismatched_algorithms() {
        let oct = r#"{"keys":[{"kty":"oct","k":"c2VjcmV0","alg":"HS256"}]}"#;
        assert!(jwks_keys(oct).is_err());
        let ec = r#"{"keys":[{"kty":"EC","crv":"P-256","alg":"RS256",
            "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;
        assert!(jwks_keys(ec).is_err());
        let ec_ok = ec.replace("RS256", "ES256");
        let keys = jwks_keys(&ec_ok).unwrap();
        assert_eq!(keys[0].alg, Algorithm::ES256);
    }

    #[test]
    fn tokens_are_checked_against_the_given_clock_and_bound_to_the_keys_tenant() {
        let t0 = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let tenant = TenantId::generate(t0).unwrap();
        let config = JwtConfig {
            hs256_secret: Some("x".repeat(32).into()),
            default_tenant: Some("acme".into()),
            ttl: std::time::Duration::from_secs(60),
            ..JwtConfig::default()
        };
        let keys = JwtKeys::load(&config, Some(&tenant)).unwrap();
        let user = UserId::parse("u-1").unwrap();
        let issued = keys
            .issue(&tenant, &user, Some("app"), t0)
            .unwrap()
            .unwrap();
        let v = keys.verify(&issued.token, t0).unwrap();
        assert_eq!(v.user, user);
        assert_eq!(v.tenant, tenant);
        assert!(v.tid_agrees());
        assert!(
            keys.verify(&issued.token, t0 + time::Duration::seconds(59))
                .is_some()
        );
        assert!(
            keys.verify(&issued.token, t0 + time::Duration::seconds(60))
                .is_none()
        );
        let other = TenantId::generate(t0).unwrap();
        assert!(
            keys.issue(&other, &user, None, t0).unwrap().is_none(),
            "another tenant has no signing key"
        );
        assert!(
            JwtKeys::none().verify(&issued.token, t0).is_none(),
            "no keys, no tokens"
        );
        assert!(
            JwtKeys::load(&config, None).is_err(),
            "configured keys need their tenant"
        );
    }

    #[test]
    fn stored_keys_verify_for_their_tenant_and_rotate_by_kid() {
        let t0 = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let (a, b) = (
            TenantId::generate(t0).unwrap(),
            TenantId::generate(t0).unwrap(),
        );
        let opened = |tenant: &TenantId, kid: &str, secret: &[u8]| OpenedJwtKey {
            id: JwtKeyId::generate(t0).unwrap(),
            tenant_id: tenant.clone(),
            kid: Some(kid.into()),
            alg: "HS256".into(),
            material: OpenJwtMaterial::Hs256(Zeroizing::new(secret.to_vec())),
        };
        let keys = JwtKeys::none();
        let set = vec![
            opened(&a, "k1", &[1; 32]),
            opened(&a, "k2", &[2; 32]),
            opened(&b, "k1", &[3; 32]),
        ];
        assert!(keys.reload(set.clone()));
        assert!(!keys.reload(set.clone()), "same ids: nothing to rebuild");
        let sign = |kid: &str, secret: &[u8], tid: Option<&TenantId>| {
            let mut header = Header::new(Algorithm::HS256);
            header.kid = Some(kid.into());
            let mut claims = json!({"sub": "u", "exp": t0.unix_timestamp() + 60});
            if let Some(t) = tid {
                claims["tid"] = t.as_uuid().into();
            }
            jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(secret)).unwrap()
        };
        for (kid, secret, tenant) in [
            ("k1", [1; 32], &a),
            ("k2", [2; 32], &a),
            ("k1", [3; 32], &b),
        ] {
            let v = keys.verify(&sign(kid, &secret, None), t0).unwrap();
            assert_eq!(&v.tenant, tenant);
        }
        // The right key under the wrong kid is refused: kids select.
        assert!(keys.verify(&sign("k2", &[1; 32], None), t0).is_none());
        // A tid in UUID form agrees with its tenant; another tenant's does not.
        assert!(
            keys.verify(&sign("k1", &[1; 32], Some(&a)), t0)
                .unwrap()
                .tid_agrees()
        );
        assert!(
            !keys
                .verify(&sign("k1", &[1; 32], Some(&b)), t0)
                .unwrap()
                .tid_agrees()
        );
        // The newest key signs; removing it falls back to the older one.
        let user = UserId::parse("u").unwrap();
        let issued = keys.issue(&a, &user, None, t0).unwrap().unwrap();
        assert_eq!(
            jsonwebtoken::decode_header(&issued.token)
                .unwrap()
                .kid
                .as_deref(),
            Some("k2")
        );
        assert!(keys.reload(vec![set[0].clone()]));
        assert!(
            keys.verify(&sign("k2", &[2; 32], None), t0).is_none(),
            "removed key"
        );
        assert!(
            keys.verify(&sign("k1", &[3; 32], None), t0).is_none(),
            "removed tenant"
        );
        let issued = keys.issue(&a, &user, None, t0).unwrap().unwrap();
        assert_eq!(
            jsonwebtoken::decode_header(&issued.token)
                .unwrap()
                .kid
                .as_deref(),
            Some("k1")
        );
    }
}
