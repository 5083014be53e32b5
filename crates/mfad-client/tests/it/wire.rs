//! What goes over the wire, checked on a recording server: every call's method, path, query,
//! headers and JSON body against what the official SDKs send (`docs/contracts/workos.md` §1
//! and §4, `docs/contracts/fusionauth.md` §1 to §4); how answers are read; and retries.

use std::time::Duration;

use crate::support::{
    CHALLENGE, FACTOR_GENERIC, FACTOR_SMS, FACTOR_TOTP_ENROLLED, Recorded, Recorder, Reply,
};
use futures_util::TryStreamExt;
use mfad_client::fusionauth::{
    CompleteTwoFactorLogin, Delivery, DisableTwoFactor, EnableTwoFactor, MessageType,
    SendTwoFactorCode, StartTwoFactorLogin, StatusAction, StatusRequest,
};
use mfad_client::{
    ChallengeId, Client, DEFAULT_USER_AGENT, EnrollFactor, EnrollUserFactor, Error, FactorId,
    ListUserFactors, Order,
};
use serde_json::{Value, json};

const KEY: &str = "sk_test_wire";
const FACTOR_ID: &str = "auth_factor_01FZ4WMXXA09XF6NK1XMKNWB3M";
const CHALLENGE_ID: &str = "auth_challenge_01FZ4WSWV2SCEDX3GKY1NA9YTN";
const TENANT: &str = "6b40f9d6-cfd8-4312-bff8-b082ad45e93c";
const USER: &str = "c075e472-a732-47d6-865a-d385a5fcb525";

fn client(recorder: &Recorder) -> Client {
    Client::builder()
        .base_url(&recorder.url)
        .api_key(KEY)
        .initial_backoff(Duration::from_millis(1))
        .max_backoff(Duration::from_millis(5))
        .build()
        .unwrap()
}

fn is_uuid_v4(s: &str) -> bool {
    let b = s.as_bytes();
    s.len() == 36
        && [8, 13, 18, 23].iter().all(|&i| b[i] == b'-')
        && s.chars()
            .filter(|c| *c != '-')
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        && b[14] == b'4'
        && matches!(b[19], b'8' | b'9' | b'a' | b'b')
}

/// The headers every WorkOS SDK sends (§1): bearer key, JSON content type on every method,
/// an `Idempotency-Key` on POSTs only, and no body on GET and DELETE.
fn assert_workos_request(r: &Recorded, method: &str, target: &str, body: Option<Value>) {
    assert_eq!(r.method, method);
    assert_eq!(r.target, target);
    assert_eq!(
        r.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("user-agent"), Some(DEFAULT_USER_AGENT));
    assert_eq!(
        r.header("accept"),
        Some("*/*"),
        "as the Python SDK sends it"
    );
    if method == "POST" {
        let key = r
            .header("idempotency-key")
            .expect("POSTs carry an Idempotency-Key");
        assert!(is_uuid_v4(key), "{key}");
    } else {
        assert_eq!(r.header("idempotency-key"), None);
    }
    match body {
        Some(expected) => assert_eq!(r.json(), expected),
        None => assert!(
            r.body.is_empty(),
            "no body expected, got {:?}",
            String::from_utf8_lossy(&r.body)
        ),
    }
}

