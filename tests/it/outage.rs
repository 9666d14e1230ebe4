//! Stopping and losing the database under load: SIGTERM finishes what is in
//! flight and exits 0; a PostgreSQL outage during a run answers 503 and
//! recovers; in both, nothing acknowledged is lost.

use crate::common::*;
use sea_orm::ConnectionTrait;
use std::time::Duration;

#[tokio::test]
async fn sigterm_under_load_finishes_in_flight_work_and_exits_0() {
    let db = TestDb::new().await;
    let (mut server, base) = ServerProcess::start(&db.url, &[]).await;
    let payloads = leadql::generate::generate(1000, 41);
    let total = payloads.len();
    let (sending, outcome) = send_all(&base, payloads, Duration::ZERO);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let pid = server.0.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::task::spawn_blocking(move || {
        let status = server.0.wait();
        (server, status)
    });
    let (_server, status) = tokio::time::timeout(Duration::from_secs(30), status)
        .await
        .expect("leadql exits within 30 s of SIGTERM")
        .unwrap();
    assert_eq!(status.unwrap().code(), Some(0), "exit status after SIGTERM");
    sending.await.unwrap();
    let outcome = std::mem::take(&mut *outcome.lock().unwrap());
    assert!(
        !outcome.acknowledged.is_empty(),
        "nothing was acknowledged before SIGTERM"
    );
    assert!(
        outcome.acknowledged.len() < total,
        "SIGTERM came after the last delivery"
    );
    // Answers are 200 or 503 (shutting down); never a 500.
    assert!(
        outcome.statuses.iter().all(|s| *s == 200 || *s == 503),
        "{:?}",
        outcome.statuses
    );
    assert_all_logged(&db.url, &outcome.acknowledged).await;
}

#[tokio::test]
#[cfg_attr(
    not(leadql_test_postgres),
    ignore = "PostgreSQL only (SQLite has no server to lose; a held lock is in the webhook tests)"
)]
async fn a_postgresql_outage_during_a_run_answers_503_then_recovers() {
    let db = TestDb::new().await;
    let (admin_url, name) = db
        .postgres()
        .cloned()
        .expect("needs LEADQL_TEST_DATABASE_URL");
    let s = TestServer::start(&db).await;
    let base = s.url("");
    let admin = sea_orm::Database::connect(admin_url.as_str())
        .await
        .unwrap();
    let payloads = leadql::generate::generate(800, 43);
    let (sending, outcome) = send_all(&base, payloads, Duration::from_millis(20));

    tokio::time::sleep(Duration::from_millis(500)).await;
    // The outage: no new connections, existing ones cut.
    admin
        .execute_unprepared(&format!(
            "ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false"
        ))
        .await
        .unwrap();
    admin
        .execute_unprepared(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
        ))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        s.get_status("/readyz").await,
        503,
        "not ready during the outage"
    );
    admin
        .execute_unprepared(&format!(
            "ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true"
        ))
        .await
        .unwrap();
    sending.await.unwrap();

    let outcome = std::mem::take(&mut *outcome.lock().unwrap());
    let unavailable = outcome.statuses.iter().filter(|s| **s == 503).count();
    assert!(unavailable > 0, "deliveries during the outage got 503");
    assert!(
        outcome.statuses.iter().all(|s| *s == 200 || *s == 503),
        "never a 500"
    );
    assert_eq!(outcome.failed_requests, 0, "every request was answered");
    // Recovered without a restart.
    assert_eq!(s.get_status("/readyz").await, 200);
    assert_eq!(s.deliver(SEED_CONNECTED).await.0, 200);
    assert!(
        *outcome.statuses.last().unwrap() == 200
            || outcome.statuses.iter().rev().take(20).any(|s| *s == 200)
    );
    assert_all_logged(&db.url, &outcome.acknowledged).await;
    s.stop().await;
}
