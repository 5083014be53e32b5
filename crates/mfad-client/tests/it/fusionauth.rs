//! The FusionAuth surface against the real `mfad` binary (`target/debug/mfad` or
//! `$MFAD_BIN`): every call of [`mfad_client::fusionauth::FusionAuth`], and every refusal
//! provoked for real (401, 404, 400 with field errors, 421, 429), with 242 read as a value.
//!
//! Each test starts its own server on a free port with a fresh SQLite database, an HS256
//! secret for Bearer tokens and login tokens, and SMS sent through Twilio's Messages API to a
//! local stand-in, where the tests read the texted codes. TOTP codes are computed here with
//! totp-rs, independently of the server, on the real clock the server reads too.

use std::time::Duration;

use crate::support::{Mfad, Recorder, Reply, totp_code, totp_code_bytes, unix_now};
use mfad_client::fusionauth::{
    CompleteTwoFactorLogin, Delivery, DisableTwoFactor, EnableTwoFactor, FusionAuth, MethodKind,
    Secret, SendTwoFactorCode, StartTwoFactorLogin, StatusAction, StatusRequest,
};
use mfad_client::{Client, Error, FactorType, ListUserFactors};
use serde_json::{Value, json};

/// The HS256 secret of every test server (mfad wants at least 32 bytes).
const JWT_SECRET: &str = "an-hs256-secret-for-tests-only-0123456789";
/// A number libphonenumber accepts, already in E.164.
const PHONE: &str = "+14155552671";
const TWILIO_SID: &str = "ACtest";
const TWILIO_TOKEN: &str = "test-token";
const TWILIO_FROM: &str = "+15005550006";

// ---------------------------------------------------------------------------------------
// Harness

/// Twilio's Messages API as far as mfad uses it: every POST is answered 201 and kept.
struct Twilio {
    recorder: Recorder,
}

/// One text message as Twilio received it.
#[derive(Debug)]
struct Text {
    to: String,
    from: String,
    body: String,
}

impl Twilio {
    async fn start() -> Twilio {
        let recorder = Recorder::start().await;
        recorder.fallback(Reply::json(
            201,
            r#"{"sid":"SM00000000000000000000000000000000","status":"queued"}"#,
        ));
        Twilio { recorder }
    }

    /// Every message so far, checked to be a well-formed Messages API call.
    fn texts(&self) -> Vec<Text> {
        let basic = format!(
            "Basic {}",
            data_encoding::BASE64.encode(format!("{TWILIO_SID}:{TWILIO_TOKEN}").as_bytes())
        );
        self.recorder
            .requests()
            .iter()
            .map(|r| {
                assert_eq!(r.method, "POST");
                assert_eq!(
                    r.path(),
                    format!("/2010-04-01/Accounts/{TWILIO_SID}/Messages.json")
                );
                assert_eq!(r.header("authorization"), Some(basic.as_str()));
                // Form decoding (`+` is a space, `%2B` a plus), by the URL parser's rules.
                let form = reqwest::Url::parse(&format!(
                    "http://form/?{}",
                    String::from_utf8_lossy(&r.body)
                ))
                .unwrap();
                let field = |name: &str| {
                    form.query_pairs()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.into_owned())
                        .unwrap_or_else(|| panic!("no {name} in {form}"))
                };
                Text {
                    to: field("To"),
                    from: field("From"),
                    body: field("Body"),
                }
            })
            .collect()
    }

    fn count(&self) -> usize {
        self.recorder.requests().len()
    }

    /// The 6-digit code of the last text to `phone`.
    fn last_code(&self, phone: &str) -> String {
        let texts = self.texts();
        let text = texts
            .iter()
            .rev()
            .find(|t| t.to == phone)
            .unwrap_or_else(|| panic!("no text to {phone} in {texts:?}"));
        assert_eq!(text.from, TWILIO_FROM);
        let digits: Vec<&str> = text
            .body
            .split(|c: char| !c.is_ascii_digit())
            .filter(|run| run.len() == 6)
            .collect();
        assert_eq!(digits.len(), 1, "one 6-digit code in {:?}", text.body);
        digits[0].to_owned()
    }
}

/// A server configured as the FusionAuth tests need, and its Twilio stand-in.
async fn server() -> (Mfad, Twilio) {
    let twilio = Twilio::start().await;
    let mfad = Mfad::start_with(&[
        ("MFAD_JWT_HS256_SECRET", JWT_SECRET),
        ("MFAD_JWT_DEFAULT_TENANT", "t1"),
        ("MFAD_SMS_PROVIDER", "twilio"),
        ("MFAD_TWILIO_BASE_URL", &twilio.recorder.url),
        ("MFAD_TWILIO_ACCOUNT_SID", TWILIO_SID),
        ("MFAD_TWILIO_AUTH_TOKEN", TWILIO_TOKEN),
        ("MFAD_TWILIO_FROM", TWILIO_FROM),
    ])
    .await;
    (mfad, twilio)
}

/// A random FusionAuth-style user id (a version 4 UUID).
fn user() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("random");
    let h = data_encoding::HEXLOWER.encode(&b);
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

fn builder(mfad: &Mfad) -> mfad_client::ClientBuilder {
    Client::builder()
        .base_url(&mfad.url)
        .api_key(&mfad.api_key)
        .initial_backoff(Duration::from_millis(20))
}

