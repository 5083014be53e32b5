//! The [`Client`], its [`ClientBuilder`], and the one place where requests are sent,
//! retried and their failures classified.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, USER_AGENT};
use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, ErrorResponse, from_response};
use crate::retry::{Backoff, Replay, idempotency_key, retry_after, retry_status, retry_transport};

/// The `User-Agent` sent unless [`ClientBuilder::user_agent`] says otherwise.
pub const DEFAULT_USER_AGENT: &str = concat!("mfad-client-rust/", env!("CARGO_PKG_VERSION"));

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_MAX_RETRIES: u32 = 3;
const DEFAULT_INITIAL_BACKOFF: Duration = Duration::from_millis(500);
const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(8);

/// A client for one mfad server (or any server speaking the same APIs).
///
/// Cheap to clone: clones share one connection pool. The WorkOS calls are methods of
/// `Client` itself; the FusionAuth calls hang off [`Client::fusionauth`].
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base_url: Url,
    api_key: String,
    timeout: Option<Duration>,
    backoff: Backoff,
    user_agent: HeaderValue,
    tenant_id: Option<HeaderValue>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.inner.base_url.as_str())
            .field("api_key", &"<redacted>")
            .field("timeout", &self.inner.timeout)
            .field("max_retries", &self.inner.backoff.max_retries)
            .field("user_agent", &self.inner.user_agent)
            .field("fusionauth_tenant_id", &self.inner.tenant_id)
            .finish()
    }
}

impl Client {
    /// A client for the server at `base_url` (for example `http://127.0.0.1:8080`) using
    /// `api_key`, with the default timeout (30 s) and retries (3).
    ///
    /// # Errors
    /// [`Error::Config`] if the URL is not an absolute `http`/`https` URL or the key is
    /// empty or not a valid header value.
    pub fn new(base_url: impl AsRef<str>, api_key: impl Into<String>) -> Result<Client, Error> {
        Client::builder()
            .base_url(base_url)
            .api_key(api_key)
            .build()
    }

    /// A builder for timeouts, retries, the user agent or a custom `reqwest::Client`.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A client configured from the environment: `MFAD_URL` for the base URL and
    /// `MFAD_API_KEY` for the key, falling back to `WORKOS_API_KEY` (where the WorkOS guide
    /// recommends keeping it).
    ///
    /// # Errors
    /// [`Error::Config`] if `MFAD_URL` or both key variables are unset, or invalid.
    pub fn from_env() -> Result<Client, Error> {
        ClientBuilder::from_env()?.build()
    }

    /// The base URL every path is appended to.
    pub fn base_url(&self) -> &Url {
        &self.inner.base_url
    }

    fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Result<Url, Error> {
        let mut url = self.inner.base_url.clone();
        url.path_segments_mut()
            .map_err(|()| Error::Config("the base URL cannot carry a path".into()))?
            .pop_if_empty()
            .extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    /// Sends `call`, retrying as its [`Replay`] allows, and returns the successful answer.
    pub(crate) async fn send(&self, call: Call<'_>) -> Result<Answer, Error> {
        let inner = &*self.inner;
        let url = self.url(call.path, &call.query)?;
        let key = (call.idempotency_key && inner.backoff.max_retries > 0).then(idempotency_key);
        let mut retry = 0;
        loop {
            let mut req = inner
                .http
                .request(call.method.clone(), url.clone())
                .header(USER_AGENT, inner.user_agent.clone());
            if let Some(t) = inner.timeout {
                req = req.timeout(t);
            }
            req = match call.auth {
                Auth::Bearer => req.header(AUTHORIZATION, bearer(&inner.api_key)?),
                Auth::RawKey => req.header(AUTHORIZATION, header_value(&inner.api_key, "API key")?),
                Auth::Jwt(jwt) => req.header(AUTHORIZATION, bearer(jwt)?),
                Auth::None => req,
            };
            if let (true, Some(tenant)) = (call.fusionauth_tenant, &inner.tenant_id) {
                req = req.header("X-FusionAuth-TenantId", tenant.clone());
            }
            if call.json_content_type || call.body.is_some() {
                req = req.header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            }
            if let Some(key) = &key {
                req = req.header("Idempotency-Key", header_value(key, "idempotency key")?);
            }
            if let Some(body) = &call.body {
                req = req.body(body.clone());
            }

            let outcome = match req.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let headers = resp.headers().clone();
                    resp.bytes().await.map(|body| (status, headers, body))
                }
                Err(e) => Err(e),
            };
            let can_retry = retry < inner.backoff.max_retries;
            match outcome {
                Ok((status, headers, body)) if status.is_success() => {
                    return Ok(Answer {
                        status,
                        headers,
                        body: body.to_vec(),
                    });
                }
                Ok((status, headers, body)) => {
                    if can_retry && retry_status(status, call.replay) {
                        let wait =
                            retry_after(&headers).unwrap_or_else(|| inner.backoff.delay(retry));
                        tokio::time::sleep(wait).await;
                        retry += 1;
                        continue;
                    }
                    return Err(from_response(status, &headers, &body));
                }
                Err(e) => {
                    if can_retry && retry_transport(&e, call.replay) {
                        tokio::time::sleep(inner.backoff.delay(retry)).await;
                        retry += 1;
                        continue;
                    }
                    return Err(Error::Transport {
                        source: e,
                        attempts: retry + 1,
                    });
                }
            }
        }
    }

    /// Sends `call` and decodes its JSON answer.
    pub(crate) async fn send_json<T: DeserializeOwned>(&self, call: Call<'_>) -> Result<T, Error> {
        self.send(call).await?.json()
    }
}

