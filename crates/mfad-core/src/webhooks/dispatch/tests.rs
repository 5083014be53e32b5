//! The delivery loop on an in-memory outbox, a recording transport and a manual clock:
//! order, head-of-line blocking, backoff, the attempt cap, lost leases. No sleeps: time
//! moves only when a test (or the transport, standing in for a slow receiver) moves it.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use super::*;
use crate::clock::ManualClock;
use crate::events::EventRecord;
use crate::ids::{EventId, TenantId};
use crate::webhooks::outbox::DeliveryState;
use crate::webhooks::{WebhookFormat, WebhookRequest};

fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_760_000_000).unwrap()
}

/// The outbox of one or more endpoints, with the store's semantics; clones share it.
#[derive(Debug, Default, Clone)]
struct FakeOutbox {
    state: Arc<Mutex<FakeState>>,
}

#[derive(Debug, Default)]
struct FakeState {
    targets: Vec<DeliveryTarget>,
    leases: HashMap<WebhookEndpointId, (Option<String>, OffsetDateTime)>,
    rows: Vec<PendingDelivery>,
    renewals: u32,
    /// Makes the next settlement find the lease taken by someone else.
    steal_on_settle: bool,
}

impl FakeOutbox {
    fn add_event(&self, endpoint: &WebhookEndpointId, n: usize, at: OffsetDateTime) -> EventId {
        let mut s = self.state.lock().unwrap();
        let id = EventId::from_trusted(format!("event_{n:026}"));
        let row = PendingDelivery {
            delivery: WebhookDelivery {
                id: i64::try_from(s.rows.len()).unwrap() + 1,
                endpoint_id: endpoint.clone(),
                event_id: id.clone(),
                event_name: "authentication.mfa_succeeded".into(),
                state: DeliveryState::Pending,
                attempts: 0,
                next_attempt_at: at,
                last_status: None,
                last_error: None,
                created_at: at,
                settled_at: None,
            },
            event: EventRecord {
                id: id.clone(),
                tenant_id: TenantId::from_trusted("tenant_x".into()),
                name: "authentication.mfa_succeeded".into(),
                created_at: at,
                data: format!("{{\"n\":{n}}}"),
            },
        };
        s.rows.push(row);
        id
    }

    fn delivery(&self, event: &EventId) -> WebhookDelivery {
        let s = self.state.lock().unwrap();
        s.rows
            .iter()
            .find(|r| &r.event.id == event)
            .unwrap()
            .delivery
            .clone()
    }

    fn lease_owner(&self, id: &WebhookEndpointId) -> Option<String> {
        self.state
            .lock()
            .unwrap()
            .leases
            .get(id)
            .and_then(|l| l.0.clone())
    }
}