#[tokio::test]
async fn workos_calls_match_the_official_sdks() {
    let rec = Recorder::start().await;
    let c = client(&rec);
    let factor = FactorId::parse(FACTOR_ID).unwrap();
    let challenge = ChallengeId::parse(CHALLENGE_ID).unwrap();

    rec.script([Reply::json(201, FACTOR_TOTP_ENROLLED)]);
    c.enroll_factor(&EnrollFactor::totp("Acme", "a@b.c"))
        .await
        .unwrap();
    assert_workos_request(
        &rec.take_one(),
        "POST",
        "/auth/factors/enroll",
        Some(json!({"type":"totp","totp_issuer":"Acme","totp_user":"a@b.c"})),
    );

    rec.script([Reply::json(201, FACTOR_SMS)]);
    c.enroll_factor(&EnrollFactor::sms("+15005550006"))
        .await
        .unwrap();
    assert_workos_request(
        &rec.take_one(),
        "POST",
        "/auth/factors/enroll",
        Some(json!({"type":"sms","phone_number":"+15005550006"})),
    );

    rec.script([Reply::json(201, FACTOR_GENERIC)]);
    c.enroll_factor(&EnrollFactor::generic_otp()).await.unwrap();
    assert_workos_request(
        &rec.take_one(),
        "POST",
        "/auth/factors/enroll",
        Some(json!({"type":"generic_otp"})),
    );

    rec.script([Reply::json(201, FACTOR_GENERIC)]);
    c.enroll_factor(&EnrollFactor::generic_otp().user_id("user_01"))
        .await
        .unwrap();
    assert_workos_request(
        &rec.take_one(),
        "POST",
        "/auth/factors/enroll",
        Some(json!({"type":"generic_otp","user_id":"user_01"})),
    );

    rec.script([Reply::json(200, FACTOR_GENERIC)]);
    c.get_factor(&factor).await.unwrap();
    assert_workos_request(
        &rec.take_one(),
        "GET",
        &format!("/auth/factors/{FACTOR_ID}"),
        None,
    );

    rec.script([Reply::empty(204)]);
    c.delete_factor(&factor).await.unwrap();
    assert_workos_request(
        &rec.take_one(),
        "DELETE",
        &format!("/auth/factors/{FACTOR_ID}"),
        None,
    );

    rec.script([Reply::json(201, CHALLENGE)]);
    c.challenge_factor(&factor, None).await.unwrap();
    assert_workos_request(
        &rec.take_one(),
        "POST",
        &format!("/auth/factors/{FACTOR_ID}/challenge"),
        Some(json!({})),
    );

    rec.script([Reply::json(201, CHALLENGE)]);
    c.challenge_factor(&factor, Some("Code {{code}}"))
        .await
        .unwrap();
    assert_workos_request(
        &rec.take_one(),
        "POST",
        &format!("/auth/factors/{FACTOR_ID}/challenge"),
        Some(json!({"sms_template":"Code {{code}}"})),
    );

    rec.script([Reply::json(
        201,
        &format!(r#"{{"challenge":{CHALLENGE},"valid":true}}"#),
    )]);
    let v = c.verify_challenge(&challenge, "123456").await.unwrap();
    assert!(v.valid);
    assert_workos_request(
        &rec.take_one(),
        "POST",
        &format!("/auth/challenges/{CHALLENGE_ID}/verify"),
        Some(json!({"code":"123456"})),
    );

    let enrollment = format!(
        r#"{{"authentication_factor":{},"authentication_challenge":{CHALLENGE}}}"#,
        FACTOR_TOTP_ENROLLED.replace(r#""type":"totp""#, r#""type":"totp","user_id":"user_01""#)
    );
    rec.script([Reply::json(201, &enrollment)]);
    let e = c
        .enroll_user_factor(
            "user_01",
            &EnrollUserFactor::totp().issuer("Acme").user("a@b.c"),
        )
        .await
        .unwrap();
    assert_eq!(e.factor.user_id.as_deref(), Some("user_01"));
    assert_workos_request(
        &rec.take_one(),
        "POST",
        "/user_management/users/user_01/auth_factors",
        Some(json!({"type":"totp","totp_issuer":"Acme","totp_user":"a@b.c"})),
    );

    rec.script([Reply::json(201, &enrollment)]);
    c.enroll_user_factor(
        "user_01",
        &EnrollUserFactor::totp().secret("JBSWY3DPEHPK3PXP"),
    )
    .await
    .unwrap();
    assert_workos_request(
        &rec.take_one(),
        "POST",
        "/user_management/users/user_01/auth_factors",
        Some(json!({"type":"totp","totp_secret":"JBSWY3DPEHPK3PXP"})),
    );

    let empty_list = r#"{"object":"list","data":[],"list_metadata":{"before":null,"after":null}}"#;
    rec.script([Reply::json(200, empty_list)]);
    c.list_user_factors("user_01", &ListUserFactors::new())
        .await
        .unwrap();
    assert_workos_request(
        &rec.take_one(),
        "GET",
        "/user_management/users/user_01/auth_factors?order=desc",
        None,
    );

    rec.script([Reply::json(200, empty_list)]);
    let opts = ListUserFactors::new()
        .limit(5)
        .after(FactorId::parse("auth_factor_X").unwrap())
        .order(Order::Asc);
    c.list_user_factors("user_01", &opts).await.unwrap();
    assert_workos_request(
        &rec.take_one(),
        "GET",
        "/user_management/users/user_01/auth_factors?limit=5&after=auth_factor_X&order=asc",
        None,
    );

    // User ids are path segments: anything reserved is escaped.
    rec.script([Reply::json(200, empty_list)]);
    c.list_user_factors("a/b?c", &ListUserFactors::new())
        .await
        .unwrap();
    assert_eq!(
        rec.take_one().target,
        "/user_management/users/a%2Fb%3Fc/auth_factors?order=desc"
    );
}

#[tokio::test]
async fn the_stream_follows_after_until_null_and_drops_before() {
    let rec = Recorder::start().await;
    let c = client(&rec);
    let item = |id: &str| FACTOR_GENERIC.replace(FACTOR_ID, id);
    rec.script([
        Reply::json(
            200,
            &format!(
                r#"{{"object":"list","data":[{},{}],"list_metadata":{{"before":null,"after":"auth_factor_B"}}}}"#,
                item("auth_factor_A"),
                item("auth_factor_B")
            ),
        ),
        Reply::json(
            200,
            &format!(
                r#"{{"object":"list","data":[{}],"list_metadata":{{"before":"auth_factor_C","after":null}}}}"#,
                item("auth_factor_C")
            ),
        ),
    ]);
    let opts = ListUserFactors::new()
        .limit(2)
        .before(FactorId::parse("auth_factor_Z").unwrap());
    let ids: Vec<String> = c
        .list_user_factors_stream("user_01", opts)
        .map_ok(|f| f.id.into_string())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(ids, ["auth_factor_A", "auth_factor_B", "auth_factor_C"]);
    let reqs = rec.take();
    assert_eq!(reqs.len(), 2);
    assert_eq!(
        reqs[0].query(),
        Some("limit=2&before=auth_factor_Z&order=desc")
    );
    assert_eq!(
        reqs[1].query(),
        Some("limit=2&after=auth_factor_B&order=desc")
    );

    // A server that repeats its cursor would loop forever: the stream refuses.
    rec.script([Reply::json(
        200,
        r#"{"object":"list","data":[],"list_metadata":{"before":null,"after":"auth_factor_B"}}"#,
    )]);
    let e = c
        .list_user_factors_stream("user_01", ListUserFactors::new())
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::UnexpectedResponse { .. }), "{e:?}");
}