fn header_value(value: &str, what: &str) -> Result<HeaderValue, Error> {
    let mut v = HeaderValue::from_str(value)
        .map_err(|_| Error::Config(format!("the {what} is not a valid header value")))?;
    v.set_sensitive(true);
    Ok(v)
}

fn bearer(token: &str) -> Result<HeaderValue, Error> {
    header_value(&format!("Bearer {token}"), "credential")
}

/// How a request authenticates.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Auth<'a> {
    /// WorkOS: `Authorization: Bearer <api key>`.
    Bearer,
    /// FusionAuth: the raw API key, no scheme.
    RawKey,
    /// FusionAuth JWT routes: `Authorization: Bearer <jwt>`, no API key.
    Jwt(&'a str),
    /// No `Authorization` header.
    None,
}

/// One API call, before it is sent.
#[derive(Debug)]
pub(crate) struct Call<'a> {
    pub method: Method,
    pub path: &'a [&'a str],
    pub query: Vec<(&'static str, String)>,
    pub body: Option<Vec<u8>>,
    pub auth: Auth<'a>,
    /// Send `Content-Type: application/json` even without a body (WorkOS SDKs do).
    pub json_content_type: bool,
    /// Send an `Idempotency-Key` (WorkOS POSTs, when retries are enabled).
    pub idempotency_key: bool,
    /// Send `X-FusionAuth-TenantId` if configured.
    pub fusionauth_tenant: bool,
    pub replay: Replay,
}

impl<'a> Call<'a> {
    /// A WorkOS call: bearer key, JSON content type on every request, POSTs carry an
    /// `Idempotency-Key` and everything may be retried, as the official SDKs do.
    pub fn workos(method: Method, path: &'a [&'a str]) -> Self {
        let post = method == Method::POST;
        Call {
            method,
            path,
            query: Vec::new(),
            body: None,
            auth: Auth::Bearer,
            json_content_type: true,
            idempotency_key: post,
            fusionauth_tenant: false,
            replay: Replay::Safe,
        }
    }

    /// A FusionAuth call: raw API key, tenant header, JSON content type only with a body;
    /// POSTs are retried only when the server certainly did not act on them.
    pub fn fusionauth(method: Method, path: &'a [&'a str]) -> Self {
        let replay = if method == Method::POST {
            Replay::OnlyIfUnprocessed
        } else {
            Replay::Safe
        };
        Call {
            method,
            path,
            query: Vec::new(),
            body: None,
            auth: Auth::RawKey,
            json_content_type: false,
            idempotency_key: false,
            fusionauth_tenant: true,
            replay,
        }
    }

    pub fn auth(mut self, auth: Auth<'a>) -> Self {
        self.auth = auth;
        self
    }

    pub fn query(mut self, name: &'static str, value: Option<impl Into<String>>) -> Self {
        if let Some(v) = value {
            self.query.push((name, v.into()));
        }
        self
    }

    pub fn json(mut self, body: &impl Serialize) -> Result<Self, Error> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| Error::Config(format!("cannot encode the request body: {e}")))?;
        self.body = Some(bytes);
        Ok(self)
    }
}

/// A successful answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    /// Decodes the body as `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body)
            .map_err(|e| self.unexpected(format!("cannot decode the response body: {e}")))
    }

    /// Decodes the body as `T`, or `T::default()` when the body is empty (FusionAuth answers
    /// many calls with an empty 200).
    pub fn json_or_default<T: DeserializeOwned + Default>(&self) -> Result<T, Error> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            Ok(T::default())
        } else {
            self.json()
        }
    }

    pub fn unexpected(&self, message: String) -> Error {
        Error::UnexpectedResponse {
            message,
            response: Box::new(ErrorResponse::new(self.status, &self.headers, &self.body)),
        }
    }
}

