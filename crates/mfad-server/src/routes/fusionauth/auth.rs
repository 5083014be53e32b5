//! Who is calling the FusionAuth API, and for which tenant.
//!
//! * API key: the raw key in `Authorization` (no scheme), as FusionAuth clients send it;
//!   `Bearer sk_…` is accepted too. The key's tenant is the request's tenant.
//! * JWT: `Authorization: Bearer <jwt>` (or `JWT <jwt>`, or an `access_token` cookie),
//!   verified against the configured keys; the user is its `sub`.
//! * Both at once: the Elixir 0.3.0 client sends two `Authorization` headers on its JWT
//!   calls, the Bearer token first and the API key second (`docs/contracts/fusionauth.md` §2.1). The JWT names
//!   the user and the key the tenant.
//! * `X-FusionAuth-TenantId`, optional, must name the key's tenant (as `tenant_…` or as the
//!   UUID of the same 128 bits). One that names another tenant, or no tenant at all, is a
//!   FusionAuth validation error, `400 [InvalidTenantId]` (`docs/contracts/fusionauth.md` §2;
//!   upstream: "404 or a validation error"). Credentials are checked first: a bad key or
//!   JWT is a 401 whatever the header says.
//!
//! A JWT acts only in the tenant whose key verified it (keys belong to tenants, see
//! [`crate::jwt`]). A `tid` claim, where present, must name that tenant, and so must the
//! header and an API key sent alongside: any disagreement is `400 [InvalidTenantId]`, so
//! a token can never be pointed at another tenant (tenant ids are not secrets).
//!
//! The unauthenticated login routes ([`TenantHint`]) answer 404 instead: there the header
//! can only fail to match the login.

use axum::extract::FromRequestParts;
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;
use mfad_core::error::CoreError;
use mfad_core::{TenantId, UserId};

use crate::error::FusionAuthError;
use crate::state::AppState;

/// The tenant header FusionAuth clients send once a tenant is set.
pub const TENANT_HEADER: &str = "x-fusionauth-tenantid";

/// Credentials as presented, before checking.
#[derive(Debug, Default)]
struct Presented {
    api_keys: Vec<String>,
    jwts: Vec<String>,
    tenant_header: TenantHeader,
}

/// What `X-FusionAuth-TenantId` says.
#[derive(Debug, Default)]
enum TenantHeader {
    /// Not sent, or blank, `undefined` or `null` (what clients send for an unset tenant).
    #[default]
    Absent,
    /// A tenant id, in either form.
    Names(TenantId),
    /// Something that is no tenant id (or not even text).
    Unreadable,
}

fn tenant_header(parts: &Parts) -> TenantHeader {
    let Some(value) = parts.headers.get(TENANT_HEADER) else {
        return TenantHeader::Absent;
    };
    let Ok(text) = value.to_str() else {
        return TenantHeader::Unreadable;
    };
    match text.trim() {
        "" | "undefined" | "null" => TenantHeader::Absent,
        text => TenantId::parse_any(text).map_or(TenantHeader::Unreadable, TenantHeader::Names),
    }
}

impl TenantHeader {
    /// The tenant the credentials established, if the header agrees with it.
    fn agrees_with(&self, tenant: TenantId) -> Result<TenantId, FusionAuthError> {
        match self {
            TenantHeader::Absent => Ok(tenant),
            TenantHeader::Names(h) if *h == tenant => Ok(tenant),
            TenantHeader::Names(_) | TenantHeader::Unreadable => {
                Err(FusionAuthError::invalid_tenant_id())
            }
        }
    }
}

