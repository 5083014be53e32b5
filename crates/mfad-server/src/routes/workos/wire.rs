//! WorkOS wire objects (`authentication_factor`, `authentication_challenge`, list
//! envelopes), built from domain records. Timestamps are ISO 8601 with exactly three
//! fractional digits and `Z`, which Python's `fromisoformat` needs.

use mfad_core::model::{Challenge, Factor, FactorDetails, FactorType, Page};
use mfad_core::service::TotpSecrets;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::macros::format_description;

/// `2022-03-27T05:15:26.432Z`.
pub fn timestamp(t: OffsetDateTime) -> String {
    let fmt =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    t.to_offset(time::UtcOffset::UTC)
        .format(&fmt)
        .unwrap_or_default()
}

/// WorkOS's name of a factor type. Email factors (enabled through the FusionAuth API) are
/// not a WorkOS type; they behave as generic OTP on this API (a challenge returns the
/// code), so they show as one.
pub fn factor_type(t: FactorType) -> &'static str {
    match t {
        FactorType::Totp => "totp",
        FactorType::Sms => "sms",
        FactorType::GenericOtp | FactorType::Email => "generic_otp",
    }
}

/// The factor type WorkOS names `name`.
pub fn parse_factor_type(name: &str) -> Option<FactorType> {
    match name {
        "totp" => Some(FactorType::Totp),
        "sms" => Some(FactorType::Sms),
        "generic_otp" => Some(FactorType::GenericOtp),
        _ => None,
    }
}

/// An `authentication_factor`; with `secrets`, the enrollment form.
pub fn factor(f: &Factor, secrets: Option<&TotpSecrets>) -> Value {
    let mut m = Map::new();
    m.insert("object".into(), "authentication_factor".into());
    m.insert("id".into(), f.id.as_str().into());
    m.insert("created_at".into(), timestamp(f.created_at).into());
    m.insert("updated_at".into(), timestamp(f.updated_at).into());
    m.insert("type".into(), factor_type(f.details.factor_type()).into());
    match &f.details {
        FactorDetails::Totp(t) => {
            let mut totp = json!({"issuer": t.issuer, "user": t.user});
            if let (Some(s), Some(obj)) = (secrets, totp.as_object_mut()) {
                obj.insert("qr_code".into(), s.qr_code.as_str().into());
                obj.insert("secret".into(), s.secret.as_str().into());
                obj.insert("uri".into(), s.uri.as_str().into());
            }
            m.insert("totp".into(), totp);
        }
        FactorDetails::Sms { phone } => {
            m.insert("sms".into(), json!({"phone_number": phone.as_str()}));
        }
        FactorDetails::GenericOtp | FactorDetails::Email { .. } => {}
    }
    if let Some(u) = &f.user_id {
        m.insert("user_id".into(), u.as_str().into());
    }
    Value::Object(m)
}

/// Whether a challenge of this factor type shows its code on WorkOS's API: generic OTP
/// (and email, which shows as generic OTP here), whose code the caller delivers.
pub fn shows_code(kind: FactorType) -> bool {
    matches!(kind, FactorType::GenericOtp | FactorType::Email)
}

/// An `authentication_challenge`; `code` only for generic OTP.
pub fn challenge(c: &Challenge, code: Option<&str>) -> Value {
    let mut m = Map::new();
    m.insert("object".into(), "authentication_challenge".into());
    m.insert("id".into(), c.id.as_str().into());
    m.insert("created_at".into(), timestamp(c.created_at).into());
    m.insert("updated_at".into(), timestamp(c.created_at).into());
    m.insert("expires_at".into(), timestamp(c.expires_at).into());
    if let Some(code) = code {
        m.insert("code".into(), code.into());
    }
    m.insert(
        "authentication_factor_id".into(),
        c.factor_id.as_str().into(),
    );
    Value::Object(m)
}

/// A `list` envelope: the page's items and its `list_metadata` cursors.
pub fn list<T>(page: &Page<T>, item: impl Fn(&T) -> Value) -> Value {
    json!({
        "object": "list",
        "data": page.data.iter().map(item).collect::<Vec<_>>(),
        "list_metadata": {"before": page.before, "after": page.after},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_have_milliseconds_and_z() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_648_358_126_432_000_000).unwrap();
        assert_eq!(timestamp(t), "2022-03-27T05:15:26.432Z");
        let t = OffsetDateTime::from_unix_timestamp(1_648_358_126).unwrap();
        assert_eq!(timestamp(t), "2022-03-27T05:15:26.000Z");
    }
}
