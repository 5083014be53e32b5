//! Several real `mfad serve` processes on one PostgreSQL database, as behind a load
//! balancer: the guarantees of a single node must hold across nodes, and a database outage
//! must give quick JSON 503s, lose nothing acknowledged, and heal by itself.
//!
//! They always run on PostgreSQL, on a fresh database per test, whatever the run's backend
//! (`.ci/run` leaves them out of its second, PostgreSQL run of this binary, which would
//! only repeat them). The nodes run on the real clock, as deployed.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mfad_store::testing::TestDatabase;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::support::process::{Server as Node, mfad, output_ok};
use crate::support::{test_database, totp_now};

mod send_limits;

const MAX_ATTEMPTS: usize = 5;
/// How long a node may trust an API key it has read (`MFAD_API_KEY_CACHE_SECS`).
const KEY_CACHE_SECS: u64 = 1;
/// Parallel requests in each burst.
const BURST: usize = 40;

// ---- nodes ------------------------------------------------------------------------------

/// A fresh database, a shared master key and the nodes on them.
struct Cluster {
    // Nodes first: fields drop in order, so the processes stop before the database goes.
    nodes: Vec<Node>,
    http: reqwest::Client,
    key: String,
    key_id: String,
    master_key: String,
    dir: tempfile::TempDir,
    db: TestDatabase,
}

impl Cluster {
    /// `n` nodes started at the same moment on a fresh, unmigrated database (so their
    /// start-up migrations race), plus an API key for tenant `t`. Always on PostgreSQL,
    /// whatever the run's backend: several nodes share one database only there.
    async fn start(n: usize) -> Cluster {
        let db = test_database().await;
        let dir = tempfile::tempdir().unwrap();
        // Every node must hold the same master key: node B opens TOTP secrets sealed by
        // node A and checks code digests peppered by it.
        let master_key = mfad_crypto::generate_master_key_text().unwrap().to_string();
        let mut c = Cluster {
            nodes: Vec::new(),
            http: reqwest::Client::new(),
            key: String::new(),
            key_id: String::new(),
            master_key,
            dir,
            db,
        };
        let url = c.db.url().to_owned();
        let mut spawned: Vec<Node> = (0..n)
            .map(|i| c.spawn(&format!("node{i}"), &url, &[]))
            .collect();
        for node in &mut spawned {
            node.wait_ready().await;
        }
        c.nodes = spawned;
        let stdout = c.cli(&["api-key", "create", "--tenant", "t"]);
        c.key = stdout.lines().last().unwrap().trim().to_owned();
        c.key_id = stdout
            .lines()
            .find_map(|l| l.strip_prefix("key id: "))
            .unwrap()
            .trim()
            .to_owned();
        c
    }

    /// The environment every process of this cluster shares.
    fn command(&self, name: &str, database_url: &str, extra: &[(&str, &str)]) -> Command {
        let data = self.dir.path().join(name);
        std::fs::create_dir_all(&data).unwrap();
        let mut cmd = mfad(self.dir.path(), &data);
        cmd.env("MFAD_DATABASE_URL", database_url)
            .env("MFAD_MASTER_KEY", &self.master_key)
            .env("MFAD_CHALLENGE_MAX_ATTEMPTS", MAX_ATTEMPTS.to_string())
            .env("MFAD_API_KEY_CACHE_SECS", KEY_CACHE_SECS.to_string())
            // Small pools: tests run in parallel against one server (100 connections).
            .env("MFAD_DB_MAX_CONNECTIONS", "6")
            .env("RUST_LOG", "warn");
        for (k, v) in extra {
            cmd.env(k, v);
        }
        cmd
    }

    /// Starts a node (not waiting for it).
    fn spawn(&self, name: &str, database_url: &str, extra: &[(&str, &str)]) -> Node {
        let log = self.dir.path().join(format!("{name}.log"));
        Node::spawn(self.command(name, database_url, extra), log)
    }

    /// Runs the CLI against the cluster's database; it must succeed.
    fn cli(&self, args: &[&str]) -> String {
        let mut cmd = self.command("cli", self.db.url(), &[]);
        cmd.args(args);
        output_ok(cmd, &args)
    }

    fn node(&self, i: usize) -> &Node {
        &self.nodes[i % self.nodes.len()]
    }

    async fn call(&self, node: &Node, method: &str, path: &str, body: Option<Value>) -> Resp {
        call(&self.http, &self.key, &node.url, method, path, body).await
    }