#[tokio::test]
async fn errors_keep_the_request_id_code_and_message() {
    let rec = Recorder::start().await;
    let c = client(&rec);
    rec.script([Reply::json(
        404,
        r#"{"message":"Authentication Factor not found: 'auth_factor_X'.","code":"entity_not_found","entity_id":"auth_factor_X"}"#,
    )
    .header("x-request-id", "req_123")]);
    let e = c
        .get_factor(&FactorId::parse("auth_factor_X").unwrap())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NotFound(_)), "{e:?}");
    assert_eq!(e.request_id(), Some("req_123"));
    assert_eq!(e.code(), Some("entity_not_found"));
    assert_eq!(
        e.message(),
        Some("Authentication Factor not found: 'auth_factor_X'.")
    );
    assert!(e.to_string().contains("req_123"), "{e}");

    // A 2xx body that is not what was asked for.
    rec.script([Reply::json(200, r#"{"nope":true}"#).header("x-request-id", "req_456")]);
    let e = c
        .get_factor(&FactorId::parse("auth_factor_X").unwrap())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::UnexpectedResponse { .. }), "{e:?}");
    assert_eq!(e.request_id(), Some("req_456"));
}

// ---------------------------------------------------------------------------------------
// Retries

#[tokio::test]
async fn a_dropped_post_is_retried_with_the_same_idempotency_key() {
    let rec = Recorder::start().await;
    rec.script([Reply::Drop, Reply::json(201, FACTOR_GENERIC)]);
    let factor = client(&rec)
        .enroll_factor(&EnrollFactor::generic_otp())
        .await
        .unwrap();
    assert_eq!(factor.id.as_str(), FACTOR_ID);
    let reqs = rec.take();
    assert_eq!(reqs.len(), 2);
    let key = reqs[0].header("idempotency-key").unwrap();
    assert!(is_uuid_v4(key));
    assert_eq!(reqs[1].header("idempotency-key"), Some(key));
    assert_eq!(reqs[0].body, reqs[1].body);

    // A new call gets a new key.
    rec.script([Reply::json(201, FACTOR_GENERIC)]);
    client(&rec)
        .enroll_factor(&EnrollFactor::generic_otp())
        .await
        .unwrap();
    assert_ne!(rec.take_one().header("idempotency-key"), Some(key));
}

