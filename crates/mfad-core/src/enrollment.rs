//! What an authenticator app needs at enrollment: the base32 secret, the Key URI
//! (`otpauth://totp/Issuer:user?secret=…&issuer=…&algorithm=SHA1&digits=6&period=30`)
//! and a QR code of that URI as a `data:image/png;base64,…` URI.

use data_encoding::{BASE32_NOPAD, BASE64};
use fast_qr::{ECL, QRBuilder};
use mfad_crypto::Zeroizing;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::error::CoreError;
use crate::model::TotpFactor;

/// Characters left unescaped in URI components: RFC 3986 unreserved plus `@` (harmless in
/// the label, and what authenticator apps and WorkOS's own URIs show for emails).
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'@');

/// Bytes of a generated TOTP secret: 160 bits, RFC 4226's recommendation and what
/// WorkOS issues (32 base32 characters).
pub const SECRET_BYTES: usize = 20;

/// Shortest imported secret accepted (80 bits, RFC 4226's floor is 128 but many
/// deployed authenticators were enrolled with 80-bit secrets).
pub const MIN_IMPORTED_SECRET_BYTES: usize = 10;

/// Longest imported secret accepted.
pub const MAX_IMPORTED_SECRET_BYTES: usize = 128;

/// A fresh secret from the operating system's CSPRNG.
pub fn generate_secret() -> Result<Zeroizing<Vec<u8>>, CoreError> {
    Ok(Zeroizing::new(
        mfad_crypto::random_bytes::<SECRET_BYTES>()?.to_vec(),
    ))
}

/// Reads a caller-supplied base32 secret: case-insensitive, spaces and dashes ignored,
/// `=` padding optional.
pub fn parse_base32_secret(input: &str) -> Option<Zeroizing<Vec<u8>>> {
    let cleaned: Zeroizing<String> = Zeroizing::new(
        input
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '='))
            .map(|c| c.to_ascii_uppercase())
            .collect(),
    );
    let bytes = Zeroizing::new(BASE32_NOPAD.decode(cleaned.as_bytes()).ok()?);
    (MIN_IMPORTED_SECRET_BYTES..=MAX_IMPORTED_SECRET_BYTES)
        .contains(&bytes.len())
        .then_some(bytes)
}

/// The secret as authenticator apps take it: unpadded RFC 4648 base32.
pub fn base32(secret: &[u8]) -> Zeroizing<String> {
    Zeroizing::new(BASE32_NOPAD.encode(secret))
}

/// The Key URI that authenticator apps import.
pub fn key_uri(totp: &TotpFactor, secret_b32: &str) -> Zeroizing<String> {
    let issuer = utf8_percent_encode(&totp.issuer, COMPONENT).to_string();
    let user = utf8_percent_encode(&totp.user, COMPONENT).to_string();
    Zeroizing::new(format!(
        "otpauth://totp/{issuer}:{user}?secret={secret_b32}&issuer={issuer}&algorithm={}&digits={}&period={}",
        totp.algorithm.uri_name(),
        totp.digits,
        totp.period,
    ))
}

/// Pixels per QR module.
const SCALE: usize = 4;
/// Light modules around the symbol, as the QR specification requires.
const QUIET_ZONE: usize = 4;

