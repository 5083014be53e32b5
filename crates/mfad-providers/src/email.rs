//! Email delivery adapters for [`mfad_core::email::EmailSender`]:
//!
//! * [`ConsoleEmail`]: development only; logs the message so a developer can read the code.
//! * [`SmtpEmail`]: SMTP submission through lettre's async Tokio transport over rustls, with
//!   plain, STARTTLS or implicit-TLS connections chosen by the URL (see [`SmtpEndpoint`]).

use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use mfad_core::email::EmailSender;
use percent_encoding::percent_decode_str;
use secrecy::{ExposeSecret, SecretString};

/// Prints messages to the log. Codes are visible: never use in production.
#[derive(Debug, Default)]
pub struct ConsoleEmail;

#[async_trait]
impl EmailSender for ConsoleEmail {
    fn provider(&self) -> &'static str {
        "console"
    }

    async fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), String> {
        tracing::warn!(
            to_domain = %recipient_domain(to),
            subject = %subject,
            body = %body,
            "DEVELOPMENT ONLY: console email provider; this message was not sent"
        );
        Ok(())
    }
}

/// The part of an address after the last `@`, so logs never carry a whole address.
fn recipient_domain(address: &str) -> &str {
    address
        .rsplit_once('@')
        .map_or("(no domain)", |(_, domain)| domain)
}

/// How an SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// No encryption (`smtp://`, default port 25): only for a trusted relay on the same
    /// host or network.
    Plain,
    /// STARTTLS, required: the connection fails unless the server upgrades
    /// (`smtp+starttls://` or `smtp://…?tls=starttls`, default port 587).
    StartTls,
    /// TLS from the first byte (`smtps://`, default port 465).
    ImplicitTls,
}

/// A parsed SMTP URL:
///
/// * `smtp://host[:port]`: plain (port 25);
/// * `smtp+starttls://host[:port]` or `smtp://host[:port]?tls=starttls`: required STARTTLS
///   (port 587); `?tls=none` spells plain explicitly;
/// * `smtps://host[:port]`: implicit TLS (port 465);
///
/// each with optional percent-encoded `user:password@` credentials.
#[derive(Clone, Debug)]
pub struct SmtpEndpoint {
    /// Host name or IP address; also the name the server certificate must carry.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Connection security.
    pub security: SmtpSecurity,
    /// User name for `AUTH`, percent-decoded.
    pub user: Option<String>,
    /// Password for `AUTH`, percent-decoded; its `Debug` prints nothing.
    pub password: Option<SecretString>,
}

impl fmt::Display for SmtpEndpoint {
    /// `scheme://host:port`, without credentials: safe for logs and errors.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.security {
            SmtpSecurity::Plain => "smtp",
            SmtpSecurity::StartTls => "smtp+starttls",
            SmtpSecurity::ImplicitTls => "smtps",
        };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

