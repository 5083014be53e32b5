//! Request helpers for the FusionAuth Two Factor API that send exactly what FusionAuth
//! clients send (the raw API key in `Authorization`, `X-FusionAuth-TenantId`, Elixir's two
//! `Authorization` headers), and assertions on its response shapes.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use super::{HS_SECRET, Inbox, Resp, TestApp, read, send_json};

impl Resp {
    /// Asserts an empty body with no JSON content type, as FusionAuth answers 200s without a
    /// body, and 401/404/421.
    #[track_caller]
    pub fn assert_empty(&self, status: u16) {
        assert_eq!(self.status, status, "{}", self.text);
        assert_eq!(self.text, "", "body of a {status} must be empty");
        assert!(
            !self.is_json(),
            "an empty {status} must not claim JSON: {:?}",
            self.content_type
        );
    }

    /// Asserts `[invalid]<field>` among a 400's field errors.
    #[track_caller]
    pub fn assert_invalid(&self, field: &str) {
        self.assert_field_error(field, &format!("[invalid]{field}"));
    }

    /// Asserts a 400 whose Errors object holds `code` (e.g. `[blank]code`).
    #[track_caller]
    pub fn assert_field_error(&self, field: &str, code: &str) {
        assert_eq!(self.status, 400, "{}", self.text);
        assert!(self.is_json());
        let codes: Vec<&str> = self.body["fieldErrors"][field]
            .as_array()
            .unwrap_or_else(|| panic!("no fieldErrors.{field} in {}", self.text))
            .iter()
            .filter_map(|e| e["code"].as_str())
            .collect();
        assert!(codes.contains(&code), "{code} not in {codes:?}");
    }

    /// Asserts a 400 whose Errors object holds the general error `code` (e.g.
    /// `[InvalidTenantId]`) and no field errors.
    #[track_caller]
    pub fn assert_general_error(&self, code: &str) {
        assert_eq!(self.status, 400, "{}", self.text);
        assert!(self.is_json(), "{:?}", self.content_type);
        let codes: Vec<&str> = self.body["generalErrors"]
            .as_array()
            .unwrap_or_else(|| panic!("no generalErrors in {}", self.text))
            .iter()
            .filter_map(|e| e["code"].as_str())
            .collect();
        assert_eq!(codes, [code], "{}", self.text);
        assert!(
            self.body["generalErrors"][0]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{}",
            self.text
        );
        assert_eq!(
            self.body["fieldErrors"].as_object().map(|m| m.len()),
            Some(0),
            "{}",
            self.text
        );
    }

    /// Asserts the throttle's refusal: 409 (FusionAuth's "login prevented"), `Retry-After`
    /// `retry_after` seconds, and an Errors object with the general error `code`.
    #[track_caller]
    pub fn assert_throttled(&self, code: &str, retry_after: &str) {
        assert_eq!(self.status, 409, "{}", self.text);
        assert_eq!(
            self.retry_after.as_deref(),
            Some(retry_after),
            "{}",
            self.text
        );
        assert_eq!(self.body["generalErrors"][0]["code"], code, "{}", self.text);
    }

    /// Asserts a JSON body with `status`.
    #[track_caller]
    pub fn assert_json(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "{}", self.text);
        assert!(self.is_json(), "{:?}", self.content_type);
        &self.body
    }
}