#[tokio::test]
async fn retry_after_seconds_is_honoured() {
    let rec = Recorder::start().await;
    rec.script([
        Reply::json(503, r#"{"message":"busy","code":"service_unavailable"}"#)
            .header("retry-after", "1"),
        Reply::json(201, CHALLENGE),
    ]);
    let c = client(&rec);
    c.challenge_factor(&FactorId::parse(FACTOR_ID).unwrap(), None)
        .await
        .unwrap();
    let reqs = rec.take();
    assert_eq!(reqs.len(), 2);
    let gap = reqs[1].at - reqs[0].at;
    // The backoff is 1–5 ms here, so only Retry-After can explain the wait.
    assert!(
        gap >= Duration::from_secs(1) && gap < Duration::from_secs(3),
        "{gap:?}"
    );
    assert_eq!(
        reqs[0].header("idempotency-key"),
        reqs[1].header("idempotency-key")
    );
}

#[tokio::test]
async fn retry_after_http_date_is_honoured() {
    let rec = Recorder::start().await;
    #[expect(clippy::disallowed_methods, reason = "an HTTP date is wall-clock time")]
    let at = std::time::SystemTime::now() + Duration::from_secs(2);
    rec.script([
        Reply::json(429, r#"{"message":"slow down"}"#)
            .header("retry-after", httpdate::fmt_http_date(at)),
        Reply::json(200, FACTOR_GENERIC),
    ]);
    client(&rec)
        .get_factor(&FactorId::parse(FACTOR_ID).unwrap())
        .await
        .unwrap();
    let reqs = rec.take();
    assert_eq!(reqs.len(), 2);
    let gap = reqs[1].at - reqs[0].at;
    // HTTP dates have whole seconds: the date names a second 1–2 s away, so the wait is
    // about 1 to 2 s (a hair under 1 s when `now` was just before a second boundary).
    assert!(
        gap >= Duration::from_millis(900) && gap < Duration::from_secs(3),
        "{gap:?}"
    );
}

#[tokio::test]
async fn retries_stop_at_the_limit_with_the_last_error() {
    let rec = Recorder::start().await;
    let fail = |id: &str| {
        Reply::json(500, r#"{"message":"boom","code":"internal_error"}"#).header("x-request-id", id)
    };
    rec.script([fail("r1"), fail("r2"), fail("r3")]);
    let c = Client::builder()
        .base_url(&rec.url)
        .api_key(KEY)
        .max_retries(2)
        .initial_backoff(Duration::from_millis(1))
        .build()
        .unwrap();
    let e = c
        .get_factor(&FactorId::parse(FACTOR_ID).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Server(_)), "{e:?}");
    assert_eq!(e.request_id(), Some("r3"));
    assert_eq!(rec.take().len(), 3);
}

#[tokio::test]
async fn refusals_are_not_retried() {
    let rec = Recorder::start().await;
    let c = client(&rec);
    for reply in [
        Reply::json(
            422,
            r#"{"code":"authentication_challenge_expired","message":"expired"}"#,
        ),
        Reply::json(
            400,
            r#"{"code":"one_time_code_too_many_attempts","message":"locked"}"#,
        ),
        Reply::json(401, r#"{"message":"Unauthorized"}"#),
        Reply::json(409, r#"{"code":"idempotency_error","message":"conflict"}"#),
    ] {
        rec.script([reply]);
        let e = c
            .verify_challenge(&ChallengeId::parse(CHALLENGE_ID).unwrap(), "1")
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                Error::ChallengeExpired(_)
                    | Error::TooManyAttempts(_)
                    | Error::Unauthorized(_)
                    | Error::Api(_)
            ),
            "{e:?}"
        );
        assert_eq!(rec.take().len(), 1, "{e:?} must not be retried");
    }
}

#[tokio::test]
async fn rate_limits_surface_retry_after_and_no_key_without_retries() {
    let rec = Recorder::start().await;
    rec.script([Reply::json(429, r#"{"message":"Too many requests"}"#).header("retry-after", "7")]);
    let c = Client::builder()
        .base_url(&rec.url)
        .api_key(KEY)
        .max_retries(0)
        .build()
        .unwrap();
    let e = c
        .enroll_factor(&EnrollFactor::generic_otp())
        .await
        .unwrap_err();
    let Error::RateLimited { retry_after, .. } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(*retry_after, Some(Duration::from_secs(7)));
    let r = rec.take_one();
    assert_eq!(
        r.header("idempotency-key"),
        None,
        "as Node: no key when nothing will be retried"
    );
}

#[tokio::test]
async fn connection_failures_are_retried_then_reported() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let c = Client::builder()
        .base_url(format!("http://127.0.0.1:{port}"))
        .api_key(KEY)
        .max_retries(2)
        .initial_backoff(Duration::from_millis(1))
        .build()
        .unwrap();
    let e = c
        .get_factor(&FactorId::parse(FACTOR_ID).unwrap())
        .await
        .unwrap_err();
    let Error::Transport { attempts, source } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(*attempts, 3);
    assert!(source.is_connect(), "{source:?}");
    assert_eq!(e.request_id(), None);
}

#[tokio::test]
async fn fusionauth_posts_are_not_replayed_after_a_drop_but_reads_are() {
    let rec = Recorder::start().await;
    let c = client(&rec);
    rec.script([
        Reply::Drop,
        Reply::json(200, r#"{"twoFactorId":"x","methods":[]}"#),
    ]);
    let e = c
        .fusionauth()
        .start_login(&StartTwoFactorLogin::user(USER))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Transport { attempts: 1, .. }), "{e:?}");
    assert_eq!(
        rec.take().len(),
        1,
        "a FusionAuth POST that may have been processed is not sent again"
    );
    rec.clear_script();

    rec.script([
        Reply::empty(503),
        Reply::json(200, r#"{"twoFactorId":"x","methods":[]}"#),
    ]);
    c.fusionauth()
        .start_login(&StartTwoFactorLogin::user(USER))
        .await
        .unwrap();
    assert_eq!(
        rec.take().len(),
        2,
        "503 means the server did not act: retried"
    );

    rec.script([
        Reply::Drop,
        Reply::json(
            200,
            r#"{"secret":"SP2m6K2Dg/x2JN9DyQvZ","secretBase32Encoded":"JD62N2FNQOB7Y5RE35B4SC6Z"}"#,
        ),
    ]);
    c.fusionauth().generate_secret().await.unwrap();
    assert_eq!(rec.take().len(), 2, "GETs are retried");
}

// ---------------------------------------------------------------------------------------
// FusionAuth

fn fa_client(recorder: &Recorder, tenant: bool) -> Client {
    let b = Client::builder()
        .base_url(&recorder.url)
        .api_key("fa_api_key")
        .initial_backoff(Duration::from_millis(1));
    let b = if tenant {
        b.fusionauth_tenant_id(TENANT)
    } else {
        b
    };
    b.build().unwrap()
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Cred {
    Key,
    Jwt,
    Anonymous,
}

/// FusionAuth's clients (`docs/contracts/fusionauth.md` §2): the raw key (or `Bearer <jwt>`, or nothing), the tenant
/// header on every call, a JSON content type only with a body, no idempotency key.
fn assert_fa(r: &Recorded, method: &str, target: &str, cred: Cred, body: Option<Value>) {
    assert_eq!(r.method, method, "{target}");
    assert_eq!(r.target, target);
    let auth = match cred {
        Cred::Key => Some("fa_api_key"),
        Cred::Jwt => Some("Bearer the.jwt.token"),
        Cred::Anonymous => None,
    };
    assert_eq!(r.header("authorization"), auth, "{target}");
    assert_eq!(r.header("x-fusionauth-tenantid"), Some(TENANT), "{target}");
    assert_eq!(r.header("idempotency-key"), None, "{target}");
    match body {
        Some(expected) => {
            assert_eq!(
                r.header("content-type"),
                Some("application/json"),
                "{target}"
            );
            assert_eq!(r.json(), expected, "{target}");
        }
        None => {
            assert_eq!(r.header("content-type"), None, "{target}");
            assert!(
                r.body.is_empty(),
                "{target}: {:?}",
                String::from_utf8_lossy(&r.body)
            );
        }
    }
}

#[tokio::test]
async fn fusionauth_calls_match_the_official_clients() {
    let rec = Recorder::start().await;
    let c = fa_client(&rec, true);
    let fa = c.fusionauth();
    let secret =
        r#"{"secret":"SP2m6K2Dg/x2JN9DyQvZ","secretBase32Encoded":"JD62N2FNQOB7Y5RE35B4SC6Z"}"#;
    let user_path = format!("/api/user/two-factor/{USER}");

    rec.script([Reply::json(200, secret)]);
    let s = fa.generate_secret().await.unwrap();
    assert_eq!(s.secret_base32_encoded, "JD62N2FNQOB7Y5RE35B4SC6Z");
    assert_fa(
        &rec.take_one(),
        "GET",
        "/api/two-factor/secret",
        Cred::Key,
        None,
    );

    rec.script([Reply::json(200, secret)]);
    fa.generate_secret_using_jwt("the.jwt.token").await.unwrap();
    assert_fa(
        &rec.take_one(),
        "GET",
        "/api/two-factor/secret",
        Cred::Jwt,
        None,
    );

    // Current enable, with the recovery codes of a first method.
    rec.script([Reply::json(
        200,
        r#"{"recoveryCodes":["QJD73-L6GR5","R7RJH-GB7H3"]}"#,
    )]);
    let enabled = fa
        .enable(
            USER,
            &EnableTwoFactor::authenticator("435612", "8MJJfCY4ERBtotvenSc3")
                .name("Work authenticator app"),
        )
        .await
        .unwrap();
    assert_eq!(enabled.recovery_codes, ["QJD73-L6GR5", "R7RJH-GB7H3"]);
    assert_fa(
        &rec.take_one(),
        "POST",
        &user_path,
        Cred::Key,
        Some(
            json!({"code":"435612","method":"authenticator","name":"Work authenticator app","secret":"8MJJfCY4ERBtotvenSc3"}),
        ),
    );

    // Later methods answer an empty 200, with no content type.
    rec.script([Reply::empty(200)]);
    let enabled = fa
        .enable(
            USER,
            &EnableTwoFactor::email("435612", "richard@piedpiper.com"),
        )
        .await
        .unwrap();
    assert!(enabled.recovery_codes.is_empty());
    assert_fa(
        &rec.take_one(),
        "POST",
        &user_path,
        Cred::Key,
        Some(json!({"code":"435612","email":"richard@piedpiper.com","method":"email"})),
    );

    rec.script([Reply::empty(200)]);
    fa.enable(USER, &EnableTwoFactor::sms("435612", "+13035551212"))
        .await
        .unwrap();
    assert_fa(
        &rec.take_one(),
        "POST",
        &user_path,
        Cred::Key,
        Some(json!({"code":"435612","method":"sms","mobilePhone":"+13035551212"})),
    );

    rec.script([Reply::empty(200)]);
    fa.enable(
        USER,
        &EnableTwoFactor::authenticator_base32("435612", "JD62N2FNQOB7Y5RE35B4SC6Z"),
    )
    .await
    .unwrap();
    assert_fa(
        &rec.take_one(),
        "POST",
        &user_path,
        Cred::Key,
        Some(
            json!({"code":"435612","method":"authenticator","secretBase32Encoded":"JD62N2FNQOB7Y5RE35B4SC6Z"}),
        ),
    );

    // Legacy enable (Elixir 0.3.0), by user id and by JWT.
    rec.script([Reply::empty(200)]);
    fa.enable(
        USER,
        &EnableTwoFactor::legacy("819169", Delivery::TextMessage, "SP2m6K2Dg/x2JN9DyQvZ"),
    )
    .await
    .unwrap();
    let legacy_body =
        json!({"code":"819169","delivery":"TextMessage","secret":"SP2m6K2Dg/x2JN9DyQvZ"});
    assert_fa(
        &rec.take_one(),
        "POST",
        &user_path,
        Cred::Key,
        Some(legacy_body.clone()),
    );

    rec.script([Reply::empty(200)]);
    fa.enable_using_jwt(
        "the.jwt.token",
        &EnableTwoFactor::legacy("819169", Delivery::TextMessage, "SP2m6K2Dg/x2JN9DyQvZ"),
    )
    .await
    .unwrap();
    assert_fa(
        &rec.take_one(),
        "POST",
        "/api/user/two-factor",
        Cred::Jwt,
        Some(legacy_body),
    );

    // Disable: query form, body form, legacy, JWT.
    rec.script([Reply::empty(200)]);
    fa.disable(USER, Some("BD5R"), "123456").await.unwrap();
    assert_fa(
        &rec.take_one(),
        "DELETE",
        &format!("{user_path}?methodId=BD5R&code=123456"),
        Cred::Key,
        None,
    );

    rec.script([Reply::empty(200)]);
    fa.disable_with_request(USER, &DisableTwoFactor::new("BD5R", "123456"))
        .await
        .unwrap();
    assert_fa(
        &rec.take_one(),
        "DELETE",
        &user_path,
        Cred::Key,
        Some(json!({"methodId":"BD5R","code":"123456"})),
    );

    rec.script([Reply::empty(200)]);
    fa.disable(USER, None, "123456").await.unwrap();
    assert_fa(
        &rec.take_one(),
        "DELETE",
        &format!("{user_path}?code=123456"),
        Cred::Key,
        None,
    );

    rec.script([Reply::empty(200)]);
    fa.disable_using_jwt("the.jwt.token", None, "123456")
        .await
        .unwrap();
    assert_fa(
        &rec.take_one(),
        "DELETE",
        "/api/user/two-factor?code=123456",
        Cred::Jwt,
        None,
    );

    rec.script([Reply::empty(200)]);
    fa.disable_using_jwt("the.jwt.token", Some("BD5R"), "123456")
        .await
        .unwrap();
    assert_fa(
        &rec.take_one(),
        "DELETE",
        "/api/user/two-factor?methodId=BD5R&code=123456",
        Cred::Jwt,
        None,
    );

    rec.script([Reply::empty(200)]);
    fa.rename_method(USER, "BD5R", "Work phone").await.unwrap();
    assert_fa(
        &rec.take_one(),
        "PUT",
        &user_path,
        Cred::Key,
        Some(json!({"methodId":"BD5R","name":"Work phone"})),
    );

    // Sending codes: every documented shape.
    for (request, body) in [
        (SendTwoFactorCode::to_user(USER), json!({"userId": USER})),
        (
            SendTwoFactorCode::to_mobile_phone("555-555-5555", "8MJJfCY4ERBtotvenSc3"),
            json!({"mobilePhone":"555-555-5555","secret":"8MJJfCY4ERBtotvenSc3"}),
        ),
        (
            SendTwoFactorCode::sms("+13035551212")
                .user_id(USER)
                .message_type(MessageType::Voice),
            json!({"userId": USER, "method":"sms","mobilePhone":"+13035551212","messageType":"Voice"}),
        ),
        (
            SendTwoFactorCode::email("richard@piedpiper.com"),
            json!({"method":"email","email":"richard@piedpiper.com"}),
        ),
        (
            SendTwoFactorCode::method("RLRT").user_id(USER),
            json!({"userId": USER, "methodId":"RLRT"}),
        ),
    ] {
        rec.script([Reply::empty(200)]);
        fa.send_code(&request).await.unwrap();
        assert_fa(
            &rec.take_one(),
            "POST",
            "/api/two-factor/send",
            Cred::Key,
            Some(body),
        );
    }
    rec.script([Reply::empty(200)]);
    fa.send_code_using_jwt("the.jwt.token", &SendTwoFactorCode::new())
        .await
        .unwrap();
    assert_fa(
        &rec.take_one(),
        "POST",
        "/api/two-factor/send",
        Cred::Jwt,
        Some(json!({})),
    );

    rec.script([Reply::empty(200)]);
    fa.send_code_for_login("YkQY5Gsyo4RlfmDciBGRmvfj3RmatUqrbjoIZ19fmw4", Some("KLRT"))
        .await
        .unwrap();
    assert_fa(
        &rec.take_one(),
        "POST",
        "/api/two-factor/send/YkQY5Gsyo4RlfmDciBGRmvfj3RmatUqrbjoIZ19fmw4",
        Cred::Anonymous,
        Some(json!({"methodId":"KLRT"})),
    );
    rec.script([Reply::empty(200)]);
    fa.send_code_for_login("YkQY5Gsyo4RlfmDciBGRmvfj3RmatUqrbjoIZ19fmw4", None)
        .await
        .unwrap();
    assert_fa(
        &rec.take_one(),
        "POST",
        "/api/two-factor/send/YkQY5Gsyo4RlfmDciBGRmvfj3RmatUqrbjoIZ19fmw4",
        Cred::Anonymous,
        Some(json!({})),
    );

    // Start and complete a login.
    rec.script([Reply::json(
        200,
        r#"{"code":"123456","methods":[{"id":"BD5R","method":"authenticator","authenticator":{"algorithm":"HmacSHA1","codeLength":6,"timeStep":30}}],"twoFactorId":"DvnAUMCHLxCCAWyHXOVWPQd8ZY0a6U0e3YpYkT0MNxs"}"#,
    )]);
    let started = fa
        .start_login(&StartTwoFactorLogin::login_id("richard@piedpiper.com").application_id("app"))
        .await
        .unwrap();
    assert_eq!(
        started.two_factor_id,
        "DvnAUMCHLxCCAWyHXOVWPQd8ZY0a6U0e3YpYkT0MNxs"
    );
    assert_eq!(started.methods[0].id, "BD5R");
    assert_fa(
        &rec.take_one(),
        "POST",
        "/api/two-factor/start",
        Cred::Key,
        Some(json!({"loginId":"richard@piedpiper.com","applicationId":"app"})),
    );

    rec.script([Reply::json(200, r#"{"token":"jwt","user":{"id":"c075e472-a732-47d6-865a-d385a5fcb525","email":"r@p.com"},"twoFactorTrustId":"trust-1","method":"authenticator"}"#)]);
    let done = fa
        .complete_login(
            &CompleteTwoFactorLogin::new("DvnAUMCHLxCCAWyHXOVWPQd8ZY0a6U0e3YpYkT0MNxs", "915187")
                .trust_computer(true)
                .no_jwt(true),
        )
        .await
        .unwrap();
    assert_eq!(done.status, 200);
    assert_eq!(done.user.as_ref().map(|u| u.id.as_str()), Some(USER));
    assert_eq!(done.two_factor_trust_id.as_deref(), Some("trust-1"));
    assert_eq!(done.extra.get("method"), Some(&json!("authenticator")));
    assert_fa(
        &rec.take_one(),
        "POST",
        "/api/two-factor/login",
        Cred::Anonymous,
        Some(
            json!({"twoFactorId":"DvnAUMCHLxCCAWyHXOVWPQd8ZY0a6U0e3YpYkT0MNxs","code":"915187","trustComputer":true,"noJWT":true}),
        ),
    );

    // Status: 242 is an answer, not an error.
    rec.script([Reply::json(242, r#"{"trusts":[],"twoFactorTrustId":null}"#)]);
    let st = fa.status(USER, None, None).await.unwrap();
    assert!(st.two_factor_required);
    assert_fa(
        &rec.take_one(),
        "GET",
        &format!("/api/two-factor/status?userId={USER}"),
        Cred::Key,
        None,
    );

    rec.script([Reply::json(
        200,
        r#"{"trusts":[{"applicationId":"app","expiration":1700000000000,"startInstant":1699000000000}],"twoFactorTrustId":"trust-1"}"#,
    )]);
    let st = fa.status(USER, Some("app"), Some("trust-1")).await.unwrap();
    assert!(!st.two_factor_required);
    assert_eq!(
        st.trusts[0].expiration.unwrap().unix_timestamp(),
        1_700_000_000
    );
    assert_fa(
        &rec.take_one(),
        "GET",
        &format!("/api/two-factor/status/trust-1?userId={USER}&applicationId=app"),
        Cred::Key,
        None,
    );

    rec.script([Reply::json(242, r#"{"trusts":[]}"#)]);
    let st = fa
        .status_with_request(&StatusRequest::new(USER).action(StatusAction::StepUp))
        .await
        .unwrap();
    assert!(st.two_factor_required);
    assert_fa(
        &rec.take_one(),
        "POST",
        "/api/two-factor/status",
        Cred::Key,
        Some(json!({"userId": USER, "action":"stepUp"})),
    );

    // Recovery codes.
    let ten = r#"{"recoveryCodes":["A","B","C","D","E","F","G","H","I","J"]}"#;
    rec.script([Reply::json(200, ten)]);
    assert_eq!(fa.generate_recovery_codes(USER).await.unwrap().len(), 10);
    assert_fa(
        &rec.take_one(),
        "POST",
        &format!("/api/user/two-factor/recovery-code/{USER}"),
        Cred::Key,
        None,
    );
    rec.script([Reply::json(200, r#"{"recoveryCodes":["B","C"]}"#)]);
    assert_eq!(fa.retrieve_recovery_codes(USER).await.unwrap(), ["B", "C"]);
    assert_fa(
        &rec.take_one(),
        "GET",
        &format!("/api/user/two-factor/recovery-code/{USER}"),
        Cred::Key,
        None,
    );
}

#[tokio::test]
async fn fusionauth_without_a_tenant_sends_no_tenant_header_and_workos_never_does() {
    let rec = Recorder::start().await;
    rec.script([Reply::json(
        200,
        r#"{"secret":"a","secretBase32Encoded":"b"}"#,
    )]);
    fa_client(&rec, false)
        .fusionauth()
        .generate_secret()
        .await
        .unwrap();
    assert_eq!(rec.take_one().header("x-fusionauth-tenantid"), None);
    rec.script([Reply::json(200, FACTOR_GENERIC)]);
    fa_client(&rec, true)
        .get_factor(&FactorId::parse(FACTOR_ID).unwrap())
        .await
        .unwrap();
    assert_eq!(rec.take_one().header("x-fusionauth-tenantid"), None);
}

#[tokio::test]
async fn fusionauth_failures_map_to_their_variants() {
    let rec = Recorder::start().await;
    let fa_client = fa_client(&rec, true);
    let fa = fa_client.fusionauth();
    rec.script([Reply::empty(421)]);
    let e = fa
        .enable(USER, &EnableTwoFactor::authenticator("000000", "x"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidCode(_)), "{e:?}");

    rec.script([Reply::empty(404)]);
    let e = fa
        .complete_login(&CompleteTwoFactorLogin::new("gone", "123456"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NotFound(_)), "{e:?}");

    rec.script([Reply::empty(401)]);
    assert!(matches!(
        fa.generate_secret().await,
        Err(Error::Unauthorized(_))
    ));

    rec.script([Reply::json(
        400,
        r#"{"fieldErrors":{"mobilePhone":[{"code":"[blank]mobilePhone","message":"Required"}]}}"#,
    )]);
    let e = fa.send_code(&SendTwoFactorCode::new()).await.unwrap_err();
    let Error::Validation { errors, .. } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(errors[0].field.as_deref(), Some("mobilePhone"));
    assert_eq!(errors[0].code, "[blank]mobilePhone");
    assert_eq!(rec.take().len(), 4, "none of these is retried");
}

#[tokio::test]
async fn user_agent_and_custom_http_client_are_used() {
    let rec = Recorder::start().await;
    let http = reqwest::Client::builder().build().unwrap();
    let c = Client::builder()
        .base_url(&rec.url)
        .api_key(KEY)
        .user_agent("acme-app/2.0")
        .http_client(http)
        .build()
        .unwrap();
    rec.script([Reply::json(200, FACTOR_GENERIC)]);
    c.get_factor(&FactorId::parse(FACTOR_ID).unwrap())
        .await
        .unwrap();
    assert_eq!(rec.take_one().header("user-agent"), Some("acme-app/2.0"));
}

#[tokio::test]
async fn a_slow_answer_times_out_and_is_retried() {
    // A listener that accepts and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(s);
        }
    });
    let c = Client::builder()
        .base_url(url)
        .api_key(KEY)
        .timeout(Duration::from_millis(200))
        .max_retries(1)
        .initial_backoff(Duration::from_millis(1))
        .build()
        .unwrap();
    let e = c
        .get_factor(&FactorId::parse(FACTOR_ID).unwrap())
        .await
        .unwrap_err();
    let Error::Transport { source, attempts } = &e else {
        panic!("{e:?}")
    };
    assert!(source.is_timeout(), "{source:?}");
    assert_eq!(*attempts, 2);
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
}
