//! JWTs on the FusionAuth API: verifying `Authorization: Bearer <jwt>` (the user is the
//! `sub`) and signing the `token` of a completed two-factor login.
//!
//! Every key is pinned to one algorithm when it is loaded: the HS256 secret to HS256, an
//! RSA key to RS256 (or the `alg` its JWK names), a P-256 key to ES256, and so on. A
//! token is tried only against keys pinned to the algorithm its header names, so `none`
//! never verifies and an RS256 public key is never used as an HMAC secret (the classic
//! HS/RS confusion). `exp` is required and `nbf` honoured, both against the injected
//! clock rather than the system's, so tests move time the same way for every check.

use std::path::Path;
use std::str::FromStr;

use anyhow::Context;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use mfad_core::{TenantId, UserId};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::config::JwtConfig;

/// A verification key and the one algorithm it accepts.
struct PublicKey {
    kid: Option<String>,
    alg: Algorithm,
    key: DecodingKey,
}

/// The configured JWT keys.
pub struct JwtKeys {
    hs256: Option<(DecodingKey, EncodingKey)>,
    public: Vec<PublicKey>,
    issuer: Option<String>,
    audience: Option<String>,
    ttl: time::Duration,
}

impl std::fmt::Debug for JwtKeys {
    // Keys stay out of logs; only their number and algorithms show.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys")
            .field("hs256", &self.hs256.is_some())
            .field(
                "public",
                &self.public.iter().map(|k| k.alg).collect::<Vec<_>>(),
            )
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
    /// The `tid` claim (FusionAuth's tenant id claim), when present.
    pub tenant: Option<String>,
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
            hs256: None,
            public: Vec::new(),
            issuer: None,
            audience: None,
            ttl: time::Duration::hours(1),
        }
    }

    /// Loads the configured keys; a key file that cannot be read or holds no usable key
    /// stops the start.
    pub fn load(config: &JwtConfig) -> anyhow::Result<Self> {
        let mut keys = JwtKeys::none();
        keys.issuer = config.issuer.clone();
        keys.audience = config.audience.clone();
        keys.ttl = time::Duration::try_from(config.ttl).unwrap_or(time::Duration::hours(1));
        if let Some(secret) = &config.hs256_secret {
            keys.hs256 = Some((
                DecodingKey::from_secret(secret.as_bytes()),
                EncodingKey::from_secret(secret.as_bytes()),
            ));
        }
        if let Some(path) = &config.public_keys_file {
            keys.public = load_public_keys(path)
                .with_context(|| format!("MFAD_JWT_PUBLIC_KEYS_FILE {}", path.display()))?;
        }
        Ok(keys)
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
        let claims = self.verify_signature(token, &header)?;
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
        let tenant = claims.get("tid").and_then(Value::as_str).map(str::to_owned);
        Some(VerifiedJwt { user, tenant })
    }

    fn verify_signature(&self, token: &str, header: &Header) -> Option<Map<String, Value>> {
        let mut candidates: Vec<(&DecodingKey, Algorithm)> = Vec::new();
        if header.alg == Algorithm::HS256 {
            if let Some((key, _)) = &self.hs256 {
                candidates.push((key, Algorithm::HS256));
            }
        } else {
            let pinned = self.public.iter().filter(|k| k.alg == header.alg);
            let by_kid: Vec<&PublicKey> = match &header.kid {
                Some(kid) => pinned
                    .clone()
                    .filter(|k| k.kid.as_deref() == Some(kid))
                    .collect(),
                None => Vec::new(),
            };
            let chosen: Vec<&PublicKey> = if by_kid.is_empty() {
                pinned.collect()
            } else {
                by_kid
            };
            candidates.extend(chosen.into_iter().map(|k| (&k.key, k.alg)));
        }
        if candidates.is_empty() {
            tracing::debug!(alg = ?header.alg, "JWT refused: no key for its algorithm");
            return None;
        }
        for (key, alg) in candidates {
            let mut v = Validation::new(alg);
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
            match jsonwebtoken::decode::<Map<String, Value>>(token, key, &v) {
                Ok(data) => return Some(data.claims),
                Err(e) => tracing::debug!(error = %e, "JWT refused by one key"),
            }
        }
        None
    }

    /// Signs the token of a completed two-factor login, when an HS256 secret is
    /// configured (and the caller did not ask for none). Claims as FusionAuth fills them
    /// where mfad can honestly: `tid` as the tenant's UUID, a fresh `jti`,
    /// `authenticationType` `ONE_TIME_PASSWORD` (mfad checked a one-time code, never a
    /// password), `iss` as configured, `applicationId` (and `aud`) when given. No `sid`:
    /// mfad keeps no sessions. docs/FUSIONAUTH.md lists what is absent and why.
    pub fn issue(
        &self,
        tenant: &TenantId,
        user: &UserId,
        application_id: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Option<IssuedToken>, jsonwebtoken::errors::Error> {
        let Some((_, key)) = &self.hs256 else {
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
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, key)?;
        Ok(Some(IssuedToken { token, expires_at }))
    }
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
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            continue;
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
                    "key {:?}: symmetric keys do not belong in a public key file (use MFAD_JWT_HS256_SECRET)",
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
        let key =
            DecodingKey::from_jwk(jwk).with_context(|| format!("key {:?}", jwk.common.key_id))?;
        out.push(PublicKey {
            kid: jwk.common.key_id.clone(),
            alg,
            key,
        });
    }
    Ok(out)
}

