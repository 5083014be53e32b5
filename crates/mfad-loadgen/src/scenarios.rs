//! The load scenarios. Every worker task owns one keep-alive connection and issues
//! requests back to back (closed loop) until the deadline or until its work runs out.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use data_encoding::BASE32_NOPAD;
use hyper::body::Bytes;
use hyper::{Method, StatusCode, Uri};
use mfad_otp::Totp;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio::task::{JoinHandle, JoinSet};

use crate::client::{Conn, Target};
use crate::report::{Phase, Recorder, Report};
use crate::rss::RssSampler;
use crate::{Cli, Scenario};

/// Challenges older than this may expire (the API's challenge lifetime is 10 minutes).
const CHALLENGE_SAFE_AGE: Duration = Duration::from_secs(8 * 60);

// ---------------------------------------------------------------------------------
// Wire shapes (only the fields the load generator checks).

#[derive(Debug, Deserialize)]
struct FactorOut {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    totp: Option<TotpOut>,
}

#[derive(Debug, Deserialize)]
struct TotpOut {
    secret: String,
    qr_code: String,
}

#[derive(Debug, Deserialize)]
struct ChallengeOut {
    id: String,
    code: Option<String>,
}

#[derive(Debug, Deserialize)]
struct VerifyOut {
    valid: bool,
}

// ---------------------------------------------------------------------------------
// Small helpers.

/// Wall-clock time, needed to compute the same TOTP codes the server expects.
#[allow(
    clippy::disallowed_methods,
    reason = "the load generator is a TOTP client: it must use the real wall clock"
)]
fn unix_now() -> Result<Duration, String> {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| format!("system clock is before 1970: {e}"))
}

fn snippet(body: &[u8]) -> String {
    let cut = body.get(..300).unwrap_or(body);
    let mut s = String::from_utf8_lossy(cut).into_owned();
    if cut.len() < body.len() {
        s.push_str("...");
    }
    s
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("unexpected body ({e}): {}", snippet(body)))
}

/// Sends a request and times it (the latency excludes the response checks).
async fn call(
    conn: &mut Conn,
    method: Method,
    uri: Uri,
    body: Bytes,
    want: StatusCode,
) -> (Duration, Result<Bytes, String>) {
    let started = Instant::now();
    let result = conn.send(method, uri, body).await;
    let latency = started.elapsed();
    let result = match result {
        Ok((status, body)) if status == want => Ok(body),
        Ok((status, body)) => Err(format!("HTTP {status} (wanted {want}): {}", snippet(&body))),
        Err(e) => Err(format!("{e:#}")),
    };
    (latency, result)
}

fn enroll_totp_body(n: u64) -> Bytes {
    Bytes::from(format!(
        r#"{{"type":"totp","totp_issuer":"Bench","totp_user":"u{n}@example.com"}}"#
    ))
}

const ENROLL_GENERIC_BODY: &[u8] = br#"{"type":"generic_otp"}"#;
const EMPTY_OBJECT: &[u8] = b"{}";

fn verify_body(code: &str) -> Bytes {
    Bytes::from(format!(r#"{{"code":"{code}"}}"#))
}

/// Checks a TOTP enrollment response; returns the factor id and the decoded secret.
fn check_totp_enrollment(body: &[u8]) -> Result<(String, Vec<u8>), String> {
    let factor: FactorOut = parse(body)?;
    if factor.kind != "totp" {
        return Err(format!("enrolled factor has type {:?}", factor.kind));
    }
    let Some(totp) = factor.totp else {
        return Err(format!(
            "enroll response has no totp object: {}",
            snippet(body)
        ));
    };
    if !totp.qr_code.starts_with("data:image/png;base64,") || totp.qr_code.len() < 100 {
        return Err(format!(
            "qr_code is not a PNG data URI: {}",
            snippet(totp.qr_code.as_bytes())
        ));
    }
    let secret = BASE32_NOPAD
        .decode(totp.secret.as_bytes())
        .map_err(|e| format!("secret {:?} is not unpadded base32: {e}", totp.secret))?;
    Ok((factor.id, secret))
}

fn check_valid(body: &[u8]) -> Result<(), String> {
    let out: VerifyOut = parse(body)?;
    if out.valid {
        Ok(())
    } else {
        Err(format!("valid:false for a correct code: {}", snippet(body)))
    }
}

fn uri_or_err(target: &Target, path: &str) -> Result<Uri, String> {
    target.uri(path).map_err(|e| format!("{e:#}"))
}

fn spawn_progress(label: &'static str, total: u64, done: Arc<AtomicU64>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        tick.tick().await;
        loop {
            tick.tick().await;
            eprintln!("  {label}: {}/{total}", done.load(Ordering::Relaxed));
        }
    })
}

