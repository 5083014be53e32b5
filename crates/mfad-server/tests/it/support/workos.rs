//! Request helpers for the WorkOS MFA API: the key as a bearer token, as the WorkOS SDKs
//! send it.

use serde_json::{Value, json};

use super::{Resp, TestApp, read};

impl TestApp {
    /// Sends a request with the primary tenant's key.
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        self.call_as(&self.key.clone(), method, path, body).await
    }

    /// Sends a request with `key` as the bearer token.
    pub async fn call_as(&self, key: &str, method: &str, path: &str, body: Option<Value>) -> Resp {
        let mut req = self
            .http
            .request(method.parse().unwrap(), self.url(path))
            .header("Authorization", format!("Bearer {key}"));
        if let Some(b) = body {
            req = req
                .header("Content-Type", "application/json")
                .body(b.to_string());
        }
        read(req.send().await.unwrap()).await
    }

    /// Sends raw bytes (for malformed-input tests).
    pub async fn raw(&self, method: &str, path: &str, body: &'static str) -> Resp {
        let req = self
            .http
            .request(method.parse().unwrap(), self.url(path))
            .header("Authorization", format!("Bearer {}", self.key))
            .header("Content-Type", "application/json")
            .body(body);
        read(req.send().await.unwrap()).await
    }

    pub async fn enroll(&self, body: Value) -> Value {
        let r = self.call("POST", "/auth/factors/enroll", Some(body)).await;
        assert_eq!(r.status, 201, "{}", r.text);
        r.body
    }

    pub async fn challenge(&self, factor_id: &str) -> Value {
        let r = self
            .call(
                "POST",
                &format!("/auth/factors/{factor_id}/challenge"),
                Some(json!({})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        r.body
    }

    pub async fn verify(&self, challenge_id: &str, code: &str) -> Resp {
        self.call(
            "POST",
            &format!("/auth/challenges/{challenge_id}/verify"),
            Some(json!({"code": code})),
        )
        .await
    }

    /// The current TOTP code for a base32 secret on the server's clock, `offset` steps away.
    pub fn totp_code(&self, secret_b32: &str, offset: i64) -> String {
        let secret = data_encoding::BASE32_NOPAD
            .decode(secret_b32.as_bytes())
            .unwrap();
        let totp = mfad_otp::Totp::default();
        let now = self.clock_unix();
        let step = totp.step_at(now).checked_add_signed(offset).unwrap();
        totp.code_at_step(&secret, step)
    }

    pub fn clock_unix(&self) -> u64 {
        use mfad_core::Clock;
        self.clock.now().unix_timestamp() as u64
    }
}

/// Asserts a WorkOS-shaped error.
pub fn assert_error(r: &Resp, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", r.text);
    assert!(r.is_json(), "content type {:?}", r.content_type);
    assert_eq!(r.body["code"], code, "{}", r.text);
    assert!(
        r.body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{}",
        r.text
    );
}

/// Decodes a `data:image/png;base64,…` QR code to its text.
pub fn decode_qr(data_uri: &str) -> String {
    let b64 = data_uri
        .strip_prefix("data:image/png;base64,")
        .expect("data URI prefix");
    let bytes = data_encoding::BASE64.decode(b64.as_bytes()).unwrap();
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Grayscale);
    let (w, h) = (info.width as usize, info.height as usize);
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| buf[y * w + x]);
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "exactly one QR symbol");
    grids[0].decode().unwrap().1
}
