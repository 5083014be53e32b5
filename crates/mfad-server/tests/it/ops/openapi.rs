//! `GET /openapi.json`: the document generated from the handlers, compared with the
//! checked-in `docs/openapi.json` (regenerate with `MFAD_UPDATE_OPENAPI=1`, see
//! `mfad_server::openapi`), and checked against the routes the router serves.

use serde_json::Value;

use crate::support::{read, spawn_app};

fn snapshot_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json")
}

#[tokio::test]
async fn the_served_document_matches_the_checked_in_contract() {
    let app = spawn_app().await;
    let r = read(app.http.get(app.url("/openapi.json")).send().await.unwrap()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.is_json());
    let served: Value = serde_json::from_str(&r.text).unwrap();
    assert_eq!(served["openapi"], "3.1.0");

    let pretty = serde_json::to_string_pretty(&served).unwrap() + "\n";
    let path = snapshot_path();
    if std::env::var_os("MFAD_UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &pretty).unwrap();
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == pretty,
        "docs/openapi.json differs from the served document; if the change is intended, \
         regenerate it: MFAD_UPDATE_OPENAPI=1 cargo nextest run -p mfad-server --test it \
         -E 'test(/openapi/)'"
    );
}

#[test]
fn every_routed_path_is_documented_with_security_and_errors() {
    let doc = serde_json::to_value(mfad_server::openapi::document()).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    let mut routed = mfad_server::routes::paths();
    routed.sort();
    let mut documented: Vec<String> = paths.keys().cloned().collect();
    documented.sort();
    assert_eq!(routed, documented);
    for must in [
        "/auth/factors/enroll",
        "/auth/challenges/{id}/verify",
        "/api/two-factor/login",
        "/api/user/two-factor/{userId}",
        "/openapi.json",
        "/health",
    ] {
        assert!(paths.contains_key(must), "{must} missing");
    }
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    assert_eq!(schemes["workos_api_key"]["scheme"], "bearer");
    assert_eq!(schemes["fusionauth_api_key"]["in"], "header");
    assert_eq!(schemes["jwt"]["bearerFormat"], "JWT");
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            let api = if path.starts_with("/api/") {
                Some("FusionAuthErrors")
            } else if path.starts_with("/auth/") || path.starts_with("/user_management/") {
                Some("WorkosError")
            } else {
                None
            };
            let Some(error_schema) = api else { continue };
            assert!(
                op["security"].as_array().is_some_and(|s| !s.is_empty()),
                "{method} {path}: no security"
            );
            assert!(
                op["operationId"].is_string(),
                "{method} {path}: no operationId"
            );
            let text = serde_json::to_string(&responses["400"]).unwrap();
            assert!(
                text.contains(error_schema),
                "{method} {path}: 400 is not {error_schema}: {text}"
            );
            assert!(
                responses.contains_key("401")
                    || op["security"][0].as_object().is_some_and(|o| o.is_empty())
            );
        }
    }
}