/// Builds a [`Client`].
///
/// ```no_run
/// # fn main() -> Result<(), mfad_client::Error> {
/// use std::time::Duration;
/// let client = mfad_client::Client::builder()
///     .base_url("http://127.0.0.1:8080")
///     .api_key("sk_…")
///     .timeout(Duration::from_secs(5))
///     .max_retries(2)
///     .build()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ClientBuilder {
    base_url: Option<String>,
    api_key: Option<String>,
    timeout: Option<Duration>,
    connect_timeout: Duration,
    backoff: Backoff,
    user_agent: String,
    http: Option<reqwest::Client>,
    tenant_id: Option<String>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_retries", &self.backoff.max_retries)
            .field("user_agent", &self.user_agent)
            .field("custom_http_client", &self.http.is_some())
            .field("fusionauth_tenant_id", &self.tenant_id)
            .finish()
    }
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            base_url: None,
            api_key: None,
            timeout: Some(DEFAULT_TIMEOUT),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            backoff: Backoff {
                max_retries: DEFAULT_MAX_RETRIES,
                initial: DEFAULT_INITIAL_BACKOFF,
                max: DEFAULT_MAX_BACKOFF,
            },
            user_agent: DEFAULT_USER_AGENT.to_owned(),
            http: None,
            tenant_id: None,
        }
    }
}

impl ClientBuilder {
    /// A builder with the base URL and key read from `MFAD_URL` and `MFAD_API_KEY` (or
    /// `WORKOS_API_KEY`), for further settings.
    ///
    /// # Errors
    /// [`Error::Config`] if a variable is unset or not valid Unicode.
    pub fn from_env() -> Result<ClientBuilder, Error> {
        ClientBuilder::from_vars(|name| match std::env::var(name) {
            Ok(v) => Ok(Some(v)),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => {
                Err(Error::Config(format!("{name} is not valid Unicode")))
            }
        })
    }