fn as_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

// ---------------------------------------------------------------------------------
// Running one phase over all connections.

struct PhaseOut<T> {
    phase: Phase,
    conns: Vec<Conn>,
    /// Worker outputs, ordered by worker index.
    outputs: Vec<T>,
    reconnects: u64,
}

/// Spawns one worker per connection and waits for all of them.
async fn run_phase<T, F, Fut>(
    conns: Vec<Conn>,
    names: &[&'static str],
    worker: F,
) -> Result<PhaseOut<T>>
where
    T: Send + 'static,
    F: Fn(usize, Conn, Recorder) -> Fut,
    Fut: Future<Output = (Conn, Recorder, T)> + Send + 'static,
{
    let reconnects_before: u64 = conns.iter().map(|c| c.reconnects).sum();
    let start = Instant::now();
    let mut set = JoinSet::new();
    for (i, conn) in conns.into_iter().enumerate() {
        let fut = worker(i, conn, Recorder::new(names)?);
        set.spawn(async move {
            let (conn, rec, out) = fut.await;
            (i, conn, rec, out, Instant::now())
        });
    }
    let mut rec = Recorder::new(names)?;
    let mut conns = Vec::new();
    let mut outputs = Vec::new();
    let mut last = start;
    while let Some(joined) = set.join_next().await {
        let (i, conn, worker_rec, out, done) = joined.context("a worker task failed")?;
        rec.merge(worker_rec)?;
        conns.push(conn);
        outputs.push((i, out));
        last = last.max(done);
    }
    outputs.sort_by_key(|(i, _)| *i);
    let reconnects_after: u64 = conns.iter().map(|c| c.reconnects).sum();
    Ok(PhaseOut {
        phase: Phase {
            elapsed: last.saturating_duration_since(start),
            rec,
        },
        conns,
        outputs: outputs.into_iter().map(|(_, out)| out).collect(),
        reconnects: reconnects_after.saturating_sub(reconnects_before),
    })
}

/// Fails the run if the (unmeasured) setup saw any error.
fn check_setup(phase: &Phase) -> Result<()> {
    let errors = phase.rec.errors();
    if errors > 0 {
        bail!(
            "setup failed with {errors} error(s): {}",
            phase.rec.error_samples().join(" | ")
        );
    }
    Ok(())
}

/// What a scenario hands back to [`run`].
struct Outcome {
    setup: Option<Phase>,
    measured: Phase,
    stop_reason: String,
    reconnects: u64,
    notes: Vec<String>,
}

const TIME_UP: &str = "time limit reached";

// ---------------------------------------------------------------------------------
// Entry point.

/// Connects, runs the chosen scenario and assembles the report.
pub async fn run(cli: &Cli, threads: usize) -> Result<Report> {
    if cli.connections == 0 {
        bail!("--connections must be at least 1");
    }
    if cli.scenario != Scenario::Health && cli.api_key.is_none() {
        bail!("--api-key (or MFAD_API_KEY) is required for this scenario");
    }
    let target = Arc::new(Target::parse(
        &cli.url,
        cli.api_key.as_deref(),
        cli.timeout,
    )?);
    let sampler = match cli.server_pid {
        Some(pid) => Some(RssSampler::start(pid)?),
        None => None,
    };

    let mut conns = Vec::with_capacity(cli.connections);
    for _ in 0..cli.connections {
        conns.push(Conn::connect(Arc::clone(&target)).await?);
    }
    eprintln!(
        "mfad-loadgen: {} connection(s) to {}, scenario {}",
        conns.len(),
        cli.url,
        cli.scenario.name()
    );

    let outcome = match cli.scenario {
        Scenario::Health => health(&target, conns, cli).await?,
        Scenario::EnrollTotp => enroll_totp(&target, conns, cli).await?,
        Scenario::Verify => verify_generic(&target, conns, cli).await?,
        Scenario::VerifyTotp => verify_totp(&target, conns, cli).await?,
        Scenario::Flow => flow(&target, conns, cli).await?,
    };

    let rss = match sampler {
        Some(s) => Some(s.finish().await?),
        None => None,
    };
    Ok(Report {
        scenario: cli.scenario.name(),
        url: cli.url.clone(),
        connections: cli.connections,
        threads,
        duration: cli.seconds,
        stop_reason: outcome.stop_reason,
        setup: outcome.setup,
        measured: outcome.measured,
        rss,
        reconnects: outcome.reconnects,
        notes: outcome.notes,
    })
}

// ---------------------------------------------------------------------------------
// health: GET /health, the HTTP floor.

async fn health(target: &Arc<Target>, conns: Vec<Conn>, cli: &Cli) -> Result<Outcome> {
    let uri = target.uri("/health")?;
    let deadline = Instant::now() + cli.seconds;
    let out = run_phase(conns, &["GET /health"], |_, mut conn, mut rec| {
        let uri = uri.clone();
        async move {
            while Instant::now() < deadline {
                let (latency, result) = call(
                    &mut conn,
                    Method::GET,
                    uri.clone(),
                    Bytes::new(),
                    StatusCode::OK,
                )
                .await;
                match result {
                    Ok(_) => rec.ok(0, latency),
                    Err(e) => rec.err(0, e),
                }
            }
            (conn, rec, ())
        }
    })
    .await?;
    Ok(Outcome {
        setup: None,
        measured: out.phase,
        stop_reason: TIME_UP.into(),
        reconnects: out.reconnects,
        notes: Vec::new(),
    })
}

// ---------------------------------------------------------------------------------
// enroll-totp: POST /auth/factors/enroll (TOTP, with QR code).

async fn enroll_totp(target: &Arc<Target>, conns: Vec<Conn>, cli: &Cli) -> Result<Outcome> {
    let uri = target.uri("/auth/factors/enroll")?;
    let counter = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + cli.seconds;
    let out = run_phase(conns, &["enroll(totp)"], |_, mut conn, mut rec| {
        let uri = uri.clone();
        let counter = Arc::clone(&counter);
        async move {
            while Instant::now() < deadline {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let (latency, result) = call(
                    &mut conn,
                    Method::POST,
                    uri.clone(),
                    enroll_totp_body(n),
                    StatusCode::CREATED,
                )
                .await;
                match result.and_then(|b| check_totp_enrollment(&b)) {
                    Ok(_) => rec.ok(0, latency),
                    Err(e) => rec.err(0, e),
                }
            }
            (conn, rec, ())
        }
    })
    .await?;
    Ok(Outcome {
        setup: None,
        measured: out.phase,
        stop_reason: TIME_UP.into(),
        reconnects: out.reconnects,
        notes: Vec::new(),
    })
}

// ---------------------------------------------------------------------------------
// verify: prepare generic_otp challenges, then measure only the verify requests.

/// A verify request ready to send.
#[derive(Debug)]
struct PreparedVerify {
    uri: Uri,
    body: Bytes,
}

async fn verify_generic(target: &Arc<Target>, conns: Vec<Conn>, cli: &Cli) -> Result<Outcome> {
    let total = cli.prepare;
    if total == 0 {
        bail!("--prepare must be at least 1");
    }
    let per_factor = cli.challenges_per_factor.max(1);
    let factors = total.div_ceil(per_factor);
    let nconns = conns.len();
    eprintln!(
        "setup: {factors} generic_otp factor(s) x up to {per_factor} challenge(s) = {total} challenges"
    );

    let enroll_uri = target.uri("/auth/factors/enroll")?;
    let progress = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicBool::new(false));
    let ticker = spawn_progress("challenges prepared", as_u64(total), Arc::clone(&progress));
    let setup = run_phase(
        conns,
        &["enroll(generic_otp)", "challenge(generic_otp)"],
        |w, mut conn, mut rec| {
            let enroll_uri = enroll_uri.clone();
            let target = Arc::clone(target);
            let progress = Arc::clone(&progress);
            let failed = Arc::clone(&failed);
            async move {
                let mut mine: Vec<(usize, Vec<PreparedVerify>)> = Vec::new();
                'factors: for f in (w..factors).step_by(nconns) {
                    if failed.load(Ordering::Relaxed) {
                        break;
                    }
                    let (latency, result) = call(
                        &mut conn,
                        Method::POST,
                        enroll_uri.clone(),
                        Bytes::from_static(ENROLL_GENERIC_BODY),
                        StatusCode::CREATED,
                    )
                    .await;
                    let challenge_uri =
                        match result
                            .and_then(|b| parse::<FactorOut>(&b))
                            .and_then(|factor| {
                                uri_or_err(
                                    &target,
                                    &format!("/auth/factors/{}/challenge", factor.id),
                                )
                            }) {
                            Ok(uri) => {
                                rec.ok(0, latency);
                                uri
                            }
                            Err(e) => {
                                rec.err(0, e);
                                failed.store(true, Ordering::Relaxed);
                                break;
                            }
                        };
                    let count = per_factor.min(total.saturating_sub(f * per_factor));
                    let mut list = Vec::with_capacity(count);
                    for _ in 0..count {
                        let (latency, result) = call(
                            &mut conn,
                            Method::POST,
                            challenge_uri.clone(),
                            Bytes::from_static(EMPTY_OBJECT),
                            StatusCode::CREATED,
                        )
                        .await;
                        let prepared =
                            result
                                .and_then(|b| parse::<ChallengeOut>(&b))
                                .and_then(|c| {
                                    let code = c.code.ok_or_else(|| {
                                        "generic_otp challenge has no code".to_owned()
                                    })?;
                                    Ok(PreparedVerify {
                                        uri: uri_or_err(
                                            &target,
                                            &format!("/auth/challenges/{}/verify", c.id),
                                        )?,
                                        body: verify_body(&code),
                                    })
                                });
                        match prepared {
                            Ok(p) => {
                                rec.ok(1, latency);
                                list.push(p);
                                progress.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => {
                                rec.err(1, e);
                                failed.store(true, Ordering::Relaxed);
                                break 'factors;
                            }
                        }
                    }
                    mine.push((f, list));
                }
                (conn, rec, mine)
            }
        },
    )
    .await;
    ticker.abort();
    let setup = setup?;
    check_setup(&setup.phase)?;

    // Interleave so that consecutive verifies hit different factors.
    let mut by_factor: Vec<(usize, Vec<PreparedVerify>)> =
        setup.outputs.into_iter().flatten().collect();
    by_factor.sort_by_key(|(f, _)| *f);
    let mut lists: Vec<_> = by_factor.into_iter().map(|(_, l)| l.into_iter()).collect();
    let mut prepared = Vec::with_capacity(total);
    loop {
        let before = prepared.len();
        prepared.extend(lists.iter_mut().filter_map(Iterator::next));
        if prepared.len() == before {
            break;
        }
    }
    let mut notes = Vec::new();
    if setup.phase.elapsed > CHALLENGE_SAFE_AGE {
        notes.push(format!(
            "setup took {:.0}s; challenges expire 10 minutes after creation, lower --prepare",
            setup.phase.elapsed.as_secs_f64()
        ));
    }
    eprintln!(
        "setup done in {:.1}s; measuring verify",
        setup.phase.elapsed.as_secs_f64()
    );

    let prepared = Arc::new(prepared);
    let next = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + cli.seconds;
    let out = run_phase(
        setup.conns,
        &["verify(generic_otp)"],
        |_, mut conn, mut rec| {
            let prepared = Arc::clone(&prepared);
            let next = Arc::clone(&next);
            async move {
                let mut exhausted = false;
                while Instant::now() < deadline {
                    let Some(p) = prepared.get(next.fetch_add(1, Ordering::Relaxed)) else {
                        exhausted = true;
                        break;
                    };
                    let (latency, result) = call(
                        &mut conn,
                        Method::POST,
                        p.uri.clone(),
                        p.body.clone(),
                        StatusCode::CREATED,
                    )
                    .await;
                    match result.and_then(|b| check_valid(&b)) {
                        Ok(()) => rec.ok(0, latency),
                        Err(e) => rec.err(0, e),
                    }
                }
                (conn, rec, exhausted)
            }
        },
    )
    .await?;
    let stop_reason = if out.outputs.iter().any(|&exhausted| exhausted) {
        format!(
            "stopped early: all {} prepared challenges used",
            prepared.len()
        )
    } else {
        let used = next.load(Ordering::Relaxed).min(prepared.len());
        format!(
            "{TIME_UP}, {used}/{} prepared challenges used",
            prepared.len()
        )
    };
    Ok(Outcome {
        setup: Some(setup.phase),
        measured: out.phase,
        stop_reason,
        reconnects: out.reconnects,
        notes,
    })
}