/// How a request authenticates.
#[derive(Debug, Clone)]
pub enum Auth<'a> {
    /// Nothing.
    None,
    /// A raw API key, as FusionAuth clients send it.
    Key(&'a str),
    /// `Bearer <jwt>` only.
    Jwt(&'a str),
    /// Elixir 0.3.0's JWT calls: `Bearer <jwt>` then the raw key, two headers.
    Elixir(&'a str, &'a str),
}

impl TestApp {
    pub fn request(&self, method: &str, path: &str, auth: Auth<'_>) -> reqwest::RequestBuilder {
        let rb = self.http.request(method.parse().unwrap(), self.url(path));
        match auth {
            Auth::None => rb,
            Auth::Key(k) => rb.header("Authorization", k),
            Auth::Jwt(t) => rb.header("Authorization", format!("Bearer {t}")),
            Auth::Elixir(t, k) => rb
                .header("Authorization", format!("Bearer {t}"))
                .header("Authorization", k),
        }
    }

    /// A JSON request authenticated as `auth` (no body for `None`).
    pub async fn call_with(
        &self,
        method: &str,
        path: &str,
        auth: Auth<'_>,
        body: Option<Value>,
    ) -> Resp {
        let rb = self.request(method, path, auth);
        match body {
            Some(b) => send_json(rb, &b).await,
            None => read(rb.send().await.unwrap()).await,
        }
    }

    /// A JSON request with the `acme` key.
    pub async fn key_call(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        self.call_with(method, path, Auth::Key(&self.key), body)
            .await
    }

    pub fn now_unix(&self) -> u64 {
        u64::try_from(mfad_core::Clock::now(&self.clock).unix_timestamp()).unwrap()
    }

    /// Moves the clock on by `secs` seconds.
    pub fn advance(&self, secs: i64) {
        self.clock.advance(time::Duration::seconds(secs));
    }

    /// The TOTP of a base64 FusionAuth secret, now.
    pub fn totp(&self, secret_b64: &str) -> String {
        mfad_otp::Totp::default().code_at(&b64(secret_b64), self.now_unix())
    }

    /// A fresh secret from the server.
    pub async fn secret(&self) -> String {
        let r = self.key_call("GET", "/api/two-factor/secret", None).await;
        r.assert_json(200)["secret"].as_str().unwrap().to_owned()
    }

    /// Enables an authenticator for `user`; returns the secret and the response body.
    pub async fn enable_authenticator(&self, user: &str) -> (String, Value) {
        let secret = self.secret().await;
        let r = self
            .key_call(
                "POST",
                &format!("/api/user/two-factor/{user}"),
                Some(json!({"method": "authenticator", "secret": secret, "code": self.totp(&secret), "name": "Phone app"})),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        // The code that proved the secret is used up: step past it.
        self.advance(30);
        (secret, r.body)
    }

    /// Enables SMS on `phone` for `user` (send, then enable with the texted code).
    pub async fn enable_sms(&self, user: &str, phone: &str) -> Resp {
        let r = self
            .key_call(
                "POST",
                "/api/two-factor/send",
                Some(json!({"userId": user, "method": "sms", "mobilePhone": phone})),
            )
            .await;
        r.assert_empty(200);
        let code = self.last_sms_code(phone);
        self.key_call(
            "POST",
            &format!("/api/user/two-factor/{user}"),
            Some(json!({"method": "sms", "mobilePhone": phone, "code": code})),
        )
        .await
    }

    /// The user's methods, from `start` (which also opens a login).
    pub async fn start(&self, user: &str) -> Value {
        let r = self
            .key_call(
                "POST",
                "/api/two-factor/start",
                Some(json!({"userId": user})),
            )
            .await;
        r.assert_json(200).clone()
    }

    pub async fn login(&self, two_factor_id: &str, code: &str) -> Resp {
        self.call_with(
            "POST",
            "/api/two-factor/login",
            Auth::None,
            Some(json!({"twoFactorId": two_factor_id, "code": code})),
        )
        .await
    }

    pub async fn status(&self, user: &str) -> u16 {
        self.key_call(
            "GET",
            &format!("/api/two-factor/status?userId={user}"),
            None,
        )
        .await
        .status
    }

    /// The method id of `user`'s first method of `kind`.
    pub async fn method_id(&self, user: &str, kind: &str) -> String {
        let started = self.start(user).await;
        started["methods"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["method"] == kind)
            .unwrap_or_else(|| panic!("no {kind} method in {started}"))["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The code in the last text to `phone`.
    pub fn last_sms_code(&self, phone: &str) -> String {
        last_code(&self.sms, phone, |m| (m.to.as_str(), m.body.as_str()))
    }

    pub fn sms_count(&self) -> usize {
        self.sms.lock().unwrap().len()
    }

    /// The code in the last email to `address`.
    pub fn last_email_code(&self, address: &str) -> String {
        last_code(&self.mail, address, |m| (m.to.as_str(), m.body.as_str()))
    }

    /// Signs a token with the HS256 secret the server trusts.
    pub fn hs_jwt(&self, claims: Value) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(HS_SECRET.as_bytes()),
        )
        .unwrap()
    }

    /// Standard claims for `user`, valid for an hour from the server's now.
    pub fn claims(&self, user: &str) -> Value {
        let now = self.now_unix() as i64;
        json!({"sub": user, "iat": now, "exp": now + 3600, "tid": self.tenant.as_str()})
    }
}

/// The code in the last message of `inbox` to `to`; `parts` gives a message's recipient
/// and body.
fn last_code<T>(inbox: &Inbox<T>, to: &str, parts: fn(&T) -> (&str, &str)) -> String {
    let inbox = inbox.lock().unwrap();
    let body = inbox
        .iter()
        .rev()
        .map(parts)
        .find_map(|(rcpt, body)| (rcpt == to).then_some(body))
        .unwrap_or_else(|| panic!("nothing sent to {to}"));
    code_in(body)
}

/// The six-digit code in a message.
pub fn code_in(body: &str) -> String {
    let at = body
        .find("code is ")
        .unwrap_or_else(|| panic!("no code in {body:?}"))
        + 8;
    body[at..at + 6].to_owned()
}

pub fn b64(s: &str) -> Vec<u8> {
    data_encoding::BASE64.decode(s.as_bytes()).unwrap()
}

/// A random FusionAuth-style user id (a UUID).
/// Whether `s` is a canonical lower-case hyphenated UUID.
pub fn uuid_shaped(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit() && !c.is_ascii_uppercase(),
        })
}

