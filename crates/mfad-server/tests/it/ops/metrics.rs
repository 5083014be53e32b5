//! `GET /metrics` after a full flow on both APIs, read with a real Prometheus text-format
//! parser (`openmetrics-parser`): the counters of every outcome moved, with bounded labels.

use openmetrics_parser::{MetricsExposition, PrometheusType, PrometheusValue};
use serde_json::json;

/// A parsed scrape.
pub(super) type Scrape = MetricsExposition<PrometheusType, PrometheusValue>;

use crate::support::{Options, PHONE, relaxed_sends, spawn_with};

/// Fetches and parses a scrape.
async fn scrape(http: &reqwest::Client, url: String) -> Scrape {
    let r = http.get(url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    let text = r.text().await.unwrap();
    if std::env::var_os("MFAD_PRINT_SCRAPE").is_some() {
        println!("{text}");
    }
    openmetrics_parser::prometheus::parse_prometheus(&text).unwrap()
}

/// The sum of the samples of `name` whose labels include `labels` (0 when none); for a
/// histogram, its count.
pub(super) fn value(s: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let Some(family) = s.families.get(name) else {
        return 0.0;
    };
    family
        .iter_samples()
        .filter(|x| {
            let set = x.get_labelset().unwrap();
            labels
                .iter()
                .all(|(k, v)| set.get_label_value(k) == Some(*v))
        })
        .map(|x| match &x.value {
            PrometheusValue::Counter(c) => c.value.as_f64(),
            PrometheusValue::Gauge(n) | PrometheusValue::Unknown(n) => n.as_f64(),
            PrometheusValue::Histogram(h) => h.count.unwrap_or(0) as f64,
            PrometheusValue::Summary(_) => 0.0,
        })
        .sum::<f64>()
        + 0.0
}

/// Every label value of every sample.
fn label_values(s: &Scrape) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (name, family) in &s.families {
        for x in family.iter_samples() {
            for (k, v) in x.get_labelset().unwrap().iter() {
                out.push((name.clone(), k.clone(), v.clone()));
            }
        }
    }
    out
}

#[tokio::test]
async fn a_full_flow_moves_every_counter() {
    let app = spawn_with(Options {
        vars: relaxed_sends(),
        ..Options::default()
    })
    .await;
    let url = app.url("/metrics");
    let before = scrape(&app.http, url.clone()).await;
    assert_eq!(
        value(&before, "mfad_verifications_total", &[]),
        0.0,
        "a fresh server has counted nothing"
    );

    // TOTP: enroll, a wrong code, the right code.
    let totp = app
        .enroll(json!({"type": "totp", "totp_issuer": "Acme", "totp_user": "a@b.c"}))
        .await;
    let secret = totp["totp"]["secret"].as_str().unwrap().to_owned();
    let c = app.challenge(totp["id"].as_str().unwrap()).await;
    let cid = c["id"].as_str().unwrap();
    let wrong = app.verify(cid, "000000").await;
    assert_eq!(wrong.body["valid"], false, "{}", wrong.text);
    let right = app.verify(cid, &app.totp_code(&secret, 0)).await;
    assert_eq!(right.body["valid"], true, "{}", right.text);
    // SMS: one text through the Twilio stand-in.
    let sms = app
        .enroll(json!({"type": "sms", "phone_number": PHONE}))
        .await;
    app.challenge(sms["id"].as_str().unwrap()).await;
    assert_eq!(app.sms.lock().unwrap().len(), 1);
    // Generic OTP: a challenge left to expire.
    let otp = app.enroll(json!({"type": "generic_otp"})).await;
    let c = app.challenge(otp["id"].as_str().unwrap()).await;
    app.clock.advance(time::Duration::seconds(601));
    let code = c["code"].as_str().unwrap();
    let late = app.verify(c["id"].as_str().unwrap(), code).await;
    assert_eq!(late.status, 422, "{}", late.text);
    // An invalid enrollment, and an unknown route.
    let bad = app
        .call(
            "POST",
            "/auth/factors/enroll",
            Some(json!({"type": "sms", "phone_number": "12"})),
        )
        .await;
    assert_eq!(bad.status, 422);
    let missing = app.call("GET", "/auth/factors/auth_factor_x", None).await;
    assert_eq!(missing.status, 404);

    let after = scrape(&app.http, url).await;
    let v = |name: &str, labels: &[(&str, &str)]| value(&after, name, labels);
    let totp_l = ("factor_type", "totp");
    assert_eq!(
        v("mfad_enrollments_total", &[totp_l, ("outcome", "valid")]),
        1.0
    );
    assert_eq!(
        v(
            "mfad_enrollments_total",
            &[("factor_type", "sms"), ("outcome", "invalid")]
        ),
        1.0
    );
    assert_eq!(v("mfad_challenges_total", &[("outcome", "valid")]), 3.0);
    assert_eq!(
        v("mfad_verifications_total", &[totp_l, ("outcome", "valid")]),
        1.0
    );
    assert_eq!(
        v(
            "mfad_verifications_total",
            &[totp_l, ("outcome", "invalid")]
        ),
        1.0
    );
    assert_eq!(
        v(
            "mfad_verifications_total",
            &[("factor_type", "generic_otp"), ("outcome", "expired")]
        ),
        1.0
    );
    assert_eq!(
        v(
            "mfad_sends_total",
            &[
                ("channel", "sms"),
                ("provider", "twilio"),
                ("outcome", "sent")
            ]
        ),
        1.0
    );
    let verify_route = [
        ("route", "/auth/challenges/{id}/verify"),
        ("method", "POST"),
        ("status", "201"),
    ];
    assert_eq!(v("mfad_http_requests_total", &verify_route), 2.0);
    assert_eq!(
        v("mfad_http_request_duration_seconds", &verify_route),
        2.0,
        "a latency histogram by route template, with every request in +Inf"
    );
    assert_eq!(
        v(
            "mfad_http_requests_total",
            &[("route", "/auth/factors/{id}"), ("status", "404")]
        ),
        1.0
    );
    assert!(v("mfad_db_pool_connections", &[("state", "max")]) >= 1.0);
    assert!(v("mfad_db_pool_acquires_total", &[]) > 0.0);
    // Bounded cardinality: no label value is an id.
    let labels = label_values(&after);
    assert!(labels.len() > 20);
    for (metric, k, val) in labels {
        assert!(
            !val.contains("auth_") && !val.contains("+1"),
            "{metric} has an id in {k}={val}"
        );
    }
}

