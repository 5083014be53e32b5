//! Enroll a TOTP factor, challenge it and verify a code typed from an authenticator app.
//!
//! ```text
//! mfad api-key create --tenant demo          # the key is the last line
//! mfad serve &
//! MFAD_URL=http://127.0.0.1:8080 MFAD_API_KEY=sk_… cargo run -p mfad-client --example totp
//! ```

use std::io::{BufRead, Write};

use mfad_client::{Client, EnrollFactor, Error};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = Client::from_env()?;

    let factor = client
        .enroll_factor(&EnrollFactor::totp("mfad demo", "alice@example.com").user_id("user_alice"))
        .await?;
    println!("enrolled {}", factor.id);
    if let Some(totp) = &factor.totp {
        // Shown once: the server never returns the secret again.
        println!("add this to your authenticator app:");
        println!("  key URI: {}", totp.uri.as_deref().unwrap_or_default());
        println!("  secret:  {}", totp.secret.as_deref().unwrap_or_default());
        println!(
            "  (a QR code of the URI is in `qr_code`, a PNG data URI of {} bytes)",
            totp.qr_code.as_ref().map_or(0, String::len)
        );
    }

    loop {
        let challenge = client.challenge_factor(&factor.id, None).await?;
        print!("code from the app (empty to stop): ");
        std::io::stdout().flush()?;
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        let code = line.trim();
        if code.is_empty() {
            break;
        }
        match client.verify_challenge(&challenge.id, code).await {
            Ok(v) if v.valid => {
                println!("verified");
                break;
            }
            Ok(_) => println!("wrong code, try again"),
            Err(Error::ChallengeExpired(_)) => println!("the challenge expired, try again"),
            Err(e) => return Err(e.into()),
        }
    }

    client.delete_factor(&factor.id).await?;
    println!("deleted {}", factor.id);
    Ok(())
}
