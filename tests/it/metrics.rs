//! `/metrics` speaks Prometheus text and moves with the deliveries.

use crate::common::*;

#[tokio::test]
async fn delivery_metrics_count_each_outcome() {
    let db = TestDb::new().await;
    let server = TestServer::start(&db).await;
    let before = server.metrics().await;
    assert_eq!(server.deliver(SEED_BUSY).await.0, 200);
    assert_eq!(server.deliver(SEED_CONNECTED).await.0, 200);
    assert_eq!(server.deliver(SEED_BUSY).await.0, 200);
    assert_eq!(server.deliver("{oops").await.0, 400);
    assert_eq!(
        server.deliver(r#"{"leadId":"l","timestamp":1}"#).await.0,
        422
    );
    let after = server.metrics().await;

    let delta = |series: &str| sample(&after, series) - sample(&before, series);
    assert_eq!(
        delta(r#"leadql_deliveries_total{outcome="stored"}"#),
        2.0,
        "{after}"
    );
    assert_eq!(
        delta(r#"leadql_deliveries_total{outcome="duplicate"}"#),
        1.0
    );
    assert_eq!(
        delta(r#"leadql_deliveries_total{outcome="malformed_json"}"#),
        1.0
    );
    assert_eq!(
        delta(r#"leadql_deliveries_total{outcome="invalid_payload"}"#),
        1.0
    );
    assert_eq!(delta("leadql_ingest_seconds_count"), 5.0, "{after}");
    assert!(
        sample(&after, "leadql_ingest_batch_size_count") >= 2.0,
        "{after}"
    );
    assert!(
        after.contains("# TYPE leadql_ingest_seconds histogram"),
        "{after}"
    );
    server.stop().await;
}

#[tokio::test]
async fn pool_and_query_metrics_are_exposed() {
    let db = TestDb::new().await;
    let server = TestServer::start(&db).await;
    let before = server.metrics().await;
    server
        .query(
            "query Funnel { leadFunnel { count } }",
            serde_json::json!({}),
        )
        .await;
    let after = server.metrics().await;
    let delta = |series: &str| sample(&after, series) - sample(&before, series);
    assert_eq!(
        delta(r#"leadql_graphql_operations_total{operation="Funnel",outcome="ok"}"#),
        1.0,
        "{after}"
    );
    assert_eq!(
        delta(r#"leadql_graphql_statements_count{operation="Funnel"}"#),
        1.0
    );
    assert_eq!(
        delta(r#"leadql_graphql_statements_sum{operation="Funnel"}"#),
        1.0,
        "one SQL statement"
    );
    assert!(delta("leadql_db_statements_total") >= 1.0);
    // The pool: at least one connection open, idle between requests.
    let idle = sample(&after, r#"leadql_db_connections{state="idle"}"#);
    let busy = sample(&after, r#"leadql_db_connections{state="in_use"}"#);
    assert!(idle + busy >= 1.0, "{after}");
    assert!(
        after.contains("# TYPE leadql_db_connections gauge"),
        "{after}"
    );
    server.stop().await;
}
