//! A seeded fuzz over every route of the router (`mfad_server::routes::paths`), through the
//! real server on raw TCP, so that bytes no HTTP client would send reach it: random methods,
//! path segments (percent-encoded random bytes, raw non-UTF-8, overlong), query strings,
//! `Authorization`, `Content-Type` and tenant headers, a `Content-Length` that disagrees
//! with the body, and random or truncated JSON bodies. Every answer must come within a
//! deadline, never be a 5xx (the 503 handler deadline included), never plain text, and be
//! in the shape of the API its path belongs to (`every_route::check`).
//!
//! The run is bounded: a fixed seed (`MFAD_FUZZ_SEED` picks another, to explore) and a
//! fixed number of cases, sent a few at a time.

use std::time::Duration;

use proptest::prelude::RngExt;
use proptest::test_runner::{RngAlgorithm, TestRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::every_route::check;
use crate::support::{Options, spawn_with};

const CASES: usize = 1200;
const IN_FLIGHT: usize = 16;
/// Longer than the body timeout the server runs with here (1 s), so a body announced and
/// never sent is answered (408), not waited out.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// One generated request, kept with its description for the failure message.
struct Case {
    path: String,
    method: String,
    raw: Vec<u8>,
}

fn pick<'a, T>(rng: &mut TestRng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// Random bytes, percent-encoded (any byte, so often not UTF-8).
fn percent_bytes(rng: &mut TestRng, max: usize) -> String {
    let n = rng.random_range(0..=max);
    (0..n)
        .map(|_| format!("%{:02X}", rng.random::<u8>()))
        .collect()
}

/// A path segment: percent-encoded bytes, raw non-UTF-8 bytes, a truncated escape,
/// overlong, or plausible.
fn segment(rng: &mut TestRng) -> Vec<u8> {
    match rng.random_range(0..6) {
        0 => percent_bytes(rng, 12).into_bytes(),
        1 => (0..rng.random_range(1..8))
            .map(|_| rng.random_range(0x80..=0xffu8))
            .collect(),
        2 => b"%".iter().chain(b"C").copied().collect(),
        3 => "a".repeat(rng.random_range(1000..10_000)).into_bytes(),
        4 => (*pick(
            rng,
            &[
                "auth_factor_01FVYZ5QM8N98T9ME5BCB2BBMJ",
                "..",
                "%2e%2e%2f",
                "0",
            ],
        ))
        .into(),
        _ => (0..rng.random_range(1..40))
            .map(|_| *pick(rng, b"abcXYZ019-_.~!$&'()*+,;=:@"))
            .collect(),
    }
}

fn query(rng: &mut TestRng) -> Vec<u8> {
    match rng.random_range(0..5) {
        0 => Vec::new(),
        1 => {
            let pairs = rng.random_range(1..6);
            let mut q = b"?".to_vec();
            for _ in 0..pairs {
                let key = *pick(
                    rng,
                    &["limit", "before", "after", "order", "userId", "x", ""],
                );
                q.extend(format!("{key}={}&", percent_bytes(rng, 6)).into_bytes());
            }
            q
        }
        2 => b"?%".to_vec(),
        3 => [b"?a=".as_slice(), &[0xff, 0xfe]].concat(),
        _ => format!("?limit={}", "9".repeat(rng.random_range(1..40))).into_bytes(),
    }
}

/// A header value hyper accepts on the wire (visible ASCII, spaces and obs-text).
fn header_noise(rng: &mut TestRng) -> Vec<u8> {
    (0..rng.random_range(0..60))
        .map(|_| match rng.random_range(0..4) {
            0 => rng.random_range(0x80..=0xffu8),
            _ => rng.random_range(0x20..0x7fu8),
        })
        .collect()
}

fn body(rng: &mut TestRng) -> Vec<u8> {
    const JSON: &[&str] = &[
        r#"{"type":"totp","totp_issuer":"Acme","totp_user":"bob@example.com"}"#,
        r#"{"type":"sms","phone_number":"+14155552671","sms_template":"{{code}}"}"#,
        r#"{"code":"123456","authentication_challenge_id":"auth_challenge_01"}"#,
        r#"{"userId":"bob","method":"authenticator","code":"123456","secret":"abc"}"#,
        r#"{"twoFactorId":"x","code":"123456","applicationId":null}"#,
        r#"{"loginId":"bob","methodId":"m1","trustChallenge":"t"}"#,
    ];
    match rng.random_range(0..6) {
        0 => Vec::new(),
        1 | 2 => {
            let json = pick(rng, JSON).as_bytes();
            json[..rng.random_range(0..=json.len())].to_vec()
        }
        3 => (0..rng.random_range(1..200))
            .map(|_| rng.random())
            .collect(),
        4 => {
            let depth = rng.random_range(1..3000);
            ["[".repeat(depth), "]".repeat(depth)].concat().into_bytes()
        }
        _ => format!(
            "{{\"type\":\"{}\"}}",
            "x".repeat(rng.random_range(1..100_000))
        )
        .into_bytes(),
    }
}

fn generate(rng: &mut TestRng, templates: &[&str], key: &str) -> Case {
    let template = *pick(rng, templates);
    let mut path = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let close = rest[open..].find('}').map_or(rest.len(), |c| c + open);
        path.extend_from_slice(&rest.as_bytes()[..open]);
        path.extend(segment(rng));
        rest = rest.get(close + 1..).unwrap_or("");
    }
    path.extend_from_slice(rest.as_bytes());
    // The routes' own methods weigh more, so headers and bodies reach the handlers.
    const METHODS: &[&str] = &[
        "GET", "POST", "GET", "POST", "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS",
        "FROB",
    ];
    let method = (*pick(rng, METHODS)).to_owned();

    let mut head = [
        method.as_bytes(),
        b" ",
        &path,
        &query(rng),
        b" HTTP/1.1\r\n",
    ]
    .concat();
    head.extend(b"Host: mfad.test\r\nConnection: close\r\n");
    let mut header = |name: &str, value: &[u8]| {
        head.extend([name.as_bytes(), b": ", value, b"\r\n"].concat());
    };
    match rng.random_range(0..6) {
        0 => {}
        1 => header("Authorization", format!("Bearer {key}").as_bytes()),
        2 => header("Authorization", key.as_bytes()),
        3 => header("Authorization", b"Bearer e30.e30."),
        _ => header("Authorization", &header_noise(rng)),
    }
    match rng.random_range(0..4) {
        0 => {}
        1 => header("Content-Type", b"application/json"),
        2 => header(
            "Content-Type",
            pick(rng, &["text/plain", "application/json; charset=utf-16"]).as_bytes(),
        ),
        _ => header("Content-Type", &header_noise(rng)),
    }
    match rng.random_range(0..3) {
        0 => {}
        1 => header("X-FusionAuth-TenantId", &header_noise(rng)),
        _ => header(
            "X-FusionAuth-TenantId",
            b"6b87a398-39f2-4692-927b-13188a81a9a3",
        ),
    }
    let body = body(rng);
    // Mostly the true length; else shorter (the rest is left unread) or longer (the body
    // never completes: the server's body timeout must answer).
    let declared = match rng.random_range(0..40) {
        0 => body.len() + rng.random_range(1..100),
        1..=3 => rng.random_range(0..=body.len()),
        _ => body.len(),
    };
    header("Content-Length", declared.to_string().as_bytes());
    head.extend(b"\r\n");
    head.extend(body);
    Case {
        path: String::from_utf8_lossy(&path).into_owned(),
        method,
        raw: head,
    }
}