/// A client that names the server's tenant in `X-FusionAuth-TenantId` (as `tenant_…`).
fn fa_client(mfad: &Mfad) -> Client {
    builder(mfad)
        .fusionauth_tenant_id(&mfad.tenant_id)
        .build()
        .expect("client")
}

/// The UUID with the same 128 bits as an mfad tenant id (`tenant_` + a ULID): how a
/// FusionAuth client, whose tenant ids are UUIDs, names the tenant.
fn tenant_uuid(tenant_id: &str) -> String {
    const CROCKFORD: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let ulid = tenant_id.strip_prefix("tenant_").expect("a tenant_ id");
    assert_eq!(ulid.len(), 26, "{tenant_id}");
    let n = ulid.bytes().fold(0u128, |n, c| {
        let digit = CROCKFORD
            .iter()
            .position(|&a| a == c.to_ascii_uppercase())
            .expect("a Crockford base32 digit");
        n << 5 | u128::try_from(digit).expect("small")
    });
    let h = format!("{n:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

fn b64url(b: &[u8]) -> String {
    data_encoding::BASE64URL_NOPAD.encode(b)
}

fn hs256(secret: &str, signing_input: &str) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(signing_input.as_bytes());
    b64url(&mac.finalize().into_bytes())
}

/// An HS256 JWT with `claims` plus `iat` and `exp` (`exp_in` seconds from now; negative:
/// already expired).
fn jwt_with(secret: &str, mut claims: Value, exp_in: i64) -> String {
    let now = i64::try_from(unix_now()).expect("time");
    claims["iat"] = now.into();
    claims["exp"] = (now + exp_in).into();
    let header = b64url(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = b64url(claims.to_string().as_bytes());
    let input = format!("{header}.{payload}");
    let signature = hs256(secret, &input);
    format!("{input}.{signature}")
}

fn jwt(secret: &str, sub: &str, exp_in: i64) -> String {
    jwt_with(secret, json!({ "sub": sub }), exp_in)
}

/// The claims of an HS256 token, after checking its signature with `secret`.
fn verified_claims(secret: &str, token: &str) -> Value {
    let (input, signature) = token.rsplit_once('.').expect("a JWT");
    assert_eq!(signature, hs256(secret, input), "signed with the secret");
    let (header, payload) = input.split_once('.').expect("a JWT");
    let header: Value = serde_json::from_slice(
        &data_encoding::BASE64URL_NOPAD
            .decode(header.as_bytes())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "HS256");
    serde_json::from_slice(
        &data_encoding::BASE64URL_NOPAD
            .decode(payload.as_bytes())
            .unwrap(),
    )
    .unwrap()
}

/// A 6-digit code that is none of the secret's codes from 3 steps before `t` to 4 after,
/// so it is wrong whatever step the server is at.
fn wrong_code(secret_base32: &str, t: u64) -> String {
    let near: Vec<String> = (0..8)
        .map(|i| totp_code(secret_base32, t - 90 + i * 30))
        .collect();
    (0..)
        .map(|n| format!("{n:06}"))
        .find(|c| !near.contains(c))
        .expect("a free code")
}

/// Asserts a refusal kept the server's status and `X-Request-Id`.
#[track_caller]
fn assert_answered(e: &Error, status: u16) {
    assert_eq!(e.status(), Some(status), "{e:?}");
    assert!(e.request_id().is_some_and(|id| !id.is_empty()), "{e:?}");
}

/// Asserts a refusal of the code itself (FusionAuth's 421).
#[track_caller]
fn assert_invalid_code<T: std::fmt::Debug>(r: Result<T, Error>) -> Error {
    let e = r.unwrap_err();
    assert!(matches!(e, Error::InvalidCode(_)), "{e:?}");
    e
}

/// Whether `user` must pass a second factor (242), asked with neither a trust id nor an
/// application.
async fn required(fa: &FusionAuth<'_>, user: &str) -> bool {
    fa.status(user, None, None)
        .await
        .unwrap()
        .two_factor_required
}

/// Enables an authenticator for `user` with a fresh secret; the secret and the time its
/// first code was made for.
async fn enable_authenticator(fa: &FusionAuth<'_>, user: &str) -> (Secret, u64) {
    let secret = fa.generate_secret().await.unwrap();
    let t = unix_now();
    fa.enable(
        user,
        &EnableTwoFactor::authenticator(
            totp_code(&secret.secret_base32_encoded, t),
            &secret.secret,
        ),
    )
    .await
    .unwrap();
    (secret, t)
}

// ---------------------------------------------------------------------------------------
// Tests

#[tokio::test]
async fn secrets_are_fusionauth_shaped() {
    let (mfad, _twilio) = server().await;
    let client = fa_client(&mfad);
    let fa = client.fusionauth();
    let a = fa.generate_secret().await.unwrap();
    let b = fa.generate_secret().await.unwrap();
    let c = fa
        .generate_secret_using_jwt(&jwt(JWT_SECRET, &user(), 300))
        .await
        .unwrap();
    assert_ne!(a.secret, b.secret);
    assert_ne!(b.secret, c.secret);
    for s in [&a, &b, &c] {
        // 20 base64 characters = 15 bytes; `secretBase32Encoded` is base32 of those bytes
        // (not of the base64 text, as FusionAuth's own docs example has it).
        assert_eq!(s.secret.len(), 20);
        let raw = data_encoding::BASE64.decode(s.secret.as_bytes()).unwrap();
        assert_eq!(raw.len(), 15);
        assert_eq!(s.secret_base32_encoded.len(), 24);
        assert_eq!(
            s.secret_base32_encoded,
            data_encoding::BASE32_NOPAD.encode(&raw)
        );
        // What an authenticator app computes from the base32 secret is what the server
        // computes from the base64 one.
        let t = unix_now();
        assert_eq!(
            totp_code(&s.secret_base32_encoded, t),
            totp_code_bytes(&raw, t)
        );
    }
}

#[tokio::test]
async fn authenticator_enable_login_recovery_and_disable() {
    let (mfad, _twilio) = server().await;
    let client = fa_client(&mfad);
    let fa = client.fusionauth();
    let user = user();

    let status = fa.status(&user, None, None).await.unwrap();
    assert!(!status.two_factor_required, "200 without a method");
    assert!(status.trusts.is_empty());

    // Enable an authenticator: a wrong code is 421, the right one brings recovery codes.
    let secret = fa.generate_secret().await.unwrap();
    let b32 = &secret.secret_base32_encoded;
    let t = unix_now();
    let e = assert_invalid_code(
        fa.enable(
            &user,
            &EnableTwoFactor::authenticator(wrong_code(b32, t), &secret.secret),
        )
        .await,
    );
    assert_answered(&e, 421);
    let enabled = fa
        .enable(
            &user,
            &EnableTwoFactor::authenticator(totp_code(b32, t), &secret.secret).name("Phone"),
        )
        .await
        .unwrap();
    assert_eq!(
        enabled.recovery_codes.len(),
        10,
        "the first method comes with 10 recovery codes"
    );
    for code in &enabled.recovery_codes {
        assert_eq!(code.len(), 11, "{code}");
        assert_eq!(&code[5..6], "-", "{code}");
    }
    let mut distinct = enabled.recovery_codes.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 10);

    // One domain model: the method is a WorkOS factor of the same user.
    let factors = client
        .list_user_factors(&user, &ListUserFactors::new())
        .await
        .unwrap();
    assert_eq!(factors.data.len(), 1);
    assert_eq!(factors.data[0].factor_type, FactorType::Totp);

    // 242 is a value, in both forms of the status call.
    let status = fa.status(&user, None, None).await.unwrap();
    assert!(status.two_factor_required, "242 once a method is enabled");
    let status = fa
        .status_with_request(&StatusRequest::new(&user).action(StatusAction::Login))
        .await
        .unwrap();
    assert!(status.two_factor_required);

    let login = fa
        .start_login(&StartTwoFactorLogin::user(&user))
        .await
        .unwrap();
    assert_eq!(login.two_factor_id.len(), 43);
    assert_eq!(login.code.as_deref().map(str::len), Some(6));
    assert_eq!(login.methods.len(), 1);
    let method = login.methods[0].clone();
    assert_eq!(method.method, MethodKind::Authenticator);
    assert_eq!(method.name.as_deref(), Some("Phone"));
    assert_eq!(method.id.len(), 4);
    let totp = method.authenticator.as_ref().expect("TOTP parameters");
    assert_eq!(totp.algorithm.as_deref(), Some("HmacSHA1"));
    assert_eq!(totp.code_length, Some(6));
    assert_eq!(totp.time_step, Some(30));

    fa.rename_method(&user, &method.id, "Work phone")
        .await
        .unwrap();

    let wrong = assert_invalid_code(
        fa.complete_login(&CompleteTwoFactorLogin::new(
            &login.two_factor_id,
            wrong_code(b32, t),
        ))
        .await,
    );
    assert_answered(&wrong, 421);

    // The enabling code's step is spent (replay protection); the next step is in the window.
    let next = totp_code(b32, t + 30);
    let done = fa
        .complete_login(
            &CompleteTwoFactorLogin::new(&login.two_factor_id, &next).trust_computer(true),
        )
        .await
        .unwrap();
    assert_eq!(done.status, 200);
    let logged_in = done.user.as_ref().expect("the user");
    assert_eq!(logged_in.id, user);
    assert_eq!(logged_in.extra["tenantId"], mfad.tenant_uuid());
    assert_eq!(
        logged_in.extra["twoFactor"]["methods"][0]["name"], "Work phone",
        "renamed"
    );
    assert_eq!(done.extra["method"], "authenticator");
    assert_eq!(done.extra["methodId"], method.id.as_str());
    // The login token is an HS256 JWT for the user, signed with the configured secret.
    let claims = verified_claims(JWT_SECRET, done.token.as_deref().expect("a token"));
    assert_eq!(claims["sub"], user.as_str());
    assert_eq!(claims["tid"], mfad.tenant_uuid());

    let again = fa
        .complete_login(&CompleteTwoFactorLogin::new(&login.two_factor_id, &next))
        .await
        .unwrap_err();
    assert!(
        matches!(again, Error::NotFound(_)),
        "a twoFactorId is single use: {again:?}"
    );
    assert_answered(&again, 404);

    // The trusted computer skips two-factor; without the trust, 242 again.
    let trust = done.two_factor_trust_id.clone().expect("trustComputer");
    assert_eq!(trust.len(), 43);
    let trusted = fa.status(&user, None, Some(&trust)).await.unwrap();
    assert!(!trusted.two_factor_required, "{trusted:?}");
    assert_eq!(trusted.two_factor_trust_id.as_deref(), Some(trust.as_str()));
    assert_eq!(trusted.trusts.len(), 1);
    let expires = trusted.trusts[0].expiration.expect("an expiration");
    let now = i64::try_from(unix_now()).unwrap();
    assert!(expires.unix_timestamp() > now + 29 * 86_400, "30 days");
    let trusted = fa
        .status_with_request(&StatusRequest::new(&user).two_factor_trust_id(&trust))
        .await
        .unwrap();
    assert!(!trusted.two_factor_required);
    assert!(required(&fa, &user).await);

    // A TOTP code is accepted once: the login's code does not open another login.
    let login = fa
        .start_login(&StartTwoFactorLogin::user(&user))
        .await
        .unwrap();
    assert_invalid_code(
        fa.complete_login(&CompleteTwoFactorLogin::new(&login.two_factor_id, &next))
            .await,
    );

    // Recovery codes: single use, counted, regenerated.
    let recovery = enabled.recovery_codes[0].clone();
    let done = fa
        .complete_login(&CompleteTwoFactorLogin::new(
            &login.two_factor_id,
            &recovery,
        ))
        .await
        .unwrap();
    assert_eq!(done.extra["method"], "recoveryCode");
    let login = fa
        .start_login(&StartTwoFactorLogin::user(&user))
        .await
        .unwrap();
    assert_invalid_code(
        fa.complete_login(&CompleteTwoFactorLogin::new(
            &login.two_factor_id,
            &recovery,
        ))
        .await,
    );
    let left = fa.retrieve_recovery_codes(&user).await.unwrap();
    assert_eq!(left.len(), 9);
    assert!(!left.contains(&recovery));
    let fresh = fa.generate_recovery_codes(&user).await.unwrap();
    assert_eq!(fresh.len(), 10);
    assert!(fresh.iter().all(|c| !enabled.recovery_codes.contains(c)));
    let replaced = fa
        .complete_login(&CompleteTwoFactorLogin::new(
            &login.two_factor_id,
            &enabled.recovery_codes[1],
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(replaced, Error::InvalidCode(_)),
        "regenerating replaces the old codes: {replaced:?}"
    );

    // The body form of disable, with a wrong code, then with a recovery code, which
    // removes every method.
    assert_invalid_code(
        fa.disable_with_request(
            &user,
            &DisableTwoFactor::new(&method.id, wrong_code(b32, unix_now())),
        )
        .await,
    );
    fa.disable_with_request(&user, &DisableTwoFactor::new(&method.id, &fresh[0]))
        .await
        .unwrap();
    assert!(!required(&fa, &user).await);
    assert!(
        client
            .list_user_factors(&user, &ListUserFactors::new())
            .await
            .unwrap()
            .data
            .is_empty()
    );
    // Removing the last method removed the recovery codes too, and new ones come only
    // with a method.
    assert!(fa.retrieve_recovery_codes(&user).await.unwrap().is_empty());
    let e = fa.generate_recovery_codes(&user).await.unwrap_err();
    assert!(matches!(e, Error::Validation { .. }), "{e:?}");
    assert_eq!(e.code(), Some("[TwoFactorNotEnabled]"), "{e:?}");
}

#[tokio::test]
async fn sms_method_with_texted_codes() {
    let (mfad, twilio) = server().await;
    let client = fa_client(&mfad);
    let fa = client.fusionauth();
    let user = user();

    // Enable: send a code to the phone, then present it.
    fa.send_code(&SendTwoFactorCode::sms(PHONE).user_id(&user))
        .await
        .unwrap();
    assert_eq!(twilio.count(), 1);
    let code = twilio.last_code(PHONE);
    let wrong = if code == "000000" { "000001" } else { "000000" };
    assert_invalid_code(fa.enable(&user, &EnableTwoFactor::sms(wrong, PHONE)).await);
    let enabled = fa
        .enable(&user, &EnableTwoFactor::sms(&code, PHONE).name("Mobile"))
        .await
        .unwrap();
    assert_eq!(enabled.recovery_codes.len(), 10, "the first method");
    let factors = client
        .list_user_factors(&user, &ListUserFactors::new())
        .await
        .unwrap();
    assert_eq!(factors.data.len(), 1);
    assert_eq!(factors.data[0].factor_type, FactorType::Sms);
    assert!(required(&fa, &user).await);

    // Log in with a texted code.
    let login = fa
        .start_login(&StartTwoFactorLogin::user(&user))
        .await
        .unwrap();
    let sms = login
        .methods
        .iter()
        .find(|m| m.method == MethodKind::Sms)
        .expect("the sms method")
        .clone();
    assert_eq!(sms.mobile_phone.as_deref(), Some(PHONE));
    assert_eq!(sms.name.as_deref(), Some("Mobile"));
    fa.send_code_for_login(&login.two_factor_id, Some(&sms.id))
        .await
        .unwrap();
    let first = twilio.last_code(PHONE);
    fa.send_code_for_login(&login.two_factor_id, Some(&sms.id))
        .await
        .unwrap();
    let second = twilio.last_code(PHONE);
    assert_eq!(twilio.count(), 3);
    if first != second {
        let stale = fa
            .complete_login(&CompleteTwoFactorLogin::new(&login.two_factor_id, &first))
            .await
            .unwrap_err();
        assert!(
            matches!(stale, Error::InvalidCode(_)),
            "a new send invalidates earlier codes: {stale:?}"
        );
    }
    let done = fa
        .complete_login(&CompleteTwoFactorLogin::new(&login.two_factor_id, &second))
        .await
        .unwrap();
    assert_eq!(
        done.user.as_ref().map(|u| u.id.as_str()),
        Some(user.as_str())
    );
    assert_eq!(done.extra["method"], "sms");
    assert_eq!(done.extra["methodId"], sms.id.as_str());

    // Sends per login are limited (MFAD_CHALLENGE_MAX_ATTEMPTS, 5): then 429, which a
    // client without retries reports at once.
    let no_retries = builder(&mfad)
        .fusionauth_tenant_id(&mfad.tenant_id)
        .max_retries(0)
        .build()
        .unwrap();
    let login = fa
        .start_login(&StartTwoFactorLogin::user(&user))
        .await
        .unwrap();
    let mut limited = None;
    for _ in 0..10 {
        if let Err(e) = no_retries
            .fusionauth()
            .send_code_for_login(&login.two_factor_id, Some(&sms.id))
            .await
        {
            limited = Some(e);
            break;
        }
    }
    let limited = limited.expect("a limit on sends per login");
    assert!(matches!(limited, Error::RateLimited { .. }), "{limited:?}");
    assert_answered(&limited, 429);

    // Disable: a code sent to the method, then the query form of disable.
    fa.send_code(&SendTwoFactorCode::method(&sms.id).user_id(&user))
        .await
        .unwrap();
    let code = twilio.last_code(PHONE);
    let wrong = if code == "000000" { "000001" } else { "000000" };
    assert_invalid_code(fa.disable(&user, Some(&sms.id), wrong).await);
    fa.disable(&user, Some(&sms.id), &code).await.unwrap();
    assert!(!required(&fa, &user).await);
}

#[tokio::test]
async fn legacy_enable_and_disable() {
    let (mfad, twilio) = server().await;
    let client = fa_client(&mfad);
    let fa = client.fusionauth();

    // `delivery: "None"`: an authenticator; `?code=` alone turns two-factor off.
    let user_a = user();
    let secret = fa.generate_secret().await.unwrap();
    let b32 = &secret.secret_base32_encoded;
    let t = unix_now();
    assert_invalid_code(
        fa.enable(
            &user_a,
            &EnableTwoFactor::legacy(wrong_code(b32, t), Delivery::None, &secret.secret),
        )
        .await,
    );
    fa.enable(
        &user_a,
        &EnableTwoFactor::legacy(totp_code(b32, t), Delivery::None, &secret.secret),
    )
    .await
    .unwrap();
    assert!(required(&fa, &user_a).await);
    assert_invalid_code(fa.disable(&user_a, None, &wrong_code(b32, t)).await);
    fa.disable(&user_a, None, &totp_code(b32, t + 30))
        .await
        .unwrap();
    assert!(!required(&fa, &user_a).await);

    // `delivery: "TextMessage"`: the TOTP of the secret, texted by `send {mobilePhone,
    // secret}`, enables an SMS method on that phone.
    let user_b = user();
    let secret = fa.generate_secret().await.unwrap();
    let t = unix_now();
    fa.send_code(&SendTwoFactorCode::to_mobile_phone(PHONE, &secret.secret))
        .await
        .unwrap();
    let texted = twilio.last_code(PHONE);
    let window: Vec<String> = [t - 30, t, t + 30]
        .iter()
        .map(|&at| totp_code(&secret.secret_base32_encoded, at))
        .collect();
    assert!(
        window.contains(&texted),
        "the texted code is the secret's TOTP"
    );
    fa.enable(
        &user_b,
        &EnableTwoFactor::legacy(&texted, Delivery::TextMessage, &secret.secret),
    )
    .await
    .unwrap();
    let login = fa
        .start_login(&StartTwoFactorLogin::user(&user_b))
        .await
        .unwrap();
    assert_eq!(login.methods.len(), 1);
    assert_eq!(login.methods[0].method, MethodKind::Sms);
    assert_eq!(login.methods[0].mobile_phone.as_deref(), Some(PHONE));
    // The legacy `{}` send for a login texts the user's phone.
    let before = twilio.count();
    fa.send_code_for_login(&login.two_factor_id, None)
        .await
        .unwrap();
    assert_eq!(twilio.count(), before + 1);
    fa.complete_login(&CompleteTwoFactorLogin::new(
        &login.two_factor_id,
        twilio.last_code(PHONE),
    ))
    .await
    .unwrap();
    // `send {userId}` texts a code good for the legacy disable.
    fa.send_code(&SendTwoFactorCode::to_user(&user_b))
        .await
        .unwrap();
    fa.disable(&user_b, None, &twilio.last_code(PHONE))
        .await
        .unwrap();
    assert!(!required(&fa, &user_b).await);
}

#[tokio::test]
async fn jwt_routes_take_the_user_from_the_token() {
    let (mfad, twilio) = server().await;
    let client = fa_client(&mfad);
    let fa = client.fusionauth();
    let user = user();
    let token = jwt(JWT_SECRET, &user, 300);

    // The current shape, with the JWT alone (the tenant from X-FusionAuth-TenantId).
    let secret = fa.generate_secret_using_jwt(&token).await.unwrap();
    let raw = data_encoding::BASE64
        .decode(secret.secret.as_bytes())
        .unwrap();
    let t = unix_now();
    let enabled = fa
        .enable_using_jwt(
            &token,
            &EnableTwoFactor::authenticator(totp_code_bytes(&raw, t), &secret.secret),
        )
        .await
        .unwrap();
    assert_eq!(enabled.recovery_codes.len(), 10);
    assert!(
        fa.status(&user, None, None)
            .await
            .unwrap()
            .two_factor_required,
        "enabled for the JWT's subject"
    );
    // A second method: an SMS code sent for the JWT's user; no recovery codes this time.
    fa.send_code_using_jwt(&token, &SendTwoFactorCode::sms(PHONE))
        .await
        .unwrap();
    let second = fa
        .enable_using_jwt(
            &token,
            &EnableTwoFactor::sms(twilio.last_code(PHONE), PHONE),
        )
        .await
        .unwrap();
    assert!(second.recovery_codes.is_empty(), "{second:?}");
    let login = fa
        .start_login(&StartTwoFactorLogin::user(&user))
        .await
        .unwrap();
    assert_eq!(login.methods.len(), 2);
    // The legacy shapes: `{}` sends to the JWT's user; `?code=` alone turns it all off.
    let before = twilio.count();
    fa.send_code_using_jwt(&token, &SendTwoFactorCode::new())
        .await
        .unwrap();
    assert_eq!(twilio.count(), before + 1);
    assert_invalid_code(fa.disable_using_jwt(&token, None, "12345").await);
    fa.disable_using_jwt(&token, None, &totp_code_bytes(&raw, t + 30))
        .await
        .unwrap();
    assert!(!required(&fa, &user).await);

    // The legacy enable shape by JWT.
    let secret = fa.generate_secret_using_jwt(&token).await.unwrap();
    let raw = data_encoding::BASE64
        .decode(secret.secret.as_bytes())
        .unwrap();
    let t = unix_now();
    fa.enable_using_jwt(
        &token,
        &EnableTwoFactor::legacy(totp_code_bytes(&raw, t), Delivery::None, &secret.secret),
    )
    .await
    .unwrap();
    let login = fa
        .start_login(&StartTwoFactorLogin::user(&user))
        .await
        .unwrap();
    let method = &login.methods[0];
    fa.disable_using_jwt(&token, Some(&method.id), &totp_code_bytes(&raw, t + 30))
        .await
        .unwrap();

    // Expired, forged, tampered and unsigned tokens are 401s.
    let header_none = b64url(br#"{"alg":"none","typ":"JWT"}"#);
    let (signed_input, signature) = token.rsplit_once('.').unwrap();
    let (_, payload) = signed_input.split_once('.').unwrap();
    let other_payload = b64url(
        json!({"sub": "someone-else", "exp": unix_now() + 300})
            .to_string()
            .as_bytes(),
    );
    let signed_header = signed_input.split_once('.').unwrap().0;
    for (what, bad) in [
        ("expired", jwt(JWT_SECRET, &user, -60)),
        (
            "forged",
            jwt("not-the-secret-but-just-as-long-0123456789", &user, 300),
        ),
        (
            "tampered",
            format!("{signed_header}.{other_payload}.{signature}"),
        ),
        ("unsigned", format!("{header_none}.{payload}.")),
        ("garbage", "not.a.jwt".to_owned()),
    ] {
        let e = fa.generate_secret_using_jwt(&bad).await.unwrap_err();
        assert!(matches!(e, Error::Unauthorized(_)), "{what}: {e:?}");
        assert_answered(&e, 401);
        let e = fa
            .send_code_using_jwt(&bad, &SendTwoFactorCode::sms(PHONE))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Unauthorized(_)), "{what}: {e:?}");
    }

    // Without a tenant header, the call acts in the tenant of the key that verified the
    // token, with or without a `tid`; a `tid` of another tenant is FusionAuth's
    // 400 [InvalidTenantId].
    let no_tenant = builder(&mfad).build().unwrap();
    let nt = no_tenant.fusionauth();
    nt.generate_secret_using_jwt(&token).await.unwrap();
    let with_tid = jwt_with(JWT_SECRET, json!({"sub": user, "tid": mfad.tenant_id}), 300);
    for t in [&token, &with_tid] {
        let before = twilio.count();
        nt.send_code_using_jwt(t, &SendTwoFactorCode::sms(PHONE))
            .await
            .unwrap();
        assert_eq!(twilio.count(), before + 1);
    }
    let foreign = jwt_with(
        JWT_SECRET,
        json!({"sub": user, "tid": "00000000-0000-4000-8000-000000000000"}),
        300,
    );
    let e = nt
        .send_code_using_jwt(&foreign, &SendTwoFactorCode::sms(PHONE))
        .await
        .unwrap_err();
    let Error::Validation { errors, .. } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(e.code(), Some("[InvalidTenantId]"), "{e:?}");
    assert_eq!(errors[0].field, None, "a general error: {errors:?}");
}

#[tokio::test]
async fn a_login_token_authenticates_the_jwt_routes() {
    let (mfad, _twilio) = server().await;
    let client = fa_client(&mfad);
    let fa = client.fusionauth();
    let user = user();
    let (secret, t) = enable_authenticator(&fa, &user).await;
    let login = fa
        .start_login(&StartTwoFactorLogin::user(&user))
        .await
        .unwrap();
    let done = fa
        .complete_login(&CompleteTwoFactorLogin::new(
            &login.two_factor_id,
            totp_code(&secret.secret_base32_encoded, t + 30),
        ))
        .await
        .unwrap();
    assert!(done.two_factor_trust_id.is_none(), "not asked to trust");
    let token = done.token.expect("a login token");
    // mfad's own token carries `tid`, so it works without a tenant header.
    let no_tenant = builder(&mfad).build().unwrap();
    no_tenant
        .fusionauth()
        .generate_secret_using_jwt(&token)
        .await
        .unwrap();
    let e = no_tenant
        .fusionauth()
        .disable_using_jwt(
            &token,
            None,
            &wrong_code(&secret.secret_base32_encoded, unix_now()),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::InvalidCode(_)),
        "the token names the tenant and the user, and the code is judged: {e:?}"
    );

    // `noJWT` leaves the token out.
    let login = fa
        .start_login(&StartTwoFactorLogin::user(&user))
        .await
        .unwrap();
    let code = login.code.clone().expect("start's code");
    let done = fa
        .complete_login(&CompleteTwoFactorLogin::new(&login.two_factor_id, code).no_jwt(true))
        .await
        .unwrap();
    assert!(done.token.is_none(), "{done:?}");
    assert_eq!(done.extra["method"], "code");
}

