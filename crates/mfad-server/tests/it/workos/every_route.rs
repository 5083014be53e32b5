//! Every route, enumerated from the list the router is built from
//! (`mfad_server::routes::paths`), with malformed and oversized path parameters, queries,
//! headers and bodies on every method: never a 5xx, never plain text, never the other
//! API's shape, never a hung connection. A route added later is covered without editing
//! this file. The inputs are a fixed, bounded set (a few thousand requests), so the run
//! takes seconds.

use std::time::Duration;

use serde_json::Value;

use crate::support::spawn_app;

/// Path parameter forms: not UTF-8, truncated UTF-8, NUL, traversal, oversized, empty-ish.
const PARAMS: &[&str] = &[
    "%ff",
    "%C3",
    "%00",
    "..%2F..%2Fetc",
    "%2e%2e",
    "a%20b",
    "%E2%80%AE",
    "auth_factor_01FVYZ5QM8N98T9ME5BCB2BBMJ",
    "undefined",
];

const QUERIES: &[&str] = &[
    "",
    "?limit=%ff",
    "?userId=%00&code=%",
    "?a=b&&&=&%zz",
    "?order=;",
];

const BODIES: &[&[u8]] = &[
    b"",
    b"{",
    b"null",
    b"[1,2]",
    b"\"str\"",
    b"{\"code\": {\"deep\": [[[[]]]]}, \"type\": 7, \"sms_template\": \"\\u0000\"}",
    b"\xff\xfe\x00",
];

/// Asserts the answer is in the API of `path`, and no server failure.
pub(super) fn check(path: &str, method: &str, status: u16, content_type: &str, text: &str) {
    let case = format!("{method} {path} -> {status} {content_type:?} {text:.200}");
    assert!(status < 500, "{case}");
    let fusionauth = path.starts_with("/api/");
    if text.is_empty() {
        assert!(fusionauth, "WorkOS answers always carry JSON: {case}");
        assert!(!content_type.starts_with("application/json"), "{case}");
        return;
    }
    assert!(content_type.starts_with("application/json"), "{case}");
    let body: Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {case}"));
    if fusionauth {
        if status >= 400 {
            assert!(
                body.get("fieldErrors").is_some() || body.get("generalErrors").is_some(),
                "FusionAuth errors object expected: {case}"
            );
            assert!(
                body.get("code").is_none(),
                "a WorkOS shape on FusionAuth: {case}"
            );
        }
    } else if status >= 400 {
        assert!(
            body["code"].is_string() && body["message"].is_string(),
            "WorkOS {{code, message}} expected: {case}"
        );
    }
}

#[tokio::test]
async fn every_route_answers_malformed_input_in_its_own_api() {
    let app = spawn_app().await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let long = "a".repeat(8 * 1024);
    let mut params: Vec<&str> = PARAMS.to_vec();
    params.push(&long);
    let paths = mfad_server::routes::paths();
    assert!(paths.len() >= 15, "{paths:?}");
    let mut sent = 0;
    for template in &paths {
        let concrete: Vec<String> = if template.contains('{') {
            params
                .iter()
                .map(|p| {
                    let mut out = String::new();
                    let mut rest = template.as_str();
                    while let Some(open) = rest.find('{') {
                        let close = rest[open..].find('}').unwrap() + open;
                        out.push_str(&rest[..open]);
                        out.push_str(p);
                        rest = &rest[close + 1..];
                    }
                    out + rest
                })
                .collect()
        } else {
            vec![template.to_string()]
        };
        for path in &concrete {
            for method in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
                for (i, query) in QUERIES.iter().enumerate() {
                    let body = BODIES[i % BODIES.len()];
                    // Authorization variants: none, garbage, a real key (WorkOS as Bearer,
                    // FusionAuth raw), and a broken Bearer JWT.
                    let auth = match (i % 4, path.starts_with("/api/")) {
                        (0, _) => None,
                        (1, _) => Some("Bearer \u{7f}".replace('\u{7f}', "x y z")),
                        (2, false) => Some(format!("Bearer {}", app.key)),
                        (2, true) => Some(app.key.clone()),
                        _ => Some("Bearer e30.e30.".to_owned()),
                    };
                    let mut rb = http
                        .request(method.parse().unwrap(), app.url(&format!("{path}{query}")))
                        .header("Content-Type", "application/json")
                        .header("X-FusionAuth-TenantId", ["%ff", "null", "tenant_x"][i % 3])
                        .body(body.to_vec());
                    if let Some(a) = auth {
                        rb = rb.header("Authorization", a);
                    }
                    let r = rb
                        .send()
                        .await
                        .unwrap_or_else(|e| panic!("{method} {path}{query}: no answer ({e})"));
                    let status = r.status().as_u16();
                    let ct = r
                        .headers()
                        .get("content-type")
                        .map(|v| v.to_str().unwrap().to_owned())
                        .unwrap_or_default();
                    let text = r.text().await.unwrap();
                    check(path, method, status, &ct, &text);
                    sent += 1;
                }
            }
        }
    }
    assert!(sent > 1000, "{sent}");
    // Unknown paths and methods under /api/ are FusionAuth's empty 404/405.
    for (method, path, want) in [
        ("GET", "/api/no/such/route", 404),
        ("GET", "/api/two-factor/login", 405),
        ("GET", "/no/such/route", 404),
    ] {
        let r = http
            .request(method.parse().unwrap(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), want, "{method} {path}");
        let ct = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let text = r.text().await.unwrap();
        check(path, method, want, &ct, &text);
        assert_eq!(text.is_empty(), path.starts_with("/api/"), "{path}: {text}");
    }
}
