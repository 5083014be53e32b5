//! A deliberately thin HTTP/1.1 client: one keep-alive connection per worker task,
//! driven directly through `hyper::client::conn::http1` (no pool, no redirects, no
//! decompression), so the client spends as little CPU per request as possible and the
//! measurement is dominated by the server.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Where and how to talk to the server; shared by all connections.
#[derive(Debug)]
pub struct Target {
    /// `host:port` handed to `TcpStream::connect`.
    connect_to: String,
    /// The `Host` header (the URL's authority).
    host: HeaderValue,
    /// `Bearer <api key>`, if a key was given.
    auth: Option<HeaderValue>,
    /// Base path of the URL without a trailing slash (usually empty).
    prefix: String,
    /// Per-request deadline.
    timeout: Duration,
}

impl Target {
    /// Parses `http://host:port[/prefix]`. Only plain HTTP is supported.
    pub fn parse(url: &str, api_key: Option<&str>, timeout: Duration) -> Result<Self> {
        let uri: Uri = url
            .parse()
            .with_context(|| format!("--url {url:?} is not a valid URL"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(other) => bail!("--url: only http:// is supported, got {other}://"),
            None => bail!("--url {url:?} needs a scheme, e.g. http://127.0.0.1:8080"),
        }
        let authority = uri
            .authority()
            .ok_or_else(|| anyhow!("--url {url:?} has no host"))?;
        let port = authority.port_u16().unwrap_or(80);
        let connect_to = format!("{}:{port}", authority.host());
        let host = HeaderValue::from_str(authority.as_str()).context("--url host")?;
        let auth = match api_key {
            Some(key) => Some(
                HeaderValue::from_str(&format!("Bearer {key}"))
                    .context("--api-key contains characters not allowed in a header")?,
            ),
            None => None,
        };
        Ok(Target {
            connect_to,
            host,
            auth,
            prefix: uri.path().trim_end_matches('/').to_owned(),
            timeout,
        })
    }

    /// The request target for an API path such as `/auth/factors/enroll`.
    pub fn uri(&self, path: &str) -> Result<Uri> {
        format!("{}{path}", self.prefix)
            .parse()
            .with_context(|| format!("building request path {path:?}"))
    }
}

/// One HTTP/1.1 keep-alive connection. Reconnects lazily after an error or a close.
#[derive(Debug)]
pub struct Conn {
    target: Arc<Target>,
    sender: Option<SendRequest<Full<Bytes>>>,
    /// Connections opened after the first one (a sign of server-side closes or errors).
    pub reconnects: u64,
}

impl Conn {
    /// Opens the connection now, so connect errors surface before measuring.
    pub async fn connect(target: Arc<Target>) -> Result<Self> {
        let mut conn = Conn {
            target,
            sender: None,
            reconnects: 0,
        };
        conn.ensure_open().await?;
        conn.reconnects = 0;
        Ok(conn)
    }

    async fn ensure_open(&mut self) -> Result<()> {
        if self.sender.as_ref().is_some_and(|s| !s.is_closed()) {
            return Ok(());
        }
        self.sender = None;
        let stream = TcpStream::connect(&self.target.connect_to)
            .await
            .with_context(|| format!("connecting to {}", self.target.connect_to))?;
        stream.set_nodelay(true).context("setting TCP_NODELAY")?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP/1.1 handshake")?;
        // The connection task ends when the server closes or the sender is dropped;
        // its errors also surface through `send_request`, so they need no handling here.
        tokio::spawn(async move {
            let _ignored = connection.await;
        });
        self.sender = Some(sender);
        self.reconnects += 1;
        Ok(())
    }

    /// Sends one request and reads the whole response body.
    pub async fn send(
        &mut self,
        method: Method,
        uri: Uri,
        body: Bytes,
    ) -> Result<(StatusCode, Bytes)> {
        let timeout = self.target.timeout;
        let outcome = tokio::time::timeout(timeout, self.send_inner(method, uri, body)).await;
        let result = match outcome {
            Ok(result) => result,
            Err(_elapsed) => Err(anyhow!("no response within {timeout:?}")),
        };
        if result.is_err() {
            // The connection state is unknown after an error: start afresh next time.
            self.sender = None;
        }
        result
    }

    async fn send_inner(
        &mut self,
        method: Method,
        uri: Uri,
        body: Bytes,
    ) -> Result<(StatusCode, Bytes)> {
        self.ensure_open().await?;
        let target = Arc::clone(&self.target);
        let mut builder = Request::builder()
            .method(method)
            .uri(uri)
            .header(HOST, target.host.clone())
            .header(ACCEPT, HeaderValue::from_static("application/json"))
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(auth) = &target.auth {
            builder = builder.header(AUTHORIZATION, auth.clone());
        }
        let request = builder.body(Full::new(body)).context("building request")?;
        let sender = self
            .sender
            .as_mut()
            .ok_or_else(|| anyhow!("connection not open"))?;
        sender.ready().await.context("connection not ready")?;
        let response = sender
            .send_request(request)
            .await
            .context("sending request")?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .context("reading response body")?
            .to_bytes();
        Ok((status, bytes))
    }
}
