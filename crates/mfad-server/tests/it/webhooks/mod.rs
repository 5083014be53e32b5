//! Webhooks through the real `mfad` binary, on the run's backend (SQLite, or PostgreSQL
//! with `MFAD_TEST_BACKEND=postgres`): endpoints added with `mfad webhook add`, events
//! made through the WorkOS API, deliveries taken by a loopback receiver
//! (`support::Receiver`). The servers run on the real clock, as deployed; waits poll the
//! receiver with a deadline (delivery is asynchronous by design).

use std::process::Command;
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::support::process::{Server as Node, mfad, output_ok};
use crate::support::{Answer, Backend, Received, Receiver, test_database};

/// The events of one WorkOS flow: enroll, challenge, a wrong code, the right code.
const FLOW: &str = "authentication_factor.created,authentication_challenge.created,\
                    authentication.mfa_failed,authentication.mfa_succeeded";

/// How long a delivery may take to show up when nothing is meant to delay it.
const PROMPTLY: Duration = Duration::from_secs(20);

// ---- a deployment: one database, the binary's processes on it ---------------------------

struct Deployment {
    http: reqwest::Client,
    database_url: String,
    master_key: String,
    dir: tempfile::TempDir,
    // Last: the database outlives every process using it.
    _pg: Option<mfad_store::testing::TestDatabase>,
}

impl Deployment {
    /// A deployment on the run's backend.
    async fn new() -> Deployment {
        Deployment::on(Backend::of_run()).await
    }

    async fn on(backend: Backend) -> Deployment {
        let dir = tempfile::tempdir().unwrap();
        let pg = match backend {
            Backend::Postgres => Some(test_database().await),
            Backend::Sqlite => None,
        };
        let database_url = match &pg {
            Some(db) => db.url().to_owned(),
            None => format!("sqlite://{}/mfad.db", dir.path().display()),
        };
        Deployment {
            http: reqwest::Client::new(),
            database_url,
            master_key: mfad_crypto::generate_master_key_text().unwrap().to_string(),
            dir,
            _pg: pg,
        }
    }

    /// The environment of every process: quick polls and retries, short timeouts, which
    /// `extra` may override.
    fn command(&self, name: &str, extra: &[(&str, &str)]) -> Command {
        let data = self.dir.path().join(name);
        std::fs::create_dir_all(&data).unwrap();
        let mut cmd = mfad(self.dir.path(), &data);
        cmd.env("MFAD_DATABASE_URL", &self.database_url)
            .env("MFAD_MASTER_KEY", &self.master_key)
            .env("MFAD_DB_MAX_CONNECTIONS", "6")
            .env("MFAD_RATE_LIMIT_PER_KEY", "0")
            .env("MFAD_RATE_LIMIT_PER_ADDRESS", "0")
            .env("MFAD_WEBHOOK_POLL_MS", "100")
            .env("MFAD_WEBHOOK_RETRY_BASE_MS", "300")
            .env("MFAD_WEBHOOK_RETRY_MAX_MS", "2000")
            .env("MFAD_WEBHOOK_TIMEOUT_SECS", "2")
            .env("RUST_LOG", "info");
        for (k, v) in extra {
            cmd.env(k, v);
        }
        if extra.iter().any(|(k, _)| *k == "MFAD_MASTER_KEYS") {
            cmd.env_remove("MFAD_MASTER_KEY");
        }
        cmd
    }

    /// Runs `mfad <args>`; it must succeed. Its standard output.
    fn cli(&self, args: &[&str]) -> String {
        self.cli_with(&[], args)
    }

    /// [`Deployment::cli`] with `extra` variables.
    fn cli_with(&self, extra: &[(&str, &str)], args: &[&str]) -> String {
        let mut cmd = self.command("cli", extra);
        cmd.args(args);
        output_ok(cmd, &args)
    }