// ---------------------------------------------------------------------------------
// verify-totp: enroll TOTP factors, then challenge + verify with real TOTP codes.

#[derive(Debug)]
struct TotpFactor {
    challenge_uri: Uri,
    secret: Vec<u8>,
}

async fn verify_totp(target: &Arc<Target>, conns: Vec<Conn>, cli: &Cli) -> Result<Outcome> {
    let factors = cli.factors;
    let nconns = conns.len();
    if factors < nconns {
        bail!("--factors ({factors}) must be at least --connections ({nconns})");
    }
    eprintln!("setup: enrolling {factors} TOTP factor(s)");
    let enroll_uri = target.uri("/auth/factors/enroll")?;
    let progress = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicBool::new(false));
    let ticker = spawn_progress("factors enrolled", as_u64(factors), Arc::clone(&progress));
    let setup = run_phase(conns, &["enroll(totp)"], |w, mut conn, mut rec| {
        let enroll_uri = enroll_uri.clone();
        let target = Arc::clone(target);
        let progress = Arc::clone(&progress);
        let failed = Arc::clone(&failed);
        async move {
            let mut mine = Vec::new();
            for f in (w..factors).step_by(nconns) {
                if failed.load(Ordering::Relaxed) {
                    break;
                }
                let (latency, result) = call(
                    &mut conn,
                    Method::POST,
                    enroll_uri.clone(),
                    enroll_totp_body(as_u64(f)),
                    StatusCode::CREATED,
                )
                .await;
                let factor =
                    result
                        .and_then(|b| check_totp_enrollment(&b))
                        .and_then(|(id, secret)| {
                            Ok(TotpFactor {
                                challenge_uri: uri_or_err(
                                    &target,
                                    &format!("/auth/factors/{id}/challenge"),
                                )?,
                                secret,
                            })
                        });
                match factor {
                    Ok(factor) => {
                        rec.ok(0, latency);
                        mine.push(factor);
                        progress.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        rec.err(0, e);
                        failed.store(true, Ordering::Relaxed);
                        break;
                    }
                }
            }
            (conn, rec, mine)
        }
    })
    .await;
    ticker.abort();
    let setup = setup?;
    check_setup(&setup.phase)?;
    eprintln!(
        "setup done in {:.1}s; measuring challenge + verify",
        setup.phase.elapsed.as_secs_f64()
    );

    // Each worker keeps using the factors it enrolled, so no factor is ever in flight
    // on two connections, and cycles through them: a factor is used at most once per
    // 30 s step (the server rejects a second success in the same step as a replay).
    let lists = Arc::new(setup.outputs);
    let deadline = Instant::now() + cli.seconds;
    let out = run_phase(
        setup.conns,
        &["verify(totp)", "challenge(totp)"],
        |w, mut conn, mut rec| {
            let lists = Arc::clone(&lists);
            let target = Arc::clone(target);
            async move {
                let mine: &[TotpFactor] = lists.get(w).map_or(&[], Vec::as_slice);
                let totp = Totp::default();
                let mut last_step: Vec<Option<u64>> = vec![None; mine.len()];
                let mut pos = 0usize;
                let mut idle = Duration::ZERO;
                while Instant::now() < deadline {
                    let now = match unix_now() {
                        Ok(now) => now,
                        Err(e) => {
                            rec.err(0, e);
                            break;
                        }
                    };
                    let step = totp.step_at(now.as_secs());
                    let (Some(factor), Some(last)) = (mine.get(pos), last_step.get_mut(pos)) else {
                        break;
                    };
                    if *last == Some(step) {
                        // Every factor of this worker has succeeded in this step already.
                        let boundary = Duration::from_secs((step + 1).saturating_mul(totp.period));
                        let wait = (boundary.saturating_sub(now) + Duration::from_millis(5))
                            .min(deadline.saturating_duration_since(Instant::now()));
                        tokio::time::sleep(wait).await;
                        idle += wait;
                        continue;
                    }
                    *last = Some(step);
                    pos = (pos + 1) % mine.len();
                    // The code is computed for the step just claimed; the server's ±1 step
                    // window still accepts it if the step rolls over before verify arrives.
                    let code = totp.code_at_step(&factor.secret, step);

                    let (latency, result) = call(
                        &mut conn,
                        Method::POST,
                        factor.challenge_uri.clone(),
                        Bytes::from_static(EMPTY_OBJECT),
                        StatusCode::CREATED,
                    )
                    .await;
                    let verify_uri =
                        match result
                            .and_then(|b| parse::<ChallengeOut>(&b))
                            .and_then(|c| {
                                uri_or_err(&target, &format!("/auth/challenges/{}/verify", c.id))
                            }) {
                            Ok(uri) => {
                                rec.ok(1, latency);
                                uri
                            }
                            Err(e) => {
                                rec.err(1, e);
                                continue;
                            }
                        };
                    let (latency, result) = call(
                        &mut conn,
                        Method::POST,
                        verify_uri,
                        verify_body(&code),
                        StatusCode::CREATED,
                    )
                    .await;
                    match result.and_then(|b| check_valid(&b)) {
                        Ok(()) => rec.ok(0, latency),
                        Err(e) => rec.err(0, e),
                    }
                }
                (conn, rec, idle)
            }
        },
    )
    .await?;

    let mut notes = Vec::new();
    let mut stop_reason = String::from(TIME_UP);
    let idle: Duration = out.outputs.iter().sum();
    let busy_total = out.phase.elapsed.as_secs_f64() * as_f64(nconns);
    if busy_total > 0.0 {
        let share = idle.as_secs_f64() / busy_total;
        if share > 0.01 {
            stop_reason = format!(
                "{TIME_UP}; factor-starved {:.0}% of the time, throughput understates the server",
                share * 100.0
            );
            notes.push(format!(
                "workers idled {:.0}% of the time because every factor had already succeeded in \
                 the current 30 s TOTP step; the rate was limited by --factors ({factors}), not \
                 by the server: use --factors >= throughput x min(seconds, 30) + connections",
                share * 100.0,
            ));
        }
    }
    Ok(Outcome {
        setup: Some(setup.phase),
        measured: out.phase,
        stop_reason,
        reconnects: out.reconnects,
        notes,
    })
}

