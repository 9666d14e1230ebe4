//! Crash safety: kill the server with SIGKILL under a stream of deliveries,
//! restart it, and find every acknowledged delivery stored and the
//! projections consistent with the log.

use crate::common::*;
use rand::Rng;
use std::time::Duration;

#[tokio::test]
async fn sigkill_loses_no_acknowledged_delivery() {
    let db = TestDb::new().await;
    let (mut server, base) = ServerProcess::start(&db.url, &[]).await;
    let payloads = leadql::generate::generate(1000, 99);
    let total = payloads.len();
    let (sending, outcome) = send_all(&base, payloads, Duration::ZERO);
    // Kill mid-stream: once the first delivery was acknowledged (how long
    // that takes depends on the machine's load), after a random while.
    let started = std::time::Instant::now();
    while outcome.lock().unwrap().acknowledged.is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "nothing was acknowledged in 30 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let delay = rand::rng().random_range(0..300);
    tokio::time::sleep(Duration::from_millis(delay)).await;
    server.0.kill().unwrap(); // SIGKILL
    server.0.wait().unwrap();
    sending.await.unwrap();
    let acknowledged = std::mem::take(&mut outcome.lock().unwrap().acknowledged);
    assert!(
        !acknowledged.is_empty(),
        "nothing was acknowledged before the kill ({delay} ms after the first)"
    );
    assert!(
        acknowledged.len() < total,
        "the kill came after the last delivery ({delay} ms after the first)"
    );
    eprintln!(
        "acknowledged {} of {total} before SIGKILL, {delay} ms after the first",
        acknowledged.len()
    );

    // Restart on the same database: everything acknowledged is there.
    let (_restarted, base) = ServerProcess::start(&db.url, &[]).await;
    assert_eq!(
        reqwest::Client::new()
            .get(format!("{base}/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_all_logged(&db.url, &acknowledged).await;
    let conn = leadql::store::connect(&db.url).await.unwrap();
    // The projections are exactly what the log implies.
    assert_reproject_keeps(&conn).await;
    conn.close().await.unwrap();
}