pub fn uuid() -> String {
    let b = mfad_crypto::random_bytes::<16>().unwrap();
    let h = data_encoding::HEXLOWER.encode(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// Deserializes a FusionAuth response body into the model that FusionAuth's published
/// OpenAPI document declares for its route (`fusionauth-rust-client`, generated from it,
/// with typed UUIDs and instants), so a field of the wrong type fails the test that got
/// it. `read` calls it for every `/api/` response, so every test checks it.
#[track_caller]
pub fn assert_fusionauth_model(path: &str, status: u16, text: &str) {
    use fusionauth_rust_client::models as fa;
    use std::collections::HashMap;

    #[track_caller]
    fn parse<T: serde::de::DeserializeOwned>(model: &str, path: &str, text: &str) {
        if let Err(e) = serde_json::from_str::<T>(text) {
            panic!("{path}: the body is not a FusionAuth {model}: {e}\n{text}");
        }
    }
    /// FusionAuth's `Errors`. The OpenAPI document types `fieldErrors` as a list, but
    /// FusionAuth sends (and its official clients read) a map of field to errors.
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code, reason = "only deserialized, to check the types")]
    struct Errors {
        field_errors: Option<HashMap<String, Vec<fa::Error>>>,
        general_errors: Option<Vec<fa::Error>>,
    }

    if text.is_empty() {
        return;
    }
    let route = path.trim_start_matches("/api/");
    match (status, route) {
        (400 | 409 | 503, _) => parse::<Errors>("Errors", path, text),
        (200, "two-factor/secret") => parse::<fa::SecretResponse>("SecretResponse", path, text),
        (200, r) if r.starts_with("user/two-factor/recovery-code") => {
            parse::<fa::TwoFactorRecoveryCodeResponse>("TwoFactorRecoveryCodeResponse", path, text)
        }
        (200, r) if r.starts_with("user/two-factor") => {
            parse::<fa::TwoFactorResponse>("TwoFactorResponse", path, text)
        }
        (200, "two-factor/start") => {
            parse::<fa::TwoFactorStartResponse>("TwoFactorStartResponse", path, text)
        }
        (200, "two-factor/login") => parse::<fa::LoginResponse>("LoginResponse", path, text),
        (200 | 242, r) if r.starts_with("two-factor/status") => {
            parse::<fa::TwoFactorStatusResponse>("TwoFactorStatusResponse", path, text)
        }
        (200, "webauthn/login") => parse::<fa::LoginResponse>("LoginResponse", path, text),
        // The generated models name `alg`/`algorithm` ("ES256") and the credential type
        // (`publicKey`), but FusionAuth writes the COSE numbers and `public-key` (its docs'
        // examples, and what navigator.credentials.create() needs);
        // tests/it/fusionauth/webauthn.rs checks these bodies field by field instead.
        (200, r) if r.starts_with("webauthn") => {}
        _ => panic!("{path}: no FusionAuth model for a {status} with a body: {text}"),
    }
}
