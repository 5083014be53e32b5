//! Request rate limits, checked before any database work: a token bucket (GCRA, the
//! `governor` crate) per API key, and a lower one per client address on FusionAuth's
//! unauthenticated routes (`/api/two-factor/send/{twoFactorId}`, `/api/two-factor/login`,
//! `/api/webauthn/assert`, `/api/webauthn/login`).
//!
//! The API key's bucket is found from the key's public id, the part of the token before
//! its secret, so a flood of requests with a key costs no lookup; a wrong secret under a
//! real id is limited like the right one. State is per node: with N nodes behind a load
//! balancer the effective limit is up to N times the configured one.
//!
//! The client address is the connection's peer, or, behind a proxy, the last entry of the
//! header the proxy sets (`MFAD_TRUSTED_PROXY_HEADER`, e.g. `X-Forwarded-For`): the one the
//! trusted proxy appended. IPv6 addresses share a bucket per /64, which is what one
//! subscriber usually gets.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderMap, HeaderName, header};
use axum::response::Response;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::edge::{Api, EdgeError};
use crate::state::AppState;

/// A bucket: `per_second` requests a second on average, up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Sustained requests per second.
    pub per_second: NonZeroU32,
    /// Requests allowed at once.
    pub burst: NonZeroU32,
}

impl Rate {
    /// Parses `RATE/BURST` (or `RATE`, burst = rate); `0` is `None`, no limit.
    pub fn parse(text: &str) -> Result<Option<Rate>, String> {
        let text = text.trim();
        if text == "0" {
            return Ok(None);
        }
        let (rate, burst) = text.split_once('/').unwrap_or((text, text));
        let number = |s: &str| {
            s.trim()
                .parse::<u32>()
                .ok()
                .and_then(NonZeroU32::new)
                .ok_or_else(|| {
                    format!("expected RATE/BURST in requests per second, or 0, got {text:?}")
                })
        };
        Ok(Some(Rate {
            per_second: number(rate)?,
            burst: number(burst)?,
        }))
    }

    fn quota(self) -> Quota {
        Quota::per_second(self.per_second).allow_burst(self.burst)
    }
}

/// The rate limit settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// `MFAD_RATE_LIMIT_PER_KEY` (default `200/400`).
    pub per_key: Option<Rate>,
    /// `MFAD_RATE_LIMIT_PER_ADDRESS` (default `20/100`).
    pub per_address: Option<Rate>,
    /// `MFAD_TRUSTED_PROXY_HEADER` (default off).
    pub proxy_header: Option<HeaderName>,
}

/// The buckets of this node.
pub struct RateLimits {
    per_key: Option<DefaultKeyedRateLimiter<String>>,
    per_address: Option<DefaultKeyedRateLimiter<IpAddr>>,
    proxy_header: Option<HeaderName>,
    clock: DefaultClock,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits")
            .field("per_key", &self.per_key.is_some())
            .field("per_address", &self.per_address.is_some())
            .field("proxy_header", &self.proxy_header)
            .finish()
    }
}

impl RateLimits {
    /// Empty buckets for `config`.
    pub fn new(config: &RateLimitConfig) -> Self {
        RateLimits {
            per_key: config
                .per_key
                .map(|r| DefaultKeyedRateLimiter::keyed(r.quota())),
            per_address: config
                .per_address
                .map(|r| DefaultKeyedRateLimiter::keyed(r.quota())),
            proxy_header: config.proxy_header.clone(),
            clock: DefaultClock::default(),
        }
    }

    /// Forgets buckets that are full again, so the key sets stay bounded by recent
    /// traffic (governor's keyed stores otherwise only grow).
    pub fn prune(&self) {
        if let Some(l) = &self.per_key {
            l.retain_recent();
            l.shrink_to_fit();
        }
        if let Some(l) = &self.per_address {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }

    /// `Err(seconds to wait)` when this request is over a limit.
    /// `Err((scope, retry_after_secs))` when a bucket is empty; the scope is a metrics
    /// label (`api_key` or `address`).
    fn check(&self, req: &Request) -> Result<(), (&'static str, u64)> {
        let wait = |not_until: governor::NotUntil<_>| {
            let d: Duration = not_until.wait_time_from(self.clock.now());
            d.as_secs() + u64::from(d.subsec_nanos() > 0)
        };
        if let (Some(limiter), Some(id)) = (&self.per_key, api_key_id(req.headers())) {
            limiter.check_key(&id).map_err(|n| ("api_key", wait(n)))?;
        }
        if let Some(limiter) = &self.per_address
            && unauthenticated(req.uri().path())
        {
            limiter
                .check_key(&self.client_address(req))
                .map_err(|n| ("address", wait(n)))?;
        }
        Ok(())
    }

    fn client_address(&self, req: &Request) -> IpAddr {
        let ip = self.client_ip(req).unwrap_or(IpAddr::from([0, 0, 0, 0]));
        match ip {
            IpAddr::V6(v6) => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
            v4 => v4,
        }
    }

    /// The client's address: the last entry of the trusted proxy's header when one is
    /// configured and present, else the connection's peer.
    pub fn client_ip(&self, req: &Request) -> Option<IpAddr> {
        let forwarded = self
            .proxy_header
            .as_ref()
            .and_then(|h| req.headers().get(h))
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|last| last.trim().trim_matches(['[', ']']).parse::<IpAddr>().ok());
        let peer = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        forwarded.or(peer)
    }
}