#[tokio::test]
async fn the_tenant_header_takes_both_id_forms_and_must_match() {
    let (mfad, _twilio) = server().await;
    let user = user();
    let as_uuid = tenant_uuid(&mfad.tenant_id);
    for tenant in [mfad.tenant_id.clone(), as_uuid.clone()] {
        let client = builder(&mfad)
            .fusionauth_tenant_id(&tenant)
            .build()
            .unwrap();
        client.fusionauth().generate_secret().await.unwrap();
        client.fusionauth().status(&user, None, None).await.unwrap();
    }
    // Without the header the key's tenant applies.
    builder(&mfad)
        .build()
        .unwrap()
        .fusionauth()
        .generate_secret()
        .await
        .unwrap();

    // Enable for a user, start a login, and try to complete it from another tenant.
    let client = fa_client(&mfad);
    let fa = client.fusionauth();
    let (secret, t) = enable_authenticator(&fa, &user).await;
    let login = fa
        .start_login(&StartTwoFactorLogin::user(&user))
        .await
        .unwrap();

    // A random UUID: well formed, but not this key's tenant.
    let stranger = builder(&mfad)
        .fusionauth_tenant_id(self::user())
        .build()
        .unwrap();
    let sf = stranger.fusionauth();
    // With an API key, a header naming another tenant (or none) is a validation error:
    // 400 [InvalidTenantId], a general error.
    let not_a_tenant = builder(&mfad).fusionauth_tenant_id("acme").build().unwrap();
    for fa in [sf, not_a_tenant.fusionauth()] {
        for e in [
            fa.generate_secret().await.map(drop).unwrap_err(),
            fa.start_login(&StartTwoFactorLogin::user(&user))
                .await
                .map(drop)
                .unwrap_err(),
            fa.status(&user, None, None).await.map(drop).unwrap_err(),
        ] {
            let Error::Validation { errors, .. } = &e else {
                panic!("{e:?}")
            };
            assert_answered(&e, 400);
            assert_eq!(e.code(), Some("[InvalidTenantId]"), "{e:?}");
            assert_eq!(errors.len(), 1, "{errors:?}");
            assert_eq!(errors[0].field, None, "a general error: {errors:?}");
        }
    }
    // A bad key is still a 401, whatever the header says.
    let e = builder(&mfad)
        .api_key("not-a-key")
        .fusionauth_tenant_id(self::user())
        .build()
        .unwrap()
        .fusionauth()
        .generate_secret()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Unauthorized(_)), "{e:?}");
    assert_answered(&e, 401);
    // On the unauthenticated login routes, it matches no login: 404.
    let e = sf
        .complete_login(&CompleteTwoFactorLogin::new(
            &login.two_factor_id,
            totp_code(&secret.secret_base32_encoded, t + 30),
        ))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NotFound(_)), "{e:?}");
    let e = sf
        .send_code_for_login(&login.two_factor_id, None)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NotFound(_)), "{e:?}");
    // The login itself is untouched.
    let done = fa
        .complete_login(&CompleteTwoFactorLogin::new(
            &login.two_factor_id,
            totp_code(&secret.secret_base32_encoded, t + 30),
        ))
        .await
        .unwrap();
    assert_eq!(done.user.map(|u| u.id), Some(user));
}

