//! The HTTP client deliveries are posted with, under the address policy
//! (`mfad_core::webhooks::policy`).
//!
//! The policy is enforced where the connection is made, not only on the URL as registered:
//! the client's resolver returns only the addresses the policy allows, so a name that
//! resolves to a private address at delivery time (DNS rebinding) is never connected to.
//! IP-literal hosts bypass every resolver, so the URL itself is checked before each POST.
//! Redirects are never followed (a 3xx is an answer like any other non-2xx), environment
//! proxies are ignored (a proxy would connect on our behalf, past the policy), requests
//! give up after a timeout, and nothing is retried here: the outbox retries.

use std::error::Error as StdError;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mfad_core::error::{CoreError, FieldError, Reason};
use mfad_core::webhooks::policy::{address_allowed, check_url};
use mfad_core::webhooks::{TransportOutcome, WebhookRequest, WebhookTransport};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// The `User-Agent` of every delivery.
pub const USER_AGENT: &str = concat!("mfad-webhooks/", env!("CARGO_PKG_VERSION"));

/// The system resolver (getaddrinfo, through tokio's blocking pool).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Every address a name resolved to was refused by the address policy.
#[derive(Debug)]
struct AddressRefused {
    host: String,
}

impl std::fmt::Display for AddressRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} resolves only to addresses the webhook policy refuses (loopback, private, link-local or otherwise non-public)",
            self.host
        )
    }
}

impl StdError for AddressRefused {}