    async fn enroll(&self, node: &Node, body: Value) -> Value {
        let r = self
            .call(node, "POST", "/auth/factors/enroll", Some(body))
            .await;
        assert_eq!(r.status, 201, "{r:?}");
        r.body
    }

    async fn challenge(&self, node: &Node, factor: &str) -> Value {
        let r = self
            .call(
                node,
                "POST",
                &format!("/auth/factors/{factor}/challenge"),
                Some(json!({})),
            )
            .await;
        assert_eq!(r.status, 201, "{r:?}");
        r.body
    }
}

/// A response, read whole.
#[derive(Debug, Clone)]
struct Resp {
    status: u16,
    body: Value,
    retry_after: Option<String>,
    content_type: Option<String>,
    elapsed: Duration,
}

async fn call(
    http: &reqwest::Client,
    key: &str,
    base: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Resp {
    let started = Instant::now();
    let mut req = http
        .request(method.parse().unwrap(), format!("{base}{path}"))
        .bearer_auth(key)
        .timeout(Duration::from_secs(30));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (retry_after, content_type) = (header("retry-after"), header("content-type"));
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Resp {
        status,
        body,
        retry_after,
        content_type,
        elapsed: started.elapsed(),
    }
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key:?} in {v}"))
}

/// A 6-digit code that is certainly not `code`.
fn wrong(code: &str) -> String {
    let n: u32 = code.parse().unwrap();
    format!("{:06}", (n + 1) % 1_000_000)
}

/// Sends `n` requests at once, alternating between the nodes.
async fn burst(c: &Cluster, n: usize, path: &str, body: impl Fn(usize) -> Value) -> Vec<Resp> {
    burst_to(c, (0..n).map(|i| (path.to_owned(), body(i))).collect()).await
}