#[tokio::test]
async fn refusals_map_to_their_variants() {
    let (mfad, _twilio) = server().await;
    let client = fa_client(&mfad);
    let fa = client.fusionauth();

    // 401: a wrong API key, on every kind of keyed route.
    let bad_key = builder(&mfad).api_key("not-a-key").build().unwrap();
    let bk = bad_key.fusionauth();
    let nobody = user();
    for e in [
        bk.generate_secret().await.map(drop).unwrap_err(),
        bk.status(&nobody, None, None).await.map(drop).unwrap_err(),
        bk.start_login(&StartTwoFactorLogin::user(&nobody))
            .await
            .map(drop)
            .unwrap_err(),
        bk.enable(&nobody, &EnableTwoFactor::sms("123456", PHONE))
            .await
            .map(drop)
            .unwrap_err(),
        bk.retrieve_recovery_codes(&nobody)
            .await
            .map(drop)
            .unwrap_err(),
    ] {
        assert!(matches!(e, Error::Unauthorized(_)), "{e:?}");
        assert_answered(&e, 401);
    }

    // 404: users mfad has never seen, and unknown twoFactorIds.
    for e in [
        fa.start_login(&StartTwoFactorLogin::user(&nobody))
            .await
            .map(drop)
            .unwrap_err(),
        fa.start_login(&StartTwoFactorLogin::login_id("nobody@example.com"))
            .await
            .map(drop)
            .unwrap_err(),
        fa.disable(&nobody, None, "123456").await.unwrap_err(),
        fa.disable_with_request(&nobody, &DisableTwoFactor::new("ABCD", "123456"))
            .await
            .unwrap_err(),
        fa.rename_method(&nobody, "ABCD", "x").await.unwrap_err(),
        fa.send_code(&SendTwoFactorCode::to_user(&nobody))
            .await
            .unwrap_err(),
        fa.generate_recovery_codes(&nobody)
            .await
            .map(drop)
            .unwrap_err(),
        fa.retrieve_recovery_codes(&nobody)
            .await
            .map(drop)
            .unwrap_err(),
        fa.complete_login(&CompleteTwoFactorLogin::new(
            "YkQY5Gsyo4RlfmDciBGRmvfj3RmatUqrbjoIZ19fmw4",
            "123456",
        ))
        .await
        .map(drop)
        .unwrap_err(),
        fa.send_code_for_login("YkQY5Gsyo4RlfmDciBGRmvfj3RmatUqrbjoIZ19fmw4", Some("ABCD"))
            .await
            .unwrap_err(),
    ] {
        assert!(matches!(e, Error::NotFound(_)), "{e:?}");
        assert_answered(&e, 404);
    }
    // Status knows no users either: one mfad has never seen has no method, so 200.
    assert!(!required(&fa, &nobody).await);

    // 400 with FusionAuth field errors.
    let validation = |e: Error| -> Vec<(Option<String>, String)> {
        assert_answered(&e, 400);
        let Error::Validation { errors, .. } = e else {
            panic!("{e:?}")
        };
        errors.into_iter().map(|f| (f.field, f.code)).collect()
    };
    let field = |f: &str, c: &str| (Some(f.to_owned()), c.to_owned());
    let e = fa
        .enable(&nobody, &EnableTwoFactor::sms("123456", ""))
        .await
        .unwrap_err();
    assert_eq!(
        validation(e),
        [field("mobilePhone", "[blank]mobilePhone")],
        "an SMS method without a phone"
    );
    let secret = fa.generate_secret().await.unwrap();
    let e = fa
        .enable(&nobody, &EnableTwoFactor::authenticator("", &secret.secret))
        .await
        .unwrap_err();
    assert_eq!(validation(e), [field("code", "[blank]code")]);
    let e = fa
        .send_code(&SendTwoFactorCode::sms("not a phone").user_id(&nobody))
        .await
        .unwrap_err();
    let errors = validation(e);
    assert!(
        errors
            .iter()
            .any(|(f, _)| f.as_deref() == Some("mobilePhone")),
        "{errors:?}"
    );
    let e = fa
        .start_login(&StartTwoFactorLogin::default())
        .await
        .unwrap_err();
    assert_eq!(validation(e), [field("loginId", "[blank]loginId")]);

    // For a known user: an unknown method id is a field error, not a 404.
    let t = unix_now();
    fa.enable(
        &nobody,
        &EnableTwoFactor::authenticator(
            totp_code(&secret.secret_base32_encoded, t),
            &secret.secret,
        ),
    )
    .await
    .unwrap();
    let user = nobody;
    let e = fa.rename_method(&user, "ZZZZ", "x").await.unwrap_err();
    assert_eq!(validation(e), [field("methodId", "[invalid]methodId")]);
    let e = fa
        .disable(&user, Some("not-a-method"), "123456")
        .await
        .unwrap_err();
    assert_eq!(validation(e), [field("methodId", "[invalid]methodId")]);
    let e = fa
        .send_code(&SendTwoFactorCode::sms(PHONE))
        .await
        .unwrap_err();
    assert_eq!(
        validation(e),
        [field("userId", "[blank]userId")],
        "an API key call must name the user"
    );
}