/// A PNG of `text` as a QR code (8-bit grayscale, 4 px modules, 4-module quiet zone), as
/// a data URI.
pub fn qr_data_uri(text: &str) -> Result<Zeroizing<String>, CoreError> {
    // fast_qr rather than `qrcode`: mask selection dominates enrollment CPU, and fast_qr
    // does it several times faster (see docs/BENCHMARKS.md).
    let code = QRBuilder::new(text.as_bytes())
        .ecl(ECL::M)
        .build()
        .map_err(|e| CoreError::Internal(format!("QR encoding failed: {e}")))?;
    let modules = code.size;
    let side = (modules + 2 * QUIET_ZONE) * SCALE;
    let mut pixels = Zeroizing::new(vec![255u8; side * side]);
    for (i, module) in code.data.iter().take(modules * modules).enumerate() {
        if !module.value() {
            continue;
        }
        let (mx, my) = (i % modules + QUIET_ZONE, i / modules + QUIET_ZONE);
        for dy in 0..SCALE {
            let row = (my * SCALE + dy) * side;
            let start = row + mx * SCALE;
            if let Some(px) = pixels.get_mut(start..start + SCALE) {
                px.fill(0);
            }
        }
    }
    let mut png_bytes = Zeroizing::new(Vec::with_capacity(2048));
    {
        let side32 = u32::try_from(side).map_err(|_| CoreError::Internal("QR too large".into()))?;
        let mut encoder = png::Encoder::new(&mut *png_bytes, side32, side32);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::Fast);
        let png_err =
            |e: png::EncodingError| CoreError::Internal(format!("PNG encoding failed: {e}"));
        let mut writer = encoder.write_header().map_err(png_err)?;
        writer.write_image_data(&pixels).map_err(png_err)?;
        writer.finish().map_err(png_err)?;
    }
    let mut out = String::with_capacity(22 + png_bytes.len() * 4 / 3 + 4);
    out.push_str("data:image/png;base64,");
    BASE64.encode_append(&png_bytes, &mut out);
    Ok(Zeroizing::new(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mfad_otp::Algorithm;

    fn totp(issuer: &str, user: &str) -> TotpFactor {
        TotpFactor {
            issuer: issuer.into(),
            user: user.into(),
            algorithm: Algorithm::Sha1,
            digits: 6,
            period: 30,
            sealed_secret: vec![],
            last_used_step: None,
        }
    }

    #[test]
    fn key_uri_encodes_label_and_parameters() {
        let uri = key_uri(&totp("Foo Corp", "user@foo-corp.com"), "OFAFOQAPHR6XMQKA");
        assert_eq!(
            uri.as_str(),
            "otpauth://totp/Foo%20Corp:user@foo-corp.com?secret=OFAFOQAPHR6XMQKA&issuer=Foo%20Corp&algorithm=SHA1&digits=6&period=30"
        );
        let uri = key_uri(&totp("A:B", "x&y=z"), "S");
        assert!(
            uri.starts_with("otpauth://totp/A%3AB:x%26y%3Dz?"),
            "{}",
            *uri
        );
    }

    #[test]
    fn generated_secrets_are_160_bits_and_distinct() {
        let a = generate_secret().unwrap();
        let b = generate_secret().unwrap();
        assert_eq!(a.len(), 20);
        assert_ne!(*a, *b);
        assert_eq!(base32(&a).len(), 32);
    }

    #[test]
    fn imported_secrets() {
        assert_eq!(
            parse_base32_secret("jbsw y3dp ehpk 3pxp")
                .unwrap()
                .as_slice(),
            b"Hello!\xde\xad\xbe\xef"
        );
        assert!(parse_base32_secret("JBSWY3DPEHPK3PXP====").is_some());
        assert!(
            parse_base32_secret("JBSWY3DP").is_none(),
            "40 bits is too short"
        );
        assert!(parse_base32_secret("not base32!").is_none());
    }

    #[test]
    fn qr_decodes_to_exactly_the_uri() {
        let uri = key_uri(&totp("Acme", "alice@example.com"), &base32(&[7u8; 20]));
        let data_uri = qr_data_uri(&uri).unwrap();
        let b64 = data_uri.strip_prefix("data:image/png;base64,").unwrap();
        let png_bytes = BASE64.decode(b64.as_bytes()).unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        let (w, h) = (info.width as usize, info.height as usize);
        let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| buf[y * w + x]);
        let grids = img.detect_grids();
        assert_eq!(grids.len(), 1);
        let (_, content) = grids[0].decode().unwrap();
        assert_eq!(content, *uri);
    }
}