/// FusionAuth's routes that take no credentials.
fn unauthenticated(path: &str) -> bool {
    path == "/api/two-factor/login"
        || path.starts_with("/api/two-factor/send/")
        || path == "/api/webauthn/assert"
        || path == "/api/webauthn/login"
}

/// The public id of an API key in `Authorization` (`sk_<id>_<secret>`, raw or after
/// `Bearer`), lower-cased; `None` for JWTs and anything else.
fn api_key_id(headers: &HeaderMap) -> Option<String> {
    headers.get_all(header::AUTHORIZATION).iter().find_map(|v| {
        let text = v.to_str().ok()?.trim();
        let token = match text.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
            Some(_) => return None,
            None => text,
        };
        let (id, _secret) = token.strip_prefix("sk_")?.split_once('_')?;
        (!id.is_empty() && id.len() <= 32).then(|| id.to_ascii_lowercase())
    })
}

/// Answers 429 (with `Retry-After`) in the caller's API when a bucket is empty.
pub async fn limit(
    state: &AppState,
    req: Request,
    next: impl AsyncFnOnce(Request) -> Response,
) -> Response {
    match state.rates.check(&req) {
        Ok(()) => next(req).await,
        Err((scope, retry_after)) => {
            state.metrics.rate_limited(scope);
            EdgeError::RateLimited { retry_after }.render(Api::of(req.uri().path()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_and_zero_disables() {
        let r = Rate::parse("200/400").unwrap().unwrap();
        assert_eq!((r.per_second.get(), r.burst.get()), (200, 400));
        let r = Rate::parse(" 5 ").unwrap().unwrap();
        assert_eq!((r.per_second.get(), r.burst.get()), (5, 5));
        assert_eq!(Rate::parse("0").unwrap(), None);
        for bad in ["", "x", "0/5", "5/0", "-1/2", "1/2/3"] {
            assert!(Rate::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn key_ids_come_from_api_keys_only() {
        let id = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, v.parse().unwrap());
            api_key_id(&h)
        };
        assert_eq!(id("sk_01abc_secret").as_deref(), Some("01abc"));
        assert_eq!(id("Bearer sk_01ABC_secret").as_deref(), Some("01abc"));
        assert_eq!(id("Bearer eyJhbGciOi.x.y"), None);
        assert_eq!(id("Basic sk_01abc_secret"), None);
        assert_eq!(id("sk_nosecret"), None);
    }

    #[test]
    fn buckets_empty_and_ipv6_shares_a_64() {
        let limits = RateLimits::new(&RateLimitConfig {
            per_key: Rate::parse("1/2").unwrap(),
            per_address: Rate::parse("1/1").unwrap(),
            proxy_header: Some(HeaderName::from_static("x-forwarded-for")),
        });
        let req = |auth: &str, path: &str, xff: &str| {
            axum::http::Request::builder()
                .uri(path)
                .header("authorization", auth)
                .header("x-forwarded-for", xff)
                .body(axum::body::Body::empty())
                .unwrap()
        };
        let keyed = req("sk_01a_s", "/auth/factors/x", "1.1.1.1");
        assert!(limits.check(&keyed).is_ok());
        assert!(limits.check(&keyed).is_ok());
        assert!(limits.check(&keyed).unwrap_err().1 >= 1);
        assert!(
            limits
                .check(&req("sk_01b_s", "/auth/factors/x", "1.1.1.1"))
                .is_ok()
        );
        let login = |xff| req("", "/api/two-factor/login", xff);
        assert!(limits.check(&login("10.0.0.1, 2001:db8::1")).is_ok());
        assert!(limits.check(&login("2001:db8::ffff")).is_err(), "same /64");
        assert!(
            limits.check(&login("2001:db8:0:1::1")).is_ok(),
            "another /64"
        );
    }
}