/// Sends one case and reads the whole answer (the connection is `close`).
async fn send(addr: std::net::SocketAddr, raw: Vec<u8>) -> Result<Vec<u8>, String> {
    let mut stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let exchange = async {
        // The server may answer and close before reading an oversized body.
        let _ = stream.write_all(&raw).await;
        let mut answer = Vec::new();
        match stream.read_to_end(&mut answer).await {
            Ok(_) => Ok(answer),
            Err(_) if !answer.is_empty() => Ok(answer),
            Err(e) => Err(format!("read failed: {e}")),
        }
    };
    tokio::time::timeout(ANSWER_WITHIN, exchange)
        .await
        .map_err(|_| format!("no answer within {ANSWER_WITHIN:?}"))?
}

/// Status, content type and body (chunked bodies decoded) of a raw HTTP/1.1 answer.
fn parse(raw: &[u8]) -> Option<(u16, String, String)> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let mut content_type = String::new();
    let mut chunked = false;
    for line in lines {
        let (name, value) = line.split_once(':')?;
        match name.to_ascii_lowercase().as_str() {
            "content-type" => content_type = value.trim().to_owned(),
            "transfer-encoding" => chunked = value.trim().eq_ignore_ascii_case("chunked"),
            _ => {}
        }
    }
    let mut body = raw[end + 4..].to_vec();
    if chunked {
        let mut decoded = Vec::new();
        let mut rest = body.as_slice();
        loop {
            let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).ok()?, 16).ok()?;
            if size == 0 {
                break;
            }
            decoded.extend_from_slice(rest.get(line_end + 2..line_end + 2 + size)?);
            rest = rest.get(line_end + 4 + size..)?;
        }
        body = decoded;
    }
    Some((
        status,
        content_type,
        String::from_utf8_lossy(&body).into_owned(),
    ))
}