/// POSTs each `(path, body)` at once, alternating between the nodes.
async fn burst_to(c: &Cluster, requests: Vec<(String, Value)>) -> Vec<Resp> {
    let barrier = Arc::new(tokio::sync::Barrier::new(requests.len()));
    let mut tasks = Vec::new();
    for (i, (path, body)) in requests.into_iter().enumerate() {
        let (http, key, url) = (c.http.clone(), c.key.clone(), c.node(i).url.clone());
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            call(&http, &key, &url, "POST", &path, Some(body)).await
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

// ---- guarantees across nodes ------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_code_verifies_exactly_once_across_nodes() {
    let c = Cluster::start(2).await;
    for round in 0..3 {
        let factor = c
            .enroll(c.node(round), json!({"type": "generic_otp"}))
            .await;
        let ch = c.challenge(c.node(round + 1), str_of(&factor, "id")).await;
        let code = str_of(&ch, "code").to_owned();
        let path = format!("/auth/challenges/{}/verify", str_of(&ch, "id"));
        let results = burst(&c, BURST, &path, |_| json!({"code": code})).await;

        let wins = results
            .iter()
            .filter(|r| r.status == 201 && r.body["valid"] == true)
            .count();
        assert_eq!(wins, 1, "round {round}: {results:#?}");
        for r in results
            .iter()
            .filter(|r| !(r.status == 201 && r.body["valid"] == true))
        {
            assert_eq!(r.status, 422, "{r:?}");
            assert_eq!(
                r.body["code"], "authentication_challenge_previously_verified",
                "{r:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_totp_code_is_accepted_once_across_nodes() {
    let c = Cluster::start(2).await;
    let factor = c
        .enroll(
            c.node(0),
            json!({"type": "totp", "totp_issuer": "Acme", "totp_user": "ada@example.com"}),
        )
        .await;
    let fid = str_of(&factor, "id").to_owned();
    let secret = str_of(&factor["totp"], "secret").to_owned();
    // A challenge per request, opened on alternating nodes: each verification could close
    // its own challenge, so only the factor's last-used step stops the replays.
    let mut paths = Vec::new();
    for i in 0..BURST {
        let ch = c.challenge(c.node(i), &fid).await;
        paths.push(format!("/auth/challenges/{}/verify", str_of(&ch, "id")));
    }
    let code = totp_now(&secret);
    let barrier = Arc::new(tokio::sync::Barrier::new(BURST));
    let mut tasks = Vec::new();
    for (i, path) in paths.into_iter().enumerate() {
        let (http, key, url, barrier, code) = (
            c.http.clone(),
            c.key.clone(),
            c.node(i).url.clone(),
            barrier.clone(),
            code.clone(),
        );
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            call(
                &http,
                &key,
                &url,
                "POST",
                &path,
                Some(json!({"code": code})),
            )
            .await
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    let wins = results
        .iter()
        .filter(|r| r.status == 201 && r.body["valid"] == true)
        .count();
    assert_eq!(wins, 1, "{results:#?}");
    // Every other use of the code is a replay: judged a wrong code, up to the throttle's
    // threshold (5), then refused unjudged; never a success or another error.
    let judged_wrong = results
        .iter()
        .filter(|r| r.status == 201 && r.body["valid"] == false)
        .count();
    assert!(judged_wrong <= 5, "{results:#?}");
    assert!(
        results.iter().all(|r| r.status == 201
            || (r.status == 429 && r.body["code"] == "too_many_failed_attempts")),
        "{results:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wrong_guesses_across_nodes_are_judged_at_most_max_attempts_times() {
    let c = Cluster::start(2).await;
    for round in 0..3 {
        let factor = c
            .enroll(c.node(round), json!({"type": "generic_otp"}))
            .await;
        let ch = c.challenge(c.node(round), str_of(&factor, "id")).await;
        let code = str_of(&ch, "code").to_owned();
        let path = format!("/auth/challenges/{}/verify", str_of(&ch, "id"));
        let results = burst(&c, BURST, &path, |_| json!({"code": wrong(&code)})).await;

        let judged = results.iter().filter(|r| r.status == 201).count();
        assert!(
            results
                .iter()
                .filter(|r| r.status == 201)
                .all(|r| r.body["valid"] == false)
        );
        assert_eq!(judged, MAX_ATTEMPTS, "round {round}: {results:#?}");
        // The rest found the challenge exhausted or the factor throttled: unjudged.
        for r in results.iter().filter(|r| r.status != 201) {
            let refused = (r.status, r.body["code"].as_str());
            assert!(
                refused == (400, Some("one_time_code_too_many_attempts"))
                    || refused == (429, Some("too_many_failed_attempts")),
                "{r:?}"
            );
        }
        // The limit holds for the right code too, on either node.
        for node in 0..2 {
            let r = c
                .call(c.node(node), "POST", &path, Some(json!({"code": code})))
                .await;
            assert_eq!(
                (r.status, r.body["code"].clone()),
                (400, json!("one_time_code_too_many_attempts")),
                "{r:?}"
            );
        }
    }
}

/// Wrong codes on one TOTP factor, at once, split across both nodes and several challenges:
/// the throttle's threshold (5) bounds what is judged, the right code is refused on both
/// nodes, and `mfad factor unlock` (the CLI, on the same database) lifts it everywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn throttle_bounds_bursts_across_nodes_and_unlock_reaches_every_node() {
    let c = Cluster::start(2).await;
    let factor = c
        .enroll(
            c.node(0),
            json!({"type": "totp", "totp_issuer": "A", "totp_user": "u"}),
        )
        .await;
    let fid = str_of(&factor, "id").to_owned();
    let secret = factor["totp"]["secret"].as_str().unwrap().to_owned();
    let mut paths = Vec::new();
    for i in 0..8 {
        let ch = c.challenge(c.node(i), &fid).await;
        paths.push(format!("/auth/challenges/{}/verify", str_of(&ch, "id")));
    }
    let bad = wrong(&totp_now(&secret));
    let barrier = Arc::new(tokio::sync::Barrier::new(BURST));
    let mut tasks = Vec::new();
    for i in 0..BURST {
        let (http, key, url) = (c.http.clone(), c.key.clone(), c.node(i).url.clone());
        let (path, barrier, bad) = (paths[i % paths.len()].clone(), barrier.clone(), bad.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            call(&http, &key, &url, "POST", &path, Some(json!({"code": bad}))).await
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    let judged = results.iter().filter(|r| r.status == 201).count();
    assert_eq!(judged, 5, "{results:#?}");
    for r in results.iter().filter(|r| r.status != 201) {
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (429, Some("too_many_failed_attempts")),
            "{r:?}"
        );
        assert!(r.retry_after.is_some(), "{r:?}");
    }
    // Both nodes refuse the right code now.
    for node in 0..2 {
        let ch = c.challenge(c.node(node), &fid).await;
        let path = format!("/auth/challenges/{}/verify", str_of(&ch, "id"));
        let r = c
            .call(
                c.node(node),
                "POST",
                &path,
                Some(json!({"code": totp_now(&secret)})),
            )
            .await;
        assert_eq!(r.status, 429, "{r:?}");
    }
    // The operator's unlock, from the CLI, reaches both nodes at once.
    c.cli(&["factor", "unlock", &fid]);
    let ch = c.challenge(c.node(1), &fid).await;
    let path = format!("/auth/challenges/{}/verify", str_of(&ch, "id"));
    let r = c
        .call(
            c.node(1),
            "POST",
            &path,
            Some(json!({"code": totp_now(&secret)})),
        )
        .await;
    assert_eq!((r.status, &r.body["valid"]), (201, &json!(true)), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn what_one_node_writes_the_other_sees_at_once() {
    let c = Cluster::start(2).await;
    let (a, b) = (c.node(0), c.node(1));

    // Generic OTP: enroll on A, read and challenge on B, verify on A.
    let factor = c
        .enroll(a, json!({"type": "generic_otp", "user_id": "user_1"}))
        .await;
    let fid = str_of(&factor, "id").to_owned();
    let got = c
        .call(b, "GET", &format!("/auth/factors/{fid}"), None)
        .await;
    assert_eq!(
        (got.status, got.body["id"].clone()),
        (200, json!(fid)),
        "{got:?}"
    );
    let ch = c.challenge(b, &fid).await;
    let r = c
        .call(
            a,
            "POST",
            &format!("/auth/challenges/{}/verify", str_of(&ch, "id")),
            Some(json!({"code": str_of(&ch, "code")})),
        )
        .await;
    assert_eq!(
        (r.status, r.body["valid"].clone()),
        (201, json!(true)),
        "{r:?}"
    );

    // TOTP: enroll on A, verify on B with the authenticator's code; replaying that code
    // on A is refused.
    let totp = c
        .enroll(
            a,
            json!({"type": "totp", "totp_issuer": "Acme", "totp_user": "ada@example.com"}),
        )
        .await;
    let tid = str_of(&totp, "id").to_owned();
    let code = totp_now(str_of(&totp["totp"], "secret"));
    let ch = c.challenge(b, &tid).await;
    let r = c
        .call(
            b,
            "POST",
            &format!("/auth/challenges/{}/verify", str_of(&ch, "id")),
            Some(json!({"code": code})),
        )
        .await;
    assert_eq!(
        (r.status, r.body["valid"].clone()),
        (201, json!(true)),
        "{r:?}"
    );
    let ch = c.challenge(a, &tid).await;
    let r = c
        .call(
            a,
            "POST",
            &format!("/auth/challenges/{}/verify", str_of(&ch, "id")),
            Some(json!({"code": code})),
        )
        .await;
    assert_eq!(
        (r.status, r.body["valid"].clone()),
        (201, json!(false)),
        "replay on the other node: {r:?}"
    );

    // Deleted on B: gone on A, with its challenges.
    let open = c.challenge(a, &fid).await;
    let del = c
        .call(b, "DELETE", &format!("/auth/factors/{fid}"), None)
        .await;
    assert!(del.status == 200 || del.status == 204, "{del:?}");
    let got = c
        .call(a, "GET", &format!("/auth/factors/{fid}"), None)
        .await;
    assert_eq!(got.status, 404, "{got:?}");
    let r = c
        .call(
            a,
            "POST",
            &format!("/auth/challenges/{}/verify", str_of(&open, "id")),
            Some(json!({"code": str_of(&open, "code")})),
        )
        .await;
    assert_eq!(r.status, 404, "{r:?}");

    // A key revoked with the CLI stops working on every node within the API-key cache's
    // lifetime (MFAD_API_KEY_CACHE_SECS, set to 1 s for these nodes), and stays refused.
    c.cli(&["api-key", "revoke", &c.key_id]);
    let revoked = Instant::now(); // committed: the CLI has exited
    for node in [a, b] {
        loop {
            let r = c
                .call(node, "GET", &format!("/auth/factors/{tid}"), None)
                .await;
            if r.status == 401 {
                break;
            }
            assert_eq!(r.status, 200, "{r:?}");
            assert!(
                revoked.elapsed() < Duration::from_millis(KEY_CACHE_SECS * 1000 + 1000),
                "{} still accepts a key revoked {:?} ago",
                node.url,
                revoked.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    for node in [a, b] {
        let r = c
            .call(node, "GET", &format!("/auth/factors/{tid}"), None)
            .await;
        assert_eq!(r.status, 401, "{r:?}");
    }
}

// ---- database outage ----------------------------------------------------------------------

/// What the proxy does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    /// Forwards both ways.
    Up,
    /// Like a stopped server: open connections are closed, new ones dropped at once.
    Refused,
    /// Like a network partition: connections stay open but no byte gets through.
    Blackhole,
}

/// A TCP forwarder between one node and PostgreSQL that a test can cut and restore.
struct Proxy {
    port: u16,
    link: watch::Sender<Link>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (link, _) = watch::channel(Link::Up);
        let rx = link.subscribe();
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                if *rx.borrow() == Link::Refused {
                    drop(client);
                    continue;
                }
                tokio::spawn(forward(client, upstream.clone(), rx.clone()));
            }
        });
        Proxy { port, link, task }
    }

    fn set(&self, l: Link) {
        self.link.send_replace(l);
    }
}

/// Pipes one connection until either side closes or the link is refused.
async fn forward(client: TcpStream, upstream: String, link: watch::Receiver<Link>) {
    // Reach the server only once the link is up: a partitioned client must not hold
    // half-open server connections (they would count against its connection limit).
    let mut up = link.clone();
    if up.wait_for(|l| *l == Link::Up).await.is_err() {
        return;
    }
    let Ok(server) = TcpStream::connect(&upstream).await else {
        return;
    };
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let mut refused = link.clone();
    tokio::select! {
        _ = async { tokio::join!(pump(cr, sw, link.clone()), pump(sr, cw, link.clone())) } => {}
        // Dropping both halves closes both sockets, as a dying server does.
        _ = refused.wait_for(|l| *l == Link::Refused) => {}
    }
}

/// Copies one direction, holding each chunk until the link is up.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut link: watch::Receiver<Link>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if link.wait_for(|l| *l == Link::Up).await.is_err()
            || to.write_all(&buf[..n]).await.is_err()
        {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// `host:port` of a PostgreSQL URL.
fn host_port(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:5432")
    }
}

/// Tallies of the load that runs through an outage.
#[derive(Debug, Default, Clone)]
struct Tally {
    enrolled: Vec<String>,
    ok: usize,
    unavailable: usize,
    /// Anything but 201 and a well-formed 503.
    unexpected: Vec<(String, Resp)>,
    /// Requests sent while the link was down.
    during_outage: usize,
    /// The slowest answer of all, including requests caught in flight by the outage.
    slowest: Duration,
}

async fn outage(mode: Link) {
    let c = Cluster::start(1).await;
    let proxy = Proxy::start(host_port(c.db.url())).await;
    let via_proxy = c.db.url().replacen(
        &host_port(c.db.url()),
        &format!("127.0.0.1:{}", proxy.port),
        1,
    );
    assert_ne!(
        via_proxy,
        c.db.url(),
        "the test URL needs an explicit host:port"
    );
    // Short timeouts, so an outage shows within a second or two.
    let mut node = c.spawn(
        "proxied",
        &via_proxy,
        &[
            ("MFAD_DB_CONNECT_TIMEOUT_SECS", "1"),
            ("MFAD_DB_STATEMENT_TIMEOUT_MS", "1000"),
            ("MFAD_AUTO_MIGRATE", "false"),
            // Four workers enroll flat out; the per-key rate limit is not what this tests.
            ("MFAD_RATE_LIMIT_PER_KEY", "100000/100000"),
        ],
    );
    node.wait_ready().await;

    let down = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let (progress, _) = watch::channel(Tally::default());
    let progress = Arc::new(progress);
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (http, key, url, down, stop, progress) = (
            c.http.clone(),
            c.key.clone(),
            node.url.clone(),
            down.clone(),
            stop.clone(),
            progress.clone(),
        );
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                one_flow(&http, &key, &url, &down, &progress).await;
            }
        }));
    }
    let wait_for =
        |what: &'static str, limit: Duration, pred: Box<dyn Fn(&Tally) -> bool + Send>| {
            let mut rx = progress.subscribe();
            async move {
                tokio::time::timeout(limit, rx.wait_for(|t| pred(t)))
                    .await
                    .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
                    .unwrap();
            }
        };

    // Healthy: enrollments are acknowledged.
    wait_for(
        "enrollments before the outage",
        Duration::from_secs(20),
        Box::new(|t| t.enrolled.len() >= 20),
    )
    .await;

    // Outage: 503s, health goes not-ready.
    let before = progress.borrow().unavailable;
    down.store(true, Ordering::Relaxed);
    proxy.set(mode);
    node.wait_health(503, Duration::from_secs(10)).await;
    wait_for(
        "503s during the outage",
        Duration::from_secs(20),
        Box::new(move |t| t.unavailable >= before + 20),
    )
    .await;

    // Restored: health comes back and enrollments resume, without restarting the node.
    let enrolled_before_restore = progress.borrow().enrolled.len();
    proxy.set(Link::Up);
    down.store(false, Ordering::Relaxed);
    let healed = node.wait_health(200, Duration::from_secs(15)).await;
    wait_for(
        "enrollments after the outage",
        Duration::from_secs(10),
        Box::new(move |t| t.enrolled.len() >= enrolled_before_restore + 20),
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }

    let tally = progress.borrow().clone();
    eprintln!(
        "{mode:?}: {} ok, {} unavailable, {} sent during the outage, slowest answer {:?}, healthy again after {healed:?}",
        tally.ok, tally.unavailable, tally.during_outage, tally.slowest
    );
    assert!(
        tally.unexpected.is_empty(),
        "only 201 and JSON 503 are acceptable: {:#?}",
        tally.unexpected
    );
    assert!(tally.during_outage > 0);
    assert!(
        tally.slowest < Duration::from_secs(5),
        "{:?}",
        tally.slowest
    );

    // Nothing acknowledged was lost: every 201 enrollment is there, through the healed
    // node and through one that never saw the proxy.
    let direct = c.node(0);
    for (i, id) in tally.enrolled.iter().enumerate() {
        let base = if i % 2 == 0 { &node.url } else { &direct.url };
        let r = call(
            &c.http,
            &c.key,
            base,
            "GET",
            &format!("/auth/factors/{id}"),
            None,
        )
        .await;
        assert_eq!(r.status, 200, "acknowledged enrollment {id} lost: {r:?}");
    }
}

