//! Phone numbers: parsed and validated against libphonenumber's numbering plans, kept in
//! E.164. Logs only ever see [`PhoneNumber::redacted`].

use crate::error::CoreError;

/// A valid phone number in E.164 form (`+14155552671`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Parses international input (`+1 415-555-2671`, `14155552671`, `+44 20 7946 0958`).
    /// Numbers without a `+` are read as international digits, which is how WorkOS
    /// treats `16073517112`. Impossible or invalid numbers are refused.
    pub fn parse(input: &str) -> Result<Self, CoreError> {
        let invalid = || CoreError::InvalidPhoneNumber {
            input: input.chars().take(64).collect(),
        };
        let trimmed = input.trim();
        if trimmed.is_empty() || trimmed.len() > 32 {
            return Err(invalid());
        }
        let international = if trimmed.starts_with('+') {
            trimmed.to_owned()
        } else {
            format!("+{trimmed}")
        };
        let parsed = phonenumber::parse(None, &international).map_err(|_| invalid())?;
        if !phonenumber::is_valid(&parsed) {
            return Err(invalid());
        }
        Ok(PhoneNumber(
            parsed.format().mode(phonenumber::Mode::E164).to_string(),
        ))
    }

    /// Wraps a value read back from storage (validated when written).
    pub fn from_trusted(e164: String) -> Self {
        PhoneNumber(e164)
    }

    /// The E.164 form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A form safe for logs: country code and last two digits only.
    pub fn redacted(&self) -> String {
        let digits: Vec<char> = self.0.chars().collect();
        let keep_tail = 2.min(digits.len());
        let head: String = digits.iter().take(3.min(digits.len())).collect();
        let tail: String = digits[digits.len() - keep_tail..].iter().collect();
        format!("{head}…{tail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_to_e164() {
        for (input, want) in [
            ("+1 415 555 2671", "+14155552671"),
            ("+1 (415) 555-2671", "+14155552671"),
            ("14155552671", "+14155552671"),
            ("+44 20 7946 0958", "+442079460958"),
        ] {
            assert_eq!(PhoneNumber::parse(input).unwrap().as_str(), want, "{input}");
        }
    }

    #[test]
    fn refuses_impossible_numbers() {
        for bad in [
            "",
            "foo",
            "+1",
            "+1 000 000 0000",
            "+999 123",
            "12",
            &"9".repeat(40),
        ] {
            assert!(
                matches!(
                    PhoneNumber::parse(bad),
                    Err(CoreError::InvalidPhoneNumber { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn redaction_hides_the_middle() {
        let p = PhoneNumber::parse("+14155552671").unwrap();
        let r = p.redacted();
        assert!(!r.contains("555"), "{r}");
        assert!(r.ends_with("71"));
    }
}