/// DER of the named curves, as they appear in an EC SubjectPublicKeyInfo.
const OID_P256: &[u8] = &[0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22];

fn pem_keys(text: &str) -> anyhow::Result<Vec<PublicKey>> {
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
        let block = &block_and_after[..end_marker + 9 + close + 5];
        rest = &after_end[close + 5..];
        let label = block["-----BEGIN ".len()..]
            .split("-----")
            .next()
            .unwrap_or_default();
        anyhow::ensure!(
            matches!(label, "PUBLIC KEY" | "RSA PUBLIC KEY"),
            "PEM block {label:?}: expected PUBLIC KEY (never a private key)"
        );
        let pem = block.as_bytes();
        let key = if let Ok(k) = DecodingKey::from_rsa_pem(pem) {
            PublicKey {
                kid: None,
                alg: Algorithm::RS256,
                key: k,
            }
        } else if let Ok(k) = DecodingKey::from_ec_pem(pem) {
            let der = pem_body(block)?;
            let alg = if contains(&der, OID_P256) {
                Algorithm::ES256
            } else if contains(&der, OID_P384) {
                Algorithm::ES384
            } else {
                anyhow::bail!("EC key on an unsupported curve");
            };
            PublicKey {
                kid: None,
                alg,
                key: k,
            }
        } else if let Ok(k) = DecodingKey::from_ed_pem(pem) {
            PublicKey {
                kid: None,
                alg: Algorithm::EdDSA,
                key: k,
            }
        } else {
            anyhow::bail!("PEM block is not an RSA, EC or Ed25519 public key");
        };
        out.push(key);
    }
    Ok(out)
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
    fn tokens_are_checked_against_the_given_clock() {
        let config = JwtConfig {
            hs256_secret: Some("x".repeat(32)),
            ttl: std::time::Duration::from_secs(60),
            ..JwtConfig::default()
        };
        let keys = JwtKeys::load(&config).unwrap();
        let t0 = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let tenant = TenantId::generate(t0).unwrap();
        let user = UserId::parse("u-1").unwrap();
        let issued = keys
            .issue(&tenant, &user, Some("app"), t0)
            .unwrap()
            .unwrap();
        let v = keys.verify(&issued.token, t0).unwrap();
        assert_eq!(v.user, user);
        assert_eq!(v.tenant.as_deref(), Some(tenant.as_str()));
        assert!(
            keys.verify(&issued.token, t0 + time::Duration::seconds(59))
                .is_some()
        );
        assert!(
            keys.verify(&issued.token, t0 + time::Duration::seconds(60))
                .is_none()
        );
        assert!(
            JwtKeys::none().verify(&issued.token, t0).is_none(),
            "no keys, no tokens"
        );
        assert!(
            JwtKeys::none()
                .issue(&tenant, &user, None, t0)
                .unwrap()
                .is_none()
        );
    }
}