#[tokio::test]
async fn the_admin_listener_serves_metrics_and_counts_refusals() {
    let app = spawn_with(Options {
        vars: vec![
            ("MFAD_ADMIN_LISTEN", "127.0.0.1:0".into()),
            ("MFAD_RATE_LIMIT_PER_KEY", "1/1".into()),
            ("MFAD_SMS_COOLDOWN_SECS", "3600".into()),
        ],
        ..Options::default()
    })
    .await;
    let admin = app.admin.expect("an admin listener");
    // Not on the API listener any more.
    let r = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    for path in ["/health", "/ready"] {
        let r = app
            .http
            .get(format!("http://{admin}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    // Two requests with one key at 1/s: the second is refused.
    let first = app.call("GET", "/auth/factors/auth_factor_x", None).await;
    let second = app.call("GET", "/auth/factors/auth_factor_x", None).await;
    assert_eq!((first.status, second.status), (404, 429), "{}", second.text);
    let s = scrape(&app.http, format!("http://{admin}/metrics")).await;
    assert_eq!(
        value(&s, "mfad_rate_limited_total", &[("scope", "api_key")]),
        1.0
    );
    assert_eq!(
        value(&s, "mfad_http_requests_total", &[("status", "429")]),
        1.0
    );
}

#[tokio::test]
async fn send_limit_refusals_are_counted() {
    let app = spawn_with(Options {
        vars: vec![("MFAD_SMS_COOLDOWN_SECS", "3600".into())],
        ..Options::default()
    })
    .await;
    let sms = app
        .enroll(json!({"type": "sms", "phone_number": PHONE}))
        .await;
    let id = sms["id"].as_str().unwrap();
    app.challenge(id).await;
    let again = app
        .call(
            "POST",
            &format!("/auth/factors/{id}/challenge"),
            Some(json!({})),
        )
        .await;
    assert_eq!(again.status, 429, "{}", again.text);
    let s = scrape(&app.http, app.url("/metrics")).await;
    let sends = |outcome| {
        value(
            &s,
            "mfad_sends_total",
            &[("channel", "sms"), ("outcome", outcome)],
        )
    };
    assert_eq!((sends("sent"), sends("refused")), (1.0, 1.0));
    assert_eq!(
        value(
            &s,
            "mfad_challenges_total",
            &[("factor_type", "sms"), ("outcome", "refused")]
        ),
        1.0
    );
}