fn presented(parts: &Parts) -> Result<Presented, FusionAuthError> {
    let mut p = Presented::default();
    for value in parts.headers.get_all(AUTHORIZATION) {
        let text = value.to_str().map_err(|_| CoreError::Unauthorized)?.trim();
        if text.is_empty() {
            continue;
        }
        let token = match text.split_once(' ') {
            Some((scheme, rest))
                if scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("jwt") =>
            {
                rest.trim()
            }
            Some(_) => return Err(CoreError::Unauthorized.into()),
            None => {
                p.api_keys.push(text.to_owned());
                continue;
            }
        };
        if token.starts_with("sk_") {
            p.api_keys.push(token.to_owned());
        } else {
            p.jwts.push(token.to_owned());
        }
    }
    if p.jwts.is_empty()
        && let Some(cookie) = access_token_cookie(parts)
    {
        p.jwts.push(cookie);
    }
    p.tenant_header = tenant_header(parts);
    if p.api_keys.len() > 1 || p.jwts.len() > 1 {
        return Err(CoreError::Unauthorized.into());
    }
    Ok(p)
}

/// FusionAuth also takes the JWT from an `access_token` cookie.
fn access_token_cookie(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == "access_token")
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// A request authenticated by an API key: its tenant.
#[derive(Debug, Clone)]
pub struct ApiKeyTenant(pub TenantId);

impl FromRequestParts<AppState> for ApiKeyTenant {
    type Rejection = FusionAuthError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let p = presented(parts)?;
        let key = p.api_keys.first().ok_or(CoreError::Unauthorized)?;
        let tenant = state.service.authenticate(key).await?;
        Ok(ApiKeyTenant(p.tenant_header.agrees_with(tenant)?))
    }
}

/// A request authenticated by an API key, a JWT, or both (see the module docs).
#[derive(Debug, Clone)]
pub struct Caller {
    /// The tenant the request acts in.
    pub tenant: TenantId,
    /// The JWT's user, when a valid JWT came.
    pub jwt_user: Option<UserId>,
}

impl Caller {
    /// The user a call without `{userId}` in its path is about: the JWT's, or, for API-key
    /// calls (FusionAuth ≤ 1.26 clients put it in the query), `user_id`.
    pub fn user(&self, user_id: Option<&str>) -> Result<UserId, FusionAuthError> {
        if let Some(u) = &self.jwt_user {
            return Ok(u.clone());
        }
        match user_id {
            Some(raw) => UserId::parse(raw).ok_or_else(|| {
                FusionAuthError::field("userId", "invalid", "userId is not a valid user id")
            }),
            None => Err(FusionAuthError::field(
                "userId",
                "blank",
                "userId is required",
            )),
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = FusionAuthError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let p = presented(parts)?;
        let key_tenant = match p.api_keys.first() {
            Some(key) => Some(state.service.authenticate(key).await?),
            None => None,
        };
        let jwt = match p.jwts.first() {
            Some(token) => Some(
                state
                    .jwt
                    .verify(token, state.service.now())
                    .ok_or(CoreError::Unauthorized)?,
            ),
            None => None,
        };
        let tenant = match (key_tenant, &jwt) {
            (None, None) => return Err(CoreError::Unauthorized.into()),
            (Some(key), None) => key,
            (key, Some(jwt)) => {
                // Elixir sends a key with its JWTs: both must be of one tenant.
                if !jwt.tid_agrees() || key.is_some_and(|k| k != jwt.tenant) {
                    return Err(FusionAuthError::invalid_tenant_id());
                }
                jwt.tenant.clone()
            }
        };
        Ok(Caller {
            tenant: p.tenant_header.agrees_with(tenant)?,
            jwt_user: jwt.map(|j| j.user),
        })
    }
}

/// The tenant an unauthenticated request (send for login, login) names in
/// `X-FusionAuth-TenantId`, which must then be the login's (else 404, as for an unknown
/// login); an unreadable one matches no login, so it is a 404 at once.
#[derive(Debug, Clone)]
pub struct TenantHint(pub Option<TenantId>);

impl<S: Send + Sync> FromRequestParts<S> for TenantHint {
    type Rejection = FusionAuthError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match tenant_header(parts) {
            TenantHeader::Absent => Ok(TenantHint(None)),
            TenantHeader::Names(t) => Ok(TenantHint(Some(t))),
            TenantHeader::Unreadable => {
                Err(CoreError::not_found(mfad_core::error::Entity::Tenant, "tenant").into())
            }
        }
    }
}
