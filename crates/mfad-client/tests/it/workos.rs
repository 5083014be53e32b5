//! The WorkOS surface against the real `mfad` binary (SQLite, a fresh data directory per
//! test): every call, and every error variant provoked for real.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::support::{Mfad, totp_code, unix_now};
use futures_util::{StreamExt, TryStreamExt};
use mfad_client::{
    ChallengeId, Client, EnrollFactor, EnrollUserFactor, Error, FactorId, FactorType,
    ListUserFactors, Order,
};
use time::OffsetDateTime;

const UNKNOWN_FACTOR: &str = "auth_factor_01ZZZZZZZZZZZZZZZZZZZZZZZZ";
const UNKNOWN_CHALLENGE: &str = "auth_challenge_01ZZZZZZZZZZZZZZZZZZZZZZZZ";

#[expect(
    clippy::disallowed_methods,
    reason = "compared with the server's real clock"
)]
fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

#[tokio::test]
async fn totp_enroll_challenge_verify_and_secrets_only_at_enrollment() {
    let mfad = Mfad::start().await;
    let client = mfad.client();

    let factor = client
        .enroll_factor(&EnrollFactor::totp("Acme", "alice@example.com").user_id("user_alice"))
        .await
        .unwrap();
    assert_eq!(factor.factor_type, FactorType::Totp);
    assert_eq!(factor.user_id.as_deref(), Some("user_alice"));
    assert!(
        (now() - factor.created_at).abs() < time::Duration::minutes(1),
        "created_at {}",
        factor.created_at
    );
    let totp = factor.totp.clone().unwrap();
    assert_eq!(
        (totp.issuer.as_str(), totp.user.as_str()),
        ("Acme", "alice@example.com")
    );
    let secret = totp.secret.clone().unwrap();
    assert!(
        totp.qr_code
            .as_deref()
            .unwrap()
            .starts_with("data:image/png;base64,")
    );
    assert!(totp.uri.as_deref().unwrap().starts_with("otpauth://totp/"));
    assert!(totp.uri.as_deref().unwrap().contains(&secret));

    let challenge = client.challenge_factor(&factor.id, None).await.unwrap();
    assert_eq!(challenge.authentication_factor_id, factor.id);
    assert_eq!(challenge.code, None, "TOTP challenges carry no code");

    let t = unix_now();
    let right = totp_code(&secret, t);
    // A code that is none of the accepted steps (t-1, t, t+1).
    let wrong = (0..1000)
        .map(|i| format!("{:06}", (right.parse::<u32>().unwrap() + 1 + i) % 1_000_000))
        .find(|c| {
            ![t - 30, t, t + 30]
                .iter()
                .any(|&s| totp_code(&secret, s) == *c)
        })
        .unwrap();
    let v = client
        .verify_challenge(&challenge.id, &wrong)
        .await
        .unwrap();
    assert!(!v.valid, "a wrong code is valid: false, not an error");
    assert_eq!(v.challenge.id, challenge.id);

    let v = client
        .verify_challenge(&challenge.id, &right)
        .await
        .unwrap();
    assert!(v.valid);

    let e = client
        .verify_challenge(&challenge.id, &right)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::ChallengePreviouslyVerified(_)), "{e:?}");
    assert_eq!(e.status(), Some(422));
    assert_eq!(
        e.code(),
        Some("authentication_challenge_previously_verified")
    );
    assert!(e.message().unwrap().contains(challenge.id.as_str()));

    let read = client.get_factor(&factor.id).await.unwrap();
    assert_eq!(read.id, factor.id);
    assert_eq!(read.user_id.as_deref(), Some("user_alice"));
    let read_totp = read.totp.unwrap();
    assert_eq!(read_totp.issuer, "Acme");
    assert_eq!(
        (read_totp.secret, read_totp.qr_code, read_totp.uri),
        (None, None, None),
        "secrets only at enrollment"
    );

    client.delete_factor(&factor.id).await.unwrap();
    assert!(matches!(
        client.get_factor(&factor.id).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        client.delete_factor(&factor.id).await,
        Err(Error::NotFound(_))
    ));
}

