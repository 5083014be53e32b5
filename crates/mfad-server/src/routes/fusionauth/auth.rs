//! Who is calling the FusionAuth API, and for which tenant.
//!
//! * API key: the raw key in `Authorization` (no scheme), as FusionAuth clients send it;
//!   `Bearer sk_…` is accepted too. The key's tenant is the request's tenant.
//! * JWT: `Authorization: Bearer <jwt>` (or `JWT <jwt>`, or an `access_token` cookie),
//!   verified against the configured keys; the user is its `sub`.
//! * Both at once: the Elixir 0.3.0 client sends two `Authorization` headers on its JWT
//!   calls, the Bearer token first and the API key second (reference §1.1). The JWT names
//!   the user and the key the tenant.
//! * `X-FusionAuth-TenantId`, optional, must name the key's tenant (as `tenant_…` or as the
//!   UUID of the same 128 bits), else 401.
//!
//! Which tenant does a JWT-only call act in? The key's, if a key came too; otherwise the
//! `X-FusionAuth-TenantId` header; otherwise the token's `tid` claim (what FusionAuth and
//! mfad's own login tokens carry). A `tid` that names an mfad tenant must agree with the
//! header. With none of these the call has no tenant, and routes that need one answer
//! FusionAuth's `400 [TenantIdRequired]`; generating a secret needs none.

use axum::extract::FromRequestParts;
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;
use mfad_core::error::{CoreError, FieldError};
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
    tenant_header: Option<String>,
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
    p.tenant_header = parts
        .headers
        .get(TENANT_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty() && *v != "undefined" && *v != "null")
        .map(str::to_owned);
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

fn header_tenant(p: &Presented) -> Result<Option<TenantId>, FusionAuthError> {
    match &p.tenant_header {
        None => Ok(None),
        Some(h) => TenantId::parse_any(h)
            .map(Some)
            .ok_or_else(|| CoreError::Unauthorized.into()),
    }
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
        if header_tenant(&p)?.is_some_and(|h| h != tenant) {
            return Err(CoreError::Unauthorized.into());
        }
        Ok(ApiKeyTenant(tenant))
    }
}

/// A request authenticated by an API key, a JWT, or both (see the module docs).
#[derive(Debug, Clone)]
pub struct Caller {
    /// The tenant the request acts in, if any could be determined.
    pub tenant: Option<TenantId>,
    /// The JWT's user, when a valid JWT came.
    pub jwt_user: Option<UserId>,
}

impl Caller {
    /// The tenant, or FusionAuth's `400 [TenantIdRequired]`.
    pub fn require_tenant(&self) -> Result<TenantId, FusionAuthError> {
        self.tenant.clone().ok_or_else(|| {
            FusionAuthError(CoreError::Validation(vec![FieldError::new(
                "",
                "TenantIdRequired",
                "A Tenant Id is required: send an API key, the X-FusionAuth-TenantId header or a JWT with a tid claim.",
            )]))
        })
    }

    /// The user a call without `{userId}` in its path is about: the JWT's, or, for API-key
    /// calls (FusionAuth ≤ 1.26 clients put it in the query), `user_id`.
    pub fn user(&self, user_id: Option<&str>) -> Result<UserId, FusionAuthError> {
        if let Some(u) = &self.jwt_user {
            return Ok(u.clone());
        }
        match user_id {
            Some(raw) => UserId::parse(raw).ok_or_else(|| {
                CoreError::invalid("userId", "invalid", "userId is not a valid user id").into()
            }),
            None => Err(CoreError::invalid("userId", "blank", "userId is required").into()),
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
        let header = header_tenant(&p)?;
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
        if key_tenant.is_none() && jwt.is_none() {
            return Err(CoreError::Unauthorized.into());
        }
        if let (Some(k), Some(h)) = (&key_tenant, &header)
            && k != h
        {
            return Err(CoreError::Unauthorized.into());
        }
        let claimed = jwt
            .as_ref()
            .and_then(|j| j.tenant.as_deref())
            .and_then(TenantId::parse_any);
        if key_tenant.is_none()
            && let (Some(c), Some(h)) = (&claimed, &header)
            && c != h
        {
            return Err(CoreError::Unauthorized.into());
        }
        Ok(Caller {
            tenant: key_tenant.clone().or(header).or(claimed),
            jwt_user: jwt.map(|j| j.user),
        })
    }
}

/// The tenant an unauthenticated request (send for login, login) names in
/// `X-FusionAuth-TenantId`, which must then be the login's; an unreadable one matches no
/// login, so it is a 404 at once.
#[derive(Debug, Clone)]
pub struct TenantHint(pub Option<TenantId>);

impl<S: Send + Sync> FromRequestParts<S> for TenantHint {
    type Rejection = FusionAuthError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(TENANT_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty() && *v != "undefined" && *v != "null");
        match header {
            None => Ok(TenantHint(None)),
            Some(h) => TenantId::parse_any(h)
                .map(|t| TenantHint(Some(t)))
                .ok_or_else(|| {
                    CoreError::not_found(mfad_core::error::Entity::Tenant, "tenant").into()
                }),
        }
    }
}