    /// Runs `mfad <args>`; it must fail. Its standard error.
    fn cli_fails(&self, args: &[&str]) -> String {
        let out = self.command("cli", &[]).args(args).output().unwrap();
        assert!(!out.status.success(), "mfad {args:?} succeeded");
        String::from_utf8(out.stderr).unwrap()
    }

    /// A tenant's new API key.
    fn api_key(&self, tenant: &str) -> String {
        self.cli(&["api-key", "create", "--tenant", tenant])
            .lines()
            .last()
            .unwrap()
            .trim()
            .to_owned()
    }

    /// `mfad webhook add` to a loopback URL: the endpoint id and its signing secret.
    fn add_webhook(&self, tenant: &str, url: &str, events: &str) -> (String, String) {
        self.add_webhook_as(tenant, url, events, "workos")
    }

    /// [`Deployment::add_webhook`] in `format`.
    fn add_webhook_as(
        &self,
        tenant: &str,
        url: &str,
        events: &str,
        format: &str,
    ) -> (String, String) {
        let out = self.cli(&[
            "webhook",
            "add",
            "--tenant",
            tenant,
            "--url",
            url,
            "--events",
            events,
            "--format",
            format,
            "--allow-insecure",
        ]);
        let id = out
            .lines()
            .find_map(|l| l.strip_prefix("endpoint id: "))
            .unwrap_or_else(|| panic!("no endpoint id in {out}"))
            .to_owned();
        let secret = out.lines().last().unwrap().to_owned();
        (id, secret)
    }

    /// Starts `mfad serve` and waits until it answers.
    async fn node(&self, name: &str, extra: &[(&str, &str)]) -> Node {
        let log = self.dir.path().join(format!("{name}.log"));
        let mut node = Node::spawn(self.command(name, extra), log);
        node.wait_ready().await;
        node
    }

    async fn call(&self, node: &Node, key: &str, method: &str, path: &str, body: Value) -> Value {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", node.url))
            .bearer_auth(key)
            .timeout(Duration::from_secs(30));
        if method != "GET" {
            req = req.json(&body);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {text}"
        );
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// Enroll, challenge, a wrong code and the right one: the four events of [`FLOW`].
    /// Returns the factor id.
    async fn flow(&self, node: &Node, key: &str) -> String {
        let f = self.enroll(node, key).await;
        let c = self
            .call(
                node,
                key,
                "POST",
                &format!("/auth/factors/{f}/challenge"),
                json!({}),
            )
            .await;
        let (cid, code) = (str_of(&c, "id"), str_of(&c, "code"));
        let wrong = if code == "000000" { "111111" } else { "000000" };
        let path = format!("/auth/challenges/{cid}/verify");
        let r = self
            .call(node, key, "POST", &path, json!({"code": wrong}))
            .await;
        assert_eq!(r["valid"], false);
        let r = self
            .call(node, key, "POST", &path, json!({"code": code}))
            .await;
        assert_eq!(r["valid"], true);
        f
    }

    async fn enroll(&self, node: &Node, key: &str) -> String {
        let f = self
            .call(
                node,
                key,
                "POST",
                "/auth/factors/enroll",
                json!({"type": "generic_otp"}),
            )
            .await;
        str_of(&f, "id")
    }

    /// The tenant's events of `names`, oldest first (as `GET /events` lists them).
    async fn events(&self, node: &Node, key: &str, names: &str) -> Vec<String> {
        let list = self
            .call(
                node,
                key,
                "GET",
                &format!("/events?events={names}&order=asc&limit=100"),
                Value::Null,
            )
            .await;
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| str_of(e, "id"))
            .collect()
    }

    /// `mfad webhook deliveries ID` as rows of named columns.
    fn deliveries(&self, endpoint: &str) -> Vec<std::collections::HashMap<String, String>> {
        let out = self.cli(&["webhook", "deliveries", endpoint]);
        let mut lines = out.lines();
        assert!(lines.next().unwrap().starts_with("endpoint: "), "{out}");
        let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
        lines
            .map(|l| {
                header
                    .iter()
                    .map(|h| h.to_string())
                    .zip(l.split('\t').map(str::to_owned))
                    .collect()
            })
            .collect()
    }
}

