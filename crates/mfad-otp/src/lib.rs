//! RFC 4226 (HOTP) and RFC 6238 (TOTP), with an explicit step window.
//!
//! Pure functions of `(secret, counter or time)`: no clock, no I/O, no state. Replay
//! protection (the last accepted step) is the caller's policy, expressed by passing
//! `after_step` to [`Totp::verify`], so the same window logic serves every store.

use hmac::{Hmac, KeyInit, Mac};
use subtle::ConstantTimeEq;

/// The HMAC hash a factor uses. SHA-1 is what authenticator apps default to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Algorithm {
    /// HMAC-SHA-1 (RFC 4226, the default of every authenticator app).
    #[default]
    Sha1,
    /// HMAC-SHA-256 (RFC 6238).
    Sha256,
    /// HMAC-SHA-512 (RFC 6238).
    Sha512,
}

impl Algorithm {
    /// The name used in `otpauth://` URIs (`SHA1`, `SHA256`, `SHA512`).
    pub fn uri_name(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "SHA1",
            Algorithm::Sha256 => "SHA256",
            Algorithm::Sha512 => "SHA512",
        }
    }

    /// Parses a URI or database name, case-insensitively.
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_uppercase().as_str() {
            "SHA1" | "SHA-1" => Some(Algorithm::Sha1),
            "SHA256" | "SHA-256" => Some(Algorithm::Sha256),
            "SHA512" | "SHA-512" => Some(Algorithm::Sha512),
            _ => None,
        }
    }
}

fn mac(alg: Algorithm, key: &[u8], msg: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail; the fallback is
    // unreachable but keeps this function total without a panic path.
    fn run<M: Mac + KeyInit>(key: &[u8], msg: &[u8]) -> Vec<u8> {
        match <M as KeyInit>::new_from_slice(key) {
            Ok(mut m) => {
                m.update(msg);
                m.finalize().into_bytes().to_vec()
            }
            Err(_) => Vec::new(),
        }
    }
    match alg {
        Algorithm::Sha1 => run::<Hmac<sha1::Sha1>>(key, msg),
        Algorithm::Sha256 => run::<Hmac<sha2::Sha256>>(key, msg),
        Algorithm::Sha512 => run::<Hmac<sha2::Sha512>>(key, msg),
    }
}

/// RFC 4226 §5.3: the HOTP value for `counter`, reduced to `digits` decimal digits.
pub fn hotp(alg: Algorithm, secret: &[u8], counter: u64, digits: u8) -> u32 {
    let h = mac(alg, secret, &counter.to_be_bytes());
    let Some(last) = h.last() else { return 0 };
    let offset = usize::from(last & 0x0f);
    let bin = match h.get(offset..offset + 4) {
        Some(&[a, b, c, d]) => u32::from_be_bytes([a & 0x7f, b, c, d]),
        _ => 0,
    };
    bin % 10u32.pow(u32::from(digits.min(9)))
}

/// [`hotp`] formatted as a zero-padded string of exactly `digits` characters.
pub fn hotp_string(alg: Algorithm, secret: &[u8], counter: u64, digits: u8) -> String {
    format!(
        "{:0width$}",
        hotp(alg, secret, counter, digits),
        width = usize::from(digits)
    )
}

/// TOTP parameters of one factor (RFC 6238) plus the verification window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totp {
    /// HMAC hash.
    pub algorithm: Algorithm,
    /// Code length, 6 to 8.
    pub digits: u8,
    /// Step length in seconds (30 by default).
    pub period: u64,
    /// Steps accepted either side of the current one, for clock drift.
    pub skew: u64,
}

impl Default for Totp {
    fn default() -> Self {
        Totp {
            algorithm: Algorithm::Sha1,
            digits: 6,
            period: 30,
            skew: 1,
        }
    }
}

impl Totp {
    /// The time step containing `unix_secs` (T0 = 0).
    pub fn step_at(&self, unix_secs: u64) -> u64 {
        unix_secs / self.period.max(1)
    }

    /// The code for a given step.
    pub fn code_at_step(&self, secret: &[u8], step: u64) -> String {
        hotp_string(self.algorithm, secret, step, self.digits)
    }

    /// The code at a Unix time.
    pub fn code_at(&self, secret: &[u8], unix_secs: u64) -> String {
        self.code_at_step(secret, self.step_at(unix_secs))
    }

