//! Crash safety: kill the server with SIGKILL under a stream of deliveries,
//! restart it, and find every acknowledged delivery stored and the
//! projections consistent with the log.

use crate::common::*;
use futures::StreamExt;
use rand::Rng;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[tokio::test]
async fn sigkill_loses_no_acknowledged_delivery() {
    let db = TestDb::new().await;
    let (mut server, base) = ServerProcess::start(&db.url, &[]).await;
    let payloads = leadql::generate::generate(1000, 99);
    let total = payloads.len();
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let client = reqwest::Client::new();
    let url = format!("{base}/webhooks/activity");
    let sending = {
        let (acknowledged, client, url) = (acknowledged.clone(), client.clone(), url.clone());
        tokio::spawn(async move {
            futures::stream::iter(payloads)
                .for_each_concurrent(16, |body| {
                    let (acknowledged, client, url) =
                        (acknowledged.clone(), client.clone(), url.clone());
                    async move {
                        let sent = client
                            .post(&url)
                            .header("content-type", "application/json")
                            .body(body.clone())
                            .send()
                            .await;
                        if let Ok(response) = sent {
                            if response.status() == 200 && response.bytes().await.is_ok() {
                                acknowledged.lock().unwrap().push(body);
                            }
                        }
                    }
                })
                .await
        })
    };
    let delay = rand::rng().random_range(150..600);
    tokio::time::sleep(Duration::from_millis(delay)).await;
    server.0.kill().unwrap(); // SIGKILL
    server.0.wait().unwrap();
    sending.await.unwrap();
    let acknowledged: Vec<String> = acknowledged.lock().unwrap().clone();
    assert!(
        !acknowledged.is_empty(),
        "nothing was acknowledged before the kill ({delay} ms)"
    );
    assert!(
        acknowledged.len() < total,
        "the kill came after the last delivery ({delay} ms)"
    );
    eprintln!(
        "acknowledged {} of {total} before SIGKILL at {delay} ms",
        acknowledged.len()
    );

    // Restart on the same database: everything acknowledged is there.
    let (_restarted, base) = ServerProcess::start(&db.url, &[]).await;
    assert_eq!(
        client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let conn = leadql::store::connect(&db.url).await.unwrap();
    use sea_orm::EntityTrait;
    let logged: HashSet<String> = entity::delivery::Entity::find()
        .all(&conn)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.body_hash)
        .collect();
    for body in &acknowledged {
        let hash = leadql::ingest::payload::parse(body.as_bytes())
            .unwrap()
            .body_hash;
        assert!(
            logged.contains(&hash),
            "an acknowledged delivery is missing after SIGKILL"
        );
    }
    // The projections are exactly what the log implies.
    let before = snapshot(&conn).await;
    leadql::store::reproject(&conn, |_| {}).await.unwrap();
    assert_same_state(&before, &snapshot(&conn).await);
    conn.close().await.unwrap();
}
