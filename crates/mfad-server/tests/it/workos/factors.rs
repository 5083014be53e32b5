//! Enrollment, retrieval and deletion of factors (`/auth/factors`).

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn totp_enrollment_returns_secrets_once_and_qr_decodes_to_uri() {
    let app = spawn_app().await;
    let f = app
        .enroll(json!({"type": "totp", "totp_issuer": "Foo Corp", "totp_user": "alan@example.com"}))
        .await;
    assert_eq!(f["object"], "authentication_factor");
    assert_eq!(f["type"], "totp");
    let id = f["id"].as_str().unwrap();
    assert!(
        id.starts_with("auth_factor_") && id.len() == 12 + 26,
        "{id}"
    );
    assert_eq!(f["created_at"], "2026-01-15T12:00:10.000Z");
    assert_eq!(f["updated_at"], f["created_at"]);
    assert!(f.get("user_id").is_none());
    let totp = &f["totp"];
    assert_eq!(totp["issuer"], "Foo Corp");
    assert_eq!(totp["user"], "alan@example.com");
    let secret = totp["secret"].as_str().unwrap();
    assert_eq!(secret.len(), 32, "160-bit secret as unpadded base32");
    assert_eq!(
        data_encoding::BASE32_NOPAD
            .decode(secret.as_bytes())
            .unwrap()
            .len(),
        20
    );
    let uri = totp["uri"].as_str().unwrap();
    assert_eq!(
        uri,
        format!(
            "otpauth://totp/Foo%20Corp:alan@example.com?secret={secret}&issuer=Foo%20Corp&algorithm=SHA1&digits=6&period=30"
        )
    );
    assert_eq!(decode_qr(totp["qr_code"].as_str().unwrap()), uri);

    // Never again after enrollment.
    let got = app.call("GET", &format!("/auth/factors/{id}"), None).await;
    assert_eq!(got.status, 200);
    assert!(got.content_type.unwrap().starts_with("application/json"));
    assert_eq!(
        got.body["totp"],
        json!({"issuer": "Foo Corp", "user": "alan@example.com"})
    );
    assert_eq!(got.body["id"], id);

    // Two enrollments never share a secret.
    let g = app
        .enroll(json!({"type": "totp", "totp_issuer": "A", "totp_user": "b"}))
        .await;
    assert_ne!(g["totp"]["secret"], totp["secret"]);
}

#[tokio::test]
async fn sms_enrollment_normalises_to_e164_and_rejects_invalid_numbers() {
    let app = spawn_app().await;
    for (input, e164) in [
        ("+1 415 555 2671", "+14155552671"),
        ("14155552671", "+14155552671"),
        ("+44 20 7946 0958", "+442079460958"),
    ] {
        let f = app
            .enroll(json!({"type": "sms", "phone_number": input}))
            .await;
        assert_eq!(f["sms"], json!({"phone_number": e164}), "{input}");
        assert!(f.get("totp").is_none());
    }
    for bad in ["foo", "+1 000 000 0000", "+1"] {
        let r = app
            .call(
                "POST",
                "/auth/factors/enroll",
                Some(json!({"type": "sms", "phone_number": bad})),
            )
            .await;
        assert_error(&r, 422, "invalid_phone_number");
        assert_eq!(
            r.body["message"],
            format!("Phone number is invalid: '{bad}'")
        );
    }
    let r = app
        .call("POST", "/auth/factors/enroll", Some(json!({"type": "sms"})))
        .await;
    assert_error(&r, 422, "invalid_request_parameters");
    assert_eq!(r.body["errors"][0]["field"], "phone_number");
}

#[tokio::test]
async fn generic_otp_enrollment_has_only_base_fields() {
    let app = spawn_app().await;
    let f = app
        .enroll(json!({"type": "generic_otp", "user_id": "user_01E4ZCR3C56J083X43JQXF3JK5"}))
        .await;
    let keys: Vec<&str> = f.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "object",
            "id",
            "created_at",
            "updated_at",
            "type",
            "user_id"
        ]
    );
    assert_eq!(f["user_id"], "user_01E4ZCR3C56J083X43JQXF3JK5");
}