    fn from_vars(
        var: impl Fn(&str) -> Result<Option<String>, Error>,
    ) -> Result<ClientBuilder, Error> {
        let var = |name: &str| -> Result<Option<String>, Error> {
            Ok(var(name)?
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty()))
        };
        let url = var("MFAD_URL")?.ok_or_else(|| Error::Config("MFAD_URL is not set".into()))?;
        let key = match var("MFAD_API_KEY")? {
            Some(k) => k,
            None => var("WORKOS_API_KEY")?.ok_or_else(|| {
                Error::Config("neither MFAD_API_KEY nor WORKOS_API_KEY is set".into())
            })?,
        };
        Ok(ClientBuilder::default().base_url(url).api_key(key))
    }

    /// The server's base URL, for example `http://127.0.0.1:8080` or
    /// `https://mfa.example.com/prefix`.
    pub fn base_url(mut self, url: impl AsRef<str>) -> Self {
        self.base_url = Some(url.as_ref().to_owned());
        self
    }

    /// The API key (`sk_…`).
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// The time limit of each attempt, from sending to the end of the body (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Removes the per-attempt time limit.
    pub fn no_timeout(mut self) -> Self {
        self.timeout = None;
        self
    }

    /// The time limit for opening a connection (default 10 s). Ignored with
    /// [`http_client`](Self::http_client), whose own setting applies.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How many times a failed call is retried (default 3; 0 disables retries and, as in
    /// the Node SDK, the `Idempotency-Key` header).
    ///
    /// Retried: connection failures, and 408, 429, 500, 502, 503, 504 answers. WorkOS calls
    /// are also retried after a timeout or a dropped connection, POSTs with the same
    /// `Idempotency-Key` on every attempt; FusionAuth POSTs only when the server certainly
    /// did not act (connection refused, 408, 429, 503).
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.backoff.max_retries = retries;
        self
    }

    /// The wait before the first retry (default 500 ms); it doubles on each retry, up to
    /// [`max_backoff`](Self::max_backoff), with jitter. A `Retry-After` header from the
    /// server replaces it (capped at 60 s).
    pub fn initial_backoff(mut self, wait: Duration) -> Self {
        self.backoff.initial = wait;
        self
    }

    /// The longest wait between retries, before jitter (default 8 s).
    pub fn max_backoff(mut self, wait: Duration) -> Self {
        self.backoff.max = wait;
        self
    }

    /// The `User-Agent` header (default [`DEFAULT_USER_AGENT`]).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Sends through this `reqwest::Client` (proxies, custom TLS roots, connection pool
    /// settings) instead of building one.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// The FusionAuth tenant, sent as `X-FusionAuth-TenantId` on every FusionAuth call.
    ///
    /// Optional with an API key, which belongs to one tenant; needed by the `*_using_jwt`
    /// calls unless the token carries a `tid` claim. mfad takes its own id (`tenant_…`) or
    /// the UUID with the same 128 bits, and refuses a tenant other than the key's (or the
    /// JWT's `tid`), or an id that names no tenant, with [`Error::Validation`] (400, code
    /// `[InvalidTenantId]`); on the unauthenticated login calls, a login of another tenant
    /// is not found (404).
    pub fn fusionauth_tenant_id(mut self, tenant_id: impl Into<String>) -> Self {
        self.tenant_id = Some(tenant_id.into());
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    /// [`Error::Config`] for a missing or invalid base URL, API key, user agent or tenant id,
    /// or if the HTTP client cannot be built.
    pub fn build(self) -> Result<Client, Error> {
        let raw = self
            .base_url
            .ok_or_else(|| Error::Config("no base URL given".into()))?;
        let base_url = Url::parse(raw.trim())
            .map_err(|e| Error::Config(format!("invalid base URL {raw:?}: {e}")))?;
        if !matches!(base_url.scheme(), "http" | "https")
            || base_url.cannot_be_a_base()
            || base_url.host().is_none()
        {
            return Err(Error::Config(format!(
                "the base URL {raw:?} must be an absolute http or https URL"
            )));
        }
        if base_url.query().is_some() || base_url.fragment().is_some() {
            return Err(Error::Config(format!(
                "the base URL {raw:?} must not have a query or fragment"
            )));
        }
        let api_key = self.api_key.unwrap_or_default();
        if api_key.trim().is_empty() {
            return Err(Error::Config("no API key given".into()));
        }
        header_value(&api_key, "API key")?;
        let user_agent = HeaderValue::from_str(&self.user_agent)
            .map_err(|_| Error::Config("the user agent is not a valid header value".into()))?;
        let tenant_id = self
            .tenant_id
            .map(|t| {
                HeaderValue::from_str(&t)
                    .map_err(|_| Error::Config("the tenant id is not a valid header value".into()))
            })
            .transpose()?;
        let http = match self.http {
            Some(http) => http,
            None => reqwest::Client::builder()
                .connect_timeout(self.connect_timeout)
                .build()
                .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))?,
        };
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base_url,
                api_key,
                timeout: self.timeout,
                backoff: self.backoff,
                user_agent,
                tenant_id,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_appended_and_escaped() {
        let c = Client::new("http://127.0.0.1:8080", "sk_test").unwrap();
        let u = c
            .url(
                &["user_management", "users", "a b/c?d", "auth_factors"],
                &[("order", "desc".into())],
            )
            .unwrap();
        assert_eq!(
            u.as_str(),
            "http://127.0.0.1:8080/user_management/users/a%20b%2Fc%3Fd/auth_factors?order=desc"
        );
        let c = Client::new("https://example.com/mfa/", "sk_test").unwrap();
        assert_eq!(
            c.url(&["auth", "factors", "enroll"], &[]).unwrap().as_str(),
            "https://example.com/mfa/auth/factors/enroll"
        );
    }

    #[test]
    fn environment_prefers_mfad_api_key_then_workos_api_key() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                Ok(vars
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned()))
            }
        };
        let b = ClientBuilder::from_vars(env(&[
            ("MFAD_URL", "http://h:1"),
            ("MFAD_API_KEY", "sk_a"),
            ("WORKOS_API_KEY", "sk_b"),
        ]))
        .unwrap();
        assert_eq!(b.api_key.as_deref(), Some("sk_a"));
        let b = ClientBuilder::from_vars(env(&[
            ("MFAD_URL", "http://h:1"),
            ("MFAD_API_KEY", " "),
            ("WORKOS_API_KEY", "sk_b"),
        ]))
        .unwrap();
        assert_eq!(b.api_key.as_deref(), Some("sk_b"));
        assert_eq!(b.base_url.as_deref(), Some("http://h:1"));
        let e = ClientBuilder::from_vars(env(&[("MFAD_URL", "http://h:1")])).unwrap_err();
        assert!(e.to_string().contains("WORKOS_API_KEY"), "{e}");
        let e = ClientBuilder::from_vars(env(&[("MFAD_API_KEY", "sk_a")])).unwrap_err();
        assert!(e.to_string().contains("MFAD_URL"), "{e}");
    }

    #[test]
    fn bad_configuration_is_refused() {
        assert!(matches!(
            Client::new("127.0.0.1:8080", "sk"),
            Err(Error::Config(_))
        ));
        assert!(matches!(
            Client::new("ftp://example.com", "sk"),
            Err(Error::Config(_))
        ));
        assert!(matches!(
            Client::new("http://example.com?x=1", "sk"),
            Err(Error::Config(_))
        ));
        assert!(matches!(
            Client::new("http://example.com", ""),
            Err(Error::Config(_))
        ));
        assert!(matches!(
            Client::new("http://example.com", "sk\nx"),
            Err(Error::Config(_))
        ));
        let debug = format!(
            "{:?}",
            Client::new("http://example.com", "sk_secret").unwrap()
        );
        assert!(!debug.contains("sk_secret"), "{debug}");
    }
}