impl SmtpEndpoint {
    /// Parses an SMTP URL (see the type's documentation). Error messages never repeat the
    /// URL, which may hold a password.
    pub fn parse(input: &str) -> Result<SmtpEndpoint, String> {
        let url = url::Url::parse(input.trim()).map_err(|e| format!("not a URL: {e}"))?;
        let (mut security, default_port) = match url.scheme() {
            "smtp" => (SmtpSecurity::Plain, 25),
            "smtp+starttls" => (SmtpSecurity::StartTls, 587),
            "smtps" => (SmtpSecurity::ImplicitTls, 465),
            other => {
                return Err(format!(
                    "unsupported scheme {other:?} (smtp, smtp+starttls, smtps)"
                ));
            }
        };
        for (key, value) in url.query_pairs() {
            match (key.as_ref(), value.as_ref(), security) {
                ("tls", "starttls", SmtpSecurity::Plain | SmtpSecurity::StartTls) => {
                    security = SmtpSecurity::StartTls;
                }
                ("tls", "none", SmtpSecurity::Plain) => {}
                ("tls", other, _) => {
                    return Err(format!(
                        "tls={other:?} does not fit scheme {} (use tls=starttls or tls=none with smtp://)",
                        url.scheme()
                    ));
                }
                (other, _, _) => return Err(format!("unknown parameter {other:?} (only tls)")),
            }
        }
        if !matches!(url.path(), "" | "/") || url.fragment().is_some() {
            return Err("a path or fragment has no meaning in an SMTP URL".into());
        }
        let host = match url.host() {
            Some(url::Host::Domain(d)) if !d.is_empty() && !d.contains('%') => d.to_owned(),
            Some(url::Host::Ipv4(a)) => a.to_string(),
            Some(url::Host::Ipv6(a)) => a.to_string(),
            _ => return Err("missing or invalid host".into()),
        };
        let decode = |s: &str, what: &str| {
            percent_decode_str(s)
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(|_| format!("the {what} is not valid percent-encoded UTF-8"))
        };
        let user = Some(decode(url.username(), "user name")?).filter(|u| !u.is_empty());
        let password = match url.password() {
            Some(p) => Some(SecretString::from(decode(p, "password")?)),
            None => None,
        };
        if user.is_none() && password.is_some() {
            return Err("a password needs a user name".into());
        }
        Ok(SmtpEndpoint {
            host,
            port: url.port().unwrap_or(default_port),
            security,
            user,
            password,
        })
    }

    /// True when the host is this machine (`localhost`, 127.0.0.0/8, `::1`).
    fn is_loopback(&self) -> bool {
        self.host.eq_ignore_ascii_case("localhost")
            || self.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

/// Checks that `address` is a usable sender (`mfad@example.com` or
/// `Example <mfad@example.com>`).
pub fn check_from_address(address: &str) -> Result<(), String> {
    address
        .parse::<Mailbox>()
        .map(|_| ())
        .map_err(|e| format!("not an email address: {e}"))
}

/// Settings for [`SmtpEmail`] beyond the URL and the sender.
#[derive(Clone)]
pub struct SmtpOptions {
    /// The password, when it is kept out of the URL (for instance read from a file). It is an
    /// error to give one here and in the URL.
    pub password: Option<SecretString>,
    /// Extra trusted CA certificates (PEM), for servers with a private CA; the system's roots
    /// stay trusted.
    pub extra_ca_pem: Option<Vec<u8>>,
    /// Limit for one whole delivery (connect, TLS, `AUTH`, the SMTP transaction).
    pub timeout: Duration,
}

impl Default for SmtpOptions {
    fn default() -> Self {
        SmtpOptions {
            password: None,
            extra_ca_pem: None,
            timeout: SmtpEmail::DEFAULT_TIMEOUT,
        }
    }
}

impl fmt::Debug for SmtpOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpOptions")
            .field("password", &self.password)
            .field("extra_ca_pem", &self.extra_ca_pem.as_ref().map(Vec::len))
            .field("timeout", &self.timeout)
            .finish()
    }
}

type Transport = AsyncSmtpTransport<Tokio1Executor>;

/// SMTP submission through a relay, with pooled connections.
///
/// Each delivery runs in its own task under [`SmtpOptions::timeout`], so a caller that goes
/// away cannot cut an SMTP transaction in half. When a delivery times out, the connection
/// pool is discarded: a connection abandoned mid-transaction is never reused, so one
/// message can never run into the next.
#[derive(Clone)]
pub struct SmtpEmail {
    inner: Arc<Inner>,
}

struct Inner {
    builder: lettre::transport::smtp::AsyncSmtpTransportBuilder,
    pool: Mutex<Pool>,
    from: Mailbox,
    endpoint: String,
    timeout: Duration,
    /// Strings scrubbed from error messages (the password).
    secrets: Vec<SecretString>,
}

/// The current transport and its generation; built on first use, inside the runtime.
struct Pool {
    generation: u64,
    transport: Option<Transport>,
}