#[async_trait::async_trait]
impl Outbox for FakeOutbox {
    async fn claim(
        &self,
        owner: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<DeliveryTarget>, StoreError> {
        let mut s = self.state.lock().unwrap();
        let mut out = Vec::new();
        for t in s.targets.clone() {
            let free = s
                .leases
                .get(&t.id)
                .is_none_or(|(o, u)| o.is_none() || *u < now);
            let head_due = s
                .rows
                .iter()
                .find(|r| {
                    r.delivery.endpoint_id == t.id && r.delivery.state == DeliveryState::Pending
                })
                .is_some_and(|r| r.delivery.next_attempt_at <= now);
            if free && head_due && out.len() < limit as usize {
                s.leases
                    .insert(t.id.clone(), (Some(owner.to_owned()), until));
                out.push(t);
            }
        }
        Ok(out)
    }

    async fn renew(
        &self,
        id: &WebhookEndpointId,
        owner: &str,
        until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut s = self.state.lock().unwrap();
        s.renewals += 1;
        match s.leases.get_mut(id) {
            Some((Some(o), u)) if o == owner => {
                *u = until;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn release(
        &self,
        id: &WebhookEndpointId,
        owner: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut s = self.state.lock().unwrap();
        if let Some(l) = s.leases.get_mut(id)
            && l.0.as_deref() == Some(owner)
        {
            *l = (None, now);
        }
        Ok(())
    }

    async fn pending(
        &self,
        id: &WebhookEndpointId,
        limit: u32,
    ) -> Result<Vec<PendingDelivery>, StoreError> {
        let s = self.state.lock().unwrap();
        Ok(s.rows
            .iter()
            .filter(|r| &r.delivery.endpoint_id == id && r.delivery.state == DeliveryState::Pending)
            .take(limit as usize)
            .cloned()
            .collect())
    }

    async fn settle(
        &self,
        delivery: i64,
        owner: &str,
        settlement: &Settlement,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut s = self.state.lock().unwrap();
        if std::mem::take(&mut s.steal_on_settle) {
            for l in s.leases.values_mut() {
                l.0 = Some("thief".into());
            }
        }
        let Some(i) = s.rows.iter().position(|r| r.delivery.id == delivery) else {
            return Ok(false);
        };
        let endpoint = s.rows[i].delivery.endpoint_id.clone();
        let ours = s
            .leases
            .get(&endpoint)
            .is_some_and(|l| l.0.as_deref() == Some(owner));
        let d = &mut s.rows[i].delivery;
        if !ours || d.state != DeliveryState::Pending {
            return Ok(false);
        }
        d.attempts += 1;
        match settlement {
            Settlement::Delivered { status } => {
                d.state = DeliveryState::Delivered;
                d.last_status = Some(*status);
                d.settled_at = Some(now);
            }
            Settlement::Retry {
                status,
                error,
                next_attempt_at,
            } => {
                d.last_status = *status;
                d.last_error = Some(error.clone());
                d.next_attempt_at = *next_attempt_at;
            }
            Settlement::Failed { status, error } => {
                d.state = DeliveryState::Failed;
                d.last_status = *status;
                d.last_error = Some(error.clone());
                d.settled_at = Some(now);
            }
        }
        Ok(true)
    }
}

/// Renders the event's data as the body and signs nothing (the real encoders are the
/// server's); records the secret it was given.
#[derive(Debug, Default)]
struct EchoEncoder {
    secrets: Mutex<Vec<String>>,
}

impl WebhookEncoder for EchoEncoder {
    fn encode(
        &self,
        format: WebhookFormat,
        event: &EventRecord,
        secret: &str,
        _now: OffsetDateTime,
    ) -> Result<WebhookRequest, CoreError> {
        self.secrets.lock().unwrap().push(secret.to_owned());
        Ok(WebhookRequest {
            body: event.data.clone(),
            headers: vec![("x-format".into(), format.name().into())],
        })
    }
}

/// Answers from a script (then 200s), recording each body; each POST takes `latency`
/// on the manual clock.
#[derive(Debug)]
struct ScriptedTransport {
    script: Mutex<VecDeque<TransportOutcome>>,
    posted: Mutex<Vec<(String, String)>>,
    clock: ManualClock,
    latency: Mutex<Duration>,
}

#[async_trait::async_trait]
impl WebhookTransport for ScriptedTransport {
    async fn post(
        &self,
        url: &str,
        _allow_insecure: bool,
        request: &WebhookRequest,
    ) -> TransportOutcome {
        self.posted
            .lock()
            .unwrap()
            .push((url.to_owned(), request.body.clone()));
        self.clock.advance(*self.latency.lock().unwrap());
        self.script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(TransportOutcome::Delivered { status: 200 })
    }
}

#[derive(Debug, Default)]
struct CountingMetrics {
    outcomes: Mutex<Vec<WebhookOutcome>>,
}

impl Metrics for CountingMetrics {
    fn record(&self, _event: crate::metrics::Event) {}
    fn webhook_delivery(&self, outcome: WebhookOutcome) {
        self.outcomes.lock().unwrap().push(outcome);
    }
}

struct Rig {
    outbox: FakeOutbox,
    clock: ManualClock,
    transport: Arc<ScriptedTransport>,
    encoder: Arc<EchoEncoder>,
    metrics: Arc<CountingMetrics>,
    dispatcher: Dispatcher<FakeOutbox>,
    endpoints: Vec<WebhookEndpointId>,
}

const SECRET: &str = "whsec-test-secret";

fn rig(policy: DispatchPolicy, endpoints: usize, script: Vec<TransportOutcome>) -> Rig {
    let keyring = Arc::new(Keyring::from_master_keys(&[[5u8; 32]]).unwrap());
    let clock = ManualClock::new(t0());
    let outbox = FakeOutbox::default();
    let mut ids = Vec::new();
    for i in 0..endpoints {
        let id = WebhookEndpointId::generate(t0()).unwrap();
        let sealed = keyring
            .seal(SECRET.as_bytes(), id.as_str().as_bytes())
            .unwrap();
        outbox.state.lock().unwrap().targets.push(DeliveryTarget {
            id: id.clone(),
            tenant_id: TenantId::from_trusted("tenant_x".into()),
            url: format!("https://receiver.example/{i}"),
            format: WebhookFormat::WorkOs,
            allow_insecure: false,
            sealed_secret: sealed,
        });
        ids.push(id);
    }
    let transport = Arc::new(ScriptedTransport {
        script: Mutex::new(script.into()),
        posted: Mutex::default(),
        clock: clock.clone(),
        latency: Mutex::new(Duration::milliseconds(20)),
    });
    let encoder = Arc::new(EchoEncoder::default());
    let metrics = Arc::new(CountingMetrics::default());
    let dispatcher = Dispatcher::new(
        outbox.clone(),
        keyring,
        Arc::new(clock.clone()),
        metrics.clone(),
        DispatchPorts {
            encoder: encoder.clone(),
            transport: transport.clone(),
        },
        policy,
    )
    .unwrap();
    Rig {
        outbox,
        clock,
        transport,
        encoder,
        metrics,
        dispatcher,
        endpoints: ids,
    }
}

impl Rig {
    fn bodies(&self) -> Vec<String> {
        self.transport
            .posted
            .lock()
            .unwrap()
            .iter()
            .map(|(_, b)| b.clone())
            .collect()
    }

    fn outcomes(&self) -> Vec<WebhookOutcome> {
        self.metrics.outcomes.lock().unwrap().clone()
    }
}

fn body(n: usize) -> String {
    format!("{{\"n\":{n}}}")
}

fn rejected(status: u16) -> TransportOutcome {
    TransportOutcome::Rejected { status }
}

#[tokio::test]
async fn delivers_each_endpoint_in_order_with_its_secret_and_releases() {
    let r = rig(DispatchPolicy::default(), 2, vec![]);
    let (a, b) = (&r.endpoints[0], &r.endpoints[1]);
    for n in 0..5 {
        r.outbox.add_event(if n % 2 == 0 { a } else { b }, n, t0());
    }
    let done = r.dispatcher.run_once(10).await.unwrap();
    assert_eq!(done.delivered, 5);
    let posted = r.transport.posted.lock().unwrap().clone();
    let to = |i: usize| -> Vec<String> {
        posted
            .iter()
            .filter(|(u, _)| u.ends_with(&format!("/{i}")))
            .map(|(_, b)| b.clone())
            .collect()
    };
    assert_eq!(to(0), vec![body(0), body(2), body(4)]);
    assert_eq!(to(1), vec![body(1), body(3)]);
    assert!(
        r.encoder
            .secrets
            .lock()
            .unwrap()
            .iter()
            .all(|s| s == SECRET)
    );
    assert_eq!(r.outcomes(), vec![WebhookOutcome::Delivered; 5]);
    // Released: nothing holds either endpoint, and nothing is left to claim.
    assert_eq!(r.outbox.lease_owner(a), None);
    assert_eq!(r.outbox.lease_owner(b), None);
    assert!(r.dispatcher.claim(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_refused_delivery_blocks_later_ones_and_is_retried_with_growing_delays() {
    let policy = DispatchPolicy::default();
    let r = rig(
        policy,
        1,
        vec![
            rejected(500),
            rejected(500),
            TransportOutcome::Unreachable {
                reason: "connection refused".into(),
            },
        ],
    );
    let e = &r.endpoints[0];
    let first = r.outbox.add_event(e, 0, t0());
    r.outbox.add_event(e, 1, t0());

    let mut waits = Vec::new();
    for round in 1..=3u32 {
        let before = r.clock.now();
        let done = r.dispatcher.run_once(1).await.unwrap();
        assert_eq!((done.retried, done.delivered), (1, 0), "round {round}");
        // Only the oldest was tried; the next waits behind it.
        assert_eq!(r.bodies(), vec![body(0); round as usize]);
        let d = r.outbox.delivery(&first);
        assert_eq!(d.attempts, round);
        let wait = d.next_attempt_at - before;
        waits.push(wait);
        // Between half and all of base · 2^(round-1) (plus the POST's 20 ms).
        let ceiling = policy.retry_base * 2_i32.pow(round - 1);
        assert!(
            wait >= ceiling / 2 && wait <= ceiling + Duration::milliseconds(20),
            "round {round}: waited {wait}"
        );
        // Not due yet: not even claimable.
        r.clock.advance(wait - Duration::milliseconds(100));
        assert!(r.dispatcher.claim(1).await.unwrap().is_empty());
        r.clock.advance(Duration::milliseconds(100));
    }
    assert!(waits[0] <= Duration::seconds(30), "first retry within 30 s");
    let d = r.outbox.delivery(&first);
    assert_eq!(d.last_error.as_deref(), Some("connection refused"));
    assert_eq!(d.last_status, None);

    // The fourth attempt is accepted, and the next event follows at once.
    let done = r.dispatcher.run_once(1).await.unwrap();
    assert_eq!(done.delivered, 2);
    assert_eq!(
        r.bodies(),
        vec![body(0), body(0), body(0), body(0), body(1)]
    );
    assert_eq!(r.outbox.delivery(&first).state, DeliveryState::Delivered);
    assert_eq!(
        r.outcomes(),
        [
            vec![WebhookOutcome::Retried; 3],
            vec![WebhookOutcome::Delivered; 2]
        ]
        .concat()
    );
}

#[tokio::test]
async fn past_the_attempt_cap_a_delivery_fails_and_the_endpoint_moves_on() {
    let policy = DispatchPolicy {
        max_attempts: 3,
        ..DispatchPolicy::default()
    };
    let r = rig(policy, 1, vec![rejected(503), rejected(502), rejected(500)]);
    let e = &r.endpoints[0];
    let doomed = r.outbox.add_event(e, 0, t0());
    let next = r.outbox.add_event(e, 1, t0());
    for _ in 0..2 {
        assert_eq!(r.dispatcher.run_once(1).await.unwrap().retried, 1);
        r.clock.advance(policy.retry_max);
    }
    let done = r.dispatcher.run_once(1).await.unwrap();
    assert_eq!((done.failed, done.delivered), (1, 1));
    let d = r.outbox.delivery(&doomed);
    assert_eq!(d.state, DeliveryState::Failed);
    assert_eq!(d.attempts, 3);
    assert_eq!(d.last_status, Some(500));
    assert!(d.settled_at.is_some());
    assert_eq!(r.outbox.delivery(&next).state, DeliveryState::Delivered);
    assert_eq!(
        r.outcomes(),
        vec![
            WebhookOutcome::Retried,
            WebhookOutcome::Retried,
            WebhookOutcome::Failed,
            WebhookOutcome::Delivered
        ]
    );
}

#[tokio::test]
async fn a_lost_lease_stops_the_drain_without_releasing_the_new_holders() {
    let r = rig(DispatchPolicy::default(), 1, vec![]);
    let e = &r.endpoints[0];
    let first = r.outbox.add_event(e, 0, t0());
    r.outbox.add_event(e, 1, t0());
    r.outbox.state.lock().unwrap().steal_on_settle = true;
    let done = r.dispatcher.run_once(1).await.unwrap();
    assert!(done.lease_lost);
    assert_eq!(done.delivered, 0);
    // One POST (its answer could not be recorded: the new holder sends it again), and
    // nothing after it.
    assert_eq!(r.bodies(), vec![body(0)]);
    assert_eq!(r.outbox.delivery(&first).state, DeliveryState::Pending);
    assert_eq!(r.outbox.lease_owner(e).as_deref(), Some("thief"));
    assert!(r.outcomes().is_empty());
}

#[tokio::test]
async fn the_lease_is_renewed_while_a_slow_receiver_is_served() {
    let policy = DispatchPolicy {
        lease: Duration::seconds(10),
        ..DispatchPolicy::default()
    };
    let r = rig(policy, 1, vec![]);
    // Each POST takes 3 s of the lease's 10.
    *r.transport.latency.lock().unwrap() = Duration::seconds(3);
    let e = r.endpoints[0].clone();
    for n in 0..6 {
        r.outbox.add_event(&e, n, t0());
    }
    let done = r.dispatcher.run_once(1).await.unwrap();
    assert_eq!(done.delivered, 6);
    let renewals = r.outbox.state.lock().unwrap().renewals;
    // 18 s of POSTs on a 10 s lease: renewed whenever under half was left, not per POST.
    assert!((2..6).contains(&renewals), "{renewals} renewals");
}

#[tokio::test]
async fn a_claim_sends_at_most_its_quota() {
    let policy = DispatchPolicy {
        per_claim: 3,
        ..DispatchPolicy::default()
    };
    let r = rig(policy, 1, vec![]);
    let e = &r.endpoints[0];
    for n in 0..5 {
        r.outbox.add_event(e, n, t0());
    }
    let done = r.dispatcher.run_once(1).await.unwrap();
    assert_eq!((done.delivered, done.more), (3, true));
    assert_eq!(r.outbox.lease_owner(e), None, "released for the next claim");
    let done = r.dispatcher.run_once(1).await.unwrap();
    assert_eq!((done.delivered, done.more), (2, false));
    assert_eq!(r.bodies(), (0..5).map(body).collect::<Vec<_>>());
}

#[test]
fn backoff_doubles_with_jitter_up_to_its_cap() {
    let p = DispatchPolicy {
        retry_base: Duration::seconds(4),
        retry_max: Duration::seconds(60),
        ..DispatchPolicy::default()
    };
    assert_eq!(p.retry_delay(1, 0.0), Duration::seconds(2));
    assert_eq!(p.retry_delay(1, 0.5), Duration::seconds(3));
    assert_eq!(p.retry_delay(2, 0.0), Duration::seconds(4));
    assert_eq!(p.retry_delay(3, 1.0), Duration::seconds(16));
    // 4 · 2^4 = 64 > 60: capped.
    assert_eq!(p.retry_delay(5, 1.0), Duration::seconds(60));
    assert_eq!(p.retry_delay(500, 0.0), Duration::seconds(30));
    // Jitter outside [0, 1] is clamped.
    assert_eq!(p.retry_delay(1, 7.0), Duration::seconds(4));
    for _ in 0..100 {
        let j = jitter();
        assert!((0.0..1.0).contains(&j), "{j}");
    }
}
