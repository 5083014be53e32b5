//! The whole WorkOS flow without a phone or an app: enroll a generic OTP factor for a user,
//! challenge it (the server returns the code, for you to deliver by any channel), verify it,
//! list the user's factors and clean up.
//!
//! ```text
//! MFAD_URL=http://127.0.0.1:8080 MFAD_API_KEY=sk_… cargo run -p mfad-client --example generic_otp
//! ```

use futures_util::TryStreamExt;
use mfad_client::{Client, EnrollFactor, Error, ListUserFactors};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = Client::from_env()?;
    let user = "user_example";

    let factor = client
        .enroll_factor(&EnrollFactor::generic_otp().user_id(user))
        .await?;
    println!("enrolled {} for {user}", factor.id);

    let challenge = client.challenge_factor(&factor.id, None).await?;
    let code = challenge
        .code
        .clone()
        .ok_or("generic OTP challenges carry their code")?;
    println!(
        "challenge {} expires at {:?}; deliver the code to the user",
        challenge.id, challenge.expires_at
    );

    let wrong = client
        .verify_challenge(&challenge.id, "not-the-code")
        .await?;
    println!("a wrong code: valid = {}", wrong.valid);
    let right = client.verify_challenge(&challenge.id, &code).await?;
    println!("the right code: valid = {}", right.valid);
    match client.verify_challenge(&challenge.id, &code).await {
        Err(Error::ChallengePreviouslyVerified(e)) => println!("and a second time: refused ({e})"),
        other => println!("unexpected: {other:?}"),
    }

    let factors: Vec<_> = client
        .list_user_factors_stream(user, ListUserFactors::new())
        .try_collect()
        .await?;
    println!("{user} has {} factor(s)", factors.len());

    client.delete_factor(&factor.id).await?;
    println!("deleted {}", factor.id);
    Ok(())
}
