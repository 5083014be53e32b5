//! The connection loop: HTTP/1.1 on hyper with a cap on concurrent connections and
//! three connection timeouts that hyper alone does not give separately.
//!
//! * **Header timeout**: a new connection must send its first byte, and a request its
//!   whole head (up to the blank line), within `header_timeout` of its first byte.
//! * **Idle timeout**: between a response and the next request, a keep-alive connection
//!   may wait `idle_timeout`; a response the client does not read is given as long.
//! * The **body** and **handler** deadlines are per request ([`crate::edge::limits`]).
//!
//! hyper's own `header_read_timeout` starts whenever it waits for a head, keep-alive waits
//! included, so it would cut idle connections at the header timeout; [`TimedIo`] instead
//! watches the bytes: it knows a head has ended when it has seen `\r\n\r\n`, and a
//! response has been written when the server writes (an interim `100 Continue` aside).
//!
//! Over `max_connections`, a new connection gets a `503` (a body both APIs' clients parse)
//! and is closed, rather than waiting in the kernel's backlog.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

/// Connection-level limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// A head must arrive within this (and a new connection's first byte).
    pub header_timeout: Duration,
    /// A keep-alive connection may wait this long for its next request.
    pub idle_timeout: Duration,
    /// Most connections served at once.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 10_000,
        }
    }
}

/// The answer to a connection over the cap: JSON with WorkOS's `{code, message}` and
/// FusionAuth's `generalErrors`, since the path (and so the API) is not read.
const OVER_CAPACITY: &str = concat!(
    "HTTP/1.1 503 Service Unavailable\r\n",
    "Content-Type: application/json; charset=utf-8\r\n",
    "Retry-After: 1\r\n",
    "Connection: close\r\n",
    "Content-Length: 179\r\n\r\n",
    r#"{"code":"service_unavailable","message":"Too many connections. Retry shortly.","generalErrors":[{"code":"[service_unavailable]","message":"Too many connections. Retry shortly."}]}"#,
);

/// Serves `app` on `listener` until `shutdown` resolves, then lets open requests finish
/// (at most `drain` long).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain: Duration,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: keep serving the open ones.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tokio::spawn(refuse(stream));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let svc = app
            .clone()
            .map_request(move |mut req: axum::http::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req.map(axum::body::Body::new)
            });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            // TimedIo keeps the header and idle timeouts; hyper's own (30 s by default
            // once a timer is set) would also cut keep-alive connections idle that long,
            // and costs a timer per request.
            .header_read_timeout(None)
            .keep_alive(true)
            .serve_connection(
                TokioIo::new(TimedIo::new(stream, limits)),
                hyper_util::service::TowerToHyperService::new(svc),
            );
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
            drop(slot);
        });
    }
    let mut drained = std::pin::pin!(tokio::time::timeout(drain, graceful.shutdown()));
    // The first poll signals every open connection; only then is the listener closed, so a
    // client that finds it closed also gets `Connection: close` on its request in flight.
    let first = std::future::poll_fn(|cx| Poll::Ready(drained.as_mut().poll(cx))).await;
    drop(listener);
    let outcome = match first {
        Poll::Ready(outcome) => outcome,
        Poll::Pending => drained.await,
    };
    if outcome.is_err() {
        tracing::warn!("requests still open after the drain period; closing them");
    }
    Ok(())
}

async fn refuse(mut stream: TcpStream) {
    tracing::warn!("connection limit reached; refusing a connection");
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(OVER_CAPACITY.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// Where the request cycle is, as far as the bytes tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the first byte of a request.
    Waiting,
    /// Inside a head; `matched` bytes of `\r\n\r\n` seen at its end so far.
    Head { matched: u8 },
    /// The head is in; the request's own deadlines apply.
    Busy,
}

/// A socket that fails its reads when a head, or the wait for one, takes too long.
pub(crate) struct TimedIo<T> {
    inner: T,
    limits: ConnectionLimits,
    phase: Phase,
    deadline: Pin<Box<Sleep>>,
}

impl<T> TimedIo<T> {
    fn new(inner: T, limits: ConnectionLimits) -> Self {
        TimedIo {
            inner,
            limits,
            phase: Phase::Waiting,
            deadline: Box::pin(tokio::time::sleep(limits.header_timeout)),
        }
    }

    fn rearm(&mut self, after: Duration) {
        self.deadline.as_mut().reset(Instant::now() + after);
    }

    /// Follows the bytes just read.
    fn saw(&mut self, bytes: &[u8]) {
        const END: &[u8; 4] = b"\r\n\r\n";
        for &b in bytes {
            let matched = match self.phase {
                Phase::Busy => return,
                Phase::Waiting => {
                    self.rearm(self.limits.header_timeout);
                    0
                }
                Phase::Head { matched } => matched,
            };
            let matched = if b == END[usize::from(matched)] {
                matched + 1
            } else if b == b'\r' {
                1
            } else {
                0
            };
            self.phase = if matched == 4 {
                Phase::Busy
            } else {
                Phase::Head { matched }
            };
        }
    }

    /// A response was written: the connection now waits for its next request, for at most
    /// the idle timeout.
    fn responded(&mut self, cx: &mut Context<'_>) {
        self.phase = Phase::Waiting;
        self.rearm(self.limits.idle_timeout);
        // The read hyper has pending was polled while the request was busy, so no waker is
        // registered with the deadline: wake the connection once so its next read does.
        cx.waker().wake_by_ref();
    }

    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        self.phase != Phase::Busy && self.deadline.as_mut().poll(cx).is_ready()
    }
}

fn timed_out() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, "connection timed out")
}

impl<T: AsyncRead + Unpin> AsyncRead for TimedIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                this.saw(&buf.filled()[before..]);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending if this.expired(cx) => Poll::Ready(Err(timed_out())),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for TimedIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write(cx, data) {
            Poll::Ready(Ok(n)) => {
                // A response (not an interim 100 Continue) ends the request: the
                // connection is now waiting for the next one.
                if n > 0 && !data.starts_with(b"HTTP/1.1 100 ") {
                    this.responded(cx);
                }
                Poll::Ready(Ok(n))
            }
            Poll::Pending => {
                // A client that reads nothing of its response is idle too.
                if this.phase == Phase::Waiting && this.deadline.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(timed_out()));
                }
                Poll::Pending
            }
            other => other,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let interim = bufs
            .first()
            .is_some_and(|b| b.starts_with(b"HTTP/1.1 100 "));
        let n = ready!(Pin::new(&mut this.inner).poll_write_vectored(cx, bufs))?;
        if n > 0 && !interim {
            this.responded(cx);
        }
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_over_capacity_answer_declares_its_length() {
        let (head, body) = OVER_CAPACITY.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["code"], "service_unavailable");
        assert!(v["generalErrors"].is_array());
    }

    #[tokio::test]
    async fn heads_are_followed_across_reads() {
        let mut io = TimedIo::new(tokio::io::empty(), ConnectionLimits::default());
        io.saw(b"GET / HTTP/1.1\r\nHost: x\r");
        assert_eq!(io.phase, Phase::Head { matched: 1 });
        io.saw(b"\n\r");
        assert_eq!(io.phase, Phase::Head { matched: 3 });
        io.saw(b"\nbody\r\n\r\n");
        assert_eq!(io.phase, Phase::Busy, "the body is not a head");
    }
}
