//! `GET /ready`: 200 when the database answers and every migration is applied; 503 with
//! a JSON reason when the schema is behind the code, as during an upgrade.

use sqlx::Connection;

use crate::support::{TestApp, read, spawn_app};

/// Runs one statement on the test's database, beside the server's own connections.
async fn execute(app: &TestApp, sql: &'static str) {
    match &app.pg {
        Some(pg) => {
            let mut c = sqlx::PgConnection::connect(pg.url()).await.unwrap();
            sqlx::query(sql).execute(&mut c).await.unwrap();
        }
        None => {
            let url = format!("sqlite://{}", app.db_path.display());
            let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::query(sql).execute(&mut c).await.unwrap();
        }
    }
}

#[tokio::test]
async fn ready_only_while_the_schema_is_current() {
    let app = spawn_app().await;
    let r = read(app.http.get(app.url("/ready")).send().await.unwrap()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "ready");

    // The newest migration "not applied": what a new binary sees on an old schema.
    execute(
        &app,
        "UPDATE _sqlx_migrations SET success = false \
         WHERE version = (SELECT MAX(version) FROM _sqlx_migrations)",
    )
    .await;
    let r = read(app.http.get(app.url("/ready")).send().await.unwrap()).await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert!(r.is_json());
    assert_eq!(r.body["status"], "not_ready");
    let reason = r.body["reason"].as_str().unwrap();
    assert!(
        reason.contains("1 database migration(s) not applied"),
        "{reason}"
    );
    // Liveness is unaffected: the process is fine, it just must not take traffic.
    let h = read(app.http.get(app.url("/health")).send().await.unwrap()).await;
    assert_eq!(h.status, 200);

    // Once it is applied, ready again.
    execute(&app, "UPDATE _sqlx_migrations SET success = true").await;
    let r = read(app.http.get(app.url("/ready")).send().await.unwrap()).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn not_ready_when_the_database_was_never_migrated() {
    let app = spawn_app().await;
    execute(&app, "DROP TABLE _sqlx_migrations").await;
    let r = read(app.http.get(app.url("/ready")).send().await.unwrap()).await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert_eq!(r.body["status"], "not_ready");
    assert!(
        r.body["reason"]
            .as_str()
            .unwrap()
            .contains("never migrated")
    );
}