fn str_of(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key:?} in {v}"))
        .to_owned()
}

/// The event ids in the order they first arrived, and how many arrivals repeated one.
fn first_arrivals(got: &[Received]) -> (Vec<String>, usize) {
    let mut seen = std::collections::HashSet::new();
    let mut order = Vec::new();
    for r in got {
        let id = r.event_id();
        if seen.insert(id.clone()) {
            order.push(id);
        }
    }
    let dups = got.len() - order.len();
    (order, dups)
}

/// Checks a delivery's `WorkOS-Signature` (`t=<ms>, v1=<hex HMAC-SHA256 of "t.body">`)
/// with `secret`, as the SDKs do.
fn assert_signed(r: &Received, secret: &str) {
    let header = r.signature.as_deref().expect("a WorkOS-Signature header");
    let (t, v1) = header.split_once(", ").unwrap();
    let t = t.strip_prefix("t=").unwrap();
    let v1 = v1.strip_prefix("v1=").unwrap();
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{}", r.body).as_bytes());
    let want = data_encoding::HEXLOWER.encode(&mac.finalize().into_bytes());
    assert_eq!(v1, want, "signature of {}", r.body);
}

// ---- the tests --------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_reaches_its_tenants_endpoint_once_in_order_and_signed() {
    let d = Deployment::new().await;
    let rx = Receiver::start().await;
    let (acme, globex) = (d.api_key("acme"), d.api_key("globex"));
    let (acme_hook, acme_secret) = d.add_webhook("acme", &rx.url("/acme"), FLOW);
    let (_, globex_secret) = d.add_webhook("globex", &rx.url("/globex"), FLOW);
    assert_ne!(acme_secret, globex_secret);
    let node = d.node("n0", &[]).await;
    for _ in 0..4 {
        d.flow(&node, &acme).await;
        d.flow(&node, &globex).await;
    }
    let acme_events = d.events(&node, &acme, FLOW).await;
    let globex_events = d.events(&node, &globex, FLOW).await;
    assert_eq!(acme_events.len(), 16);
    assert_eq!(globex_events.len(), 16);

    let got = rx.wait_for_events("/acme", &acme_events, PROMPTLY).await;
    let ids: Vec<String> = got.iter().map(Received::event_id).collect();
    assert_eq!(
        ids, acme_events,
        "each of acme's events once, in order, nothing else"
    );
    for r in &got {
        assert_signed(r, &acme_secret);
    }
    let got = rx
        .wait_for_events("/globex", &globex_events, PROMPTLY)
        .await;
    let ids: Vec<String> = got.iter().map(Received::event_id).collect();
    assert_eq!(ids, globex_events);
    for r in &got {
        assert_signed(r, &globex_secret);
    }

    // The CLI shows each delivered once, newest first.
    let rows = d.deliveries(&acme_hook);
    assert_eq!(rows.len(), 16);
    let mut listed: Vec<&str> = rows.iter().map(|r| r["event_id"].as_str()).collect();
    listed.reverse();
    assert_eq!(listed, acme_events);
    for r in &rows {
        assert_eq!(
            (
                r["state"].as_str(),
                r["attempts"].as_str(),
                r["last_status"].as_str()
            ),
            ("delivered", "1", "200"),
            "{r:?}"
        );
    }
    let listing = d.cli(&["webhook", "list", "--tenant", "acme"]);
    assert_eq!(listing.lines().count(), 1, "{listing}");
    assert!(listing.contains(&acme_hook) && !listing.contains(&acme_secret));
    assert_eq!(d.cli(&["webhook", "list"]).lines().count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_added_while_serving_receives_within_2_s() {
    let d = Deployment::new().await;
    let rx = Receiver::start().await;
    let key = d.api_key("acme");
    // The default poll interval, as deployed.
    let node = d.node("n0", &[("MFAD_WEBHOOK_POLL_MS", "500")]).await;
    d.enroll(&node, &key).await;
    let (hook, _) = d.add_webhook("acme", &rx.url("/late"), "authentication_factor.created");
    let added = Instant::now();
    let factor = d.enroll(&node, &key).await;
    let got = rx.wait_for("/late", 1, Duration::from_secs(10)).await;
    let took = got[0].at.duration_since(added);
    assert!(
        took < Duration::from_secs(2),
        "first delivery after {took:?}"
    );
    let body: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(body["event"], "authentication_factor.created");
    assert_eq!(
        body["data"]["id"],
        factor.as_str(),
        "the event after the add, only"
    );

    // Removed while serving: nothing more arrives, and it is gone from the CLI.
    assert!(d.cli(&["webhook", "remove", &hook]).contains(&hook));
    d.enroll(&node, &key).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(rx.on("/late").len(), 1);
    assert!(d.cli(&["webhook", "list"]).is_empty());
    let e = d.cli_fails(&["webhook", "deliveries", &hook]);
    assert!(e.contains("no webhook endpoint"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_deliveries_pending_loses_none_and_keeps_the_order() {
    let d = Deployment::new().await;
    let rx = Receiver::start().await;
    let key = d.api_key("acme");
    // The first POST hangs (the receiver holds it); everything after it waits behind it.
    rx.script("/k", &[Answer::Hang]);
    d.add_webhook("acme", &rx.url("/k"), "authentication_factor.created");
    // A POST may hang 3 s; the lease is 8 s.
    let env = [("MFAD_WEBHOOK_TIMEOUT_SECS", "3")];
    let mut node = d.node("n0", &env).await;
    let mut factors = Vec::new();
    for _ in 0..10 {
        factors.push(d.enroll(&node, &key).await);
    }
    rx.wait_for("/k", 1, PROMPTLY).await;
    node.kill9();
    let events = {
        let node = d.node("n1", &env).await;
        let events = d.events(&node, &key, "authentication_factor.created").await;
        assert_eq!(events.len(), 10);
        let got = rx
            .wait_for_events("/k", &events, Duration::from_secs(40))
            .await;
        let (order, dups) = first_arrivals(&got);
        assert_eq!(order, events, "every event, in order");
        // Only the one in flight at the kill is sent twice.
        assert!(dups <= 1, "{dups} duplicates");
        assert_eq!(got[0].event_id(), events[0]);
        events
    };
    // Delivered in event order: each event's factor in creation order.
    let delivered_factors: Vec<String> = rx
        .on("/k")
        .iter()
        .skip(1)
        .map(|r| {
            let v: Value = serde_json::from_str(&r.body).unwrap();
            str_of(&v["data"], "id")
        })
        .collect();
    assert_eq!(delivered_factors, factors);
    assert_eq!(events.len(), factors.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_failing_three_times_is_retried_with_growing_delays() {
    let d = Deployment::new().await;
    let rx = Receiver::start().await;
    let key = d.api_key("acme");
    let fail = Answer::Status(500);
    rx.script("/r", &[fail, fail, fail]);
    let (hook, _) = d.add_webhook("acme", &rx.url("/r"), "authentication_factor.created");
    let base = 400u64;
    let poll = 50u64;
    let node = d
        .node(
            "n0",
            &[
                ("MFAD_WEBHOOK_RETRY_BASE_MS", &base.to_string()),
                ("MFAD_WEBHOOK_POLL_MS", &poll.to_string()),
            ],
        )
        .await;
    d.enroll(&node, &key).await;
    let got = rx.wait_for("/r", 4, PROMPTLY).await;
    let (order, dups) = first_arrivals(&got);
    assert_eq!((order.len(), dups), (1, 3), "one event, tried four times");
    let gaps: Vec<u64> = got
        .windows(2)
        .map(|w| u64::try_from(w[1].at.duration_since(w[0].at).as_millis()).unwrap())
        .collect();
    // Retry n waits between half and all of base · 2^(n-1), plus up to a poll (and a
    // margin for a busy machine).
    for (n, gap) in gaps.iter().enumerate() {
        let ceiling = base << n;
        assert!(
            *gap >= ceiling / 2 && *gap <= ceiling + poll + 1500,
            "retry {}: {gap} ms after the previous attempt ({gaps:?})",
            n + 1
        );
    }
    assert!(gaps[2] > gaps[0], "the delays grow: {gaps:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rows = d.deliveries(&hook);
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (
            rows[0]["state"].as_str(),
            rows[0]["attempts"].as_str(),
            rows[0]["last_status"].as_str()
        ),
        ("delivered", "4", "200")
    );
    drop(node);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_attempt_cap_a_delivery_is_failed_in_the_cli_and_the_metrics() {
    let d = Deployment::new().await;
    let rx = Receiver::start().await;
    let key = d.api_key("acme");
    rx.script("/f", &[Answer::Status(500), Answer::Status(503)]);
    let (hook, _) = d.add_webhook("acme", &rx.url("/f"), "authentication_factor.created");
    let node = d
        .node(
            "n0",
            &[
                ("MFAD_WEBHOOK_MAX_ATTEMPTS", "2"),
                ("MFAD_WEBHOOK_RETRY_BASE_MS", "200"),
            ],
        )
        .await;
    d.enroll(&node, &key).await;
    d.enroll(&node, &key).await;
    let events = d.events(&node, &key, "authentication_factor.created").await;
    // Two refused attempts at the first, then the second event (the endpoint moved on).
    let got = rx.wait_for("/f", 3, PROMPTLY).await;
    assert_eq!(
        got.iter().map(Received::event_id).collect::<Vec<_>>(),
        vec![events[0].clone(), events[0].clone(), events[1].clone()]
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rows = d.deliveries(&hook);
    assert_eq!(rows.len(), 2);
    let (second, first) = (&rows[0], &rows[1]);
    assert_eq!(first["event_id"], events[0]);
    assert_eq!(
        (
            first["state"].as_str(),
            first["attempts"].as_str(),
            first["last_status"].as_str()
        ),
        ("failed", "2", "503")
    );
    assert!(first["last_error"].contains("503"), "{first:?}");
    assert_eq!(first["event"], "authentication_factor.created");
    assert_eq!(
        (second["state"].as_str(), second["attempts"].as_str()),
        ("delivered", "1")
    );

    let metrics = d
        .http
        .get(format!("{}/metrics", node.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (outcome, n) in [("failed", 1), ("retried", 1), ("delivered", 1)] {
        let line = format!("mfad_webhook_deliveries_total{{outcome=\"{outcome}\"}} {n}");
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} not in:\n{metrics}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_receiver_slows_neither_verifications_nor_other_endpoints() {
    let d = Deployment::new().await;
    let rx = Receiver::start().await;
    let key = d.api_key("acme");
    rx.answer("/hang", Answer::Hang);
    d.add_webhook("acme", &rx.url("/hang"), FLOW);
    d.add_webhook("acme", &rx.url("/ok"), FLOW);
    // Each POST to the hanging receiver takes its full 10 s.
    let node = d.node("n0", &[("MFAD_WEBHOOK_TIMEOUT_SECS", "10")]).await;
    let mut slowest = Duration::ZERO;
    for _ in 0..8 {
        let started = Instant::now();
        d.flow(&node, &key).await;
        slowest = slowest.max(started.elapsed());
    }
    let events = d.events(&node, &key, FLOW).await;
    assert_eq!(events.len(), 32);
    // The other endpoint has them all while the first one's first delivery still hangs.
    let got = rx.wait_for_events("/ok", &events, PROMPTLY).await;
    assert_eq!(got.len(), 32);
    // The hanging endpoint is claimed in its own task: it may be called just after the
    // other endpoint has finished.
    let stuck = rx.wait_for("/hang", 1, PROMPTLY).await;
    assert!(!stuck.is_empty(), "the hanging receiver was called");
    assert!(
        stuck.iter().all(|r| r.event_id() == events[0]),
        "nothing overtakes the hanging delivery"
    );
    // A flow is four requests; a delivery in any of them would take 10 s.
    assert!(
        slowest < Duration::from_secs(5),
        "slowest flow took {slowest:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_on_postgres_share_the_outbox_without_duplicates() {
    // Whatever the run's backend: several nodes share one database on PostgreSQL only.
    let d = Deployment::on(Backend::Postgres).await;
    let rx = Receiver::start().await;
    let key = d.api_key("acme");
    let paths = ["/p0", "/p1", "/p2", "/p3"];
    for p in paths {
        d.add_webhook("acme", &rx.url(p), "authentication_factor.created");
    }
    let nodes = [d.node("n0", &[]).await, d.node("n1", &[]).await];
    let mut factors = Vec::new();
    for i in 0..40 {
        factors.push(d.enroll(&nodes[i % 2], &key).await);
    }
    let events = d
        .events(&nodes[0], &key, "authentication_factor.created")
        .await;
    for p in paths {
        let got = rx.wait_for_events(p, &events, PROMPTLY).await;
        // The bound: none while every node is healthy (a node that dies or stalls past
        // its lease adds at most the one delivery it had in flight per endpoint).
        let (_, dups) = first_arrivals(&got);
        assert_eq!(dups, 0, "{p}: duplicates");
        // In order: the factors as they were created (event ids of two processes may
        // tie within a millisecond, so order by what each event is about).
        let delivered: Vec<String> = got
            .iter()
            .map(|r| {
                let v: Value = serde_json::from_str(&r.body).unwrap();
                str_of(&v["data"], "id")
            })
            .collect();
        assert_eq!(delivered, factors, "{p}: order");
    }
}

#[tokio::test]
async fn bad_input_to_the_cli_is_refused_clearly() {
    let d = Deployment::new().await;
    d.api_key("acme");
    let add = |extra: &[&str]| {
        let mut args = vec!["webhook", "add", "--tenant", "acme"];
        args.extend_from_slice(extra);
        d.cli_fails(&args)
    };
    let e = add(&[
        "--url",
        "https://hooks.example/x",
        "--events",
        "authentication.nope",
    ]);
    assert!(
        e.contains("authentication.nope") && e.contains("authentication.mfa_succeeded"),
        "{e}"
    );
    let e = add(&[
        "--url",
        "http://hooks.example/x",
        "--events",
        "authentication.mfa_failed",
    ]);
    assert!(e.contains("url"), "{e}");
    let e = add(&[
        "--url",
        "https://127.0.0.1/x",
        "--events",
        "authentication.mfa_failed",
    ]);
    assert!(e.contains("url"), "{e}");
    let e = add(&[
        "--url",
        "https://hooks.example/x",
        "--events",
        "authentication.mfa_failed,authentication_factor.locked",
        "--format",
        "fusionauth",
    ]);
    assert!(
        e.contains("authentication_factor.locked") && e.contains("fusionauth"),
        "{e}"
    );
    let e = add(&[
        "--url",
        "https://hooks.example/x",
        "--events",
        "authentication.mfa_failed",
        "--format",
        "xml",
    ]);
    assert!(e.contains("workos or fusionauth"), "{e}");
    let e = d.cli_fails(&[
        "webhook",
        "add",
        "--tenant",
        "nobody",
        "--url",
        "https://hooks.example/x",
        "--events",
        "authentication.mfa_failed",
    ]);
    assert!(e.contains("no tenant named \"nobody\""), "{e}");
    let e = d.cli_fails(&["webhook", "remove", "we_nope"]);
    assert!(e.contains("no webhook endpoint"), "{e}");
    // A FusionAuth endpoint takes the kinds FusionAuth has.
    let out = d.cli(&[
        "webhook",
        "add",
        "--tenant",
        "acme",
        "--url",
        "https://hooks.example/x",
        "--events",
        "two_factor.method_added,two_factor.method_removed",
        "--format",
        "fusionauth",
    ]);
    assert!(out.contains("format: fusionauth"), "{out}");
    assert_eq!(d.cli(&["webhook", "list"]).lines().count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_secrets_rotate_with_the_master_key() {
    let d = Deployment::new().await;
    let rx = Receiver::start().await;
    let key = d.api_key("acme");
    let (_, secret) = d.add_webhook("acme", &rx.url("/rot"), "authentication_factor.created");
    let old_id = mfad_crypto::Keyring::parse(&d.master_key)
        .unwrap()
        .active_id()
        .to_string();
    let status = |env: &[(&str, &str)]| -> Vec<(String, u64)> {
        d.cli_with(env, &["keys", "status"])
            .lines()
            .map(|l| {
                let (id, n) = l.split_once(' ').unwrap();
                (id.to_owned(), n.parse().unwrap())
            })
            .collect()
    };
    // The secret is the one value sealed so far.
    assert_eq!(status(&[]), vec![(old_id.clone(), 1)]);

    let new = mfad_crypto::generate_master_key_text().unwrap().to_string();
    let both = format!("new:{new},old:{}", d.master_key);
    let rotating = [("MFAD_MASTER_KEYS", both.as_str())];
    let out = d.cli_with(&rotating, &["keys", "rotate"]);
    assert!(out.contains("new 1") && out.contains("old 0"), "{out}");
    assert_eq!(
        status(&rotating),
        vec![("new".to_owned(), 1), ("old".to_owned(), 0)]
    );

    // Under the new key alone, deliveries are signed with the same secret.
    let new_only = format!("new:{new}");
    let node = d
        .node("n0", &[("MFAD_MASTER_KEYS", new_only.as_str())])
        .await;
    d.enroll(&node, &key).await;
    let got = rx.wait_for("/rot", 1, PROMPTLY).await;
    assert_signed(&got[0], &secret);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fusionauth_endpoint_gets_fusionauth_events_signed_as_fusionauth_signs() {
    let d = Deployment::new().await;
    let rx = Receiver::start().await;
    let key = d.api_key("acme");
    let (_, secret) = d.add_webhook_as(
        "acme",
        &rx.url("/fa"),
        "authentication.mfa_failed,authentication.mfa_succeeded",
        "fusionauth",
    );
    let node = d.node("n0", &[]).await;
    d.flow(&node, &key).await;
    let got = rx.wait_for("/fa", 2, PROMPTLY).await;
    let types: Vec<String> = got
        .iter()
        .map(|r| {
            let v: Value = serde_json::from_str(&r.body).unwrap();
            str_of(&v["event"], "type")
        })
        .collect();
    assert_eq!(
        types,
        vec!["user.two-factor.failed-attempt", "user.two-factor.success"]
    );
    for r in &got {
        assert!(
            r.signature.is_none(),
            "no WorkOS signature on a FusionAuth delivery"
        );
        let jwt = r
            .fusionauth_signature
            .as_deref()
            .expect("X-FusionAuth-Signature-JWT");
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        let claims = jsonwebtoken::decode::<Value>(
            jwt,
            &jsonwebtoken::DecodingKey::from_secret(secret.as_bytes()),
            &validation,
        )
        .unwrap()
        .claims;
        use sha2::Digest;
        let digest = data_encoding::BASE64.encode(&Sha256::digest(r.body.as_bytes()));
        assert_eq!(claims["request_body_sha256"], digest.as_str());
    }
}
