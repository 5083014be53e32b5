//! What the server's `Arc<dyn Database>` costs per store call against static dispatch
//! (issue 8 §1), isolated from everything else: the `Store` port is declared with
//! `async_trait`, so a call through the trait object is one virtual call returning a
//! boxed future (one heap allocation and one free); a server generic over a concrete
//! store would call an `async fn` whose future lives on the caller's stack. This program
//! makes the same call both ways, `N` times, on a store method that does nothing else
//! (what `#[async_trait]` expands to is written out, so it needs no crates), and prints
//! the wall time per call. `scripts/dispatch-cost.sh` runs it under callgrind for
//! instruction counts, which do not move with the machine's load.
//!
//!     rustc -O --edition 2024 scripts/dispatch-cost/main.rs -o target/dispatch-cost
//!     target/dispatch-cost dyn 1000000; target/dispatch-cost static 1000000

use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

/// A challenge id and a small answer, as a verification passes and gets back.
type Answer = Result<(u64, bool), String>;

/// The port as `#[async_trait]` declares it.
trait DynStore: Send + Sync {
    fn verify<'a>(&'a self, id: &'a str) -> Pin<Box<dyn Future<Output = Answer> + Send + 'a>>;
}

/// The port with native `async fn` (static futures).
trait StaticStore: Send + Sync {
    fn verify(&self, id: &str) -> impl Future<Output = Answer> + Send;
}

struct Fake {
    n: u64,
}

impl DynStore for Fake {
    fn verify<'a>(&'a self, id: &'a str) -> Pin<Box<dyn Future<Output = Answer> + Send + 'a>> {
        Box::pin(async move { Ok((self.n + id.len() as u64, true)) })
    }
}

impl StaticStore for Fake {
    async fn verify(&self, id: &str) -> Answer {
        Ok((self.n + id.len() as u64, true))
    }
}

/// Polls a future that is ready at once (as these are).
fn ready<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

async fn via_dyn(s: &Arc<dyn DynStore>, id: &str) -> Answer {
    s.verify(id).await
}

async fn via_static<S: StaticStore>(s: &Arc<S>, id: &str) -> Answer {
    s.verify(id).await
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map(String::as_str).unwrap_or("dyn");
    let n: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let id = "auth_challenge_01KB0000000000000000000000";
    let mut sum = 0u64;
    let start = Instant::now();
    match mode {
        "dyn" => {
            let s: Arc<dyn DynStore> = Arc::new(Fake { n: black_box(1) });
            for _ in 0..n {
                let s = black_box(&s);
                sum += ready(via_dyn(s, black_box(id))).map_or(0, |(v, _)| v);
            }
        }
        "static" => {
            let s = Arc::new(Fake { n: black_box(1) });
            for _ in 0..n {
                let s = black_box(&s);
                sum += ready(via_static(s, black_box(id))).map_or(0, |(v, _)| v);
            }
        }
        "none" => {} // the program's own cost, for callgrind
        other => panic!("mode {other}: expected dyn, static or none"),
    }
    let ns = start.elapsed().as_nanos() as f64 / n as f64;
    println!("{mode}: {n} calls, {ns:.1} ns per call (checksum {sum})");
}