    /// Checks `code` against the steps within `skew` of `unix_secs`, considering only
    /// steps strictly greater than `after_step` (the last step this factor accepted), so
    /// a code once accepted, or any older one, never passes again.
    ///
    /// Returns the matching step. Every candidate is compared in constant time and the
    /// loop does not stop early, so timing does not reveal which step matched.
    pub fn verify(
        &self,
        secret: &[u8],
        code: &str,
        unix_secs: u64,
        after_step: Option<u64>,
    ) -> Option<u64> {
        if !is_code_shaped(code, self.digits) {
            return None;
        }
        let now = self.step_at(unix_secs);
        let mut found = None;
        for step in now.saturating_sub(self.skew)..=now.saturating_add(self.skew) {
            let candidate = self.code_at_step(secret, step);
            let eq: bool = candidate.as_bytes().ct_eq(code.as_bytes()).into();
            let fresh = after_step.is_none_or(|last| step > last);
            if eq && fresh && found.is_none() {
                found = Some(step);
            }
        }
        found
    }
}

/// True when `code` is exactly `digits` ASCII digits.
pub fn is_code_shaped(code: &str, digits: u8) -> bool {
    code.len() == usize::from(digits) && code.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 4226 Appendix D.
    #[test]
    fn rfc4226_vectors() {
        let secret = b"12345678901234567890";
        let expected = [
            755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489,
        ];
        for (counter, want) in expected.iter().enumerate() {
            assert_eq!(hotp(Algorithm::Sha1, secret, counter as u64, 6), *want);
        }
    }

    // RFC 6238 Appendix B (8 digits, the seeds of each hash's length).
    #[test]
    fn rfc6238_vectors() {
        let sha1 = b"12345678901234567890".as_slice();
        let sha256 = b"12345678901234567890123456789012".as_slice();
        let sha512 = b"1234567890123456789012345678901234567890123456789012345678901234".as_slice();
        let rows: [(u64, &str, &str, &str); 6] = [
            (59, "94287082", "46119246", "90693936"),
            (1111111109, "07081804", "68084774", "25091201"),
            (1111111111, "14050471", "67062674", "99943326"),
            (1234567890, "89005924", "91819424", "93441116"),
            (2000000000, "69279037", "90698825", "38618901"),
            (20000000000, "65353130", "77737706", "47863826"),
        ];
        for (t, c1, c256, c512) in rows {
            for (alg, secret, want) in [
                (Algorithm::Sha1, sha1, c1),
                (Algorithm::Sha256, sha256, c256),
                (Algorithm::Sha512, sha512, c512),
            ] {
                let totp = Totp {
                    algorithm: alg,
                    digits: 8,
                    ..Totp::default()
                };
                assert_eq!(totp.code_at(secret, t), want, "{alg:?} at {t}");
            }
        }
    }

    #[test]
    fn window_accepts_adjacent_steps_only() {
        let totp = Totp::default();
        let secret = b"12345678901234567890";
        let now = 1_000_000_020; // step 33_333_334, 20 s into it
        let step = totp.step_at(now);
        for (delta, ok) in [(-2i64, false), (-1, true), (0, true), (1, true), (2, false)] {
            let s = step.checked_add_signed(delta).unwrap();
            let code = totp.code_at_step(secret, s);
            assert_eq!(
                totp.verify(secret, &code, now, None).is_some(),
                ok,
                "{delta}"
            );
        }
    }

    #[test]
    fn replay_and_older_steps_refused_after_acceptance() {
        let totp = Totp::default();
        let secret = b"12345678901234567890";
        let now = 1_700_000_000;
        let step = totp.step_at(now);
        let code = totp.code_at_step(secret, step);
        assert_eq!(totp.verify(secret, &code, now, None), Some(step));
        assert_eq!(totp.verify(secret, &code, now, Some(step)), None);
        let previous = totp.code_at_step(secret, step - 1);
        assert_eq!(totp.verify(secret, &previous, now, Some(step)), None);
        let next = totp.code_at_step(secret, step + 1);
        assert_eq!(totp.verify(secret, &next, now, Some(step)), Some(step + 1));
    }

    #[test]
    fn malformed_codes_never_match() {
        let totp = Totp::default();
        let secret = b"12345678901234567890";
        let code = totp.code_at(secret, 59);
        for bad in [
            "",
            "12345",
            "1234567",
            "12a456",
            " 94287",
            &format!("{code} "),
        ] {
            assert_eq!(totp.verify(secret, bad, 59, None), None, "{bad:?}");
        }
    }

    #[test]
    fn algorithm_names_round_trip() {
        for alg in [Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512] {
            assert_eq!(Algorithm::parse(alg.uri_name()), Some(alg));
        }
        assert_eq!(Algorithm::parse("md5"), None);
    }
}