/// Enroll, challenge, verify once; records what came back.
async fn one_flow(
    http: &reqwest::Client,
    key: &str,
    base: &str,
    down: &AtomicBool,
    progress: &watch::Sender<Tally>,
) {
    let send = |method: &'static str, path: String, body: Option<Value>| {
        let was_down = down.load(Ordering::Relaxed);
        async move { (was_down, call(http, key, base, method, &path, body).await) }
    };
    let record = |what: &str, (was_down, r): &(bool, Resp), ok: bool| {
        progress.send_modify(|t| {
            if *was_down {
                t.during_outage += 1;
            }
            t.slowest = t.slowest.max(r.elapsed);
            if ok {
                t.ok += 1;
            } else if is_json_503(r) {
                t.unavailable += 1;
            } else {
                t.unexpected.push((what.to_owned(), r.clone()));
            }
        });
    };

    let enrolled = send(
        "POST",
        "/auth/factors/enroll".into(),
        Some(json!({"type": "generic_otp"})),
    )
    .await;
    let ok = enrolled.1.status == 201;
    record("enroll", &enrolled, ok);
    if !ok {
        return;
    }
    let fid = str_of(&enrolled.1.body, "id").to_owned();
    progress.send_modify(|t| t.enrolled.push(fid.clone()));

    let ch = send(
        "POST",
        format!("/auth/factors/{fid}/challenge"),
        Some(json!({})),
    )
    .await;
    let ok = ch.1.status == 201;
    record("challenge", &ch, ok);
    if !ok {
        return;
    }
    let (cid, code) = (
        str_of(&ch.1.body, "id").to_owned(),
        str_of(&ch.1.body, "code").to_owned(),
    );
    let v = send(
        "POST",
        format!("/auth/challenges/{cid}/verify"),
        Some(json!({"code": code})),
    )
    .await;
    let ok = v.1.status == 201 && v.1.body["valid"] == true;
    record("verify", &v, ok);
}

fn is_json_503(r: &Resp) -> bool {
    r.status == 503
        && r.retry_after.is_some()
        && r.content_type
            .as_deref()
            .is_some_and(|t| t.starts_with("application/json"))
        && r.body["code"] == "service_unavailable"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn database_stopped_gives_quick_503s_and_heals() {
    outage(Link::Refused).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn database_partitioned_gives_quick_503s_and_heals() {
    outage(Link::Blackhole).await;
}