#[tokio::test]
async fn sms_factor_is_normalised_and_challenged_with_a_template() {
    let mfad = Mfad::start().await;
    let client = mfad.client();
    let factor = client
        .enroll_factor(&EnrollFactor::sms("+1 415 555 2671"))
        .await
        .unwrap();
    assert_eq!(factor.factor_type, FactorType::Sms);
    assert_eq!(factor.sms.unwrap().phone_number, "+14155552671");
    assert_eq!(factor.user_id, None);
    let challenge = client
        .challenge_factor(&factor.id, Some("Your Acme code is {{code}}"))
        .await
        .unwrap();
    assert_eq!(challenge.code, None, "SMS codes are texted, never returned");
    let expires = challenge.expires_at.unwrap();
    let ttl = expires - challenge.created_at;
    assert!(
        ttl > time::Duration::minutes(9) && ttl <= time::Duration::minutes(10),
        "ttl {ttl}"
    );
}

#[tokio::test]
async fn generic_otp_challenge_carries_the_code() {
    let mfad = Mfad::start().await;
    let client = mfad.client();
    let factor = client
        .enroll_factor(&EnrollFactor::generic_otp())
        .await
        .unwrap();
    assert_eq!(factor.factor_type, FactorType::GenericOtp);
    assert!(factor.totp.is_none() && factor.sms.is_none());
    let challenge = client.challenge_factor(&factor.id, None).await.unwrap();
    let code = challenge.code.clone().unwrap();
    assert_eq!(code.len(), 6);
    let v = client.verify_challenge(&challenge.id, &code).await.unwrap();
    assert!(v.valid);
}

#[tokio::test]
async fn a_wrong_api_key_is_unauthorized() {
    let mfad = Mfad::start().await;
    let client = Client::new(&mfad.url, "sk_not_a_real_key").unwrap();
    let e = client
        .enroll_factor(&EnrollFactor::generic_otp())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Unauthorized(_)), "{e:?}");
    assert_eq!(e.status(), Some(401));
    assert_eq!(e.message(), Some("Unauthorized"));
    let e = client
        .get_factor(&FactorId::parse(UNKNOWN_FACTOR).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Unauthorized(_)), "{e:?}");
}

#[tokio::test]
async fn unknown_ids_are_not_found() {
    let mfad = Mfad::start().await;
    let client = mfad.client();
    let factor = FactorId::parse(UNKNOWN_FACTOR).unwrap();
    for e in [
        client.get_factor(&factor).await.unwrap_err(),
        client.delete_factor(&factor).await.unwrap_err(),
        client.challenge_factor(&factor, None).await.unwrap_err(),
    ] {
        assert!(matches!(e, Error::NotFound(_)), "{e:?}");
        assert_eq!(e.code(), Some("entity_not_found"));
        assert_eq!(
            e.response().unwrap().entity_id.as_deref(),
            Some(UNKNOWN_FACTOR)
        );
    }
    let e = client
        .verify_challenge(&ChallengeId::parse(UNKNOWN_CHALLENGE).unwrap(), "123456")
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NotFound(_)), "{e:?}");
    assert_eq!(
        e.response().unwrap().entity_id.as_deref(),
        Some(UNKNOWN_CHALLENGE)
    );
}

#[tokio::test]
async fn five_wrong_codes_lock_the_challenge_even_for_the_right_one() {
    let mfad = Mfad::start().await;
    let client = mfad.client();
    let factor = client
        .enroll_factor(&EnrollFactor::generic_otp())
        .await
        .unwrap();
    let challenge = client.challenge_factor(&factor.id, None).await.unwrap();
    let right = challenge.code.clone().unwrap();
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    for _ in 0..5 {
        assert!(
            !client
                .verify_challenge(&challenge.id, wrong)
                .await
                .unwrap()
                .valid
        );
    }
    let e = client
        .verify_challenge(&challenge.id, &right)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::TooManyAttempts(_)), "{e:?}");
    assert_eq!(e.status(), Some(400));
    assert_eq!(e.code(), Some("one_time_code_too_many_attempts"));
}

