//! FusionAuth carries a passkey's public key as a PEM SubjectPublicKeyInfo plus its COSE
//! algorithm; webauthn-rs keeps a COSE key. Both directions go through crypto-glue (the
//! RustCrypto facade webauthn-rs itself uses), never hand-written DER.

use crypto_glue::ecdsa_p256::EcdsaP256PublicKey;
use crypto_glue::ecdsa_p384::{self, EcdsaP384PublicKey, EcdsaP384PublicSec1Point};
use crypto_glue::rsa::{BigUint, RS256PublicKey};
use crypto_glue::traits::{
    LineEndingPem, PublicKeyParts, SpkiDecodePublicKey, SpkiEncodePublicKey,
};
use webauthn_rs::prelude::{
    COSEAlgorithm, COSEEC2Key, COSEKey, COSEKeyType, COSERSAKey, ECDSACurve,
};

/// The algorithms an imported key may have (FusionAuth's ES256, ES384 and RS256).
pub const IMPORTABLE: &str = "-7 (ES256), -35 (ES384) or -257 (RS256)";

/// The COSE key of a PEM SPKI public key of COSE algorithm `alg`; `None` when the PEM is
/// no key of that algorithm.
pub fn cose_from_pem(alg: i64, pem: &str) -> Option<COSEKey> {
    let pem = pem.trim();
    let key = match alg {
        -7 => {
            let k = EcdsaP256PublicKey::from_public_key_pem(pem).ok()?;
            return COSEKey::try_from(&k).ok();
        }
        -35 => {
            let k = EcdsaP384PublicKey::from_public_key_pem(pem).ok()?;
            let point = EcdsaP384PublicSec1Point::from(k);
            COSEKeyType::EC_EC2(COSEEC2Key {
                curve: ECDSACurve::SECP384R1,
                x: point.x()?.to_vec(),
                y: point.y()?.to_vec(),
            })
        }
        -257 => {
            let k = RS256PublicKey::from_public_key_pem(pem).ok()?;
            let e_bytes = k.e().to_be_bytes();
            let e = unsigned(&e_bytes);
            let mut e3 = [0u8; 3];
            // COSE (as webauthn-rs models it) holds a 3-byte exponent.
            let start = e3.len().checked_sub(e.len())?;
            e3[start..].copy_from_slice(e);
            COSEKeyType::RSA(COSERSAKey {
                n: unsigned(&k.n().to_be_bytes()).to_vec(),
                e: e3,
            })
        }
        _ => return None,
    };
    let type_ = match alg {
        -35 => COSEAlgorithm::ES384,
        _ => COSEAlgorithm::RS256,
    };
    Some(COSEKey { type_, key })
}

/// The PEM SPKI of a stored COSE key (`None` for a key type PEM cannot carry here).
pub fn pem_from_cose(key: &COSEKey) -> Option<String> {
    let pem = match &key.key {
        COSEKeyType::EC_EC2(ec) => match ec.curve {
            ECDSACurve::SECP256R1 => EcdsaP256PublicKey::try_from(ec)
                .ok()?
                .to_public_key_pem(LineEndingPem::LF),
            ECDSACurve::SECP384R1 => {
                ecdsa_p384::from_coords_raw(&ec.x, &ec.y)?.to_public_key_pem(LineEndingPem::LF)
            }
            ECDSACurve::SECP521R1 => return None,
        },
        COSEKeyType::RSA(r) => RS256PublicKey::new(
            BigUint::from_be_slice_vartime(&r.n),
            BigUint::from_be_slice_vartime(&r.e),
        )
        .ok()?
        .to_public_key_pem(LineEndingPem::LF),
        COSEKeyType::EC_OKP(_) => return None,
    };
    pem.ok()
}

/// Big-endian bytes without leading zeros.
fn unsigned(b: &[u8]) -> &[u8] {
    let first = b.iter().position(|x| *x != 0).unwrap_or(b.len());
    &b[first..]
}

#[cfg(test)]
mod tests {
    use super::*;

    // Public keys made by `openssl genpkey … | openssl pkey -pubout`.
    const RSA: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA2oD8R+YwcEav+JKBtjqj
jSU+7KZU2j1z8dUGA3asqh7+7JkKnVrnFDT3LZaaqHf5JI97NlvlT62ZBh7HR+D+
7wiu0RSLnFswFK56guykDj40Flc0BDkG+qqrYYP9Frr4RI8a2F+y7QWkj8cwWKUs
xyXql5vZ72BzvqIW7GEufKNmXGFscA9Hdys5o89Pf1f35rhy/3bYu5mplgJ4caqJ
YDxyFFKiyAswgTNowumbuTBhDm28reikrJ3hE+Qgvbz26eeRmv5PrBGTH17mzxpE
/q1MGoCfs/UCqmpoX8yUhflZhazlOMnVszlgAsVsvLUjMoR0GCt9mh9Yqv+0RolI
BwIDAQAB
-----END PUBLIC KEY-----
";
    const P384: &str = "-----BEGIN PUBLIC KEY-----
MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAElQ329E9beQqRX86r6poKtXby8c9lbltc
nKaiIVq+ZC+M6mouQweRnICAFXKWGLflbBeWgR+xlCmZm2QmZRAQye940Tk0MX9S
MvBiFj7FUSfsg6gTtKTPio6jQjHfLckN
-----END PUBLIC KEY-----
";

    #[test]
    fn rsa_and_p384_keys_round_trip() {
        let rsa = cose_from_pem(-257, RSA).unwrap();
        assert_eq!(rsa.type_, COSEAlgorithm::RS256);
        let COSEKeyType::RSA(r) = &rsa.key else {
            panic!("{rsa:?}")
        };
        assert_eq!(r.e, [1, 0, 1]);
        assert_eq!(r.n.len(), 256);
        assert_eq!(pem_from_cose(&rsa).unwrap(), RSA);

        let p384 = cose_from_pem(-35, P384).unwrap();
        assert_eq!(p384.type_, COSEAlgorithm::ES384);
        assert_eq!(pem_from_cose(&p384).unwrap(), P384);
    }

    #[test]
    fn a_key_of_another_algorithm_is_refused() {
        assert!(cose_from_pem(-7, RSA).is_none());
        assert!(cose_from_pem(-7, P384).is_none());
        assert!(cose_from_pem(-257, P384).is_none());
        assert!(cose_from_pem(-8, P384).is_none());
        assert!(cose_from_pem(-35, "not a key").is_none());
    }
}