#[tokio::test]
async fn delete_removes_factor_and_its_challenges() {
    let app = spawn_app().await;
    let f = app.enroll(json!({"type": "generic_otp"})).await;
    let id = f["id"].as_str().unwrap();
    let ch = app.challenge(id).await;
    let r = app
        .call("DELETE", &format!("/auth/factors/{id}"), None)
        .await;
    assert_eq!(r.status, 204);
    assert!(r.text.is_empty());
    assert_error(
        &app.call("GET", &format!("/auth/factors/{id}"), None).await,
        404,
        "entity_not_found",
    );
    assert_error(
        &app.call("DELETE", &format!("/auth/factors/{id}"), None)
            .await,
        404,
        "entity_not_found",
    );
    let v = app
        .verify(ch["id"].as_str().unwrap(), ch["code"].as_str().unwrap())
        .await;
    assert_error(&v, 404, "entity_not_found");
}

#[tokio::test]
async fn unknown_and_malformed_factor_ids_are_404_in_workos_shape() {
    let app = spawn_app().await;
    for id in [
        "auth_factor_invalid",
        "auth_factor_01FVYZ5QM8N98T9ME5BCB2BBMJ",
        "x",
    ] {
        let r = app.call("GET", &format!("/auth/factors/{id}"), None).await;
        assert_error(&r, 404, "entity_not_found");
        assert_eq!(r.body["entity_id"], id);
        assert_eq!(
            r.body["message"],
            format!("Authentication Factor not found: '{id}'.")
        );
    }
}

#[tokio::test]
async fn secrets_codes_and_keys_are_not_stored_in_plaintext() {
    let app = spawn_app().await;
    let f = app
        .enroll(json!({"type": "totp", "totp_issuer": "Acme", "totp_user": "u"}))
        .await;
    let secret_b32 = f["totp"]["secret"].as_str().unwrap().to_owned();
    let secret_raw = data_encoding::BASE32_NOPAD
        .decode(secret_b32.as_bytes())
        .unwrap();
    let g = app.enroll(json!({"type": "generic_otp"})).await;
    let ch = app.challenge(g["id"].as_str().unwrap()).await;
    let code = ch["code"].as_str().unwrap().to_owned();
    let key_secret = app.key.rsplit('_').next().unwrap().to_owned();
    let bytes = database_bytes(&app).await;
    let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    assert!(
        contains(f["id"].as_str().unwrap().as_bytes()),
        "sanity: the factor row is in the file"
    );
    assert!(!contains(secret_b32.as_bytes()));
    assert!(!contains(&secret_raw));
    assert!(!contains(
        data_encoding::HEXLOWER.encode(&secret_raw).as_bytes()
    ));
    assert!(!contains(key_secret.as_bytes()));
    assert!(!contains(app.key.as_bytes()));
    // A 6-digit code may occur by chance in binary data; the challenge row must not hold it.
    let row_start = bytes
        .windows(ch["id"].as_str().unwrap().len())
        .position(|w| w == ch["id"].as_str().unwrap().as_bytes())
        .unwrap();
    let row = &bytes[row_start..(row_start + 200).min(bytes.len())];
    assert!(!row.windows(6).any(|w| w == code.as_bytes()));
}

/// Everything the database holds, as bytes: the SQLite file (with its WAL), or every row of
/// every mfad table as PostgreSQL renders it.
async fn database_bytes(app: &TestApp) -> Vec<u8> {
    if let Some(pg) = &app.pg {
        use sqlx::{Connection, Row};
        let mut conn = sqlx::PgConnection::connect(pg.url()).await.unwrap();
        let mut out = Vec::new();
        for table in ["tenants", "api_keys", "factors", "challenges"] {
            let sql = format!("SELECT row_to_json(t)::text AS j FROM {table} t");
            for row in sqlx::query(sqlx::AssertSqlSafe(sql))
                .fetch_all(&mut conn)
                .await
                .unwrap()
            {
                out.extend(row.get::<String, _>("j").into_bytes());
            }
        }
        return out;
    }
    // Close the pools so the WAL is checkpointed into the file we read.
    app.app_state.service.store().close().await;
    let mut bytes = std::fs::read(&app.db_path).unwrap();
    for extra in ["-wal", "-shm"] {
        if let Ok(more) = std::fs::read(format!("{}{extra}", app.db_path.display())) {
            bytes.extend(more);
        }
    }
    bytes
}