#[tokio::test]
async fn an_invalid_phone_number_is_refused() {
    let mfad = Mfad::start().await;
    let e = mfad
        .client()
        .enroll_factor(&EnrollFactor::sms("foo"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidPhoneNumber(_)), "{e:?}");
    assert_eq!(e.status(), Some(422));
    assert!(e.message().unwrap().contains("foo"), "{e}");
}

#[tokio::test]
async fn invalid_requests_are_validation_errors_naming_the_field() {
    let mfad = Mfad::start().await;
    let client = mfad.client();
    let e = client
        .enroll_factor(&EnrollFactor::of_type(FactorType::Unknown(
            "carrier_pigeon".into(),
        )))
        .await
        .unwrap_err();
    let Error::Validation { errors, response } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(response.status, 422);
    assert!(
        errors.iter().any(|f| f.field.as_deref() == Some("type")),
        "{errors:?}"
    );

    let e = client
        .list_user_factors("user_x", &ListUserFactors::new().limit(0))
        .await
        .unwrap_err();
    let Error::Validation { errors, .. } = &e else {
        panic!("{e:?}")
    };
    assert!(
        errors.iter().any(|f| f.field.as_deref() == Some("limit")),
        "{errors:?}"
    );
}

#[tokio::test]
async fn an_expired_challenge_is_refused() {
    let mfad = Mfad::start_with(&[("MFAD_CHALLENGE_TTL_SECS", "1")]).await;
    let client = mfad.client();
    let factor = client
        .enroll_factor(&EnrollFactor::generic_otp())
        .await
        .unwrap();
    let challenge = client.challenge_factor(&factor.id, None).await.unwrap();
    let code = challenge.code.clone().unwrap();
    let expires_at = challenge.expires_at.unwrap();
    assert!(expires_at - challenge.created_at <= time::Duration::seconds(1));

    // The server's clock is the real one: wait until just past expiry, and no longer.
    let started = Instant::now();
    while now() <= expires_at + time::Duration::milliseconds(20) {
        assert!(
            started.elapsed() < Duration::from_millis(2500),
            "the challenge should expire within 1 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let e = client
        .verify_challenge(&challenge.id, &code)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::ChallengeExpired(_)), "{e:?}");
    assert_eq!(e.code(), Some("authentication_challenge_expired"));
}

#[tokio::test]
async fn user_factor_enrollment_returns_factor_and_challenge() {
    let mfad = Mfad::start().await;
    let client = mfad.client();

    let imported = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
    let e = client
        .enroll_user_factor(
            "user_bob",
            &EnrollUserFactor::totp()
                .issuer("Acme")
                .user("bob")
                .secret(imported),
        )
        .await
        .unwrap();
    assert_eq!(e.factor.user_id.as_deref(), Some("user_bob"));
    assert_eq!(e.challenge.authentication_factor_id, e.factor.id);
    let totp = e.factor.totp.clone().unwrap();
    assert_eq!((totp.issuer.as_str(), totp.user.as_str()), ("Acme", "bob"));
    assert_eq!(totp.secret.as_deref(), Some(imported));
    let v = client
        .verify_challenge(&e.challenge.id, &totp_code(imported, unix_now()))
        .await
        .unwrap();
    assert!(
        v.valid,
        "the imported secret's code verifies the enrollment challenge"
    );

    let defaults = client
        .enroll_user_factor("user_bob", &EnrollUserFactor::totp())
        .await
        .unwrap();
    let totp = defaults.factor.totp.unwrap();
    assert!(!totp.issuer.is_empty() && !totp.user.is_empty());
    assert!(totp.secret.is_some() && totp.qr_code.is_some() && totp.uri.is_some());

    assert!(matches!(
        client
            .get_factor(&defaults.factor.id)
            .await
            .unwrap()
            .user_id
            .as_deref(),
        Some("user_bob")
    ));
}