impl fmt::Debug for SmtpEmail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpEmail")
            .field("endpoint", &self.inner.endpoint)
            .field("from", &self.inner.from.email.to_string())
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

impl SmtpEmail {
    /// Limit for one delivery unless [`SmtpOptions::timeout`] says otherwise.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

    /// A sender for the relay at `url` (see [`SmtpEndpoint`]) sending as `from`.
    ///
    /// Refuses credentials over a plain connection to anything but this machine: they
    /// would cross the network in clear text.
    pub fn new(url: &str, from: &str, options: SmtpOptions) -> Result<SmtpEmail, String> {
        let endpoint = SmtpEndpoint::parse(url)?;
        let from: Mailbox = from
            .parse()
            .map_err(|e| format!("sender address: not an email address: {e}"))?;
        let password = match (endpoint.password.clone(), options.password) {
            (Some(_), Some(_)) => {
                return Err("give the SMTP password in the URL or separately, not both".into());
            }
            (url_password, file_password) => url_password.or(file_password),
        };
        if options.timeout.is_zero() {
            return Err("the SMTP timeout must be positive".into());
        }

        let tls_parameters = || -> Result<TlsParameters, String> {
            let mut tls = TlsParameters::builder(endpoint.host.clone());
            if let Some(pem) = &options.extra_ca_pem {
                if !String::from_utf8_lossy(pem).contains("-----BEGIN CERTIFICATE-----") {
                    return Err("the CA file holds no PEM certificate".into());
                }
                let cert = Certificate::from_pem(pem).map_err(|e| format!("the CA file: {e}"))?;
                tls = tls.add_root_certificate(cert);
            }
            tls.build_rustls().map_err(|e| format!("TLS settings: {e}"))
        };
        let tls = match endpoint.security {
            SmtpSecurity::Plain if options.extra_ca_pem.is_some() => {
                return Err(
                    "a CA file has no use on an unencrypted smtp:// connection; \
                            use smtps:// or smtp+starttls://"
                        .into(),
                );
            }
            SmtpSecurity::Plain => Tls::None,
            SmtpSecurity::StartTls => Tls::Required(tls_parameters()?),
            SmtpSecurity::ImplicitTls => Tls::Wrapper(tls_parameters()?),
        };

        let mut builder = Transport::builder_dangerous(endpoint.host.clone())
            .port(endpoint.port)
            .tls(tls)
            .timeout(Some(options.timeout));
        let mut secrets = Vec::new();
        match (&endpoint.user, password) {
            (Some(user), password) => {
                if endpoint.security == SmtpSecurity::Plain && !endpoint.is_loopback() {
                    return Err(format!(
                        "refusing to send SMTP credentials unencrypted to {}; use smtps:// or smtp+starttls://",
                        endpoint.host
                    ));
                }
                let password = password.unwrap_or_default();
                let exposed = password.expose_secret().to_owned();
                if !exposed.is_empty() {
                    secrets.push(password);
                }
                builder = builder.credentials(Credentials::new(user.clone(), exposed));
            }
            (None, Some(_)) => return Err("an SMTP password needs a user name in the URL".into()),
            (None, None) => {}
        }

        Ok(SmtpEmail {
            inner: Arc::new(Inner {
                builder,
                pool: Mutex::new(Pool {
                    generation: 0,
                    transport: None,
                }),
                from,
                endpoint: endpoint.to_string(),
                timeout: options.timeout,
                secrets,
            }),
        })
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Pool> {
        // The guarded section cannot panic half-way; a poisoned lock is still consistent.
        self.pool
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The current transport, built on first use (lettre's pool spawns a Tokio task).
    fn transport(&self) -> (u64, Transport) {
        let mut pool = self.lock();
        let generation = pool.generation;
        let transport = pool
            .transport
            .get_or_insert_with(|| self.builder.clone().build())
            .clone();
        (generation, transport)
    }

    /// Drops the transport of `generation` (if still current) and closes its connections.
    fn discard(&self, generation: u64) {
        let old = {
            let mut pool = self.lock();
            if pool.generation != generation {
                return;
            }
            pool.generation += 1;
            pool.transport.take()
        };
        if let Some(old) = old {
            let limit = self.timeout;
            tokio::spawn(async move {
                let _ = tokio::time::timeout(limit, old.shutdown()).await;
            });
        }
    }

    /// An error message without secrets; lettre's include the server's reply.
    fn describe(&self, error: &lettre::transport::smtp::Error) -> String {
        let mut text = format!("SMTP delivery through {} failed: {error}", self.endpoint);
        for secret in &self.secrets {
            text = text.replace(secret.expose_secret(), "***");
        }
        text
    }

    async fn deliver(&self, message: Message) -> Result<(), String> {
        // A transport discarded by a concurrent timeout answers "shut down": retry once.
        for _ in 0..2 {
            let (generation, transport) = self.transport();
            match tokio::time::timeout(self.timeout, transport.send(message.clone())).await {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(e)) if e.is_transport_shutdown() => continue,
                Ok(Err(e)) => return Err(self.describe(&e)),
                Err(_) => {
                    self.discard(generation);
                    return Err(format!(
                        "SMTP delivery through {} timed out after {:?}",
                        self.endpoint, self.timeout
                    ));
                }
            }
        }
        Err(format!(
            "SMTP delivery through {} failed: transport shut down",
            self.endpoint
        ))
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // lettre's pool spawns a clean-up task when dropped, which needs a runtime; outside
        // one (after shutdown) leak the idle connections instead, the process is ending.
        if tokio::runtime::Handle::try_current().is_err() {
            let pool = self
                .pool
                .get_mut()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some(transport) = pool.transport.take() {
                std::mem::forget(transport);
            }
        }
    }
}

#[async_trait]
impl EmailSender for SmtpEmail {
    fn provider(&self) -> &'static str {
        "smtp"
    }

    async fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), String> {
        let to: Mailbox = to
            .parse()
            .map_err(|_| "invalid recipient address".to_owned())?;
        let message = Message::builder()
            .from(self.inner.from.clone())
            .to(to)
            .subject(subject)
            .message_id(None)
            .header(ContentType::TEXT_PLAIN)
            .body(body.to_owned())
            .map_err(|e| format!("building the message: {e}"))?;
        let inner = Arc::clone(&self.inner);
        tokio::spawn(async move { inner.deliver(message).await })
            .await
            .map_err(|_| "the SMTP delivery task failed".to_owned())?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_and_default_ports() {
        let e = SmtpEndpoint::parse("smtp://relay.example").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.security),
            ("relay.example", 25, SmtpSecurity::Plain)
        );
        let e = SmtpEndpoint::parse("smtp+starttls://relay.example").unwrap();
        assert_eq!((e.port, e.security), (587, SmtpSecurity::StartTls));
        let e = SmtpEndpoint::parse("smtp://relay.example:2525?tls=starttls").unwrap();
        assert_eq!((e.port, e.security), (2525, SmtpSecurity::StartTls));
        let e = SmtpEndpoint::parse("smtps://relay.example").unwrap();
        assert_eq!((e.port, e.security), (465, SmtpSecurity::ImplicitTls));
        let e = SmtpEndpoint::parse("smtp://127.0.0.1:1025/?tls=none").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.security),
            ("127.0.0.1", 1025, SmtpSecurity::Plain)
        );
        let e = SmtpEndpoint::parse("smtps://[::1]:4650").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("::1", 4650));
        assert_eq!(e.to_string(), "smtps://[::1]:4650");
        assert!(e.is_loopback());
    }

    #[test]
    fn credentials_are_percent_decoded() {
        let e = SmtpEndpoint::parse("smtps://me%40example.com:p%40ss%2Fw%3Ard%25@relay.example")
            .unwrap();
        assert_eq!(e.user.as_deref(), Some("me@example.com"));
        assert_eq!(
            e.password.as_ref().map(|p| p.expose_secret()),
            Some("p@ss/w:rd%")
        );
        assert_eq!(e.to_string(), "smtps://relay.example:465");
        let e = SmtpEndpoint::parse("smtps://apikey@relay.example").unwrap();
        assert_eq!(e.user.as_deref(), Some("apikey"));
        assert!(e.password.is_none());
    }

    #[test]
    fn bad_urls_are_refused_without_echoing_the_password() {
        for url in [
            "http://relay.example",
            "smtp://",
            "smtp://relay.example/path",
            "smtp://relay.example?tls=opportunistic",
            "smtps://relay.example?tls=starttls",
            "smtp+starttls://relay.example?tls=none",
            "smtp://relay.example?mode=x",
            "smtp://:hunter2@relay.example",
            "smtp://u:hunter2@relay.example:99999",
            "smtp://u:%FFhunter2@relay.example",
            "relay.example:25",
        ] {
            let e = SmtpEndpoint::parse(url).unwrap_err();
            assert!(!e.contains("hunter2"), "{url}: {e}");
        }
    }

    #[test]
    fn debug_hides_the_password() {
        let e = SmtpEndpoint::parse("smtps://u:hunter2@relay.example").unwrap();
        assert!(!format!("{e:?}").contains("hunter2"));
        let options = SmtpOptions {
            password: Some("hunter2".into()),
            ..SmtpOptions::default()
        };
        assert!(!format!("{options:?}").contains("hunter2"));
        let smtp = SmtpEmail::new(
            "smtps://u:hunter2@relay.example",
            "mfad@example.com",
            SmtpOptions::default(),
        )
        .unwrap();
        let text = format!("{smtp:?}");
        assert!(
            !text.contains("hunter2") && text.contains("smtps://relay.example:465"),
            "{text}"
        );
    }

    #[test]
    fn construction_checks() {
        let ok = SmtpOptions::default();
        assert!(SmtpEmail::new("smtp://relay.example", "not an address", ok.clone()).is_err());
        // Credentials in clear text over the network are refused, on loopback allowed.
        let e = SmtpEmail::new("smtp://u:hunter2@relay.example", "a@b.example", ok.clone())
            .unwrap_err();
        assert!(e.contains("unencrypted") && !e.contains("hunter2"), "{e}");
        assert!(SmtpEmail::new("smtp://u:pw@127.0.0.1:25", "a@b.example", ok.clone()).is_ok());
        // One password source only, and a password needs a user.
        let file = SmtpOptions {
            password: Some("pw".into()),
            ..SmtpOptions::default()
        };
        assert!(SmtpEmail::new("smtps://u:pw@relay.example", "a@b.example", file.clone()).is_err());
        assert!(SmtpEmail::new("smtps://u@relay.example", "a@b.example", file.clone()).is_ok());
        assert!(SmtpEmail::new("smtps://relay.example", "a@b.example", file).is_err());
        // A CA file must hold a certificate.
        let bad_ca = SmtpOptions {
            extra_ca_pem: Some(b"not a certificate".to_vec()),
            ..SmtpOptions::default()
        };
        assert!(SmtpEmail::new("smtps://relay.example", "a@b.example", bad_ca.clone()).is_err());
        let e = SmtpEmail::new("smtp://relay.example", "a@b.example", bad_ca).unwrap_err();
        assert!(e.contains("unencrypted"), "{e}");
        assert!(check_from_address("Example <mfad@example.com>").is_ok());
        assert!(check_from_address("mfad").is_err());
    }

    #[tokio::test]
    async fn console_always_succeeds() {
        let sent = ConsoleEmail
            .send("ann@example.com", "Your code", "123456")
            .await;
        assert_eq!(sent, Ok(()));
    }

    #[test]
    fn recipient_domain_only() {
        assert_eq!(recipient_domain("ann@example.com"), "example.com");
        assert_eq!(recipient_domain("nobody"), "(no domain)");
    }
}