/// Judges one answer; `Err` describes what is wrong.
fn judge(case: &Case, answer: &[u8]) -> Result<u16, String> {
    let (status, content_type, text) = parse(answer).ok_or_else(|| {
        format!(
            "not an HTTP answer: {:.300}",
            String::from_utf8_lossy(answer)
        )
    })?;
    let request_line = case.raw.split(|b| *b == b'\n').next().unwrap_or_default();
    if !request_line.is_ascii() && status == 400 && text.is_empty() && content_type.is_empty() {
        // Raw non-ASCII bytes in the request line are not HTTP/1.1 (RFC 9112 §3.2): hyper's
        // parser may refuse them before any route, so before the API is known, with an
        // empty 400 and a closed connection. Those it lets through are judged as usual.
        return Ok(status);
    }
    if case.method == "HEAD" {
        // No body on HEAD; the status and type still must not betray a failure.
        return (status < 500 && !content_type.starts_with("text/plain"))
            .then_some(status)
            .ok_or_else(|| format!("HEAD -> {status} {content_type}"));
    }
    std::panic::catch_unwind(|| check(&case.path, &case.method, status, &content_type, &text))
        .map(|()| status)
        .map_err(|_| format!("bad answer {status} {content_type:?} {text:.300}"))
}

#[tokio::test]
async fn fuzz_every_route_with_malformed_requests() {
    let app = spawn_with(Options {
        vars: vec![
            ("MFAD_BODY_TIMEOUT_SECS", "1".into()),
            ("MFAD_HEADER_TIMEOUT_SECS", "2".into()),
        ],
        ..Options::default()
    })
    .await;
    let seed: u64 = std::env::var("MFAD_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x6d66_6164);
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes);
    let paths = mfad_server::routes::paths();
    let templates: Vec<&str> = paths.iter().map(String::as_str).collect();
    let cases: Vec<Case> = (0..CASES)
        .map(|_| generate(&mut rng, &templates, &app.key))
        .collect();

    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    let mut failures = Vec::new();
    for batch in cases.chunks(IN_FLIGHT) {
        let answers: Vec<_> = batch
            .iter()
            .map(|case| tokio::spawn(send(app.addr, case.raw.clone())))
            .collect();
        for (case, answer) in batch.iter().zip(answers) {
            match answer.await.unwrap().and_then(|a| judge(case, &a)) {
                Ok(status) => *statuses.entry(status).or_default() += 1,
                Err(e) => failures.push(format!(
                    "{} {:.120}: {e}\n  request: {:.400}",
                    case.method,
                    case.path,
                    String::from_utf8_lossy(&case.raw)
                )),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "seed {seed}: {} of {CASES} cases failed:\n{}",
        failures.len(),
        failures[..failures.len().min(10)].join("\n")
    );
    // The inputs reach past the router: not only 404s, but refusals of bodies, headers and
    // keys, and some accepted requests.
    eprintln!("statuses of {CASES} cases: {statuses:?}");
    assert!(statuses.len() >= 5, "{statuses:?}");
    assert!(statuses.keys().any(|s| *s < 300), "{statuses:?}");
}

/// The judge is honest: plain text, a 5xx, the other API's shape, or no answer, fail it.
#[test]
fn the_fuzz_judge_refuses_wrong_answers() {
    let case = |path: &str| Case {
        path: path.into(),
        method: "GET".into(),
        raw: Vec::new(),
    };
    let answer = |status: u16, ct: &str, body: &str| {
        format!(
            "HTTP/1.1 {status} X\r\ncontent-type: {ct}\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    };
    let workos = case("/auth/factors/x");
    let fusionauth = case("/api/two-factor/status/x");
    let workos_error = r#"{"code":"not_found","message":"no"}"#;
    let fusionauth_error = r#"{"generalErrors":[{"code":"[x]","message":"no"}]}"#;
    assert!(judge(&workos, &answer(404, "application/json", workos_error)).is_ok());
    assert!(
        judge(
            &fusionauth,
            &answer(400, "application/json", fusionauth_error)
        )
        .is_ok()
    );
    assert!(
        judge(
            &fusionauth,
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"
        )
        .is_ok()
    );
    for (case, raw) in [
        (
            &workos,
            answer(400, "text/plain; charset=utf-8", "Invalid URL"),
        ),
        (
            &fusionauth,
            answer(400, "text/plain; charset=utf-8", "Invalid URL"),
        ),
        (&workos, answer(500, "application/json", workos_error)),
        (
            &fusionauth,
            answer(503, "application/json", fusionauth_error),
        ),
        (&workos, answer(400, "application/json", fusionauth_error)),
        (&fusionauth, answer(400, "application/json", workos_error)),
        (
            &workos,
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n".to_vec(),
        ),
        (&workos, Vec::new()),
    ] {
        assert!(
            judge(case, &raw).is_err(),
            "{}",
            String::from_utf8_lossy(&raw)
        );
    }
}