fn as_f64(n: usize) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let n = n as f64;
    n
}

// ---------------------------------------------------------------------------------
// flow: enroll TOTP -> challenge -> verify, per iteration.

async fn flow(target: &Arc<Target>, conns: Vec<Conn>, cli: &Cli) -> Result<Outcome> {
    let enroll_uri = target.uri("/auth/factors/enroll")?;
    let counter = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + cli.seconds;
    let names = [
        "flow(total)",
        "enroll(totp)",
        "challenge(totp)",
        "verify(totp)",
    ];
    let out = run_phase(conns, &names, |_, mut conn, mut rec| {
        let enroll_uri = enroll_uri.clone();
        let counter = Arc::clone(&counter);
        let target = Arc::clone(target);
        async move {
            let totp = Totp::default();
            while Instant::now() < deadline {
                let started = Instant::now();
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let (latency, result) = call(
                    &mut conn,
                    Method::POST,
                    enroll_uri.clone(),
                    enroll_totp_body(n),
                    StatusCode::CREATED,
                )
                .await;
                let (challenge_uri, secret) = match result
                    .and_then(|b| check_totp_enrollment(&b))
                    .and_then(|(id, secret)| {
                        Ok((
                            uri_or_err(&target, &format!("/auth/factors/{id}/challenge"))?,
                            secret,
                        ))
                    }) {
                    Ok(v) => {
                        rec.ok(1, latency);
                        v
                    }
                    Err(e) => {
                        rec.err(1, e);
                        continue;
                    }
                };

                let (latency, result) = call(
                    &mut conn,
                    Method::POST,
                    challenge_uri,
                    Bytes::from_static(EMPTY_OBJECT),
                    StatusCode::CREATED,
                )
                .await;
                let verify_uri = match result
                    .and_then(|b| parse::<ChallengeOut>(&b))
                    .and_then(|c| uri_or_err(&target, &format!("/auth/challenges/{}/verify", c.id)))
                {
                    Ok(uri) => {
                        rec.ok(2, latency);
                        uri
                    }
                    Err(e) => {
                        rec.err(2, e);
                        continue;
                    }
                };

                let code = match unix_now() {
                    Ok(now) => totp.code_at(&secret, now.as_secs()),
                    Err(e) => {
                        rec.err(3, e);
                        break;
                    }
                };
                let (latency, result) = call(
                    &mut conn,
                    Method::POST,
                    verify_uri,
                    verify_body(&code),
                    StatusCode::CREATED,
                )
                .await;
                match result.and_then(|b| check_valid(&b)) {
                    Ok(()) => {
                        rec.ok(3, latency);
                        rec.ok(0, started.elapsed());
                    }
                    Err(e) => rec.err(3, e),
                }
            }
            (conn, rec, ())
        }
    })
    .await?;
    Ok(Outcome {
        setup: None,
        measured: out.phase,
        stop_reason: TIME_UP.into(),
        reconnects: out.reconnects,
        notes: Vec::new(),
    })
}
