//! Bounded resources. Overload: past `LEADQL_INGEST_QUEUE` deliveries
//! being stored, a delivery is refused at once (503, `Retry-After`),
//! nothing of it stored; every acknowledged delivery is stored, and a
//! refused one sent again is. Memory: SQLite's page cache per connection
//! is what `LEADQL_SQLITE_CACHE_MIB` says.

use crate::common::*;
use futures::StreamExt;
use leadql::config::Config;
use sea_orm::EntityTrait;
use std::collections::HashSet;

/// The body's identity as leadql logs it.
fn hash(body: &str) -> String {
    leadql::ingest::payload::parse(body.as_bytes())
        .expect("generated payloads parse")
        .body_hash
}

async fn logged(s: &TestServer) -> HashSet<String> {
    entity::delivery::Entity::find()
        .all(s.db())
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.body_hash)
        .collect()
}

#[tokio::test]
async fn past_the_queue_deliveries_are_refused_at_once_and_nothing_acknowledged_is_lost() {
    let db = TestDb::new().await;
    let mut config = Config::for_database(&db.url);
    // Room for two deliveries being stored; 48 senders offer far more.
    config.ingest_queue = 2;
    let s = TestServer::start_with(config).await;
    let url = s.url("/webhooks/activity");
    let payloads = leadql::generate::generate(120, 41);
    let answers: Vec<(String, u16, Option<String>, serde_json::Value)> =
        futures::stream::iter(payloads.clone())
            .map(|body| {
                let (client, url) = (s.client.clone(), url.clone());
                async move {
                    let response = client
                        .post(url)
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await
                        .expect("an answer");
                    let status = response.status().as_u16();
                    let retry_after = response
                        .headers()
                        .get("retry-after")
                        .map(|v| v.to_str().unwrap().to_string());
                    let json = response.json().await.unwrap_or_default();
                    (body, status, retry_after, json)
                }
            })
            .buffer_unordered(48)
            .collect()
            .await;

    let mut acknowledged = HashSet::new();
    let mut refused = Vec::new();
    for (body, status, retry_after, json) in answers {
        match status {
            200 => {
                acknowledged.insert(hash(&body));
            }
            503 => {
                assert_eq!(json["error"], "overloaded", "{json}");
                assert!(
                    json["message"]
                        .as_str()
                        .unwrap()
                        .contains("nothing was stored"),
                    "{json}"
                );
                assert_eq!(retry_after.as_deref(), Some("1"), "{json}");
                refused.push(body);
            }
            other => panic!("unexpected status {other}: {json}"),
        }
    }
    assert!(!refused.is_empty(), "48 senders overflow a room of 2");
    assert!(
        !acknowledged.is_empty(),
        "deliveries within the room are stored"
    );

    // Every acknowledged delivery is stored; a refused one is not (unless
    // the same body was also sent and acknowledged).
    let stored = logged(&s).await;
    assert!(acknowledged.is_subset(&stored));
    for body in &refused {
        let h = hash(body);
        assert_eq!(stored.contains(&h), acknowledged.contains(&h), "{body}");
    }
    let metrics = s.metrics().await;
    assert_eq!(
        sample(&metrics, "leadql_deliveries_total{outcome=\"overloaded\"}") as usize,
        refused.len(),
        "{metrics}"
    );

    // Sent again one at a time, as a sender honouring Retry-After would,
    // each is stored: in the end every body is.
    for body in refused {
        assert_eq!(s.deliver(body).await.0, 200);
    }
    let all: HashSet<String> = payloads.iter().map(|b| hash(b)).collect();
    assert_eq!(logged(&s).await, all);
    s.stop().await;
}

#[tokio::test]
#[cfg_attr(
    leadql_test_postgres,
    ignore = "SQLite only (PostgreSQL's cache is the database server's)"
)]
async fn every_sqlite_connection_has_the_configured_page_cache() {
    use sea_orm::{ConnectionTrait, Statement};
    let db = TestDb::new().await;
    let mut config = Config::for_database(&db.url);
    config.sqlite_cache_mib = 4;
    let s = TestServer::start_with(config).await;
    // Several at once, so the pool opens several connections.
    let sizes = futures::future::join_all((0..6).map(|_| async {
        let row = s
            .db()
            .query_one_raw(Statement::from_string(
                s.db().get_database_backend(),
                "SELECT cache_size FROM pragma_cache_size(), (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) SELECT count(*) FROM n)",
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get_by_index::<i64>(0).unwrap()
    }))
    .await;
    // Negative: KiB.
    assert_eq!(sizes, vec![-4096; 6]);
    s.stop().await;
}

/// On PostgreSQL a GraphQL request reads through connections of its own
/// (`store::connect_reads`) that stop any statement a second past the
/// query timeout. leadql answers a request that outlives its timeout at
/// once, but PostgreSQL does not notice a dropped connection until it has
/// a row to send, so without the limit a count or a scan went on for
/// minutes after its answer. Ingest's connections have no such limit.
#[tokio::test]
#[cfg_attr(
    not(leadql_test_postgres),
    ignore = "PostgreSQL only (SQLite runs in the server's process)"
)]
async fn reads_stop_in_the_database_soon_after_the_query_timeout() {
    use sea_orm::ConnectionTrait;
    use std::time::{Duration, Instant};
    let db = TestDb::new().await;
    let server = TestServer::start(&db).await;
    assert_eq!(server.deliver(SEED_CONNECTED).await.0, 200);
    let listed = server
        .query(
            "{ leads(first: 5) { nodes { id } } }",
            serde_json::json!({}),
        )
        .await;
    assert_eq!(listed["leads"]["nodes"].as_array().map(Vec::len), Some(1));

    // The request's statements ran on the read connections.
    let conn = leadql::store::connect(&db.url).await.unwrap();
    let last = last_statements(&conn, leadql::store::READ_APPLICATION).await;
    assert!(
        last.iter().any(|q| q.contains("\"leads\"")),
        "read connections' last statements: {last:?}"
    );

    // Such a connection stops a statement a second past the timeout.
    let reads = leadql::store::connect_reads(&conn, &db.url, Some(2), Duration::from_millis(500))
        .await
        .unwrap();
    assert_eq!(
        postgres_setting(&reads, "statement_timeout").await,
        "1500ms"
    );
    assert_eq!(
        postgres_setting(&conn, "statement_timeout").await,
        "0",
        "ingest's pool has no limit"
    );
    let started = Instant::now();
    let slept = reads
        .execute_unprepared("SELECT pg_sleep(10)")
        .await
        .expect_err("stopped by PostgreSQL");
    assert!(slept.to_string().contains("statement timeout"), "{slept}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    server.stop().await;
}