/// Resolves through `inner`, keeping only the addresses the policy allows.
struct PolicyResolver {
    inner: Arc<dyn Resolve>,
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let resolving = self.inner.resolve(name);
        Box::pin(async move {
            let allowed: Vec<SocketAddr> = resolving
                .await?
                .filter(|a| address_allowed(a.ip(), false))
                .collect();
            if allowed.is_empty() {
                return Err(Box::new(AddressRefused { host }) as _);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// The server's [`WebhookTransport`]: two clients, one under the address policy and
/// `https` only, one for endpoints the operator allowed insecure delivery to.
#[derive(Debug, Clone)]
pub struct HttpTransport {
    strict: reqwest::Client,
    insecure: reqwest::Client,
}

impl HttpTransport {
    /// A transport that gives up on a delivery after `timeout` (connect, send and answer),
    /// resolving names with the system resolver.
    pub fn new(timeout: Duration) -> Result<Self, CoreError> {
        Self::with_resolver(timeout, Arc::new(SystemResolver))
    }

    /// As [`HttpTransport::new`], resolving names with `resolver` (the policy still filters
    /// what it returns; tests use a resolver that answers like a rebinding DNS server).
    pub fn with_resolver(timeout: Duration, resolver: Arc<dyn Resolve>) -> Result<Self, CoreError> {
        let build = |resolver: Arc<dyn Resolve>, https_only: bool| {
            reqwest::Client::builder()
                .user_agent(USER_AGENT)
                .redirect(reqwest::redirect::Policy::none())
                .retry(reqwest::retry::never())
                .no_proxy()
                .timeout(timeout)
                .https_only(https_only)
                .dns_resolver(resolver)
                .build()
                .map_err(|e| CoreError::Internal(format!("webhook HTTP client: {e}")))
        };
        Ok(HttpTransport {
            strict: build(
                Arc::new(PolicyResolver {
                    inner: resolver.clone(),
                }),
                true,
            )?,
            insecure: build(resolver, false)?,
        })
    }
}

/// Why [`check_url`] refused a URL, in words for the deliveries listing.
fn refusal(e: &CoreError) -> String {
    let reason = match e {
        CoreError::Validation(fields) => fields.first().map(|f: &FieldError| f.reason),
        _ => None,
    };
    match reason {
        Some(Reason::InsecureScheme) => "the URL is not https and insecure delivery is not allowed",
        Some(Reason::Credentials) => "the URL carries a user name or password",
        Some(Reason::ForbiddenAddress) => {
            "the URL names a loopback, private, link-local or otherwise non-public address"
        }
        _ => "the URL is not a valid delivery URL",
    }
    .to_owned()
}

/// A transport error in words, without the URL (which may carry a token in its query).
fn unreachable(e: reqwest::Error) -> TransportOutcome {
    if e.is_timeout() {
        return TransportOutcome::Unreachable {
            reason: "timed out".into(),
        };
    }
    let e = e.without_url();
    let mut source: Option<&(dyn StdError + 'static)> = Some(&e);
    let mut chain = Vec::new();
    while let Some(s) = source {
        if let Some(refused) = s.downcast_ref::<AddressRefused>() {
            return TransportOutcome::Refused {
                reason: refused.to_string(),
            };
        }
        chain.push(s.to_string());
        source = s.source();
    }
    TransportOutcome::Unreachable {
        reason: chain.join(": "),
    }
}

#[async_trait::async_trait]
impl WebhookTransport for HttpTransport {
    async fn post(
        &self,
        url: &str,
        allow_insecure: bool,
        request: &WebhookRequest,
    ) -> TransportOutcome {
        let url = match check_url(url, allow_insecure) {
            Ok(u) => u,
            Err(e) => {
                return TransportOutcome::Refused {
                    reason: refusal(&e),
                };
            }
        };
        let client = if allow_insecure {
            &self.insecure
        } else {
            &self.strict
        };
        let mut builder = client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(request.body.clone());
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        match builder.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                // The answer's body is not read: nothing in it matters, and a receiver
                // must not make the dispatcher read without bound.
                if resp.status().is_success() {
                    TransportOutcome::Delivered { status }
                } else {
                    TransportOutcome::Rejected { status }
                }
            }
            Err(e) => unreachable(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::net::{IpAddr, Ipv4Addr};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio::sync::mpsc;

    /// One request as a loopback receiver read it.
    #[derive(Debug)]
    struct Captured {
        head: String,
        body: Vec<u8>,
    }

    impl Captured {
        fn header(&self, name: &str) -> Option<&str> {
            self.head.lines().skip(1).find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
            })
        }
    }

    /// A receiver on loopback that records every request and answers each with `answer`
    /// (a raw HTTP response), or never answers when `answer` is `None`.
    async fn receiver(
        answer: Option<&'static str>,
    ) -> (SocketAddr, mpsc::UnboundedReceiver<Captured>) {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let head_end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i;
                        }
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
                    let len = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse().ok())?
                        })
                        .unwrap_or(0usize);
                    let mut body = buf[head_end + 4..].to_vec();
                    while body.len() < len {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => body.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let _ = tx.send(Captured { head, body });
                    match answer {
                        Some(a) => {
                            let _ = sock.write_all(a.as_bytes()).await;
                            let _ = sock.shutdown().await;
                        }
                        // Hold the connection open, answering nothing.
                        None => std::future::pending::<()>().await,
                    }
                });
            }
        });
        (addr, rx)
    }

    const OK: &str = "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
    const FAIL: &str =
        "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

    fn request() -> WebhookRequest {
        WebhookRequest {
            body: r#"{"object":"event","id":"event_1"}"#.into(),
            headers: vec![("WorkOS-Signature".into(), "t=1, v1=ab".into())],
        }
    }

    fn transport() -> HttpTransport {
        HttpTransport::new(Duration::from_secs(5)).unwrap()
    }

    /// Answers every name from a fixed table, as a DNS server under an attacker's control
    /// would (the name looks public; its addresses are not).
    struct FixedDns(HashMap<&'static str, Vec<IpAddr>>);

    impl Resolve for FixedDns {
        fn resolve(&self, name: Name) -> Resolving {
            let addrs: Vec<SocketAddr> = self
                .0
                .get(name.as_str())
                .into_iter()
                .flatten()
                .map(|ip| SocketAddr::new(*ip, 0))
                .collect();
            Box::pin(async move { Ok(Box::new(addrs.into_iter()) as Addrs) })
        }
    }

    fn rebinding_dns() -> Arc<dyn Resolve> {
        Arc::new(FixedDns(HashMap::from([
            ("hooks.example.test", vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]),
            (
                "both.example.test",
                vec![
                    IpAddr::V4(Ipv4Addr::LOCALHOST),
                    "93.184.215.14".parse().unwrap(),
                ],
            ),
        ])))
    }

    #[tokio::test]
    async fn delivers_the_body_and_headers() {
        let (addr, mut rx) = receiver(Some(OK)).await;
        let outcome = transport()
            .post(&format!("http://{addr}/hook?x=1"), true, &request())
            .await;
        assert_eq!(outcome, TransportOutcome::Delivered { status: 200 });
        let got = rx.recv().await.unwrap();
        assert!(
            got.head.starts_with("POST /hook?x=1 HTTP/1.1"),
            "{}",
            got.head
        );
        assert_eq!(got.header("content-type"), Some("application/json"));
        assert_eq!(got.header("user-agent"), Some(USER_AGENT));
        assert!(USER_AGENT.starts_with("mfad-webhooks/"));
        assert_eq!(got.header("workos-signature"), Some("t=1, v1=ab"));
        assert_eq!(got.body, request().body.as_bytes());
    }

    #[tokio::test]
    async fn a_non_2xx_answer_is_rejected() {
        let (addr, mut rx) = receiver(Some(FAIL)).await;
        let outcome = transport()
            .post(&format!("http://{addr}/"), true, &request())
            .await;
        assert_eq!(outcome, TransportOutcome::Rejected { status: 500 });
        assert!(rx.recv().await.is_some());
    }

    #[tokio::test]
    async fn loopback_is_refused_unless_allowed() {
        let (addr, mut rx) = receiver(Some(OK)).await;
        let port = addr.port();
        let t = transport();
        for url in [
            format!("https://{addr}/refused"),
            format!("http://{addr}/refused"),
            format!("https://localhost:{port}/refused"),
            format!("https://[::ffff:127.0.0.1]:{port}/refused"),
            format!("https://2130706433:{port}/refused"),
        ] {
            let outcome = t.post(&url, false, &request()).await;
            assert!(
                matches!(outcome, TransportOutcome::Refused { .. }),
                "{url}: {outcome:?}"
            );
        }
        // The same receiver, allowed: it is the first request the receiver ever saw.
        let outcome = t
            .post(&format!("http://{addr}/allowed"), true, &request())
            .await;
        assert_eq!(outcome, TransportOutcome::Delivered { status: 200 });
        let first = rx.recv().await.unwrap();
        assert!(first.head.starts_with("POST /allowed "), "{}", first.head);
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused_at_connect_time() {
        let (addr, mut rx) = receiver(Some(OK)).await;
        let port = addr.port();
        let t = HttpTransport::with_resolver(Duration::from_secs(5), rebinding_dns()).unwrap();
        let outcome = t
            .post(
                &format!("https://hooks.example.test:{port}/rebound"),
                false,
                &request(),
            )
            .await;
        match outcome {
            TransportOutcome::Refused { reason } => {
                assert!(reason.contains("hooks.example.test"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        // With insecure delivery allowed the same name reaches the receiver, first.
        let outcome = t
            .post(
                &format!("http://hooks.example.test:{port}/allowed"),
                true,
                &request(),
            )
            .await;
        assert_eq!(outcome, TransportOutcome::Delivered { status: 200 });
        let first = rx.recv().await.unwrap();
        assert!(first.head.starts_with("POST /allowed "), "{}", first.head);
    }

    #[tokio::test]
    async fn the_policy_resolver_keeps_only_allowed_addresses() {
        let r = PolicyResolver {
            inner: rebinding_dns(),
        };
        let addrs: Vec<IpAddr> = r
            .resolve("both.example.test".parse().unwrap())
            .await
            .unwrap()
            .map(|a| a.ip())
            .collect();
        assert_eq!(addrs, vec!["93.184.215.14".parse::<IpAddr>().unwrap()]);
        let refused = r.resolve("hooks.example.test".parse().unwrap()).await;
        assert!(refused.is_err());
        // A name that resolves to nothing is refused too (nothing to connect to).
        assert!(
            r.resolve("none.example.test".parse().unwrap())
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn redirects_are_not_followed() {
        let (target, mut target_rx) = receiver(Some(OK)).await;
        let answer: &'static str = Box::leak(
            format!(
                "HTTP/1.1 302 Found\r\nlocation: http://{target}/redirected\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            )
            .into_boxed_str(),
        );
        let (addr, mut rx) = receiver(Some(answer)).await;
        let t = transport();
        let outcome = t
            .post(&format!("http://{addr}/start"), true, &request())
            .await;
        assert_eq!(outcome, TransportOutcome::Rejected { status: 302 });
        assert!(rx.recv().await.is_some());
        // The redirect target never saw the redirected request: its first is ours.
        let outcome = t
            .post(&format!("http://{target}/direct"), true, &request())
            .await;
        assert_eq!(outcome, TransportOutcome::Delivered { status: 200 });
        let first = target_rx.recv().await.unwrap();
        assert!(first.head.starts_with("POST /direct "), "{}", first.head);
    }

    #[tokio::test]
    async fn a_receiver_that_never_answers_times_out_unreachable() {
        let (addr, mut rx) = receiver(None).await;
        let t = HttpTransport::new(Duration::from_millis(300)).unwrap();
        let outcome = t
            .post(&format!("http://{addr}/slow"), true, &request())
            .await;
        assert_eq!(
            outcome,
            TransportOutcome::Unreachable {
                reason: "timed out".into()
            }
        );
        // It did receive the request: the timeout is on the answer.
        assert!(rx.recv().await.is_some());
    }

    #[tokio::test]
    async fn a_closed_port_is_unreachable_and_the_reason_has_no_url() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let outcome = transport()
            .post(
                &format!("http://{addr}/x?token=secret-token"),
                true,
                &request(),
            )
            .await;
        match outcome {
            TransportOutcome::Unreachable { reason } => {
                assert!(!reason.is_empty());
                assert!(!reason.contains("secret-token"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }
}
