//! When and how long to wait before trying a call again.
//!
//! The statuses and limits follow the official WorkOS SDKs (`docs/contracts/workos.md` §1): Node retries
//! 408, 429, 500, 502, 503 and 504 plus network errors, waits with exponential backoff and
//! jitter, and honours `Retry-After` (seconds or an HTTP date) capped at 60 s.

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};

/// Longest wait a `Retry-After` header can impose.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// How retries are spaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Backoff {
    /// Retries after the first attempt (0 disables retrying).
    pub max_retries: u32,
    /// Wait before the first retry, before jitter.
    pub initial: Duration,
    /// Longest wait between attempts, before jitter.
    pub max: Duration,
}

impl Backoff {
    /// The wait before retry number `retry` (0-based): `initial · 2^retry`, capped at `max`,
    /// then "equal jitter": half of it fixed, the other half random, so clients that failed
    /// together do not come back together.
    pub fn delay(&self, retry: u32) -> Duration {
        let base = self
            .initial
            .saturating_mul(2u32.saturating_pow(retry.min(30)))
            .min(self.max);
        let half = base / 2;
        half + half.mul_f64(random_fraction())
    }
}

/// Whether a call may be repeated after anything short of a clear refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Replay {
    /// Safe to repeat: an idempotent method, or a WorkOS POST carrying an
    /// `Idempotency-Key`, as every official WorkOS SDK retries them.
    Safe,
    /// Repeat only when the server certainly did not act on it: the connection could not
    /// be made, or the answer was 408, 429 or 503. Used for FusionAuth POSTs, whose official
    /// clients never retry and whose effects (sending a code, consuming a `twoFactorId`) must
    /// not happen twice.
    OnlyIfUnprocessed,
}

/// Whether an answer with this status should be retried.
pub(crate) fn retry_status(status: StatusCode, replay: Replay) -> bool {
    match replay {
        Replay::Safe => matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504),
        Replay::OnlyIfUnprocessed => matches!(status.as_u16(), 408 | 429 | 503),
    }
}

/// Whether a failure to get an answer should be retried.
pub(crate) fn retry_transport(error: &reqwest::Error, replay: Replay) -> bool {
    if error.is_connect() {
        return true;
    }
    replay == Replay::Safe && (error.is_timeout() || error.is_request() || error.is_body())
}

/// The `Retry-After` header as a wait, capped at [`MAX_RETRY_AFTER`]: either delay-seconds
/// or an HTTP date (a date in the past means "now").
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    parse_retry_after(value, now())
}

pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let wait = if let Ok(secs) = value.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let at = httpdate::parse_http_date(value).ok()?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

#[expect(
    clippy::disallowed_methods,
    reason = "an HTTP-date Retry-After is relative to the wall clock; the client has no injected clock"
)]
fn now() -> SystemTime {
    SystemTime::now()
}

/// A uniformly random number in `[0, 1)`; `0.5` if the OS has no randomness to give,
/// which only makes the jitter deterministic.
fn random_fraction() -> f64 {
    let mut b = [0u8; 8];
    match getrandom::fill(&mut b) {
        Ok(()) => (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64,
        Err(_) => 0.5,
    }
}

/// A random (version 4) UUID for the `Idempotency-Key` header, as the Python and Go SDKs
/// send it. Without OS randomness it falls back to the clock, the process id and a counter,
/// which still never repeats within a process.
pub(crate) fn idempotency_key() -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        b[..8].copy_from_slice(&(nanos as u64).to_le_bytes());
        b[8..12].copy_from_slice(&std::process::id().to_le_bytes());
        b[12..].copy_from_slice(&(COUNTER.fetch_add(1, Ordering::Relaxed) as u32).to_le_bytes());
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates_and_caps_at_sixty() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("3600", now), Some(MAX_RETRY_AFTER));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(7));
        assert_eq!(parse_retry_after(&later, now), Some(Duration::from_secs(7)));
        let far = httpdate::fmt_http_date(now + Duration::from_secs(7200));
        assert_eq!(parse_retry_after(&far, now), Some(MAX_RETRY_AFTER));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(5));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn backoff_doubles_within_bounds() {
        let b = Backoff {
            max_retries: 5,
            initial: Duration::from_millis(100),
            max: Duration::from_millis(1000),
        };
        for _ in 0..50 {
            let d0 = b.delay(0);
            assert!(
                d0 >= Duration::from_millis(50) && d0 <= Duration::from_millis(100),
                "{d0:?}"
            );
            let d2 = b.delay(2);
            assert!(
                d2 >= Duration::from_millis(200) && d2 <= Duration::from_millis(400),
                "{d2:?}"
            );
            let d9 = b.delay(9);
            assert!(
                d9 >= Duration::from_millis(500) && d9 <= Duration::from_millis(1000),
                "{d9:?}"
            );
        }
        assert!(b.delay(u32::MAX) <= Duration::from_millis(1000));
    }

    #[test]
    fn idempotency_keys_are_distinct_v4_uuids() {
        let a = idempotency_key();
        let b = idempotency_key();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
    }

    #[test]
    fn only_unprocessed_failures_are_retried_for_unsafe_calls() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(
                retry_status(StatusCode::from_u16(s).unwrap(), Replay::Safe),
                "{s}"
            );
        }
        for s in [400, 401, 404, 409, 421, 422] {
            assert!(
                !retry_status(StatusCode::from_u16(s).unwrap(), Replay::Safe),
                "{s}"
            );
        }
        assert!(retry_status(
            StatusCode::SERVICE_UNAVAILABLE,
            Replay::OnlyIfUnprocessed
        ));
        assert!(!retry_status(
            StatusCode::INTERNAL_SERVER_ERROR,
            Replay::OnlyIfUnprocessed
        ));
        assert!(!retry_status(
            StatusCode::BAD_GATEWAY,
            Replay::OnlyIfUnprocessed
        ));
    }
}