#[tokio::test]
async fn pagination_walks_every_page_once_in_order() {
    let mfad = Mfad::start().await;
    let client = mfad.client();
    let user = "user_many";
    let mut enrolled = Vec::new();
    for i in 0..7 {
        let f = client
            .enroll_user_factor(
                user,
                &EnrollUserFactor::totp()
                    .issuer("Acme")
                    .user(format!("device-{i}")),
            )
            .await
            .unwrap();
        enrolled.push(f.factor.id);
    }
    // Someone else's factor must not appear.
    client
        .enroll_user_factor("user_other", &EnrollUserFactor::totp())
        .await
        .unwrap();

    let everything = client
        .list_user_factors(user, &ListUserFactors::new().limit(100))
        .await
        .unwrap();
    assert_eq!(everything.data.len(), 7);
    assert!(!everything.has_more());
    let desc: Vec<FactorId> = everything.data.iter().map(|f| f.id.clone()).collect();
    assert!(
        everything
            .data
            .windows(2)
            .all(|w| w[0].created_at >= w[1].created_at),
        "newest first by default"
    );
    assert_eq!(
        desc.iter().collect::<HashSet<_>>(),
        enrolled.iter().collect::<HashSet<_>>()
    );

    // Page by page, by hand.
    let first = client
        .list_user_factors(user, &ListUserFactors::new().limit(3))
        .await
        .unwrap();
    assert_eq!(first.data.len(), 3);
    let second = client
        .list_user_factors(
            user,
            &ListUserFactors::new()
                .limit(3)
                .after(first.list_metadata.after.clone().unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(second.data.len(), 3);
    let third = client
        .list_user_factors(
            user,
            &ListUserFactors::new()
                .limit(3)
                .after(second.list_metadata.after.clone().unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(third.data.len(), 1);
    assert_eq!(
        third.list_metadata.after, None,
        "no cursor on the last page"
    );
    let by_hand: Vec<FactorId> = [first, second, third]
        .into_iter()
        .flat_map(|p| p.data)
        .map(|f| f.id)
        .collect();
    assert_eq!(by_hand, desc);

    // The stream: all seven, each once, in the same order. (`take` bounds a stream that
    // would repeat pages forever, so such a bug fails instead of hanging.)
    let streamed: Vec<FactorId> = client
        .list_user_factors_stream(user, ListUserFactors::new().limit(3))
        .map_ok(|f| f.id)
        .take(20)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(streamed, desc);

    let ascending: Vec<FactorId> = client
        .list_user_factors_stream(user, ListUserFactors::new().limit(3).order(Order::Asc))
        .map_ok(|f| f.id)
        .take(20)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(ascending, desc.iter().rev().cloned().collect::<Vec<_>>());

    let empty = client
        .list_user_factors("user_nobody", &ListUserFactors::new())
        .await
        .unwrap();
    assert!(empty.data.is_empty() && !empty.has_more());
    assert_eq!(
        client
            .list_user_factors_stream("user_nobody", ListUserFactors::new())
            .take(20)
            .count()
            .await,
        0
    );
}

#[tokio::test]
async fn the_stream_ends_with_the_error_that_stopped_it() {
    let mfad = Mfad::start().await;
    let client = Client::new(&mfad.url, "sk_wrong").unwrap();
    let items: Vec<_> = client
        .list_user_factors_stream("user_x", ListUserFactors::new())
        .collect()
        .await;
    assert_eq!(items.len(), 1);
    assert!(matches!(items[0], Err(Error::Unauthorized(_))), "{items:?}");
}
