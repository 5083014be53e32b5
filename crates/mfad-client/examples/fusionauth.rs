//! The FusionAuth Two Factor flow with an authenticator app, end to end and with no phone:
//! a TOTP computation here stands in for the user's app. Generate a secret, enable it for a
//! new user (which brings 10 recovery codes), check the status (242 is a value), start and
//! complete a two-factor login trusting this computer, and turn two-factor off again with a
//! recovery code.
//!
//! ```text
//! MFAD_URL=http://127.0.0.1:8080 MFAD_API_KEY=sk_… cargo run -p mfad-client --example fusionauth
//! ```

use std::time::SystemTime;

use mfad_client::fusionauth::{
    CompleteTwoFactorLogin, DisableTwoFactor, EnableTwoFactor, MethodKind, StartTwoFactorLogin,
};
use mfad_client::{Client, Error};

/// What the user's authenticator app shows at `unix` seconds for a base32 secret:
/// HMAC-SHA1, 6 digits, 30-second steps, as FusionAuth fixes them.
fn authenticator_app(secret_base32: &str, unix: u64) -> Result<String, Box<dyn std::error::Error>> {
    let key = data_encoding::BASE32_NOPAD.decode(secret_base32.as_bytes())?;
    let totp = totp_rs::Builder::new()
        .with_secret(key)
        .with_digits(6)
        .with_step_duration(30)
        .build_noncompliant();
    Ok(totp.generate(unix).to_string())
}

#[expect(
    clippy::disallowed_methods,
    reason = "an authenticator app reads the real clock, as the server does"
)]
fn unix_now() -> Result<u64, std::time::SystemTimeError> {
    Ok(SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)?
        .as_secs())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The API key's tenant is the request's tenant; with a FusionAuth tenant id to send,
    // use `Client::builder().fusionauth_tenant_id(…)`.
    let client = Client::from_env()?;
    let fa = client.fusionauth();

    // mfad does not own users: any id of yours will do. A fresh one per run.
    let mut random = [0u8; 8];
    getrandom::fill(&mut random)?;
    let user = format!("example-{}", data_encoding::HEXLOWER.encode(&random));

    // 1. A secret. Show `secret_base32_encoded` (or an otpauth:// QR code of it) to the
    //    user, who adds it to an authenticator app and types the code it shows.
    let secret = fa.generate_secret().await?;
    println!("secret for the app: {}", secret.secret_base32_encoded);
    let t = unix_now()?;
    let code = authenticator_app(&secret.secret_base32_encoded, t)?;

    // 2. Enable. The first method comes with recovery codes: show them to the user once.
    let enabled = fa
        .enable(
            &user,
            &EnableTwoFactor::authenticator(&code, &secret.secret).name("Authenticator app"),
        )
        .await?;
    println!(
        "enabled for {user}; {} recovery codes to keep safe",
        enabled.recovery_codes.len()
    );

    // 3. At sign-in: does this user need a second factor? (HTTP 242 means yes.)
    let status = fa.status(&user, None, None).await?;
    println!("two-factor required: {}", status.two_factor_required);

    // 4. Start a two-factor login and complete it with the app's code. The code that
    //    enabled the app is spent, so the app's next code is used here.
    let login = fa.start_login(&StartTwoFactorLogin::user(&user)).await?;
    for m in &login.methods {
        println!("method {} ({}) {:?}", m.id, m.method, m.name);
    }
    let method = login
        .methods
        .iter()
        .find(|m| m.method == MethodKind::Authenticator)
        .ok_or("the authenticator method")?
        .clone();
    // A TOTP code is accepted once: the enabling code is refused like a wrong one.
    match fa
        .complete_login(&CompleteTwoFactorLogin::new(&login.two_factor_id, &code))
        .await
    {
        Err(Error::InvalidCode(e)) => println!("a spent code is refused (HTTP 421): {e}"),
        other => return Err(format!("expected a refusal, got {other:?}").into()),
    }
    let next = authenticator_app(&secret.secret_base32_encoded, t + 30)?;
    let done = fa
        .complete_login(
            &CompleteTwoFactorLogin::new(&login.two_factor_id, &next).trust_computer(true),
        )
        .await?;
    println!(
        "logged in as {:?}; token issued: {}",
        done.user.as_ref().map(|u| &u.id),
        done.token.is_some()
    );

    // 5. Remembered computers skip two-factor while the trust lasts.
    if let Some(trust) = done.two_factor_trust_id.as_deref() {
        let trusted = fa.status(&user, None, Some(trust)).await?;
        println!(
            "with the trust: two-factor required: {}",
            trusted.two_factor_required
        );
    }

    // 6. Lost the phone? A recovery code turns two-factor off (every method at once).
    let recovery = enabled
        .recovery_codes
        .first()
        .ok_or("recovery codes with the first method")?;
    fa.disable_with_request(&user, &DisableTwoFactor::new(&method.id, recovery))
        .await?;
    let status = fa.status(&user, None, None).await?;
    println!(
        "after disabling: two-factor required: {}",
        status.two_factor_required
    );
    Ok(())
}
